/* metrics.h - Prometheus counters and histograms of the server, and their text exposition (metrics.c). */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stddef.h>

#include "loss.h"
#include "state.h"

/* Counting: lock-free, from any thread. route is an index of the route
 * table (routes.h), -1 for requests that matched no route. */
void srv_metrics_request(int route, int http_status, double seconds);
void srv_metrics_batch(int route, size_t n);
void srv_metrics_triplets(const size_t counts[LOSS_CAT_COUNT]);
void srv_metrics_reload(int ok);

/* Prometheus text exposition into a malloc'd NUL-terminated string (NULL
 * when out of memory). st: the snapshot to describe (NULL: none loaded);
 * in_flight and draining come from the HTTP layer, which owns them. */
char *srv_metrics_render(const srv_state *st, int in_flight, int draining);

#endif
