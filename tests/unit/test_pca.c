/* test_pca.c - lib/pca.c against numpy float64 eigh (tests/golden/gen_pca.py), the sample rule, edge cases. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../golden/golden_pca.h"
#include "pca.h"

static void test_golden_numpy(void **state) {
    (void)state;
    double *out = malloc(GP_N * GP_K * sizeof *out), var[GP_K];
    tr_err err;
    assert_int_equal(pca_project(GP_X, GP_N, GP_D, GP_D, GP_K, out, var, &err), TR_OK);
    double scale = sqrt(GP_VAR[0]);
    for (int i = 0; i < GP_N * GP_K; i++) assert_true(fabs(out[i] - GP_PROJ[i]) <= 1e-9 * scale);
    for (int a = 0; a < GP_K; a++) assert_true(fabs(var[a] - GP_VAR[a]) <= 1e-10 * GP_VAR[0]);
    /* a leading dimension larger than dim reads the same rows */
    float *wide = calloc(GP_N * (GP_D + 3), sizeof *wide);
    for (int i = 0; i < GP_N; i++) memcpy(wide + i * (GP_D + 3), GP_X + i * GP_D, GP_D * sizeof *wide);
    double *out2 = malloc(GP_N * 2 * sizeof *out2);
    assert_int_equal(pca_project(wide, GP_N, GP_D, GP_D + 3, 2, out2, NULL, &err), TR_OK);
    for (int i = 0; i < GP_N; i++)
        for (int a = 0; a < 2; a++) assert_true(fabs(out2[i * 2 + a] - GP_PROJ[i * GP_K + a]) <= 1e-9 * scale);
    free(wide);
    free(out2);
    free(out);
}

static void test_sample(void **state) {
    (void)state;
    size_t idx[1000], n;
    pca_sample(10, 4, idx, &n);
    assert_int_equal(n, 4);
    for (int i = 0; i < 4; i++) assert_int_equal(idx[i], GP_SAMPLE_10_4[i]);
    pca_sample(1000, 7, idx, &n);
    assert_int_equal(n, 7);
    for (int i = 0; i < 7; i++) assert_int_equal(idx[i], GP_SAMPLE_1000_7[i]);
    pca_sample(5, 9, idx, &n);
    assert_int_equal(n, 5);
    for (int i = 0; i < 5; i++) assert_int_equal(idx[i], (size_t)i);
}

static void test_edges(void **state) {
    (void)state;
    tr_err err;
    double out[8], var[2];
    const float one[3] = {1, 2, 3};
    /* one row: nothing to vary, everything 0 */
    assert_int_equal(pca_project(one, 1, 3, 3, 2, out, var, &err), TR_OK);
    assert_true(out[0] == 0 && out[1] == 0 && var[0] == 0);
    /* 1-d data: the second axis does not exist and projects to 0 */
    const float line[4] = {1, 2, 3, 4};
    assert_int_equal(pca_project(line, 4, 1, 1, 2, out, var, &err), TR_OK);
    assert_true(fabs(out[0] + 1.5) < 1e-12 && fabs(out[6] - 1.5) < 1e-12); /* the positive orientation */
    assert_true(out[1] == 0 && out[7] == 0 && var[1] == 0);
    assert_true(fabs(var[0] - 5.0 / 3.0) < 1e-12);
    /* refusals */
    assert_int_equal(pca_project(line, 4, 1, 1, 0, out, var, &err), TR_EINVAL);
    assert_int_equal(pca_project(line, 4, PCA_MAX_DIM + 1, PCA_MAX_DIM + 1, 2, out, var, &err), TR_ELIMIT);
    assert_string_equal(err.field, "dim");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_numpy),
        cmocka_unit_test(test_sample),
        cmocka_unit_test(test_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
