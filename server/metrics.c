/* metrics.c - Prometheus counters and histograms with atomics (no lock on the request path). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "keys.h"

#include "batcher.h"
#include "deadline.h"
#include "errors.h"
#include "histogram.h"
#include "routes.h"
#include "stats.h"

#define MAX_ROUTES 32         /* routes.c entries + 1 for "other" */
#define N_STATUS SRV_N_STATUS /* errors.h: the statuses the server answers with */
static const double LAT_BUCKETS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                     0.05,   0.1,     0.25,   0.5,   1,      2.5,   10};
static const srv_hist_spec LATENCY = {LAT_BUCKETS, (int)(sizeof LAT_BUCKETS / sizeof LAT_BUCKETS[0]), 1e9};
static const double BATCH_BUCKETS[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384};
static const srv_hist_spec BATCH = {BATCH_BUCKETS, (int)(sizeof BATCH_BUCKETS / sizeof BATCH_BUCKETS[0]), 1};

typedef struct {
    _Atomic unsigned long long req[N_STATUS + 1]; /* last: other statuses */
    srv_hist lat;                                 /* seconds */
    srv_hist batch;                               /* vectors per request */
} route_stats;

static route_stats g_routes[MAX_ROUTES];
static _Atomic unsigned long long g_triplets[LOSS_CAT_COUNT];
static _Atomic unsigned long long g_reloads[2];

static route_stats *stats_of(int route) {
    int n = srv_route_count();
    if (route < 0 || route >= n || route >= MAX_ROUTES - 1) route = n < MAX_ROUTES - 1 ? n : MAX_ROUTES - 1;
    return &g_routes[route];
}

void srv_metrics_request(int route, int http_status, double seconds) {
    route_stats *r = stats_of(route);
    int si = srv_status_index(http_status);
    atomic_fetch_add_explicit(&r->req[si], 1, memory_order_relaxed);
    srv_hist_observe(&r->lat, &LATENCY, seconds);
}

void srv_metrics_batch(int route, size_t n) {
    srv_hist_observe(&stats_of(route)->batch, &BATCH, (double)n);
    srv_stats_batch(n);
}

void srv_metrics_triplets(const size_t counts[LOSS_CAT_COUNT]) {
    for (int c = 0; c < LOSS_CAT_COUNT; c++) atomic_fetch_add_explicit(&g_triplets[c], counts[c], memory_order_relaxed);
    srv_stats_triplets(counts);
}

void srv_metrics_reload(int ok) {
    atomic_fetch_add(&g_reloads[ok ? 0 : 1], 1);
}

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} buf;

static void bprintf(buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void bprintf(buf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        if (b->oom) return;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, b->p ? b->cap - b->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->len + (size_t)n < b->cap) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = (b->cap ? b->cap * 2 : 16384) + (size_t)n;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

/* Prometheus label values escape backslash, quote and newline. */
static void label_escape(const char *s, char *out, size_t cap) {
    size_t j = 0;
    for (; *s && j + 2 < cap; s++) {
        if (*s == '\\' || *s == '"')
            out[j++] = '\\', out[j++] = *s;
        else if (*s == '\n')
            out[j++] = '\\', out[j++] = 'n';
        else
            out[j++] = *s;
    }
    out[j] = 0;
}

/* A route's histogram lines; nothing for a histogram that counted nothing. */
static void hist_lines(buf *b, const srv_hist *h, const srv_hist_spec *s, const char *name, const char *route) {
    char labels[160], text[4096];
    if (!srv_hist_count(h, s)) return;
    snprintf(labels, sizeof labels, "route=\"%s\"", route);
    if (srv_hist_render(text, sizeof text, h, s, name, labels) >= sizeof text)
        b->oom = 1; /* cannot happen: 17 short lines */
    bprintf(b, "%s", text);
}

char *srv_metrics_render(const srv_state *st, int in_flight, int draining) {
    buf b = {0};
    int n = srv_route_count();
    if (n > MAX_ROUTES - 1) n = MAX_ROUTES - 1;
    bprintf(
        &b,
        "# HELP tripletd_requests_total HTTP requests by route and status.\n# TYPE tripletd_requests_total counter\n");
    for (int r = 0; r <= n; r++) {
        const char *label = r < n ? srv_route_label(r) : "other";
        for (int s = 0; s <= N_STATUS; s++) {
            unsigned long long v = atomic_load_explicit(&g_routes[r].req[s], memory_order_relaxed);
            if (!v) continue;
            if (s < N_STATUS)
                bprintf(&b, "tripletd_requests_total{route=\"%s\",status=\"%d\"} %llu\n", label, srv_status_at(s), v);
            else
                bprintf(&b, "tripletd_requests_total{route=\"%s\",status=\"other\"} %llu\n", label, v);
        }
    }
    bprintf(&b, "# HELP tripletd_request_duration_seconds Request latency by route.\n# TYPE "
                "tripletd_request_duration_seconds histogram\n");
    for (int r = 0; r <= n; r++)
        hist_lines(&b, &g_routes[r].lat, &LATENCY, "tripletd_request_duration_seconds",
                   r < n ? srv_route_label(r) : "other");
    bprintf(&b, "# HELP tripletd_batch_size Vectors per request by route.\n# TYPE tripletd_batch_size histogram\n");
    for (int r = 0; r < n; r++) hist_lines(&b, &g_routes[r].batch, &BATCH, "tripletd_batch_size", srv_route_label(r));
    char rows[2048];
    bat_metrics_render(rows, sizeof rows);
    bprintf(&b, "%s", rows);
    size_t kcap = SRV_KEYS_MAX * 120 + 200;
    char *keys = malloc(kcap);
    if (keys) {
        keys[0] = 0;
        srv_keys_render(keys, 0, kcap);
        bprintf(&b, "%s", keys);
        free(keys);
    }
    bprintf(&b, "# HELP tripletd_in_flight_requests Requests being received or processed.\n# TYPE "
                "tripletd_in_flight_requests gauge\n");
    bprintf(&b, "tripletd_in_flight_requests %d\n", in_flight);
    bprintf(&b, "# HELP tripletd_triplets_scored_total Triplets scored by category.\n# TYPE "
                "tripletd_triplets_scored_total counter\n");
    for (int c = 0; c < LOSS_CAT_COUNT; c++)
        bprintf(&b, "tripletd_triplets_scored_total{category=\"%s\"} %llu\n", loss_category_name((loss_category)c),
                atomic_load_explicit(&g_triplets[c], memory_order_relaxed));
    bprintf(&b, "# HELP tripletd_reloads_total Model reloads by result.\n# TYPE tripletd_reloads_total counter\n");
    bprintf(&b, "tripletd_reloads_total{result=\"ok\"} %llu\ntripletd_reloads_total{result=\"failed\"} %llu\n",
            atomic_load(&g_reloads[0]), atomic_load(&g_reloads[1]));
    bprintf(&b,
            "# HELP tripletd_connections_cut_total Connections cut for not sending a whole request within --timeout.\n"
            "# TYPE tripletd_connections_cut_total counter\ntripletd_connections_cut_total %llu\n",
            srv_dl_cut_total());
    bprintf(&b, "# HELP tripletd_model_info The loaded model (value 1).\n# TYPE tripletd_model_info gauge\n");
    if (st) {
        char name[300];
        label_escape(st->model->name, name, sizeof name);
        bprintf(&b,
                "tripletd_model_info{name=\"%s\",sha256=\"%s\",input_dim=\"%d\",output_dim=\"%d\",metric=\"%s\","
                "generation=\"%d\"} 1\n",
                name, st->model->sha256, mdl_input_dim(st->model), mdl_output_dim(st->model), dist_name(st->metric),
                st->generation);
        bprintf(&b,
                "# HELP tripletd_model_loaded_timestamp_seconds When the model was loaded.\n"
                "# TYPE tripletd_model_loaded_timestamp_seconds gauge\ntripletd_model_loaded_timestamp_seconds %lld\n",
                (long long)st->loaded_at);
    }
    bprintf(&b,
            "# HELP tripletd_ready 1 when serving, 0 while draining.\n# TYPE tripletd_ready gauge\ntripletd_ready %d\n",
            st && !draining);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
