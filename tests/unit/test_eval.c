/* test_eval.c - Recall@k and MAP@R on hand-checked cases and numpy float64 references. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../golden/golden_eval.h"
#include "dist.h"
#include "eval.h"

#define TOL 1e-12

static void check(double got, double want, const char *what) {
    if (!(fabs(got - want) <= TOL)) fail_msg("%s: got %.17g, want %.17g", what, got, want);
}

static void test_ap_at_r(void **state) {
    (void)state;
    const int64_t a[4] = {1, 0, 1, 1};
    check(evl_ap_at_r(a, 3, 1), (1.0 + 2.0 / 3.0) / 3.0, "1 0 1");
    check(evl_ap_at_r(a, 1, 1), 1.0, "1");
    check(evl_ap_at_r(a, 1, 0), 0.0, "miss");
    check(evl_ap_at_r(a + 1, 3, 1), (1.0 / 2.0 + 2.0 / 3.0) / 3.0, "0 1 1");
    check(evl_ap_at_r(a, 0, 1), 0.0, "R = 0");
}

/* Gallery on a line: x = 0 1 2 3 10 with labels 0 0 1 1 0. */
static const float line_g[5] = {0, 1, 2, 3, 10};
static const int64_t line_gl[5] = {0, 0, 1, 1, 0};

/* Worked by hand (sqeuclidean; ties go to the smaller gallery index):
 *   q=0.4 y=0: ranks 0 1 2 3 10 -> labels 0 0 1 | R=3, AP = (1 + 1)/3 = 2/3
 *   q=2.6 y=1: 3 2 1 0 10       -> 1 1       | R=2, AP = 1
 *   q=9   y=1: 10 3 2 ...       -> 0 1       | R=2, AP = (1/2)/2 = 1/4, miss@1
 *   q=1.5 y=0: 1,2 tie; 0,3 tie -> 0 1 0     | R=3, AP = (1 + 2/3)/3 = 5/9
 *   q=5   y=7: no gallery row labelled 7     -> skipped
 * Recall@1 = 3/4, Recall@5 = 1, MAP@R = (2/3 + 1 + 1/4 + 5/9)/4 = 89/144. */
static void test_hand_case(void **state) {
    (void)state;
    const float q[5] = {0.4f, 2.6f, 9, 1.5f, 5};
    const int64_t ql[5] = {0, 1, 1, 0, 7};
    evl_result r;
    tr_err err;
    for (size_t block = 0; block <= 2; block++) {
        evl_opts o;
        evl_opts_default(&o);
        o.block = block;
        assert_int_equal(evl_retrieval(DIST_SQEUCLIDEAN, q, ql, 5, line_g, line_gl, 5, 1, &o, &r, &err), TR_OK);
        check(r.recall_at_1, 0.75, "recall@1");
        check(r.recall_at_5, 1.0, "recall@5");
        check(r.map_at_r, 89.0 / 144.0, "map@r");
        check(r.mean_r, 2.5, "mean R");
        assert_int_equal(r.n_queries, 4);
        assert_int_equal(r.n_skipped, 1);
    }
    evl_opts o;
    evl_opts_default(&o);
    o.map_at_r = 0;
    assert_int_equal(evl_retrieval(DIST_SQEUCLIDEAN, q, ql, 5, line_g, line_gl, 5, 1, &o, &r, &err), TR_OK);
    check(r.recall_at_1, 0.75, "recall@1 without map");
    assert_true(isnan(r.map_at_r));
}

/* Leave-one-out on the same line (each point against the other four):
 *   x=0 y=0: 1 2 3 10    -> 0 1     R=2 AP 1/2
 *   x=1 y=0: 0,2 tie     -> 0 1     R=2 AP 1/2
 *   x=2 y=1: 1,3 tie     -> 0       R=1 AP 0, miss@1
 *   x=3 y=1: 2           -> 1       R=1 AP 1
 *   x=10 y=0: 3 2 1 0    -> 1 1     R=2 AP 0, miss@1
 * Recall@1 = 3/5, Recall@5 = 1, MAP@R = 2/5. */
static void test_leave_one_out(void **state) {
    (void)state;
    evl_opts o;
    evl_opts_default(&o);
    o.exclude_self = 1;
    evl_result r;
    tr_err err;
    assert_int_equal(evl_retrieval(DIST_SQEUCLIDEAN, line_g, line_gl, 5, line_g, line_gl, 5, 1, &o, &r, &err), TR_OK);
    check(r.recall_at_1, 0.6, "recall@1");
    check(r.recall_at_5, 1.0, "recall@5");
    check(r.map_at_r, 0.4, "map@r");
    assert_int_equal(r.n_queries, 5);
    /* one row of its own class: R = 0 once it is left out */
    const int64_t lone[5] = {0, 0, 1, 1, 4};
    assert_int_equal(evl_retrieval(DIST_SQEUCLIDEAN, line_g, lone, 5, line_g, lone, 5, 1, &o, &r, &err), TR_OK);
    assert_int_equal(r.n_skipped, 1);
    assert_int_equal(r.n_queries, 4);
}

static void test_golden(void **state) {
    (void)state;
    for (size_t c = 0; c < sizeof golden_eval_cases / sizeof golden_eval_cases[0]; c++) {
        const golden_eval_case *g = &golden_eval_cases[c];
        dist_metric m;
        assert_int_equal(dist_parse(g->metric, &m), 0);
        /* whole, one query per knn call, odd blocks, two threads, MAP@R from
         * dist_matrix and from knn_search: same answer */
        const size_t blocks[6] = {0, 1, 7, 0, 3, 0};
        for (int v = 0; v < 6; v++) {
            evl_opts o;
            evl_opts_default(&o);
            o.exclude_self = g->exclude_self;
            o.block = blocks[v];
            o.threads = v == 3 || v == 5 ? 2 : 1;
            o.map_exact = v == 3 || v == 4;
            evl_result r;
            tr_err err;
            int rc = evl_retrieval(m, g->q, g->ql, g->nq, g->g, g->gl, g->ng, g->dim, &o, &r, &err);
            if (rc != TR_OK) fail_msg("%s: %s", g->name, err.msg);
            char what[96];
            snprintf(what, sizeof what, "%s (variant %d) recall@1", g->name, v);
            check(r.recall_at_1, g->recall1, what);
            snprintf(what, sizeof what, "%s (variant %d) recall@5", g->name, v);
            check(r.recall_at_5, g->recall5, what);
            snprintf(what, sizeof what, "%s (variant %d) map@r", g->name, v);
            check(r.map_at_r, g->map_at_r, what);
            assert_int_equal(r.n_queries, g->scored);
            assert_int_equal(r.n_skipped, g->skipped);
        }
    }
}

/* Big enough for dist_matrix's SGEMM path: MAP@R from the distance blocks
 * agrees with the k = R knn_search ranking on random data (no near ties). */
static void test_matrix_vs_knn(void **state) {
    (void)state;
    const size_t nq = 300, ng = 2000, dim = 24;
    float *q = malloc(nq * dim * sizeof *q), *g = malloc(ng * dim * sizeof *g);
    int64_t *ql = malloc(nq * sizeof *ql), *gl = malloc(ng * sizeof *gl);
    assert_true(q && g && ql && gl);
    uint64_t s = 12345;
    for (size_t i = 0; i < ng * dim; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        g[i] = (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
    }
    for (size_t i = 0; i < ng; i++) { /* classes overlap: a shift along dims j = label (mod 7) */
        gl[i] = (int64_t)(i % 7);
        for (size_t j = (size_t)gl[i]; j < dim; j += 7) g[i * dim + j] += 0.35f;
    }
    for (size_t i = 0; i < nq; i++) { /* a noisy copy of a gallery row */
        size_t src = (i * 37) % ng;
        ql[i] = gl[src];
        for (size_t j = 0; j < dim; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            q[i * dim + j] = g[src * dim + j] + 0.3f * (float)((double)(s >> 11) / 9007199254740992.0 - 0.5);
        }
    }
    for (int metric = 0; metric < DIST_COUNT; metric++) {
        evl_opts o;
        evl_opts_default(&o);
        evl_result a, b;
        tr_err err;
        assert_int_equal(evl_retrieval((dist_metric)metric, q, ql, nq, g, gl, ng, dim, &o, &a, &err), TR_OK);
        evl_result c;
        o.threads = 3; /* the sum runs in query order: bit-identical */
        assert_int_equal(evl_retrieval((dist_metric)metric, q, ql, nq, g, gl, ng, dim, &o, &c, &err), TR_OK);
        assert_true(c.map_at_r == a.map_at_r && c.recall_at_1 == a.recall_at_1);
        o.threads = 1;
        o.map_exact = 1;
        assert_int_equal(evl_retrieval((dist_metric)metric, q, ql, nq, g, gl, ng, dim, &o, &b, &err), TR_OK);
        char what[64];
        snprintf(what, sizeof what, "%s map@r matrix vs knn", dist_name((dist_metric)metric));
        if (!(fabs(a.map_at_r - b.map_at_r) <= 1e-12)) fail_msg("%s: %.17g vs %.17g", what, a.map_at_r, b.map_at_r);
        if (!(a.map_at_r > 0.1 && a.map_at_r < 0.9)) fail_msg("%s: map@r %g is trivial", what, a.map_at_r);
        assert_true(a.recall_at_1 == b.recall_at_1);
    }
    free(q);
    free(g);
    free(ql);
    free(gl);
}

static void test_errors(void **state) {
    (void)state;
    evl_result r;
    tr_err err;
    evl_opts o;
    evl_opts_default(&o);
    assert_int_equal(evl_retrieval(DIST_SQEUCLIDEAN, line_g, line_gl, 0, line_g, line_gl, 5, 1, &o, &r, &err),
                     TR_EINVAL);
    assert_string_equal(err.field, "queries");
    assert_int_equal(evl_retrieval(DIST_SQEUCLIDEAN, line_g, line_gl, 5, line_g, line_gl, 0, 1, &o, &r, &err),
                     TR_EINVAL);
    assert_string_equal(err.field, "gallery");
    o.exclude_self = 1;
    assert_int_equal(evl_retrieval(DIST_SQEUCLIDEAN, line_g, line_gl, 4, line_g, line_gl, 5, 1, &o, &r, &err),
                     TR_EINVAL);
    assert_string_equal(err.msg, "leave-one-out needs the queries to be the gallery (4 queries, 5 gallery rows)");
    /* a NaN in the 4th query, found in the second block of 2: named by its
     * index in the whole query set */
    const float q[5] = {0, 1, 2, NAN, 4};
    o.exclude_self = 0;
    o.block = 2;
    assert_int_equal(evl_retrieval(DIST_SQEUCLIDEAN, q, line_gl, 5, line_g, line_gl, 5, 1, &o, &r, &err), TR_EINVAL);
    assert_string_equal(err.field, "queries[3]");
    assert_string_equal(err.msg, "query 3 has a value that is not finite");
    /* a single-row gallery left out of itself has nothing to rank */
    o.exclude_self = 1;
    o.block = 0;
    assert_int_equal(evl_retrieval(DIST_SQEUCLIDEAN, line_g, line_gl, 1, line_g, line_gl, 1, 1, &o, &r, &err), TR_OK);
    assert_int_equal(r.n_skipped, 1);
    assert_int_equal(r.n_queries, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ap_at_r), cmocka_unit_test(test_hand_case),     cmocka_unit_test(test_leave_one_out),
        cmocka_unit_test(test_golden),  cmocka_unit_test(test_matrix_vs_knn), cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
