/* test_nn_wino.c - the trainer's Winograd convolutions (lib/nn_wino.c) through nn_conv_forward and
 * nn_conv_backward, against the direct sums in double: output, weight and bias gradients, input gradient; odd
 * and even sizes, pads 0 to 2, a batch that is not a whole number of chunks, 1 and 2 threads. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "nn_arch.h"
#include "nn_layers.h"
#include "onnx_sgemm.h"
#include "rng.h"

static float *randv(uint64_t r[4], size_t n) {
    float *v = malloc(sizeof(float) * n);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = (float)(rng_uniform(r) * 2.0 - 1.0);
    return v;
}

/* The largest |a - ref| / (1e-4 + 1e-3 |ref|) over n entries: at most 1 passes. */
static double worst(const float *a, const double *ref, size_t n) {
    double w = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(a[i] - ref[i]) / (1e-4 + 1e-3 * fabs(ref[i]));
        if (e > w) w = e;
    }
    return w;
}

static void one_case(int c, int m, int h, int w, int pad, size_t n, int threads) {
    char spec[64];
    snprintf(spec, sizeof spec, "conv%dk3p%d", m, pad);
    nn_arch a;
    tr_err err;
    assert_int_equal(nn_arch_parse(spec, (nn_shape){c, h, w}, &a, &err), 0);
    const nn_layer *L = &a.l[0];
    assert_true(nn_wino_ok(L));
    int oh = L->outs.h, ow = L->outs.w;
    size_t nin = nn_size(L->in), nout = nn_size(L->outs), nw = (size_t)m * (size_t)c * 9;
    uint64_t r[4];
    rng_seed(42 + (uint64_t)(c * 7 + m + h + pad), r);
    float *wt = randv(r, nw), *b = randv(r, (size_t)m), *x = randv(r, n * nin), *dy = randv(r, n * nout);
    float *y = malloc(sizeof(float) * n * nout), *dx = malloc(sizeof(float) * n * nin);
    float *dw = malloc(sizeof(float) * nw), *db = malloc(sizeof(float) * (size_t)m);
    float *work = malloc(sizeof(float) * nn_conv_work(L) * (size_t)threads),
          *part = malloc(sizeof(float) * nn_conv_part(L, n));
    double *ry = calloc(n * nout, sizeof(double)), *rdx = calloc(n * nin, sizeof(double));
    double *rdw = calloc(nw, sizeof(double)), *rdb = calloc((size_t)m, sizeof(double));
    par *p = NULL;
    assert_int_equal(par_new(threads, &p, &err), 0);

    for (size_t s = 0; s < n; s++) /* the direct sums */
        for (int o = 0; o < m; o++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++) {
                    size_t yi = s * nout + ((size_t)o * oh + oy) * ow + ox;
                    double acc = b[o], g = dy[yi];
                    rdb[o] += g;
                    for (int ch = 0; ch < c; ch++)
                        for (int ki = 0; ki < 3; ki++)
                            for (int kj = 0; kj < 3; kj++) {
                                int iy = oy - pad + ki, ix = ox - pad + kj;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                size_t xi = s * nin + ((size_t)ch * h + iy) * w + ix,
                                       wi = (((size_t)o * c + ch) * 3 + ki) * 3 + kj;
                                acc += (double)wt[wi] * x[xi];
                                rdw[wi] += g * x[xi];
                                rdx[xi] += g * wt[wi];
                            }
                    ry[yi] = acc;
                }

    nn_conv_forward(L, wt, b, x, n, y, NULL, work, p);
    nn_conv_backward(L, wt, x, dy, NULL, n, dw, db, dx, work, part, p);
    double ey = worst(y, ry, n * nout), ew = worst(dw, rdw, nw), eb = worst(db, rdb, (size_t)m),
           ex = worst(dx, rdx, n * nin);
    if (ey > 1 || ew > 1 || eb > 1 || ex > 1)
        fail_msg("%s on %dx%dx%d, n %zu, %d threads: error / tolerance y %.3g dw %.3g db %.3g dx %.3g", spec, c, h, w,
                 n, threads, ey, ew, eb, ex);
    par_free(p);
    free(wt), free(b), free(x), free(dy), free(y), free(dx), free(dw), free(db), free(work), free(part);
    free(ry), free(rdx), free(rdw), free(rdb);
}

static void test_against_direct(void **state) {
    (void)state;
    if (onx_sgemm_best() == ONX_K_NONE) skip(); /* nn_wino_ok is 0 without AVX2: nn_conv.c's im2col runs */
    one_case(8, 16, 14, 14, 1, 11, 1);
    one_case(16, 8, 13, 13, 1, 9, 2);
    one_case(8, 8, 16, 12, 0, 8, 2);
    one_case(12, 8, 12, 15, 2, 3, 1);
    one_case(32, 32, 28, 28, 1, 10, 2);
    one_case(9, 10, 12, 12, 1, 5, 2); /* channel counts off the weight gradient's 4 x 4 blocks */
}

/* What stays on im2col: too few channels, tiles, or a stride. */
static void test_eligibility(void **state) {
    (void)state;
    static const struct {
        const char *spec;
        nn_shape in;
    } no[] = {{"conv32k3p1", {1, 28, 28}},
              {"conv4k3p1", {16, 28, 28}},
              {"conv32k3s2p1", {16, 28, 28}},
              {"conv32k5p2", {16, 28, 28}},
              {"conv32k3p1g2", {16, 28, 28}}};
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        nn_arch a;
        tr_err err;
        assert_int_equal(nn_arch_parse(no[i].spec, no[i].in, &a, &err), 0);
        assert_false(nn_wino_ok(&a.l[0]));
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_against_direct), cmocka_unit_test(test_eligibility)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
