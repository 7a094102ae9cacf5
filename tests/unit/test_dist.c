/* test_dist.c - distances against PyTorch float64 references, GEMM path against the direct path. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../golden/golden_dist.h"
#include "dist.h"

/* Direct double path vs torch float64: the inputs are the same float32
 * values, so only the summation order differs. */
#define TOL_DIRECT 1e-12

static int close_rel(double x, double ref, double tol) {
    return fabs(x - ref) <= tol * (1.0 + fabs(ref));
}

static void check_close(double x, double ref, double tol, const char *what, size_t i, size_t j) {
    if (!close_rel(x, ref, tol)) fail_msg("%s [%zu][%zu]: got %.17g, want %.17g (tol %g)", what, i, j, x, ref, tol);
}

static void test_names(void **state) {
    (void)state;
    for (int m = 0; m < DIST_COUNT; m++) {
        dist_metric got = DIST_COUNT;
        assert_int_equal(dist_parse(dist_name((dist_metric)m), &got), 0);
        assert_int_equal(got, m);
    }
    dist_metric got;
    assert_int_equal(dist_parse("l2", &got), -1);
    assert_int_equal(dist_parse("", &got), -1);
    assert_int_equal(dist_parse(NULL, &got), -1);
    assert_string_equal(dist_name(DIST_SQEUCLIDEAN), "sqeuclidean");
    assert_string_equal(dist_name(DIST_COUNT), "unknown");
}

static void test_golden_matrix(void **state) {
    (void)state;
    size_t ncase = sizeof golden_dist_cases / sizeof golden_dist_cases[0];
    for (size_t c = 0; c < ncase; c++) {
        const golden_dist_case *g = &golden_dist_cases[c];
        double *out = malloc(g->na * g->nb * sizeof *out);
        assert_non_null(out);
        for (int mi = 0; mi < 4; mi++) {
            dist_metric m;
            assert_int_equal(dist_parse(golden_dist_metrics[mi], &m), 0);
            tr_err err;
            assert_int_equal(dist_matrix(m, g->a, g->na, g->b, g->nb, g->dim, out, &err), TR_OK);
            char what[96];
            snprintf(what, sizeof what, "%s/%s matrix", g->name, golden_dist_metrics[mi]);
            for (size_t i = 0; i < g->na; i++)
                for (size_t j = 0; j < g->nb; j++) {
                    double ref = g->d[mi][i * g->nb + j];
                    check_close(out[i * g->nb + j], ref, TOL_DIRECT, what, i, j);
                    check_close(dist_one(m, g->a + i * g->dim, g->b + j * g->dim, g->dim), ref, TOL_DIRECT, what, i, j);
                }
            if (g->na == g->nb) {
                double rows[64];
                assert_true(g->na <= 64);
                dist_rows(m, g->a, g->b, g->na, g->dim, rows);
                for (size_t i = 0; i < g->na; i++)
                    check_close(rows[i], g->d[mi][i * g->nb + i], TOL_DIRECT, what, i, i);
            }
        }
        free(out);
    }
}

static void test_zero_and_dim0(void **state) {
    (void)state;
    const float z[3] = {0, 0, 0}, v[3] = {1, -2, 3};
    assert_true(dist_one(DIST_COSINE, z, v, 3) == 1.0);
    assert_true(dist_one(DIST_COSINE, v, z, 3) == 1.0);
    assert_true(dist_one(DIST_COSINE, z, z, 3) == 1.0);
    assert_true(dist_one(DIST_EUCLIDEAN, z, z, 3) == 0.0); /* no eps: exactly 0 */
    assert_true(dist_one(DIST_SQEUCLIDEAN, v, v, 3) == 0.0);
    assert_true(dist_one(DIST_DOT, v, v, 3) == -14.0);
    assert_true(fabs(dist_one(DIST_COSINE, v, v, 3)) < 1e-15);
    /* opposite directions: cosine distance 2 */
    const float w[3] = {-2, 4, -6};
    assert_true(fabs(dist_one(DIST_COSINE, v, w, 3) - 2.0) < 1e-15);
    /* dim 0: empty sums */
    assert_true(dist_one(DIST_SQEUCLIDEAN, v, w, 0) == 0.0);
    assert_true(dist_one(DIST_COSINE, v, w, 0) == 1.0);
}

static uint64_t rng_state = 88172645463325252ull;
static float frand(void) { /* xorshift64 -> uniform [-1, 1) */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (float)((double)(rng_state >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

/* The GEMM path (na*nb*dim >= 2^20) against dist_one. Far pairs carry float
 * rounding of the cross term: at most 2e-5 of the pair's scale
 * (||a||^2 + ||b||^2 for the Euclidean metrics, 1 for cosine, |a||b| for
 * dot); near pairs are recomputed in double and must agree to 1e-12 (the
 * Euclidean metrics' bit for bit). */
static void gemm_case(dist_metric m, size_t na, size_t nb, size_t dim, float scale, int near) {
    float *a = malloc(na * dim * sizeof *a), *b = malloc(nb * dim * sizeof *b);
    double *out = malloc(na * nb * sizeof *out);
    assert_true(a && b && out);
    for (size_t i = 0; i < na * dim; i++) a[i] = frand() * scale;
    for (size_t j = 0; j < nb; j++)
        for (size_t k = 0; k < dim; k++) /* half of b near some row of a */
            b[j * dim + k] = (near && j % 2 == 0) ? a[(j % na) * dim + k] * (1.0f + 1e-4f * frand()) : frand() * scale;
    if (near == 2) /* every row in a narrow cone, as an untrained network's embeddings: every pair is near */
        for (size_t i = 0; i < (na + nb) * dim; i++) {
            float *v = i < na * dim ? a + i : b + (i - na * dim);
            *v = a[i % dim] * (1.0f + 1e-2f * frand());
        }
    if (near) memcpy(b + 2 * dim, a + 2 * dim, dim * sizeof *a); /* an exact duplicate */
    tr_err err;
    assert_int_equal(dist_matrix(m, a, na, b, nb, dim, out, &err), TR_OK);
    double worst = 0;
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++) {
            const float *x = a + i * dim, *y = b + j * dim;
            double ref = dist_one(m, x, y, dim), got = out[i * nb + j];
            double nxx = -dist_one(DIST_DOT, x, x, dim), nyy = -dist_one(DIST_DOT, y, y, dim), s;
            switch (m) {
            case DIST_SQEUCLIDEAN:
                s = nxx + nyy;
                break;
            case DIST_EUCLIDEAN:
                s = sqrt(nxx + nyy);
                break;
            case DIST_COSINE:
                s = 1;
                break;
            default:
                s = sqrt(nxx) * sqrt(nyy);
                break;
            }
            double e = fabs(got - ref) / s;
            if (e > worst) worst = e;
            int is_near = m != DIST_DOT && ref <= 1e-3 * s;
            /* the Euclidean metrics recompute a near pair as dist_one does, four rows at a time: the same bits */
            if (is_near && (m == DIST_SQEUCLIDEAN || m == DIST_EUCLIDEAN) && got != ref)
                fail_msg("%s near pair [%zu][%zu]: got %.17g, direct %.17g (not the same bits)", dist_name(m), i, j,
                         got, ref);
            if (is_near && !(fabs(got - ref) <= 1e-12 * s))
                fail_msg("%s near pair [%zu][%zu]: got %.17g, direct %.17g", dist_name(m), i, j, got, ref);
            if (i == 2 && j == 2 && near && m != DIST_DOT && !(got <= 1e-15))
                fail_msg("%s exact duplicate: got %.17g, want 0", dist_name(m), got);
        }
    if (worst > 2e-5) fail_msg("%s GEMM: worst error %.3g of scale > 2e-5", dist_name(m), worst);
    free(a);
    free(b);
    free(out);
}

static void test_gemm_path(void **state) {
    (void)state;
    for (int m = 0; m < DIST_COUNT; m++) {
        gemm_case((dist_metric)m, 130, 90, 128, 1.0f, 1);
        gemm_case((dist_metric)m, 64, 256, 64, 1e5f, 1);
        gemm_case((dist_metric)m, 61, 77, 131, 1.0f, 1); /* a dimension's tail after the four-wide steps */
        gemm_case((dist_metric)m, 45, 70, 131, 1.0f, 2);
        gemm_case((dist_metric)m, 1030, 1030, 1, 1.0f, 0);
    }
}

/* Norms too large for float products: the GEMM-sized call falls back to
 * double and stays finite and exact. */
static void test_gemm_overflow_fallback(void **state) {
    (void)state;
    size_t n = 128, dim = 64;
    float *a = malloc(n * dim * sizeof *a);
    double *out = malloc(n * n * sizeof *out);
    assert_true(a && out);
    for (size_t i = 0; i < n * dim; i++) a[i] = frand() * 1e30f;
    tr_err err;
    assert_int_equal(dist_matrix(DIST_SQEUCLIDEAN, a, n, a, n, dim, out, &err), TR_OK);
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            assert_true(isfinite(out[i * n + j]));
            assert_true(out[i * n + j] == dist_one(DIST_SQEUCLIDEAN, a + i * dim, a + j * dim, dim));
        }
    free(a);
    free(out);
}

static void test_errors(void **state) {
    (void)state;
    tr_err err;
    float v[2] = {1, 2};
    double out[1];
    assert_int_equal(dist_matrix(DIST_COUNT, v, 1, v, 1, 2, out, &err), TR_EINVAL);
    assert_string_equal(err.field, "metric");
    assert_int_equal(dist_matrix(DIST_DOT, v, SIZE_MAX / 2, v, 3, 2, out, &err), TR_ELIMIT);
    assert_non_null(strstr(err.msg, "too large"));
    assert_int_equal(dist_matrix(DIST_DOT, v, 0, v, 5, 2, out, &err), TR_OK);
    assert_int_equal(dist_matrix(DIST_DOT, v, 1, v, 1, 2, out, NULL), TR_OK);
    assert_true(out[0] == -5.0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_golden_matrix),
        cmocka_unit_test(test_zero_and_dim0),
        cmocka_unit_test(test_gemm_path),
        cmocka_unit_test(test_gemm_overflow_fallback),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
