/* stats.h - the rolling window behind GET /v1/stats: 10 minutes of per-second counters. */
#ifndef SRV_STATS_H
#define SRV_STATS_H

#include <stddef.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "loss.h"

#define STATS_SPAN 600         /* seconds kept (one slot per second) */
#define STATS_MAX_ROUTES 30    /* routes counted separately; later ones count as "other" */
#define STATS_LAT_BUCKETS 84   /* latency buckets, a factor 2^(1/4) apart from 5 us */
#define STATS_BATCH_BUCKETS 14 /* batch sizes <= 1, 2, 4, ..., 4096, more */
#define STATS_LOSS_BUCKETS 22  /* triplet losses <= 0, 0.05, ..., 1.0, more */
#define STATS_RATE_SECONDS 5   /* "rps" averages this many complete seconds */

/* Recorders: called on the request path, a few relaxed atomic adds each
 * (a mutex only when a second's slot is first used). route is the route
 * table index (-1: no route); in_flight the requests in flight as this one
 * is answered (http.c counts them). */
void srv_stats_request(int route, int http_status, double seconds, int in_flight);
void srv_stats_batch(size_t n);
void srv_stats_triplets(const size_t counts[LOSS_CAT_COUNT]);
void srv_stats_losses(const double *losses, size_t n);

/* The GET /v1/stats reply (proto/openapi.yaml, Stats) at unix second now:
 * aggregates over the window_s complete seconds before now (1..STATS_SPAN),
 * the per-second series over the whole span; in_flight is reported as is.
 * NULL when out of memory. */
cJSON *srv_stats_json(int window_s, time_t now, int in_flight);

/* Bucket of a latency in seconds, and a bucket's upper bound in seconds
 * (exposed for the unit test). */
int srv_stats_lat_bucket(double seconds);
double srv_stats_lat_upper(int bucket);
/* The q-quantile (0..1) of a latency histogram in milliseconds,
 * interpolated inside its bucket; -1 when the histogram is empty. */
double srv_stats_quantile_ms(const unsigned long long *hist, double q);

/* Forget everything (tests). */
void srv_stats_reset(void);

#endif
