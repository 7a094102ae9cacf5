/* test_mine.c - triplet mining against a float64 Python reference miner. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../golden/golden_mine.h"
#include "mine.h"

/* Indices, counts and categories must match exactly; distances are copied
 * from D so they match exactly too; per-triplet losses to 1e-12 relative,
 * the means (sums over up to 15,200 triplets) to 1e-12 relative. */
#define TOL 1e-12
#define NELEM(x) (sizeof(x) / sizeof((x)[0]))

static int close_rel(double x, double ref) {
    return fabs(x - ref) <= TOL * (1.0 + fabs(ref));
}

static void test_names(void **state) {
    (void)state;
    for (int s = 0; s < MINE_COUNT; s++) {
        mine_strategy got = MINE_COUNT;
        assert_int_equal(mine_parse(mine_name((mine_strategy)s), &got), 0);
        assert_int_equal(got, s);
    }
    mine_strategy got;
    assert_int_equal(mine_parse("hardest", &got), -1);
    assert_int_equal(mine_parse(NULL, &got), -1);
    assert_string_equal(mine_name(MINE_SEMI_HARD), "semi-hard");
    assert_string_equal(mine_name(MINE_COUNT), "unknown");
}

static void check_summary(const mine_result *r, const golden_mine_case *g, const char *what) {
    if (r->n_total != g->n_total) fail_msg("%s: n_total %zu, want %zu", what, r->n_total, g->n_total);
    for (int c = 0; c < LOSS_CAT_COUNT; c++)
        if (r->counts[c] != g->counts[c])
            fail_msg("%s: %s count %zu, want %zu", what, loss_category_name((loss_category)c), r->counts[c],
                     g->counts[c]);
    if (r->n_positive != g->n_positive) fail_msg("%s: n_positive %zu, want %zu", what, r->n_positive, g->n_positive);
    if (!close_rel(r->mean_loss, g->mean_loss))
        fail_msg("%s: mean_loss %.17g, want %.17g", what, r->mean_loss, g->mean_loss);
    if (!close_rel(r->mean_pos_loss, g->mean_pos_loss))
        fail_msg("%s: mean_pos_loss %.17g, want %.17g", what, r->mean_pos_loss, g->mean_pos_loss);
    assert_int_equal(r->n_no_positive, g->n_no_positive);
    assert_int_equal(r->n_no_negative, g->n_no_negative);
    for (size_t i = 0; i < g->n_no_positive; i++) assert_int_equal(r->no_positive[i], g->no_positive[i]);
    for (size_t i = 0; i < g->n_no_negative; i++) assert_int_equal(r->no_negative[i], g->no_negative[i]);
}

static void check_listed(const mine_result *r, const golden_mine_case *g, double margin, loss_kind k,
                         const char *what) {
    for (size_t i = 0; i < g->n_listed; i++) {
        const mine_triplet *t = &r->t[i];
        if (t->a != g->apn[3 * i] || t->p != g->apn[3 * i + 1] || t->n != g->apn[3 * i + 2])
            fail_msg("%s: triplet %zu is (%d,%d,%d), want (%d,%d,%d)", what, i, t->a, t->p, t->n, g->apn[3 * i],
                     g->apn[3 * i + 1], g->apn[3 * i + 2]);
        if (t->d_ap != g->dl[3 * i] || t->d_an != g->dl[3 * i + 1])
            fail_msg("%s: triplet %zu distances differ", what, i);
        if (!close_rel(t->loss, g->dl[3 * i + 2]))
            fail_msg("%s: triplet %zu loss %.17g, want %.17g", what, i, t->loss, g->dl[3 * i + 2]);
        if ((int)t->cat != g->cats[i])
            fail_msg("%s: triplet %zu is %s, want %s", what, i, loss_category_name(t->cat),
                     loss_category_name((loss_category)g->cats[i]));
        /* the listed values are the loss module's own */
        assert_true(t->loss == loss_triplet_one(k, t->d_ap, t->d_an, margin));
        assert_int_equal(t->cat, loss_category_of(t->d_ap, t->d_an, margin));
    }
}

static void test_golden(void **state) {
    (void)state;
    tr_err err;
    for (size_t c = 0; c < NELEM(golden_mine_cases); c++) {
        const golden_mine_case *g = &golden_mine_cases[c];
        const golden_mine_set *s = &golden_mine_sets[g->set];
        mine_strategy st;
        loss_kind k;
        assert_int_equal(mine_parse(g->strategy, &st), 0);
        assert_int_equal(loss_parse(g->loss, &k), 0);
        char what[128];
        snprintf(what, sizeof what, "%s/%s/%s margin=%g", s->name, g->strategy, g->loss, g->margin);
        mine_result r;
        /* the golden list length, then nothing listed, then everything */
        size_t lists[3] = {GOLDEN_MINE_LIST, 0, SIZE_MAX};
        for (int li = 0; li < 3; li++) {
            int rc = mine_run(st, s->D, s->labels, s->n, k, g->margin, lists[li], &r, &err);
            if (rc != TR_OK) fail_msg("%s: %s", what, err.msg);
            check_summary(&r, g, what);
            size_t want = lists[li] < g->n_total ? lists[li] : g->n_total;
            if (r.n_listed != want) fail_msg("%s: listed %zu, want %zu", what, r.n_listed, want);
            if (li != 1) check_listed(&r, g, g->margin, k, what);
            mine_result_free(&r);
        }
    }
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static double urand(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Semi-hard over many positives (the sorted path) and batch-hard, checked
 * against their definitions by brute force, with coarse values for ties. */
static void bruteforce(size_t n, int nlabels) {
    double *D = malloc(n * n * sizeof *D);
    int64_t *lab = malloc(n * sizeof *lab);
    assert_true(D && lab);
    for (size_t i = 0; i < n; i++) lab[i] = (int64_t)(urand() * nlabels);
    for (size_t i = 0; i < n * n; i++) D[i] = floor(urand() * 20) / 4;
    tr_err err;
    mine_result r;
    assert_int_equal(mine_run(MINE_SEMI_HARD, D, lab, n, LOSS_TRIPLET, 0.5, SIZE_MAX, &r, &err), TR_OK);
    assert_int_equal(r.n_listed, r.n_total);
    for (size_t t = 0; t < r.n_listed; t++) {
        const mine_triplet *m = &r.t[t];
        const double *row = D + (size_t)m->a * n;
        int any_above = 0;
        for (size_t j = 0; j < n; j++)
            if (lab[j] != lab[m->a] && row[j] > m->d_ap) any_above = 1;
        for (size_t j = 0; j < n; j++) {
            if (lab[j] == lab[m->a]) continue;
            if (any_above) {
                assert_true(m->d_an > m->d_ap);
                if (row[j] > m->d_ap) assert_true(row[j] > m->d_an || (row[j] == m->d_an && (int32_t)j >= m->n));
            } else {
                assert_true(row[j] < m->d_an || (row[j] == m->d_an && (int32_t)j >= m->n));
            }
        }
    }
    mine_result_free(&r);
    assert_int_equal(mine_run(MINE_BATCH_HARD, D, lab, n, LOSS_TRIPLET_SOFT, 0.5, SIZE_MAX, &r, &err), TR_OK);
    for (size_t t = 0; t < r.n_listed; t++) {
        const mine_triplet *m = &r.t[t];
        const double *row = D + (size_t)m->a * n;
        for (size_t j = 0; j < n; j++) {
            if (lab[j] == lab[m->a] && j != (size_t)m->a)
                assert_true(row[j] < m->d_ap || (row[j] == m->d_ap && (int32_t)j >= m->p));
            if (lab[j] != lab[m->a]) assert_true(row[j] > m->d_an || (row[j] == m->d_an && (int32_t)j >= m->n));
        }
    }
    mine_result_free(&r);
    free(D);
    free(lab);
}

/* Batch-all's counting paths (listed one by one, counted from sorted
 * negatives) agree: counts exactly, means to 1e-12. */
static void batch_all_paths(size_t n, int nlabels, double offset, double scale, double margin) {
    double *D = malloc(n * n * sizeof *D);
    int64_t *lab = malloc(n * sizeof *lab);
    assert_true(D && lab);
    for (size_t i = 0; i < n; i++) lab[i] = (int64_t)(urand() * nlabels);
    for (size_t i = 0; i < n * n; i++) D[i] = offset + scale * (floor(urand() * 64) / 16 + (i % 3 == 0 ? urand() : 0));
    tr_err err;
    mine_result all, counted;
    assert_int_equal(mine_run(MINE_BATCH_ALL, D, lab, n, LOSS_TRIPLET, margin, SIZE_MAX, &all, &err), TR_OK);
    assert_int_equal(mine_run(MINE_BATCH_ALL, D, lab, n, LOSS_TRIPLET, margin, 0, &counted, &err), TR_OK);
    assert_int_equal(all.n_listed, all.n_total);
    assert_int_equal(counted.n_total, all.n_total);
    for (int k = 0; k < LOSS_CAT_COUNT; k++) assert_int_equal(counted.counts[k], all.counts[k]);
    assert_int_equal(counted.n_positive, all.n_positive);
    if (!close_rel(counted.mean_loss, all.mean_loss) || !close_rel(counted.mean_pos_loss, all.mean_pos_loss))
        fail_msg("batch-all n=%zu scale=%g: means %.17g/%.17g vs listed %.17g/%.17g", n, scale, counted.mean_loss,
                 counted.mean_pos_loss, all.mean_loss, all.mean_pos_loss);
    size_t cat[LOSS_CAT_COUNT] = {0};
    for (size_t t = 0; t < all.n_listed; t++) cat[all.t[t].cat]++;
    for (int k = 0; k < LOSS_CAT_COUNT; k++) assert_int_equal(cat[k], all.counts[k]);
    mine_result_free(&all);
    mine_result_free(&counted);
    free(D);
    free(lab);
}

static void test_batch_all_paths(void **state) {
    (void)state;
    batch_all_paths(90, 2, 0, 1.0, 0.5);
    batch_all_paths(90, 3, 0, 1.0, 0.0);
    batch_all_paths(90, 3, 0, 1e12, 0.2);
    batch_all_paths(90, 3, 1e12, 0.1, 0.2); /* losses ~0.1 on distances ~1e12: summed one by one */
    batch_all_paths(90, 3, 0, 1e12, 1e12);
    batch_all_paths(40, 40, 0, 1.0, 0.2); /* no positives at all */
}

static void test_definitions_bruteforce(void **state) {
    (void)state;
    bruteforce(150, 3); /* ~50 positives per anchor: semi-hard sorts */
    bruteforce(60, 12); /* ~4 positives per anchor: semi-hard scans */
}

static void test_errors(void **state) {
    (void)state;
    tr_err err;
    mine_result r;
    double D[4] = {0, 1, 1, 0};
    int64_t lab[2] = {0, 1};
    assert_int_equal(mine_run(MINE_BATCH_ALL, D, lab, 2, LOSS_CONTRASTIVE, 0.2, 10, &r, &err), TR_EINVAL);
    assert_string_equal(err.field, "loss");
    assert_int_equal(r.n_total, 0);
    assert_null(r.t);
    assert_int_equal(mine_run(MINE_COUNT, D, lab, 2, LOSS_TRIPLET, 0.2, 10, &r, &err), TR_EINVAL);
    assert_string_equal(err.field, "strategy");
    assert_int_equal(mine_run(MINE_BATCH_ALL, D, lab, 2, LOSS_TRIPLET, INFINITY, 10, &r, &err), TR_EINVAL);
    assert_string_equal(err.field, "margin");
    D[2] = NAN;
    assert_int_equal(mine_run(MINE_BATCH_HARD, D, lab, 2, LOSS_TRIPLET, 0.2, 10, &r, &err), TR_EINVAL);
    assert_string_equal(err.field, "D[1][0]");
    assert_int_equal(mine_run(MINE_BATCH_HARD, D, lab, (size_t)1 << 33, LOSS_TRIPLET, 0.2, 10, &r, &err), TR_ELIMIT);
    assert_int_equal(mine_run(MINE_BATCH_HARD, D, lab, SIZE_MAX / 2, LOSS_TRIPLET, 0.2, 10, &r, &err), TR_ELIMIT);
    assert_int_equal(mine_run(MINE_BATCH_HARD, D, lab, 0, LOSS_TRIPLET, 0.2, 10, &r, &err), TR_OK);
    assert_int_equal(r.n_total, 0);
    mine_result_free(&r);
    mine_result_free(NULL);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_definitions_bruteforce),
        cmocka_unit_test(test_batch_all_paths),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
