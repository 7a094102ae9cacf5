/* metrics.c - Prometheus counters and histograms with atomics (no lock on the request path). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

#include "batcher.h"
#include "routes.h"
#include "stats.h"

#define MAX_ROUTES 32 /* routes.c entries + 1 for "other" */
static const int STATUSES[] = {200, 400, 401, 403, 404, 405, 409, 413, 415, 422, 429, 500, 503};
#define N_STATUS (int)(sizeof STATUSES / sizeof STATUSES[0])
static const double LAT_BUCKETS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};
#define N_LAT (int)(sizeof LAT_BUCKETS / sizeof LAT_BUCKETS[0])
static const double BATCH_BUCKETS[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384};
#define N_BATCH (int)(sizeof BATCH_BUCKETS / sizeof BATCH_BUCKETS[0])

typedef struct {
    _Atomic unsigned long long req[N_STATUS + 1]; /* last: other statuses */
    _Atomic unsigned long long lat[N_LAT + 1];    /* non-cumulative; last: +Inf */
    _Atomic unsigned long long lat_sum_ns, lat_count;
    _Atomic unsigned long long batch[N_BATCH + 1];
    _Atomic unsigned long long batch_sum, batch_count;
} route_stats;

static route_stats g_routes[MAX_ROUTES];
static _Atomic unsigned long long g_triplets[CAT_COUNT];
static _Atomic unsigned long long g_reloads[2];

static route_stats *stats_of(int route)
{
    int n = srv_route_count();
    if (route < 0 || route >= n || route >= MAX_ROUTES - 1) route = n < MAX_ROUTES - 1 ? n : MAX_ROUTES - 1;
    return &g_routes[route];
}

void srv_metrics_request(int route, int http_status, double seconds)
{
    route_stats *r = stats_of(route);
    int si = N_STATUS, li = N_LAT;
    for (int i = 0; i < N_STATUS; i++)
        if (STATUSES[i] == http_status) si = i;
    for (int i = 0; i < N_LAT; i++)
        if (seconds <= LAT_BUCKETS[i]) {
            li = i;
            break;
        }
    atomic_fetch_add_explicit(&r->req[si], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->lat[li], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->lat_sum_ns, (unsigned long long)(seconds * 1e9), memory_order_relaxed);
    atomic_fetch_add_explicit(&r->lat_count, 1, memory_order_relaxed);
}

void srv_metrics_batch(int route, size_t n)
{
    route_stats *r = stats_of(route);
    int bi = N_BATCH;
    for (int i = 0; i < N_BATCH; i++)
        if ((double)n <= BATCH_BUCKETS[i]) {
            bi = i;
            break;
        }
    atomic_fetch_add_explicit(&r->batch[bi], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->batch_sum, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&r->batch_count, 1, memory_order_relaxed);
    srv_stats_batch(n);
}


void srv_metrics_triplets(const size_t counts[CAT_COUNT])
{
    for (int c = 0; c < CAT_COUNT; c++) atomic_fetch_add_explicit(&g_triplets[c], counts[c], memory_order_relaxed);
    srv_stats_triplets(counts);
}

void srv_metrics_reload(int ok) { atomic_fetch_add(&g_reloads[ok ? 0 : 1], 1); }

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
static void bprintf(buf *b, const char *fmt, ...)
{
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
static void label_escape(const char *s, char *out, size_t cap)
{
    size_t j = 0;
    for (; *s && j + 2 < cap; s++) {
        if (*s == '\\' || *s == '"') out[j++] = '\\', out[j++] = *s;
        else if (*s == '\n') out[j++] = '\\', out[j++] = 'n';
        else out[j++] = *s;
    }
    out[j] = 0;
}

char *srv_metrics_render(const srv_state *st, int in_flight, int draining)
{
    buf b = {0};
    int n = srv_route_count();
    if (n > MAX_ROUTES - 1) n = MAX_ROUTES - 1;
    bprintf(&b, "# HELP tripletd_requests_total HTTP requests by route and status.\n# TYPE tripletd_requests_total counter\n");
    for (int r = 0; r <= n; r++) {
        const char *label = r < n ? srv_route_label(r) : "other";
        for (int s = 0; s <= N_STATUS; s++) {
            unsigned long long v = atomic_load_explicit(&g_routes[r].req[s], memory_order_relaxed);
            if (!v) continue;
            if (s < N_STATUS) bprintf(&b, "tripletd_requests_total{route=\"%s\",status=\"%d\"} %llu\n", label, STATUSES[s], v);
            else bprintf(&b, "tripletd_requests_total{route=\"%s\",status=\"other\"} %llu\n", label, v);
        }
    }
    bprintf(&b, "# HELP tripletd_request_duration_seconds Request latency by route.\n# TYPE tripletd_request_duration_seconds histogram\n");
    for (int r = 0; r <= n; r++) {
        const char *label = r < n ? srv_route_label(r) : "other";
        unsigned long long count = atomic_load_explicit(&g_routes[r].lat_count, memory_order_relaxed), cum = 0;
        if (!count) continue;
        for (int i = 0; i < N_LAT; i++) {
            cum += atomic_load_explicit(&g_routes[r].lat[i], memory_order_relaxed);
            bprintf(&b, "tripletd_request_duration_seconds_bucket{route=\"%s\",le=\"%g\"} %llu\n", label, LAT_BUCKETS[i], cum);
        }
        cum += atomic_load_explicit(&g_routes[r].lat[N_LAT], memory_order_relaxed);
        bprintf(&b, "tripletd_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", label, cum);
        bprintf(&b, "tripletd_request_duration_seconds_sum{route=\"%s\"} %.9f\n", label,
                (double)atomic_load_explicit(&g_routes[r].lat_sum_ns, memory_order_relaxed) / 1e9);
        bprintf(&b, "tripletd_request_duration_seconds_count{route=\"%s\"} %llu\n", label, cum);
    }
    bprintf(&b, "# HELP tripletd_batch_size Vectors per request by route.\n# TYPE tripletd_batch_size histogram\n");
    for (int r = 0; r < n; r++) {
        unsigned long long count = atomic_load_explicit(&g_routes[r].batch_count, memory_order_relaxed), cum = 0;
        if (!count) continue;
        const char *label = srv_route_label(r);
        for (int i = 0; i < N_BATCH; i++) {
            cum += atomic_load_explicit(&g_routes[r].batch[i], memory_order_relaxed);
            bprintf(&b, "tripletd_batch_size_bucket{route=\"%s\",le=\"%g\"} %llu\n", label, BATCH_BUCKETS[i], cum);
        }
        cum += atomic_load_explicit(&g_routes[r].batch[N_BATCH], memory_order_relaxed);
        bprintf(&b, "tripletd_batch_size_bucket{route=\"%s\",le=\"+Inf\"} %llu\n", label, cum);
        bprintf(&b, "tripletd_batch_size_sum{route=\"%s\"} %llu\n", label,
                atomic_load_explicit(&g_routes[r].batch_sum, memory_order_relaxed));
        bprintf(&b, "tripletd_batch_size_count{route=\"%s\"} %llu\n", label, cum);
    }
    char rows[2048];
    bat_metrics_render(rows, sizeof rows);
    bprintf(&b, "%s", rows);
    bprintf(&b, "# HELP tripletd_in_flight_requests Requests being received or processed.\n# TYPE tripletd_in_flight_requests gauge\n");
    bprintf(&b, "tripletd_in_flight_requests %d\n", in_flight);
    bprintf(&b, "# HELP tripletd_triplets_scored_total Triplets scored by category.\n# TYPE tripletd_triplets_scored_total counter\n");
    for (int c = 0; c < CAT_COUNT; c++)
        bprintf(&b, "tripletd_triplets_scored_total{category=\"%s\"} %llu\n", loss_category_name((loss_category)c),
                atomic_load_explicit(&g_triplets[c], memory_order_relaxed));
    bprintf(&b, "# HELP tripletd_reloads_total Model reloads by result.\n# TYPE tripletd_reloads_total counter\n");
    bprintf(&b, "tripletd_reloads_total{result=\"ok\"} %llu\ntripletd_reloads_total{result=\"failed\"} %llu\n",
            atomic_load(&g_reloads[0]), atomic_load(&g_reloads[1]));
    bprintf(&b, "# HELP tripletd_model_info The loaded model (value 1).\n# TYPE tripletd_model_info gauge\n");
    if (st) {
        char name[300];
        label_escape(st->model->name, name, sizeof name);
        bprintf(&b,
                "tripletd_model_info{name=\"%s\",sha256=\"%s\",input_dim=\"%d\",output_dim=\"%d\",metric=\"%s\",generation=\"%d\"} 1\n",
                name, st->model->sha256, mdl_input_dim(st->model), mdl_output_dim(st->model), dist_name(st->metric),
                st->generation);
        bprintf(&b, "# HELP tripletd_model_loaded_timestamp_seconds When the model was loaded.\n"
                    "# TYPE tripletd_model_loaded_timestamp_seconds gauge\ntripletd_model_loaded_timestamp_seconds %lld\n",
                (long long)st->loaded_at);
    }
    bprintf(&b, "# HELP tripletd_ready 1 when serving, 0 while draining.\n# TYPE tripletd_ready gauge\ntripletd_ready %d\n",
            st && !draining);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
