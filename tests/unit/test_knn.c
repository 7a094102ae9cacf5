/* test_knn.c - knn_search against a brute-force double reference: every
 * metric, designed ties, duplicates, zero vectors, filters, block edges; the
 * whole group runs twice, with the float GEMM pass and with the int8 pass. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../golden/golden_knn.h"
#include "knn.h"

static uint64_t rng_state;
static int int8_pass;     /* knn_opts.int8_pass for every search of the group */
static double rnd(void) { /* uniform in [-1, 1) */
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(rng_state >> 11) / (double)(1ULL << 52) - 1.0;
}

/* Reference: plain double sums in index order, full sort by (d, index). */
static double ref_dist(dist_metric m, const float *a, const float *b, size_t dim) {
    double dot = 0, na = 0, nb = 0, sq = 0;
    for (size_t i = 0; i < dim; i++) {
        double x = a[i], y = b[i];
        dot += x * y;
        na += x * x;
        nb += y * y;
        sq += (x - y) * (x - y);
    }
    switch (m) {
    case DIST_SQEUCLIDEAN:
        return sq;
    case DIST_EUCLIDEAN:
        return sqrt(sq);
    case DIST_COSINE: {
        if (na == 0 || nb == 0) return 1.0;
        double c = dot / (sqrt(na) * sqrt(nb));
        return 1.0 - (c > 1 ? 1 : c < -1 ? -1 : c);
    }
    default:
        return -dot;
    }
}

typedef struct {
    double d;
    int64_t i;
} ref_hit;

static int ref_cmp(const void *pa, const void *pb) {
    const ref_hit *a = pa, *b = pb;
    if (a->d != b->d) return a->d < b->d ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* Compare knn_search with the reference for one configuration. */
static void check(dist_metric m, const float *q, size_t nq, const float *g, size_t ng, size_t dim, size_t k,
                  const knn_opts *o) {
    knn_hit *out = calloc(nq * k, sizeof *out);
    ref_hit *ref = calloc(ng ? ng : 1, sizeof *ref);
    assert_non_null(out);
    assert_non_null(ref);
    tr_err err;
    knn_opts oc;
    memset(&oc, 0, sizeof oc);
    if (o) oc = *o;
    if (oc.int8_pass == 0) oc.int8_pass = int8_pass;
    int used = -1;
    oc.int8_used = &used;
    int rc = knn_search(m, q, nq, g, ng, dim, k, &oc, out, &err);
    if (rc != TR_OK) fail_msg("knn_search: %s", err.msg);
    size_t n_elig = 0;
    for (size_t b = 0; b < ng; b++) n_elig += !oc.use_filter || oc.labels[b] == oc.filter_label;
    if (nq > 0 && n_elig > 0 && oc.int8_pass > 0 && knn_int8_available() && dim <= 1024 && used != 1)
        fail_msg("the int8 pass did not run");
    if (oc.int8_pass < 0) assert_int_equal(used, 0);
    for (size_t a = 0; a < nq; a++) {
        size_t n = 0;
        for (size_t b = 0; b < ng; b++) {
            if (o && o->use_filter && o->labels[b] != o->filter_label) continue;
            ref[n].d = ref_dist(m, q + a * dim, g + b * dim, dim);
            ref[n].i = (int64_t)b;
            n++;
        }
        qsort(ref, n, sizeof *ref, ref_cmp);
        for (size_t e = 0; e < k; e++) {
            const knn_hit *h = &out[a * k + e];
            if (e >= n) {
                if (h->index != -1 || !isinf(h->dist))
                    fail_msg("%s q%zu hit %zu: want padding, got %lld", dist_name(m), a, e, (long long)h->index);
                continue;
            }
            if (h->index != ref[e].i || fabs(h->dist - ref[e].d) > 1e-12 * (1 + fabs(ref[e].d)))
                fail_msg("%s q%zu hit %zu: got (%lld, %.17g) want (%lld, %.17g)", dist_name(m), a, e,
                         (long long)h->index, h->dist, (long long)ref[e].i, ref[e].d);
        }
    }
    free(out);
    free(ref);
}

static float *rand_mat(size_t n, size_t dim, double scale) {
    float *x = malloc(n * dim * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n * dim; i++) x[i] = (float)(scale * rnd());
    return x;
}

static const size_t blocks[][2] = {{0, 0}, {1, 1}, {3, 7}, {4, 64}, {64, 5}, {1, 1000}};

/* Random data: every metric, block shapes, 1 and 2 threads; the float pass
 * must certify every query (no fallback) so the fast path is what is tested. */
static void test_random_all_metrics(void **state) {
    (void)state;
    rng_state = 42;
    size_t nq = 37, ng = 301, dim = 19;
    float *q = rand_mat(nq, dim, 1.0), *g = rand_mat(ng, dim, 1.0);
    for (int m = 0; m < DIST_COUNT; m++)
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
            for (int t = 1; t <= 2; t++) {
                size_t fb = 99;
                knn_opts o = {.threads = t, .block_q = blocks[b][0], .block_g = blocks[b][1], .n_fallback = &fb};
                check((dist_metric)m, q, nq, g, ng, dim, 5, &o);
                assert_int_equal(fb, 0);
            }
    /* k = 1, k = ng, k > ng (padding) */
    for (int m = 0; m < DIST_COUNT; m++) {
        knn_opts o = {.block_q = 4, .block_g = 50};
        check((dist_metric)m, q, nq, g, ng, dim, 1, &o);
        check((dist_metric)m, q, nq, g, ng, dim, ng, &o);
        check((dist_metric)m, q, 3, g, ng, dim, ng + 9, &o);
    }
    free(q);
    free(g);
}

/* numpy float64 brute force (tests/golden/gen_knn.py): exact ties,
 * duplicates, zero rows and queries, scaled rows, random floats. */
static void test_golden_numpy(void **state) {
    (void)state;
    for (size_t s = 0; s < sizeof golden_knn_sets / sizeof golden_knn_sets[0]; s++) {
        const golden_knn_set *gs = &golden_knn_sets[s];
        knn_hit out[16 * GK_K];
        assert_true(gs->nq <= 16);
        for (int m = 0; m < DIST_COUNT; m++)
            for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
                knn_opts o = {.threads = 2, .block_q = blocks[b][0], .block_g = blocks[b][1], .int8_pass = int8_pass};
                tr_err err;
                if (knn_search((dist_metric)m, gs->q, (size_t)gs->nq, gs->g, (size_t)gs->ng, (size_t)gs->dim, GK_K, &o,
                               out, &err) != TR_OK)
                    fail_msg("%s: %s", gs->name, err.msg);
                for (int i = 0; i < gs->nq * GK_K; i++) {
                    long long wi = gs->idx[m][i];
                    double wd = gs->dist[m][i];
                    if (out[i].index != wi || fabs(out[i].dist - wd) > 1e-12 * (1 + fabs(wd)))
                        fail_msg("%s %s q%d rank %d: got (%lld, %.17g), numpy (%lld, %.17g)", gs->name,
                                 dist_name((dist_metric)m), i / GK_K, i % GK_K, (long long)out[i].index, out[i].dist,
                                 wi, wd);
                }
            }
    }
}

/* Default tiles: a gallery over three default gallery blocks, two threads,
 * k = 1000 (the API's maximum, the heap-bounded query block). */
static void test_default_tiles(void **state) {
    (void)state;
    rng_state = 11;
    size_t nq = 70, ng = 1500, dim = 16;
    float *q = rand_mat(nq, dim, 1.0), *g = rand_mat(ng, dim, 1.0);
    for (int m = 0; m < DIST_COUNT; m++) {
        knn_opts o = {.threads = 2};
        check((dist_metric)m, q, nq, g, ng, dim, 10, &o);
        check((dist_metric)m, q, 5, g, ng, dim, 1000, &o);
    }
    free(q);
    free(g);
}

/* Precomputed norms (as the gallery supplies them) give the same answer. */
static void test_precomputed_norms(void **state) {
    (void)state;
    rng_state = 7;
    size_t nq = 20, ng = 500, dim = 128;
    float *q = rand_mat(nq, dim, 3.0), *g = rand_mat(ng, dim, 3.0), *sq = malloc(ng * sizeof *sq);
    assert_non_null(sq);
    for (size_t i = 0; i < ng; i++) {
        double s = 0;
        for (size_t e = 0; e < dim; e++) s += (double)g[i * dim + e] * g[i * dim + e];
        sq[i] = (float)s;
    }
    for (int m = 0; m < DIST_COUNT; m++) {
        knn_opts o = {.g_sqnorm = sq, .block_g = 128};
        check((dist_metric)m, q, nq, g, ng, dim, 10, &o);
    }
    free(q);
    free(g);
    free(sq);
}

/* Integer grid points: many exactly equal distances, duplicated rows, zero
 * rows and a zero query. Ties must go to the smaller index. */
static void test_designed_ties(void **state) {
    (void)state;
    size_t dim = 4, ng = 0, nq = 0;
    float g[400 * 4], q[12 * 4];
    for (int a = -2; a <= 2; a++)
        for (int b = -2; b <= 2; b++)
            for (int c = -1; c <= 1; c++) {
                float row[4] = {(float)a, (float)b, (float)c, 0};
                memcpy(g + ng * dim, row, sizeof row);
                ng++;
                if ((a + b + c) % 3 == 0) { /* duplicate */
                    memcpy(g + ng * dim, row, sizeof row);
                    ng++;
                }
            }
    for (int z = 0; z < 5; z++) { /* zero rows scattered at the end */
        memset(g + ng * dim, 0, dim * sizeof(float));
        ng++;
    }
    const float qs[][4] = {{0, 0, 0, 0},  {1, 1, 0, 0}, {0.5f, 0.5f, 0.5f, 0},
                           {2, -2, 1, 0}, {0, 0, 0, 3}, {-1, 0, 0, 0}};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++, nq++) memcpy(q + nq * dim, qs[i], sizeof qs[i]);
    size_t fell = 0, fb;
    for (int m = 0; m < DIST_COUNT; m++)
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++)
            for (size_t k = 1; k <= 40; k += 13) {
                knn_opts o = {.threads = 2, .block_q = blocks[b][0], .block_g = blocks[b][1], .n_fallback = &fb};
                check((dist_metric)m, q, nq, g, ng, dim, k, &o);
                fell += fb;
            }
    assert_true(fell > 0); /* the exact fallback was exercised too */
}

/* Near ties the float GEMM cannot order: rows differing in the 24th bit.
 * Both rows of a pair land in the candidate heap, so the double rescoring
 * orders them exactly and the certification holds without the exact scan. */
static void test_float_near_ties(void **state) {
    (void)state;
    rng_state = 9;
    size_t dim = 64, ng = 200, nq = 4;
    float *g = rand_mat(ng, dim, 1.0), *q = rand_mat(nq, dim, 1.0);
    for (size_t i = 1; i < ng; i += 2) { /* odd row = even row nudged by one ulp */
        memcpy(g + i * dim, g + (i - 1) * dim, dim * sizeof(float));
        g[i * dim + i % dim] = nextafterf(g[i * dim + i % dim], 2.0f);
    }
    memcpy(q, g + 10 * dim, dim * sizeof(float)); /* a query on a gallery row */
    size_t fb = 0;
    for (int m = 0; m < DIST_COUNT; m++) {
        knn_opts o = {.block_g = 33, .n_fallback = &fb};
        check((dist_metric)m, q, nq, g, ng, dim, 7, &o);
        assert_int_equal(fb, 0);
    }
    free(g);
    free(q);
}

/* Embeddings in a narrow cone (an untrained network's): the float pass certifies almost no query, so the exact
 * scans answer them, several queries at a time over gallery tiles (lib/knn.c exact_many): a gallery of several
 * tiles, filtered rows, and a k large enough that the queries go in more than one group. */
static void test_cone_exact_scans(void **state) {
    (void)state;
    rng_state = 11;
    size_t nq = 150, ng = 2600, dim = 64;
    float *g = rand_mat(ng, dim, 1e-4), *q = rand_mat(nq, dim, 1e-4), *v0 = rand_mat(1, dim, 8.0);
    for (size_t i = 0; i < ng * dim; i++) g[i] += v0[i % dim];
    for (size_t i = 0; i < nq * dim; i++) q[i] += v0[i % dim];
    int64_t *lab = malloc(ng * sizeof *lab);
    assert_non_null(lab);
    for (size_t i = 0; i < ng; i++) lab[i] = (int64_t)(i % 3);
    for (int m = 0; m < DIST_COUNT; m++) {
        /* not cosine: 1 - cos of near-parallel rows is a few ulps of 1, whose rounding orders them differently in
         * any two double formulas (this reference's and dist_one's) */
        if (m == DIST_COSINE) continue;
        size_t fb = 0;
        knn_opts o = {.threads = 2, .n_fallback = &fb};
        check((dist_metric)m, q, nq, g, ng, dim, 5, &o);
        if (m == DIST_SQEUCLIDEAN) assert_true(fb > nq / 2);
        knn_opts big = {.threads = 1, .block_q = 150, .n_fallback = &fb};
        check((dist_metric)m, q, nq, g, ng, dim, 2000, &big);
        knn_opts f = {.labels = lab, .use_filter = 1, .filter_label = 1, .n_fallback = &fb};
        check((dist_metric)m, q, nq, g, ng, dim, 9, &f);
    }
    free(g), free(q), free(v0), free(lab);
}

static void test_filter(void **state) {
    (void)state;
    rng_state = 3;
    size_t nq = 9, ng = 250, dim = 8;
    float *q = rand_mat(nq, dim, 1.0), *g = rand_mat(ng, dim, 1.0);
    int64_t lab[250];
    for (size_t i = 0; i < ng; i++) lab[i] = (int64_t)(i * 7 % 5);
    for (int m = 0; m < DIST_COUNT; m++)
        for (int64_t f = 0; f < 6; f++) { /* label 5 matches nothing: all padding */
            knn_opts o = {.labels = lab, .use_filter = 1, .filter_label = f, .block_q = 2, .block_g = 17};
            check((dist_metric)m, q, nq, g, ng, dim, 8, &o);
            check((dist_metric)m, q, nq, g, ng, dim, 60, &o); /* more than the 50 in a class */
        }
    free(q);
    free(g);
}

static void test_empty_and_errors(void **state) {
    (void)state;
    float q[4] = {1, 2, 3, 4}, g[8] = {1, 2, 3, 4, 0, 0, 0, 0};
    knn_hit out[6];
    tr_err err;
    assert_int_equal(knn_search(DIST_SQEUCLIDEAN, q, 1, g, 0, 4, 3, NULL, out, &err), TR_OK); /* empty gallery */
    for (int i = 0; i < 3; i++) assert_int_equal(out[i].index, -1);
    assert_int_equal(knn_search(DIST_SQEUCLIDEAN, q, 0, g, 2, 4, 3, NULL, out, &err), TR_OK);
    assert_int_equal(knn_search(DIST_SQEUCLIDEAN, q, 1, g, 2, 4, 0, NULL, out, &err), TR_EINVAL);
    assert_string_equal(err.field, "k");
    assert_int_equal(knn_search(DIST_SQEUCLIDEAN, q, 1, g, 2, 0, 1, NULL, out, &err), TR_EINVAL);
    assert_string_equal(err.field, "dim");
    assert_int_equal(knn_search((dist_metric)9, q, 1, g, 2, 4, 1, NULL, out, &err), TR_EINVAL);
    assert_string_equal(err.field, "metric");
    knn_opts o = {.use_filter = 1};
    assert_int_equal(knn_search(DIST_SQEUCLIDEAN, q, 1, g, 2, 4, 1, &o, out, &err), TR_EINVAL);
    assert_string_equal(err.field, "filter_label");
    float bad[8] = {1, 2, 3, 4, 0, NAN, 0, 0};
    assert_int_equal(knn_search(DIST_COSINE, bad, 2, g, 2, 4, 1, NULL, out, &err), TR_EINVAL);
    assert_string_equal(err.field, "queries[1]");
    assert_int_equal(knn_search(DIST_COSINE, q, 1, bad, 2, 4, 1, NULL, out, &err), TR_EINVAL);
    assert_string_equal(err.field, "gallery[1]");
    /* huge norms: float GEMM would overflow, the exact path answers */
    float big[8] = {3e38f, 3e38f, 0, 0, -3e38f, 0, 0, 0}, qb[4] = {3e38f, 3e38f, 0, 0};
    assert_int_equal(knn_search(DIST_SQEUCLIDEAN, qb, 1, big, 2, 4, 2, NULL, out, &err), TR_OK);
    assert_int_equal(out[0].index, 0);
    assert_true(out[0].dist == 0.0);
    assert_int_equal(out[1].index, 1);
}

/* Edges of the int8 pass: gallery sizes around its 16-row groups, 64-row
 * blocks and 1024-row tiles, dims around its 4-dim steps and 16-float
 * vectors, query counts around its quads of queries, k past the gallery. */
static void test_int8_edges(void **state) {
    (void)state;
    static const size_t ngs[] = {1, 15, 17, 64, 65, 1023, 1025, 2100};
    static const size_t dims[] = {1, 3, 4, 17, 128, 130};
    rng_state = 5;
    for (size_t a = 0; a < sizeof ngs / sizeof ngs[0]; a++)
        for (size_t b = 0; b < sizeof dims / sizeof dims[0]; b++) {
            size_t ng = ngs[a], dim = dims[b], nq = 1 + (a + b) % 6;
            float *q = rand_mat(nq, dim, 1.0), *g = rand_mat(ng, dim, 1.0);
            for (int m = 0; m < DIST_COUNT; m++) {
                size_t fb = 99;
                knn_opts o = {.threads = 1 + (int)((a + b + (size_t)m) % 2), .n_fallback = &fb};
                check((dist_metric)m, q, nq, g, ng, dim, 10, &o);
                if (dim > 3) assert_int_equal(fb, 0); /* random data: certified, no exact scan */
                check((dist_metric)m, q, nq, g, ng, dim, 1, &o);
                if (ng < 100) check((dist_metric)m, q, nq, g, ng, dim, ng + 2, &o);
            }
            free(q);
            free(g);
        }
}

/* Error bounds across magnitudes: rows and queries from 1e-30 to 1e14
 * (squares still below the float pass's limit; products of two tiny ones
 * underflow in float), subnormal rows, zero rows and a zero query, and
 * clusters of near-duplicates such as trained embeddings form, where the
 * int8 pass's candidates are many and close. */
static void test_scales(void **state) {
    (void)state;
    rng_state = 21;
    size_t dim = 24, ng = 1500, nq = 11;
    float *g = rand_mat(ng, dim, 1.0), *q = rand_mat(nq, dim, 1.0), *c = rand_mat(10, dim, 1.0);
    static const double scales[] = {1e-30, 1e-3, 1, 1e5, 1e14};
    for (size_t i = 0; i < ng; i++) {
        float *r = g + i * dim;
        if (i % 3 == 0) /* a cluster member: a centre plus 1e-3 noise */
            for (size_t e = 0; e < dim; e++) r[e] = c[(i / 3) % 10 * dim + e] + (float)(1e-3 * rnd());
        else if (i % 3 == 1)
            for (size_t e = 0; e < dim; e++) r[e] = (float)(r[e] * scales[i / 3 % 5]);
        if (i % 101 == 0) memset(r, 0, dim * sizeof *r);
        if (i % 103 == 0) r[i % dim] = 1e-41f; /* a subnormal row */
    }
    for (size_t i = 0; i < nq; i++) {
        float *r = q + i * dim;
        if (i < 5)
            for (size_t e = 0; e < dim; e++) r[e] = c[i * dim + e] + (float)(1e-4 * rnd());
        else if (i < 10)
            for (size_t e = 0; e < dim; e++) r[e] = (float)(r[e] * scales[i - 5]);
        else
            memset(r, 0, dim * sizeof *r);
    }
    for (int m = 0; m < DIST_COUNT; m++)
        for (size_t k = 1; k <= 41; k += 20) {
            knn_opts o = {.threads = 2, .block_q = 3};
            check((dist_metric)m, q, nq, g, ng, dim, k, &o);
        }
    free(g);
    free(q);
    free(c);
}

static void test_vote(void **state) {
    (void)state;
    int64_t lab[6] = {3, 1, 3, 1, 2, 9};
    knn_hit h[5] = {{4, 0.1}, {1, 0.2}, {0, 0.3}, {3, 0.4}, {2, 0.5}}; /* 2 1 3 1 3: 1 and 3 tie, 1 is nearer */
    int64_t out = -7;
    int found = -1;
    tr_err err;
    assert_int_equal(knn_vote(h, 5, lab, &out, &found, &err), TR_OK);
    assert_true(found == 1 && out == 1);
    assert_int_equal(knn_vote(h, 1, lab, &out, &found, &err), TR_OK);
    assert_true(found == 1 && out == 2);
    knn_hit h2[4] = {{5, 0.1}, {0, 0.2}, {2, 0.3}, {-1, INFINITY}}; /* 9 3 3: 3 wins by count */
    assert_int_equal(knn_vote(h2, 4, lab, &out, &found, &err), TR_OK);
    assert_true(found == 1 && out == 3);
    knn_hit pad[2] = {{-1, INFINITY}, {-1, INFINITY}};
    assert_int_equal(knn_vote(pad, 2, lab, &out, &found, &err), TR_OK);
    assert_int_equal(found, 0);
    assert_int_equal(knn_vote(h, 5, NULL, &out, &found, &err), TR_OK);
    assert_int_equal(found, 0);
}

int main(void) {
    /* threads = 2 runs two workers only with OpenBLAS single-threaded */
    openblas_set_num_threads(1);
    int failed = 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_all_metrics), cmocka_unit_test(test_precomputed_norms),
        cmocka_unit_test(test_designed_ties),      cmocka_unit_test(test_float_near_ties),
        cmocka_unit_test(test_cone_exact_scans),   cmocka_unit_test(test_filter),
        cmocka_unit_test(test_empty_and_errors),   cmocka_unit_test(test_vote),
        cmocka_unit_test(test_default_tiles),      cmocka_unit_test(test_golden_numpy),
        cmocka_unit_test(test_int8_edges),         cmocka_unit_test(test_scales),
    };
    for (int pass = -1; pass <= 1; pass += 2) { /* the float pass, then the int8 pass where the CPU has it */
        int8_pass = pass;
        failed += cmocka_run_group_tests_name(pass < 0 ? "float pass" : "int8 pass", tests, NULL, NULL);
    }
    return failed ? 1 : 0;
}
