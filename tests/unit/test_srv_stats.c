/* test_srv_stats.c - the rolling window of GET /v1/stats: buckets, quantiles, window and series sums. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "routes.h"
#include "stats.h"

static void test_buckets(void **state) {
    (void)state;
    /* each latency lands in the first bucket whose upper bound holds it */
    const double t[] = {0, 1e-6, 5e-6, 5.1e-6, 1e-4, 1e-3, 0.0123, 0.5, 3.0, 1e6};
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        int b = srv_stats_lat_bucket(t[i]);
        assert_true(b >= 0 && b < STATS_LAT_BUCKETS);
        assert_true(t[i] <= srv_stats_lat_upper(b) * (1 + 1e-12));
        if (b > 0) assert_true(t[i] > srv_stats_lat_upper(b - 1) * (1 - 1e-12));
    }
    assert_true(isinf(srv_stats_lat_upper(STATS_LAT_BUCKETS - 1)));
    assert_true(srv_stats_lat_upper(STATS_LAT_BUCKETS - 2) > 5.0); /* 5 s requests are still measured */
}

static void test_quantiles(void **state) {
    (void)state;
    unsigned long long h[STATS_LAT_BUCKETS] = {0};
    assert_true(srv_stats_quantile_ms(h, 0.5) < 0);
    /* 100 requests of 1 ms: p50 and p99 within the bucket holding 1 ms (19% wide) */
    h[srv_stats_lat_bucket(1e-3)] = 100;
    double p50 = srv_stats_quantile_ms(h, 0.5), p99 = srv_stats_quantile_ms(h, 0.99);
    assert_true(p50 >= 1.0 / 1.19 && p50 <= 1.0 * 1.19);
    assert_true(p99 >= p50 && p99 <= 1.0 * 1.19);
    /* 98 fast, 2 slow: the median is fast, p99 is slow */
    memset(h, 0, sizeof h);
    h[srv_stats_lat_bucket(1e-4)] = 98;
    h[srv_stats_lat_bucket(0.2)] = 2;
    assert_true(srv_stats_quantile_ms(h, 0.5) < 0.12);
    assert_true(srv_stats_quantile_ms(h, 0.99) > 160);
}

static double num(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_non_null(v);
    assert_true(cJSON_IsNumber(v));
    return v->valuedouble;
}

static void test_json(void **state) {
    (void)state;
    srv_stats_reset();
    for (int i = 0; i < 40; i++) srv_stats_request(0, 200, 1e-3, 0);
    for (int i = 0; i < 3; i++) srv_stats_request(-1, 404, 1e-4, 0);
    srv_stats_request(1, 503, 2e-3, 0);
    srv_stats_batch(1);
    srv_stats_batch(100);
    size_t counts[LOSS_CAT_COUNT] = {5, 2, 1};
    srv_stats_triplets(counts);
    const double losses[] = {0, 0, 0.01, 0.05, 0.051, 1.0, 7.5};
    srv_stats_losses(losses, sizeof losses / sizeof losses[0]);
    time_t now = time(NULL) + 1; /* everything above is in a complete second */

    cJSON *o = srv_stats_json(60, now, 0);
    assert_non_null(o);
    assert_int_equal((int)num(o, "requests"), 44);
    assert_int_equal((int)num(o, "errors"), 4);
    assert_int_equal((int)num(o, "window_seconds"), 60);
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
    assert_int_equal((int)num(st, "200"), 40);
    assert_int_equal((int)num(st, "404"), 3);
    assert_int_equal((int)num(st, "503"), 1);
    const cJSON *routes = cJSON_GetObjectItemCaseSensitive(o, "routes"), *r;
    int seen = 0;
    cJSON_ArrayForEach(r, routes) {
        const char *name = cJSON_GetObjectItemCaseSensitive(r, "route")->valuestring;
        if (strcmp(name, srv_route_label(0)) == 0) {
            assert_int_equal((int)num(r, "requests"), 40);
            assert_int_equal((int)num(r, "errors"), 0);
            seen++;
        } else if (strcmp(name, "other") == 0) {
            assert_int_equal((int)num(r, "requests"), 3);
            assert_int_equal((int)num(r, "errors"), 3);
            seen++;
        }
    }
    assert_int_equal(seen, 2);
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(o, "batch");
    assert_int_equal((int)num(b, "requests"), 2);
    assert_int_equal((int)num(b, "vectors"), 101);
    const cJSON *bh = cJSON_GetObjectItemCaseSensitive(b, "histogram");
    assert_int_equal((int)num(cJSON_GetArrayItem(bh, 0), "count"), 1); /* le 1 */
    assert_int_equal((int)num(cJSON_GetArrayItem(bh, 7), "count"), 1); /* le 128 */
    const cJSON *tr = cJSON_GetObjectItemCaseSensitive(o, "triplets");
    assert_int_equal((int)num(tr, "easy"), 5);
    assert_int_equal((int)num(tr, "semi_hard"), 2);
    assert_int_equal((int)num(tr, "hard"), 1);
    const cJSON *lh = cJSON_GetObjectItemCaseSensitive(tr, "loss_histogram");
    assert_int_equal(cJSON_GetArraySize(lh), STATS_LOSS_BUCKETS);
    assert_int_equal((int)num(cJSON_GetArrayItem(lh, 0), "count"), 2);  /* le 0 */
    assert_int_equal((int)num(cJSON_GetArrayItem(lh, 1), "count"), 2);  /* le 0.05: 0.01, 0.05 */
    assert_int_equal((int)num(cJSON_GetArrayItem(lh, 2), "count"), 1);  /* le 0.1: 0.051 */
    assert_int_equal((int)num(cJSON_GetArrayItem(lh, 20), "count"), 1); /* le 1 */
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(lh, 21), "le")));
    assert_int_equal((int)num(cJSON_GetArrayItem(lh, 21), "count"), 1);
    /* the series covers the span and sums to the same total */
    const cJSON *se = cJSON_GetObjectItemCaseSensitive(o, "series"), *v;
    const cJSON *req = cJSON_GetObjectItemCaseSensitive(se, "requests");
    assert_int_equal(cJSON_GetArraySize(req), STATS_SPAN);
    assert_int_equal((long long)num(se, "start"), (long long)now - STATS_SPAN);
    double sum = 0;
    cJSON_ArrayForEach(v, req) sum += v->valuedouble;
    assert_int_equal((int)sum, 44);
    /* rps: the last STATS_RATE_SECONDS complete seconds */
    assert_true(fabs(num(o, "rps") - 44.0 / STATS_RATE_SECONDS) < 1e-9);
    cJSON_Delete(o);

    /* seconds outside the window are not counted; nothing is in the future */
    o = srv_stats_json(1, now + 5, 0);
    assert_int_equal((int)num(o, "requests"), 0);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "p50_ms")));
    cJSON_Delete(o);
    o = srv_stats_json(60, now - 100, 0);
    assert_int_equal((int)num(o, "requests"), 0);
    cJSON_Delete(o);
    /* past the span the slot is gone */
    o = srv_stats_json(STATS_SPAN, now + STATS_SPAN, 0);
    assert_int_equal((int)num(o, "requests"), 0);
    cJSON_Delete(o);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_quantiles),
        cmocka_unit_test(test_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
