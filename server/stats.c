/* stats.c - a ring of per-second slots (request counts, latency and batch histograms, triplets) for GET /v1/stats. */
#include "stats.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "errors.h"
#include "routes.h"

#define N_STATUS SRV_N_STATUS        /* errors.h: the statuses the server answers with */
#define ALL STATS_MAX_ROUTES         /* latency row of every route together */
#define OTHER (STATS_MAX_ROUTES - 1) /* unknown routes and those past the table */
#define LAT_MIN 5e-6

/* One second. A slot is reused every STATS_SPAN seconds: the first
 * recorder of a new second zeroes it (under g_roll) and then publishes
 * sec, so readers and other recorders see either the old second (which
 * readers skip) or the new one. A recorder racing the reset may lose or
 * misplace one count; the figures are for people, not for billing. */
typedef struct {
    _Atomic int64_t sec;
    _Atomic uint32_t lat[STATS_MAX_ROUTES + 1][STATS_LAT_BUCKETS];
    _Atomic uint32_t route_err[STATS_MAX_ROUTES];
    _Atomic uint32_t status[N_STATUS + 1];
    _Atomic uint32_t batch[STATS_BATCH_BUCKETS];
    _Atomic uint64_t batch_sum;
    _Atomic uint32_t trip[LOSS_CAT_COUNT];
    _Atomic uint32_t loss[STATS_LOSS_BUCKETS];
    _Atomic uint32_t inflight_max;
} slot;

static slot g_slots[STATS_SPAN]; /* about 5 MB, touched only as seconds are used */
static pthread_mutex_t g_roll = PTHREAD_MUTEX_INITIALIZER;

static int64_t now_sec(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts); /* a few ms coarse: enough for one-second slots, and cheaper */
    return (int64_t)ts.tv_sec;
}

static slot *slot_at(int64_t s) {
    slot *sl = &g_slots[(uint64_t)s % STATS_SPAN];
    if (atomic_load_explicit(&sl->sec, memory_order_acquire) != s) {
        pthread_mutex_lock(&g_roll);
        if (atomic_load_explicit(&sl->sec, memory_order_relaxed) != s) {
            int64_t old = atomic_load_explicit(&sl->sec, memory_order_relaxed);
            /* a late recorder of an older second must not wipe a newer one */
            if (old < s) {
                atomic_store_explicit(&sl->sec, -1, memory_order_relaxed);
                memset((char *)sl + sizeof sl->sec, 0, sizeof *sl - sizeof sl->sec);
                atomic_store_explicit(&sl->sec, s, memory_order_release);
            }
        }
        pthread_mutex_unlock(&g_roll);
    }
    return sl;
}

static void add32(_Atomic uint32_t *p, uint32_t v) {
    atomic_fetch_add_explicit(p, v, memory_order_relaxed);
}

int srv_stats_lat_bucket(double seconds) {
    if (!(seconds > LAT_MIN)) return 0;
    int b = (int)ceil(4.0 * log2(seconds / LAT_MIN));
    return b < STATS_LAT_BUCKETS ? b : STATS_LAT_BUCKETS - 1;
}

double srv_stats_lat_upper(int bucket) {
    return bucket >= STATS_LAT_BUCKETS - 1 ? INFINITY : LAT_MIN * exp2(bucket / 4.0);
}

double srv_stats_quantile_ms(const unsigned long long *hist, double q) {
    unsigned long long total = 0, cum = 0;
    for (int b = 0; b < STATS_LAT_BUCKETS; b++) total += hist[b];
    if (!total) return -1;
    double want = q * (double)total;
    for (int b = 0; b < STATS_LAT_BUCKETS; b++) {
        if (!hist[b] || (double)(cum + hist[b]) < want) {
            cum += hist[b];
            continue;
        }
        /* linear inside the bucket; the open last bucket reports its lower edge */
        double lo = b ? srv_stats_lat_upper(b - 1) : 0, hi = srv_stats_lat_upper(b);
        if (isinf(hi)) return lo * 1e3;
        double f = (want - (double)cum) / (double)hist[b];
        return (lo + (hi - lo) * (f < 0 ? 0 : f > 1 ? 1 : f)) * 1e3;
    }
    return srv_stats_lat_upper(STATS_LAT_BUCKETS - 2) * 1e3;
}

void srv_stats_request(int route, int http_status, double seconds, int in_flight) {
    slot *sl = slot_at(now_sec());
    int r = route >= 0 && route < OTHER ? route : OTHER, si = srv_status_index(http_status);
    int b = srv_stats_lat_bucket(seconds);
    add32(&sl->lat[r][b], 1);
    add32(&sl->lat[ALL][b], 1);
    add32(&sl->status[si], 1);
    if (http_status >= 400) add32(&sl->route_err[r], 1);
    uint32_t in = (uint32_t)(in_flight > 0 ? in_flight : 0);
    uint32_t cur = atomic_load_explicit(&sl->inflight_max, memory_order_relaxed);
    while (in > cur && !atomic_compare_exchange_weak_explicit(&sl->inflight_max, &cur, in, memory_order_relaxed,
                                                              memory_order_relaxed)) {
    }
}

void srv_stats_batch(size_t n) {
    slot *sl = slot_at(now_sec());
    int b = 0;
    while (b < STATS_BATCH_BUCKETS - 1 && n > ((size_t)1 << b)) b++;
    add32(&sl->batch[b], 1);
    atomic_fetch_add_explicit(&sl->batch_sum, n, memory_order_relaxed);
}

void srv_stats_triplets(const size_t counts[LOSS_CAT_COUNT]) {
    slot *sl = slot_at(now_sec());
    for (int c = 0; c < LOSS_CAT_COUNT; c++) add32(&sl->trip[c], (uint32_t)counts[c]);
}

static double loss_upper(int b) {
    return b >= STATS_LOSS_BUCKETS - 1 ? INFINITY : 0.05 * b;
}

void srv_stats_losses(const double *losses, size_t n) {
    slot *sl = slot_at(now_sec());
    for (size_t i = 0; i < n; i++) {
        double v = losses[i];
        int b = 0;
        if (!(v <= 0)) b = v != v ? STATS_LOSS_BUCKETS - 1 : (int)ceil(v / 0.05 - 1e-9);
        if (b >= STATS_LOSS_BUCKETS) b = STATS_LOSS_BUCKETS - 1;
        add32(&sl->loss[b], 1);
    }
}

void srv_stats_reset(void) {
    pthread_mutex_lock(&g_roll);
    for (int i = 0; i < STATS_SPAN; i++) atomic_store(&g_slots[i].sec, -1);
    pthread_mutex_unlock(&g_roll);
}

/* ---- reading --------------------------------------------------------- */

static const slot *slot_if(int64_t s) {
    const slot *sl = &g_slots[(uint64_t)s % STATS_SPAN];
    return atomic_load_explicit(&sl->sec, memory_order_acquire) == s ? sl : NULL;
}

static unsigned long long ld(const _Atomic uint32_t *p) {
    return atomic_load_explicit(p, memory_order_relaxed);
}

static double round3(double v) {
    return floor(v * 1000.0 + 0.5) / 1000.0;
}

/* [{"le": bound or null, "count": n}, ...] */
static cJSON *hist_json(const unsigned long long *h, int n, double (*upper)(int)) {
    cJSON *a = cJSON_CreateArray();
    for (int b = 0; a && b < n; b++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) goto fail;
        cJSON_AddItemToArray(a, o);
        double u = upper(b);
        if (!(isinf(u) ? cJSON_AddNullToObject(o, "le") : cJSON_AddNumberToObject(o, "le", round3(u))) ||
            !cJSON_AddNumberToObject(o, "count", (double)h[b]))
            goto fail;
    }
    return a;
fail:
    cJSON_Delete(a);
    return NULL;
}

static double batch_upper(int b) {
    return b >= STATS_BATCH_BUCKETS - 1 ? INFINITY : (double)((size_t)1 << b);
}

static int add_ms(cJSON *o, const char *name, double ms) {
    return ms < 0 ? cJSON_AddNullToObject(o, name) != NULL : cJSON_AddNumberToObject(o, name, round3(ms)) != NULL;
}

/* The per-second series over the whole span, oldest first. */
static cJSON *series_json(int64_t now) {
    cJSON *s = cJSON_CreateObject(), *req, *err, *p50, *p99, *inf;
    if (!s || !cJSON_AddNumberToObject(s, "start", (double)(now - STATS_SPAN)) ||
        !(req = cJSON_AddArrayToObject(s, "requests")) || !(err = cJSON_AddArrayToObject(s, "errors")) ||
        !(p50 = cJSON_AddArrayToObject(s, "p50_ms")) || !(p99 = cJSON_AddArrayToObject(s, "p99_ms")) ||
        !(inf = cJSON_AddArrayToObject(s, "in_flight_max")))
        goto fail;
    for (int64_t t = now - STATS_SPAN; t < now; t++) {
        const slot *sl = slot_if(t);
        unsigned long long h[STATS_LAT_BUCKETS] = {0}, n = 0, e = 0, im = 0;
        if (sl) {
            for (int b = 0; b < STATS_LAT_BUCKETS; b++) n += h[b] = ld(&sl->lat[ALL][b]);
            for (int i = 0; i < N_STATUS + 1; i++)
                if (i == N_STATUS || srv_status_at(i) >= 400) e += ld(&sl->status[i]);
            im = ld(&sl->inflight_max);
        }
        cJSON *v[5] = {cJSON_CreateNumber((double)n), cJSON_CreateNumber((double)e),
                       n ? cJSON_CreateNumber(round3(srv_stats_quantile_ms(h, 0.5))) : cJSON_CreateNull(),
                       n ? cJSON_CreateNumber(round3(srv_stats_quantile_ms(h, 0.99))) : cJSON_CreateNull(),
                       cJSON_CreateNumber((double)im)};
        cJSON *arr[5] = {req, err, p50, p99, inf};
        for (int i = 0; i < 5; i++) {
            if (!v[i]) {
                for (int j = i; j < 5; j++) cJSON_Delete(v[j]);
                goto fail;
            }
            cJSON_AddItemToArray(arr[i], v[i]);
        }
    }
    return s;
fail:
    cJSON_Delete(s);
    return NULL;
}

/* The counters summed over a window of whole seconds. */
typedef struct {
    unsigned long long lat[STATS_MAX_ROUTES + 1][STATS_LAT_BUCKETS], route_err[STATS_MAX_ROUTES], status[N_STATUS + 1],
        batch[STATS_BATCH_BUCKETS], trip[LOSS_CAT_COUNT], loss[STATS_LOSS_BUCKETS], batch_sum, recent;
} sums;

static void sum_window(sums *s, int64_t now, int window_s) {
    memset(s, 0, sizeof *s);
    for (int64_t t = now - window_s; t < now; t++) {
        const slot *sl = slot_if(t);
        if (!sl) continue;
        for (int r = 0; r <= STATS_MAX_ROUTES; r++)
            for (int b = 0; b < STATS_LAT_BUCKETS; b++) s->lat[r][b] += ld(&sl->lat[r][b]);
        for (int r = 0; r < STATS_MAX_ROUTES; r++) s->route_err[r] += ld(&sl->route_err[r]);
        for (int i = 0; i <= N_STATUS; i++) s->status[i] += ld(&sl->status[i]);
        for (int i = 0; i < STATS_BATCH_BUCKETS; i++) s->batch[i] += ld(&sl->batch[i]);
        s->batch_sum += atomic_load_explicit(&sl->batch_sum, memory_order_relaxed);
        for (int c = 0; c < LOSS_CAT_COUNT; c++) s->trip[c] += ld(&sl->trip[c]);
        for (int i = 0; i < STATS_LOSS_BUCKETS; i++) s->loss[i] += ld(&sl->loss[i]);
    }
    for (int64_t t = now - STATS_RATE_SECONDS; t < now; t++) {
        const slot *sl = slot_if(t);
        for (int b = 0; sl && b < STATS_LAT_BUCKETS; b++) s->recent += ld(&sl->lat[ALL][b]);
    }
}

/* One object per route that had requests in the window; 0, or -1 when out of memory. */
static int add_routes(cJSON *routes, const sums *s, int window_s) {
    for (int r = 0; r < STATS_MAX_ROUTES; r++) {
        unsigned long long n = 0;
        for (int b = 0; b < STATS_LAT_BUCKETS; b++) n += s->lat[r][b];
        if (!n) continue;
        const char *label = r < OTHER && r < srv_route_count() ? srv_route_label(r) : "other";
        cJSON *x = cJSON_CreateObject();
        if (!x) return -1;
        cJSON_AddItemToArray(routes, x);
        if (!cJSON_AddStringToObject(x, "route", label) || !cJSON_AddNumberToObject(x, "requests", (double)n) ||
            !cJSON_AddNumberToObject(x, "rps", round3((double)n / window_s)) ||
            !cJSON_AddNumberToObject(x, "errors", (double)s->route_err[r]) ||
            !add_ms(x, "p50_ms", srv_stats_quantile_ms(s->lat[r], 0.5)) ||
            !add_ms(x, "p99_ms", srv_stats_quantile_ms(s->lat[r], 0.99)))
            return -1;
    }
    return 0;
}

/* Requests by status code, batch sizes and mined triplets; 0, or -1 when out of memory. */
static int add_counts(cJSON *st, cJSON *bt, cJSON *tr, const sums *s) {
    static const char *const CAT[LOSS_CAT_COUNT] = {
        [LOSS_CAT_EASY] = "easy", [LOSS_CAT_SEMI_HARD] = "semi_hard", [LOSS_CAT_HARD] = "hard"};
    char key[16];
    unsigned long long nbatch = 0;
    cJSON *x;
    for (int i = 0; i <= N_STATUS; i++) {
        if (!s->status[i]) continue;
        if (i < N_STATUS)
            snprintf(key, sizeof key, "%d", srv_status_at(i));
        else
            snprintf(key, sizeof key, "other");
        if (!cJSON_AddNumberToObject(st, key, (double)s->status[i])) return -1;
    }
    for (int i = 0; i < STATS_BATCH_BUCKETS; i++) nbatch += s->batch[i];
    if (!cJSON_AddNumberToObject(bt, "requests", (double)nbatch) ||
        !cJSON_AddNumberToObject(bt, "vectors", (double)s->batch_sum) ||
        !cJSON_AddNumberToObject(bt, "mean", nbatch ? round3((double)s->batch_sum / (double)nbatch) : 0) ||
        !(x = hist_json(s->batch, STATS_BATCH_BUCKETS, batch_upper)))
        return -1;
    cJSON_AddItemToObject(bt, "histogram", x);
    for (int c = 0; c < LOSS_CAT_COUNT; c++)
        if (!cJSON_AddNumberToObject(tr, CAT[c], (double)s->trip[c])) return -1;
    if (!(x = hist_json(s->loss, STATS_LOSS_BUCKETS, loss_upper))) return -1;
    cJSON_AddItemToObject(tr, "loss_histogram", x);
    return 0;
}

cJSON *srv_stats_json(int window_s, time_t now_t, int in_flight) {
    static sums s; /* large: one copy, under g_read */
    static pthread_mutex_t g_read = PTHREAD_MUTEX_INITIALIZER;
    int64_t now = (int64_t)now_t;
    if (window_s < 1) window_s = 1;
    if (window_s > STATS_SPAN) window_s = STATS_SPAN;
    pthread_mutex_lock(&g_read);
    sum_window(&s, now, window_s);
    unsigned long long total = 0, errors = 0;
    for (int b = 0; b < STATS_LAT_BUCKETS; b++) total += s.lat[ALL][b];
    for (int i = 0; i <= N_STATUS; i++)
        if (i == N_STATUS || srv_status_at(i) >= 400) errors += s.status[i];
    cJSON *o = cJSON_CreateObject(), *routes, *st, *bt, *tr, *x;
    int ok =
        o && cJSON_AddNumberToObject(o, "now", (double)now) && cJSON_AddNumberToObject(o, "span_seconds", STATS_SPAN) &&
        cJSON_AddNumberToObject(o, "window_seconds", window_s) &&
        cJSON_AddNumberToObject(o, "rate_seconds", STATS_RATE_SECONDS) &&
        cJSON_AddNumberToObject(o, "rps", round3((double)s.recent / STATS_RATE_SECONDS)) &&
        cJSON_AddNumberToObject(o, "in_flight", in_flight) && cJSON_AddNumberToObject(o, "requests", (double)total) &&
        cJSON_AddNumberToObject(o, "errors", (double)errors) &&
        add_ms(o, "p50_ms", srv_stats_quantile_ms(s.lat[ALL], 0.5)) &&
        add_ms(o, "p99_ms", srv_stats_quantile_ms(s.lat[ALL], 0.99)) &&
        (routes = cJSON_AddArrayToObject(o, "routes")) && (st = cJSON_AddObjectToObject(o, "status")) &&
        (bt = cJSON_AddObjectToObject(o, "batch")) && (tr = cJSON_AddObjectToObject(o, "triplets")) &&
        add_routes(routes, &s, window_s) == 0 && add_counts(st, bt, tr, &s) == 0;
    pthread_mutex_unlock(&g_read);
    ok = ok && (x = series_json(now)) != NULL;
    if (ok) cJSON_AddItemToObject(o, "series", x);
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
