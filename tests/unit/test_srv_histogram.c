/* test_srv_histogram.c - the server's histogram: buckets by upper bound, the sum's scale, Prometheus lines, cut text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "histogram.h"

static const double LE[] = {1, 2, 4};
static const srv_hist_spec COUNTS = {LE, 3, 1};
static const double SEC[] = {0.001, 0.01};
static const srv_hist_spec SECONDS = {SEC, 2, 1e9};

/* A value on a bound falls in that bucket; past the last bound, +Inf. */
static void test_counts(void **state) {
    (void)state;
    srv_hist h = {0};
    char text[1024];
    assert_int_equal(srv_hist_count(&h, &COUNTS), 0);
    const double v[] = {1, 1, 2, 3, 4, 5, 100};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) srv_hist_observe(&h, &COUNTS, v[i]);
    assert_int_equal(srv_hist_count(&h, &COUNTS), 7);
    size_t n = srv_hist_render(text, sizeof text, &h, &COUNTS, "rows", "");
    assert_int_equal(n, strlen(text));
    assert_string_equal(text, "rows_bucket{le=\"1\"} 2\n"
                              "rows_bucket{le=\"2\"} 3\n"
                              "rows_bucket{le=\"4\"} 5\n"
                              "rows_bucket{le=\"+Inf\"} 7\n"
                              "rows_sum 116\n"
                              "rows_count 7\n");
}

/* Seconds kept as nanoseconds and printed back as seconds; labels go first. */
static void test_seconds_and_labels(void **state) {
    (void)state;
    srv_hist h = {0};
    char text[1024];
    srv_hist_observe(&h, &SECONDS, 0.0005);
    srv_hist_observe(&h, &SECONDS, 0.25);
    srv_hist_render(text, sizeof text, &h, &SECONDS, "lat", "route=\"/v1/embed\"");
    assert_string_equal(text, "lat_bucket{route=\"/v1/embed\",le=\"0.001\"} 1\n"
                              "lat_bucket{route=\"/v1/embed\",le=\"0.01\"} 1\n"
                              "lat_bucket{route=\"/v1/embed\",le=\"+Inf\"} 2\n"
                              "lat_sum{route=\"/v1/embed\"} 0.250500000\n"
                              "lat_count{route=\"/v1/embed\"} 2\n");
}

/* A buffer too small: cut, NUL-terminated, and the return says how much was needed. */
static void test_cut(void **state) {
    (void)state;
    srv_hist h = {0};
    char full[1024], small[40];
    srv_hist_observe(&h, &COUNTS, 3);
    size_t need = srv_hist_render(full, sizeof full, &h, &COUNTS, "rows", "");
    memset(small, 'x', sizeof small);
    assert_int_equal(srv_hist_render(small, sizeof small, &h, &COUNTS, "rows", ""), need);
    assert_true(need >= sizeof small);
    assert_int_equal(strlen(small), sizeof small - 1);
    assert_memory_equal(small, full, sizeof small - 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_seconds_and_labels),
        cmocka_unit_test(test_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
