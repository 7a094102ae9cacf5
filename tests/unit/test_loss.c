/* test_loss.c - losses, categories and reductions against PyTorch float64 references. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../golden/golden_loss.h"
#include "loss.h"

/* Tolerances (relative, plus the same absolute near 0):
 *  triplet / pair losses from the reference distances: 1e-12 (the same
 *    float64 arithmetic, up to rounding of one subtraction);
 *  distances recomputed by dist_rows: 1e-12 (summation order only);
 *  InfoNCE: 1e-9 (log-domain evaluation and DGEMM similarities against the
 *    literal formula in long double). */
#define TOL_LOSS 1e-12
#define TOL_INFONCE 1e-9

#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

static void check_close(double x, double ref, double tol, const char *what, size_t i) {
    if (!(fabs(x - ref) <= tol * (1.0 + fabs(ref))))
        fail_msg("%s [%zu]: got %.17g, want %.17g (tol %g)", what, i, x, ref, tol);
}

static void test_names(void **state) {
    (void)state;
    for (int k = 0; k < LOSS_COUNT; k++) {
        loss_kind got = LOSS_COUNT;
        assert_int_equal(loss_parse(loss_name((loss_kind)k), &got), 0);
        assert_int_equal(got, k);
    }
    for (int r = 0; r < LOSS_RED_COUNT; r++) {
        loss_reduction got = LOSS_RED_COUNT;
        assert_int_equal(loss_reduction_parse(loss_reduction_name((loss_reduction)r), &got), 0);
        assert_int_equal(got, r);
    }
    loss_kind k;
    loss_reduction r;
    assert_int_equal(loss_parse("hinge", &k), -1);
    assert_int_equal(loss_parse(NULL, &k), -1);
    assert_int_equal(loss_reduction_parse("avg", &r), -1);
    assert_string_equal(loss_name(LOSS_TRIPLET_SOFT), "triplet-soft");
    assert_string_equal(loss_name(LOSS_CONTRASTIVE_SQUARED), "contrastive-squared");
    assert_string_equal(loss_reduction_name(LOSS_RED_MEAN_NONZERO), "mean-nonzero");
    assert_string_equal(loss_category_name(LOSS_CAT_SEMI_HARD), "semi-hard");
    assert_string_equal(loss_category_name(LOSS_CAT_EASY), "easy");
    assert_string_equal(loss_category_name(LOSS_CAT_HARD), "hard");
    assert_string_equal(loss_category_name(LOSS_CAT_COUNT), "unknown");
}

static void test_categories(void **state) {
    (void)state;
    assert_int_equal(loss_category_of(1.0, 1.0, 0.5), LOSS_CAT_HARD); /* D_an == D_ap */
    assert_int_equal(loss_category_of(1.0, 0.5, 0.5), LOSS_CAT_HARD);
    assert_int_equal(loss_category_of(1.0, 1.25, 0.5), LOSS_CAT_SEMI_HARD);
    assert_int_equal(loss_category_of(1.0, 1.5, 0.5), LOSS_CAT_EASY); /* D_an == D_ap + margin */
    assert_int_equal(loss_category_of(1.0, 2.0, 0.5), LOSS_CAT_EASY);
    assert_int_equal(loss_category_of(1.0, 1.0, 0.0), LOSS_CAT_HARD); /* margin 0: a tie is hard */
    assert_int_equal(loss_category_of(1.0, 1.1, 0.0), LOSS_CAT_EASY);
    /* easy <=> hinge loss 0, exactly, including values that round */
    const double ap[] = {0.1, 0.3, 1e16, 0.7};
    const double an[] = {0.3, 0.5, 1e16 + 2, 0.9000000000000001};
    for (size_t i = 0; i < NELEM(ap); i++)
        assert_int_equal(loss_category_of(ap[i], an[i], 0.2) == LOSS_CAT_EASY,
                         loss_triplet_one(LOSS_TRIPLET, ap[i], an[i], 0.2) == 0.0);
}

static void test_golden_triplet(void **state) {
    (void)state;
    double losses[16], dap[16], dan[16], dpn[16];
    loss_category cats[16];
    tr_err err;
    for (size_t c = 0; c < NELEM(golden_triplet_cases); c++) {
        const golden_triplet_case *g = &golden_triplet_cases[c];
        const golden_triplet_set *s = &golden_triplet_sets[g->set];
        assert_true(s->n <= 16);
        loss_kind k;
        assert_int_equal(loss_parse(g->loss, &k), 0);
        char what[128];
        snprintf(what, sizeof what, "%s/%s/%s swap=%d margin=%g", s->name, s->metric, g->loss, g->swap, g->margin);
        assert_int_equal(
            loss_triplet(k, s->d_ap, s->d_an, g->swap ? s->d_pn : NULL, s->n, g->margin, losses, cats, &err), TR_OK);
        for (size_t i = 0; i < s->n; i++) {
            check_close(losses[i], g->losses[i], TOL_LOSS, what, i);
            if ((int)cats[i] != g->cats[i])
                fail_msg("%s [%zu]: category %s, want %s", what, i, loss_category_name(cats[i]),
                         loss_category_name((loss_category)g->cats[i]));
        }
        for (int r = 0; r < LOSS_RED_COUNT; r++)
            check_close(loss_reduce(losses, s->n, (loss_reduction)r), g->reduced[r], TOL_LOSS, what, (size_t)r);
        /* the same from the embeddings, through dist_rows */
        dist_metric m;
        assert_int_equal(dist_parse(s->metric, &m), 0);
        dist_rows(m, s->a, s->p, s->n, s->dim, dap);
        dist_rows(m, s->a, s->neg, s->n, s->dim, dan);
        dist_rows(m, s->p, s->neg, s->n, s->dim, dpn);
        for (size_t i = 0; i < s->n; i++) {
            check_close(dap[i], s->d_ap[i], TOL_LOSS, "d_ap", i);
            check_close(dan[i], s->d_an[i], TOL_LOSS, "d_an", i);
            check_close(dpn[i], s->d_pn[i], TOL_LOSS, "d_pn", i);
        }
        assert_int_equal(loss_triplet(k, dap, dan, g->swap ? dpn : NULL, s->n, g->margin, losses, NULL, &err), TR_OK);
        /* distance errors of ~1e-16 relative pass through the subtraction */
        for (size_t i = 0; i < s->n; i++)
            check_close(losses[i], g->losses[i], 1e-12 * (1.0 + fabs(s->d_ap[i]) + fabs(s->d_an[i])), what, i);
    }
}

static void test_soft_margin_stable(void **state) {
    (void)state;
    assert_true(loss_triplet_one(LOSS_TRIPLET_SOFT, 1000.0, 0.0, 0.2) == 1000.0); /* no overflow */
    assert_true(loss_triplet_one(LOSS_TRIPLET_SOFT, 1e300, 0.0, 0.2) == 1e300);
    double tiny = loss_triplet_one(LOSS_TRIPLET_SOFT, 0.0, 30.0, 0.2); /* log1p(e^-30) = e^-30 - e^-60/2 + ... */
    assert_true(fabs(tiny - (exp(-30.0) - exp(-60.0) / 2)) <= 1e-15 * exp(-30.0));
    assert_true(fabs(loss_triplet_one(LOSS_TRIPLET_SOFT, 1.0, 1.0, 0.2) - log(2.0)) < 1e-16);
    assert_true(loss_triplet_one(LOSS_TRIPLET_SOFT, 0.0, 1000.0, 0.2) >= 0.0);
    /* the margin is not used by the soft margin; the hinge uses it with sign + */
    assert_true(loss_triplet_one(LOSS_TRIPLET, 1.0, 1.5, 0.2) == 0.0);
    assert_true(fabs(loss_triplet_one(LOSS_TRIPLET, 1.5, 1.0, 0.2) - 0.7) < 1e-15);
}

static void test_golden_pair(void **state) {
    (void)state;
    double losses[16];
    tr_err err;
    for (size_t c = 0; c < NELEM(golden_pair_cases); c++) {
        const golden_pair_case *g = &golden_pair_cases[c];
        loss_kind k;
        assert_int_equal(loss_parse(g->loss, &k), 0);
        assert_true(g->n <= 16);
        char what[96];
        snprintf(what, sizeof what, "%s/%s margin=%g", g->metric, g->loss, g->margin);
        assert_int_equal(loss_pair(k, g->d, g->labels, g->n, g->margin, losses, &err), TR_OK);
        for (size_t i = 0; i < g->n; i++) check_close(losses[i], g->losses[i], TOL_LOSS, what, i);
        for (int r = 0; r < LOSS_RED_COUNT; r++)
            check_close(loss_reduce(losses, g->n, (loss_reduction)r), g->reduced[r], TOL_LOSS, what, (size_t)r);
    }
}

static void test_golden_infonce(void **state) {
    (void)state;
    double losses[32];
    tr_err err;
    for (size_t c = 0; c < NELEM(golden_infonce_cases); c++) {
        const golden_infonce_case *g = &golden_infonce_cases[c];
        assert_true(2 * g->n <= 32);
        char what[128];
        snprintf(what, sizeof what, "%s T=%g tau+=%g beta=%g %s", g->name, g->temperature, g->tau_plus, g->beta,
                 g->hard ? "hard" : "easy");
        int rc = loss_infonce(g->a, g->b, g->n, g->dim, g->temperature, g->tau_plus, g->beta, g->hard, losses, &err);
        if (rc != TR_OK) fail_msg("%s: %s", what, err.msg);
        for (size_t i = 0; i < 2 * g->n; i++) check_close(losses[i], g->losses[i], TOL_INFONCE, what, i);
        check_close(loss_reduce(losses, 2 * g->n, LOSS_RED_MEAN), g->mean, TOL_INFONCE, what, 0);
    }
}

/* Temperatures far below what exp() survives directly stay finite, >= 0,
 * and the hard estimator with beta = tau_plus = 0 equals the easy one. */
static void test_infonce_extremes(void **state) {
    (void)state;
    const float a[] = {1, 0, 0, 1, 0.5f, 0.5f}, b[] = {0.9f, 0.1f, 0.2f, 1, -1, 0};
    double h[6], e[6];
    tr_err err;
    assert_int_equal(loss_infonce(a, b, 3, 2, 1e-4, 0.0, 0.0, 1, h, &err), TR_OK);
    assert_int_equal(loss_infonce(a, b, 3, 2, 1e-4, 0.0, 0.0, 0, e, &err), TR_OK);
    for (int i = 0; i < 6; i++) {
        assert_true(isfinite(h[i]) && h[i] >= 0);
        check_close(h[i], e[i], 1e-12, "hard(0,0) vs easy", (size_t)i);
    }
    assert_int_equal(loss_infonce(a, b, 3, 2, 1e-4, 0.3, 3.0, 1, h, &err), TR_OK);
    for (int i = 0; i < 6; i++) assert_true(isfinite(h[i]) && h[i] >= 0);
}

static void test_reduce(void **state) {
    (void)state;
    const double v[] = {0, 2, 0, 4, 0};
    assert_true(loss_reduce(v, 5, LOSS_RED_MEAN) == 6.0 / 5);
    assert_true(loss_reduce(v, 5, LOSS_RED_MEAN_NONZERO) == 3.0);
    assert_true(loss_reduce(v, 5, LOSS_RED_SUM) == 6.0);
    assert_true(loss_reduce(v, 0, LOSS_RED_MEAN) == 0.0);
    assert_true(loss_reduce(v, 1, LOSS_RED_MEAN_NONZERO) == 0.0); /* none > 0 */
    assert_true(loss_reduce(v, 0, LOSS_RED_SUM) == 0.0);
}

static void test_errors(void **state) {
    (void)state;
    tr_err err;
    double d[3] = {1, 2, 3}, bad[3] = {1, NAN, 3}, out[6];
    int labels[3] = {1, 0, 2};
    assert_int_equal(loss_triplet(LOSS_CONTRASTIVE, d, d, NULL, 3, 0.2, out, NULL, &err), TR_EINVAL);
    assert_string_equal(err.field, "loss");
    assert_non_null(strstr(err.msg, "contrastive"));
    assert_int_equal(loss_triplet(LOSS_TRIPLET, d, bad, NULL, 3, 0.2, out, NULL, &err), TR_EINVAL);
    assert_string_equal(err.field, "d_an[1]");
    assert_int_equal(loss_triplet(LOSS_TRIPLET, d, d, bad, 3, 0.2, out, NULL, &err), TR_EINVAL);
    assert_string_equal(err.field, "d_pn[1]");
    assert_int_equal(loss_triplet(LOSS_TRIPLET, d, d, NULL, 3, NAN, out, NULL, &err), TR_EINVAL);
    assert_string_equal(err.field, "margin");
    assert_int_equal(loss_pair(LOSS_TRIPLET, d, labels, 3, 0.2, out, &err), TR_EINVAL);
    assert_int_equal(loss_pair(LOSS_CONTRASTIVE, d, labels, 3, 0.2, out, &err), TR_EINVAL);
    assert_string_equal(err.field, "labels[2]");
    assert_int_equal(loss_pair(LOSS_CONTRASTIVE, d, labels, 2, 0.2, out, &err), TR_OK);
    const float a[] = {1, 0, 0, 1}, nanv[] = {1, 0, NAN, 1};
    assert_int_equal(loss_infonce(a, a, 1, 2, 0.1, 0, 0, 1, out, &err), TR_EINVAL);
    assert_string_equal(err.field, "n");
    assert_int_equal(loss_infonce(a, a, 2, 2, 0.0, 0, 0, 1, out, &err), TR_EINVAL);
    assert_string_equal(err.field, "temperature");
    assert_int_equal(loss_infonce(a, a, 2, 2, 0.1, 1.0, 0, 1, out, &err), TR_EINVAL);
    assert_string_equal(err.field, "tau_plus");
    assert_int_equal(loss_infonce(a, a, 2, 2, 0.1, -0.1, 0, 1, out, &err), TR_EINVAL);
    assert_int_equal(loss_infonce(a, a, 2, 2, 0.1, 0, INFINITY, 1, out, &err), TR_EINVAL);
    assert_string_equal(err.field, "beta");
    assert_int_equal(loss_infonce(a, nanv, 2, 2, 0.1, 0, 0, 1, out, &err), TR_EINVAL);
    assert_string_equal(err.field, "b[1][0]");
    assert_int_equal(loss_infonce(a, a, SIZE_MAX / 2, 2, 0.1, 0, 0, 1, out, &err), TR_ELIMIT);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_categories),
        cmocka_unit_test(test_golden_triplet),
        cmocka_unit_test(test_soft_margin_stable),
        cmocka_unit_test(test_golden_pair),
        cmocka_unit_test(test_golden_infonce),
        cmocka_unit_test(test_infonce_extremes),
        cmocka_unit_test(test_reduce),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
