/* test_onnx_sgemm.c - the convolution kernels (onnx_sgemm.c, onnx_dw.c) against double-precision loops:
 * every register-tile kernel this CPU runs, edge widths, taps, segments, depth blocks, bias, activations;
 * depthwise one channel and 16 channels at a time;
 * the small-batch fully connected kernel (onnx_fc.c); Winograd 3x3 convolutions (onnx_wino.c, onnx_wino4.c);
 * small outputs by output channels (onnx_convpx.c). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "onnx_convpx.h"
#include "onnx_dw.h"
#include "onnx_fc.h"
#include "onnx_sgemm.h"
#include "onnx_wino.h"
#include "onnx_wino4.h"
#include "rng.h"

static float *randv(uint64_t *r, size_t n) {
    float *v = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(v);
    for (size_t i = 0; i < n; i++) v[i] = (float)(rng_uniform(r) * 2.0 - 1.0);
    return v;
}

typedef onx_bsrc src_t;

/* Rows ldb apart, so that a copy into work must respect *ldb: written at a different stride. */
static const float *copied(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *work, int64_t *ldb) {
    const src_t *s = ctx;
    *ldb = nc + 3;
    for (int64_t r = 0; r < kc; r++) memcpy(work + r * *ldb, s->b + (k0 + r) * s->ldb + n0, sizeof(float) * (size_t)nc);
    return work;
}

static float act_of(onx_act act, double v, float lo, float hi) {
    if (act == ONX_ACT_RELU) return v > 0 ? (float)v : 0.0f;
    if (act == ONX_ACT_CLIP) return v < lo ? lo : v > hi ? hi : (float)v;
    return (float)v;
}

/* One case: C (m x n, segments of seg columns ld_seg apart) = act(A * B + bias [+ res]) with ntap taps; half the
 * shapes add a residual laid out as C (random in the gaps too, which must stay untouched). */
static void one_case(onx_kern kn, uint64_t *r, int64_t m, int64_t n, int64_t kg, int ntap, int64_t seg, int copy,
                     onx_act act) {
    int64_t k = kg * ntap, toff[ONX_MAX_TAPS], ldb = n + 5 + 2 * ntap, ldc = seg + 2, ld_seg = m * ldc + 7;
    for (int t = 0; t < ntap; t++) toff[t] = 2 * t; /* taps: B shifted by 2 floats each */
    int64_t nseg = (n + seg - 1) / seg;
    float *a = randv(r, (size_t)(m * k)), *b = randv(r, (size_t)(kg * ldb)), *bias = randv(r, (size_t)m);
    float *c = calloc((size_t)(nseg * ld_seg), sizeof(float)), *ap = malloc(sizeof(float) * onx_pack_a_len(kn, m, k));
    float *work = malloc(sizeof(float) * onx_sgemm_work()), *res = randv(r, (size_t)(nseg * ld_seg));
    int use_res = (int)((m + n + kg) % 2);
    assert_true(c && ap && work);
    onx_pack_a(kn, a, m, k, ap);
    src_t s = {b, ldb};
    onx_cmap cm = {c, ldc, seg, ld_seg, use_res ? res : NULL};
    float lo = -0.3f, hi = 0.4f;
    onx_sgemm(kn, m, n, kg, ntap, ntap > 1 ? toff : NULL, ap, copy ? copied : onx_bblock_strided, &s, &cm,
              m % 2 ? bias : NULL, act, lo, hi, work);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = m % 2 ? bias[i] : 0.0, mag = fabs(acc);
            for (int t = 0; t < ntap; t++)
                for (int64_t q = 0; q < kg; q++) {
                    double p = (double)a[i * k + t * kg + q] * b[q * ldb + (ntap > 1 ? toff[t] : 0) + j];
                    acc += p, mag += fabs(p);
                }
            if (use_res) acc += res[j / seg * ld_seg + i * ldc + j % seg];
            float want = act_of(act, acc, lo, hi), got = c[j / seg * ld_seg + i * ldc + j % seg];
            if (fabsf(got - want) > 1e-5f * (float)mag + 1e-6f)
                fail_msg("kernel %d m %lld n %lld kg %lld taps %d seg %lld: C[%lld][%lld] = %g, want %g", (int)kn,
                         (long long)m, (long long)n, (long long)kg, ntap, (long long)seg, (long long)i, (long long)j,
                         got, want);
        }
    /* the gaps between rows and segments stay untouched */
    for (int64_t sg = 0; sg < nseg; sg++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = seg; j < ldc; j++) assert_true(c[sg * ld_seg + i * ldc + j] == 0.0f);
    free(a), free(b), free(bias), free(c), free(ap), free(work), free(res);
}

static void test_sgemm(void **state) {
    (void)state;
    onx_kern best = onx_sgemm_best();
    if (best == ONX_K_NONE) skip();
    uint64_t r[4];
    rng_seed(7, r);
    static const int64_t ns[] = {1, 7, 8, 9, 16, 17, 24, 25, 31, 32, 33, 49, 100, 481, 1000};
    static const int64_t ms[] = {1, 5, 6, 8, 9, 13, 20, 64};
    for (int kn = ONX_K_AVX2; kn <= (int)best; kn++)
        for (size_t in = 0; in < sizeof ns / sizeof ns[0]; in++)
            for (size_t im = 0; im < sizeof ms / sizeof ms[0]; im++) {
                int64_t n = ns[in], m = ms[im];
                one_case((onx_kern)kn, r, m, n, 3 + (int64_t)in % 5, 1, n, (int)(in + im) % 2, (onx_act)(im % 3));
                one_case((onx_kern)kn, r, m, n, 5, 9, n, 0, ONX_ACT_RELU);           /* taps */
                one_case((onx_kern)kn, r, m, n, 4, 1, 7, (int)in % 2, ONX_ACT_NONE); /* segments */
            }
    for (int kn = ONX_K_AVX2; kn <= (int)best; kn++) { /* several depth blocks, several column blocks */
        one_case((onx_kern)kn, r, 20, 600, 700, 1, 600, 0, ONX_ACT_CLIP);
        one_case((onx_kern)kn, r, 9, 300, 100, 7, 300, 0, ONX_ACT_NONE);
        one_case((onx_kern)kn, r, 16, 1100, 33, 1, 196, 1, ONX_ACT_RELU);
        /* 7x7 samples side by side: whole tiles across segments, read back from C between depth blocks */
        one_case((onx_kern)kn, r, 24, 392, 300, 1, 49, 0, ONX_ACT_RELU);
        /* narrow columns over several depth blocks: sums kept in work, and past its rows through C */
        one_case((onx_kern)kn, r, 40, 45, 100, 9, 45, 0, ONX_ACT_CLIP);
        one_case((onx_kern)kn, r, 40, 45, 300, 1, 20, 1, ONX_ACT_CLIP);
        one_case((onx_kern)kn, r, 2056, 17, 300, 1, 17, 0, ONX_ACT_RELU);
    }
}

/* A depthwise case's geometry: input h x w, kernel kh x kw, strides, dilations, pads. */
typedef struct {
    int64_t h, w, kh, kw, s0, s1, d0, d1, pb0, pb1, pe0, pe1;
} dw_geo;

static onx_win dw_win(const dw_geo *g) {
    onx_win w = {
        2, {g->kh, g->kw}, {g->s0, g->s1}, {g->d0, g->d1}, {g->pb0, g->pb1}, {g->pe0, g->pe1}, {g->h, g->w}, {0, 0}};
    for (int i = 0; i < 2; i++) {
        int64_t ext = (w.k[i] - 1) * w.d[i] + 1;
        w.out[i] = (w.in[i] + w.pb[i] + w.pe[i] - ext) / w.s[i] + 1;
    }
    return w;
}

/* The direct sum of output (oy, ox) of one channel, in double. */
static double dw_ref(const dw_geo *g, const float *x, const float *wk, int64_t oy, int64_t ox, double bias) {
    double acc = bias;
    for (int64_t i = 0; i < g->kh; i++)
        for (int64_t j = 0; j < g->kw; j++) {
            int64_t iy = oy * g->s0 - g->pb0 + i * g->d0, ix = ox * g->s1 - g->pb1 + j * g->d1;
            if (iy >= 0 && iy < g->h && ix >= 0 && ix < g->w) acc += (double)wk[i * g->kw + j] * x[iy * g->w + ix];
        }
    return acc;
}

/* Depthwise, 16 channels at a time (onx_dw16): channels xs and ys floats apart, with and without
 * a bias, against the direct loop, for small planes of every shape it takes (strides, dilations, asymmetric pads,
 * 5x5 kernels, pixel counts off multiples of 16). */
static void depthwise16_cases(int *ran);

/* onx_dw16 at the CPU's best (16 channels a vector on AVX-512), then capped at AVX2 (8 a vector). */
static void test_depthwise16(void **state) {
    (void)state;
    int ran = 0;
    depthwise16_cases(&ran);
    if (onx_sgemm_best() == ONX_K_AVX512) {
        onx_sgemm_cap(ONX_K_AVX2);
        depthwise16_cases(&ran);
        onx_sgemm_cap(ONX_K_AVX512);
    }
    if (!ran) skip();
}

static void depthwise16_cases(int *ran) {
    static const dw_geo cases[] = {
        {7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   {14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
        {14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, {28, 28, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1},
        {9, 11, 5, 5, 1, 2, 1, 1, 2, 2, 2, 2},  {10, 6, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2},
        {3, 5, 3, 1, 1, 1, 1, 1, 1, 0, 0, 0},   {1, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},
    };
    enum { NC = 40 };
    uint64_t r[4];
    rng_seed(13, r);
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const dw_geo *g = &cases[ci];
        onx_win w = dw_win(g);
        if (!onx_dw16_ok(&w)) continue;
        (*ran)++;
        int64_t HW = g->h * g->w, P = w.out[0] * w.out[1], kk = g->kh * g->kw, xs = HW + 3, ys = P + 5;
        /* 40 channels: two whole blocks (the padding zeroed once serves both), 8 left to the caller */
        float *x = randv(r, (size_t)(NC * xs)), *wk = randv(r, (size_t)(NC * kk)), *bias = ci % 2 ? randv(r, NC) : NULL;
        float *y = malloc(sizeof(float) * (size_t)(NC * ys)), *work = malloc(sizeof(float) * onx_dw_work(&w));
        assert_true(y && work);
        for (int64_t i = 0; i < NC * ys; i++) y[i] = 42.0f;
        onx_act act = (onx_act)(ci % 3);
        onx_dw16(x, xs, wk, bias, NC, &w, y, ys, act, -0.5f, 0.5f, work);
        for (int64_t i = 32 * ys; i < NC * ys; i++) assert_true(y[i] == 42.0f); /* past the whole blocks */
        for (int64_t c = 0; c < 32; c++) {
            for (int64_t oy = 0; oy < w.out[0]; oy++)
                for (int64_t ox = 0; ox < w.out[1]; ox++) {
                    double acc = dw_ref(g, x + c * xs, wk + c * kk, oy, ox, bias ? bias[c] : 0.0);
                    float want = act_of(act, acc, -0.5f, 0.5f), got = y[c * ys + oy * w.out[1] + ox];
                    if (fabsf(got - want) > 1e-5f)
                        fail_msg("depthwise16 case %zu (kernel %d): channel %lld y[%lld][%lld] = %g, want %g", ci,
                                 (int)onx_sgemm_best(), (long long)c, (long long)oy, (long long)ox, got, want);
                }
            for (int64_t i = P; i < ys; i++) assert_true(y[c * ys + i] == 42.0f); /* the gaps stay */
        }
        free(x), free(wk), free(bias), free(y), free(work);
    }
}

/* Depthwise: one channel against the direct loop, for the geometries onx_dw takes. */
static void test_depthwise(void **state) {
    (void)state;
    static const dw_geo cases[] = {
        {14, 14, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1}, {15, 17, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1},
        {16, 16, 3, 3, 2, 2, 1, 1, 0, 0, 1, 1}, {9, 23, 5, 5, 2, 2, 1, 1, 2, 2, 2, 2},
        {7, 7, 3, 3, 1, 1, 2, 1, 2, 1, 2, 1},   {5, 40, 1, 7, 1, 1, 1, 1, 0, 3, 0, 3},
        {4, 3, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},   {33, 9, 3, 3, 1, 2, 1, 1, 1, 1, 1, 1},
    };
    uint64_t r[4];
    rng_seed(11, r);
    int ran = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const dw_geo *g = &cases[ci];
        onx_win w = dw_win(g);
        if (!onx_dw_ok(&w)) continue;
        ran++;
        float *x = randv(r, (size_t)(g->h * g->w)), *wk = randv(r, (size_t)(g->kh * g->kw));
        float *y = malloc(sizeof(float) * (size_t)(w.out[0] * w.out[1] + 1)),
              *work = malloc(sizeof(float) * onx_dw_work(&w));
        assert_true(y && work);
        y[w.out[0] * w.out[1]] = 42.0f; /* must survive: nothing written past the output */
        onx_act act = (onx_act)(ci % 3);
        onx_dw(x, wk, 0.25f, &w, y, act, -0.5f, 0.5f, work);
        for (int64_t oy = 0; oy < w.out[0]; oy++)
            for (int64_t ox = 0; ox < w.out[1]; ox++) {
                double acc = dw_ref(g, x, wk, oy, ox, 0.25);
                float want = act_of(act, acc, -0.5f, 0.5f), got = y[oy * w.out[1] + ox];
                if (fabsf(got - want) > 1e-5f)
                    fail_msg("depthwise case %zu: y[%lld][%lld] = %g, want %g", ci, (long long)oy, (long long)ox, got,
                             want);
            }
        assert_true(y[w.out[0] * w.out[1]] == 42.0f);
        free(x), free(wk), free(y), free(work);
    }
    if (!ran) skip();
}

static void test_deinterleave(void **state) {
    (void)state;
    for (int64_t n = 0; n < 40; n++) {
        float line[80], e[40], o[40];
        for (int i = 0; i < 80; i++) line[i] = (float)i;
        onx_deinterleave2(line, n, e, o);
        for (int64_t u = 0; u < n; u++) {
            assert_true(e[u] == (float)(2 * u));
            assert_true(o[u] == (float)(2 * u + 1));
        }
    }
}

/* onx_fc against a double sum on the AVX-512 kernels and capped at AVX2, wherever the CPU has them: every row count
 * up to ONX_FC_MAX_ROWS, depths around both vector widths (AVX-512's masked tails, AVX2's k % 8 summed one by one),
 * widths around the 4- and 2-row weight blocks; y accumulates onto what it held. */
static void test_fc(void **state) {
    (void)state;
    static const onx_kern caps[] = {ONX_K_AVX512, ONX_K_AVX2};
    int ran = 0;
    uint64_t r[4];
    rng_seed(13, r);
    static const int64_t ks[] = {1, 7, 8, 9, 15, 16, 17, 33, 100}, ns[] = {1, 2, 3, 4, 5, 9};
    for (size_t c = 0; c < sizeof caps / sizeof caps[0]; c++) {
        onx_sgemm_cap(caps[c]);
        if (onx_sgemm_best() != caps[c] || !onx_fc_ok(1)) continue;
        ran++;
        for (int64_t m = 1; m <= ONX_FC_MAX_ROWS; m++)
            for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
                for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                    int64_t k = ks[ki], n = ns[ni];
                    float *x = randv(r, (size_t)(m * k)), *w = randv(r, (size_t)(n * k)),
                          *y = randv(r, (size_t)(m * n));
                    float *y0 = malloc(sizeof(float) * (size_t)(m * n));
                    assert_non_null(y0);
                    memcpy(y0, y, sizeof(float) * (size_t)(m * n));
                    onx_fc(x, m, k, w, n, 0.5f, y);
                    for (int64_t i = 0; i < m; i++)
                        for (int64_t j = 0; j < n; j++) {
                            double acc = 0;
                            for (int64_t kk = 0; kk < k; kk++) acc += (double)x[i * k + kk] * w[j * k + kk];
                            double want = y0[i * n + j] + 0.5 * acc;
                            if (fabs(y[i * n + j] - want) > 1e-5 + 1e-5 * fabs(want))
                                fail_msg("fc kernel %d m %lld k %lld n %lld: y[%lld][%lld] = %g, want %g", (int)caps[c],
                                         (long long)m, (long long)k, (long long)n, (long long)i, (long long)j,
                                         y[i * n + j], want);
                        }
                    free(x), free(w), free(y), free(y0);
                }
    }
    onx_sgemm_cap(ONX_K_AVX512);
    if (!ran) skip();
}

typedef struct {
    int64_t c, m, h, w, pt, pl, pb, pr, n;
    onx_act act;
} wino_case;

/* The variant against the direct convolution in double: odd and even sizes (a last tile partly outside), paddings 0
 * to 2 on either side, several samples (more than one pass of tiles), bias and activations, a residual added before
 * the activation in every other case; the word after the output stays untouched. The error bound is tol times the sum
 * of the products' magnitudes: measured, F(2x2)'s worst is 1.5e-7 of it (a float rounding or two), F(4x4)'s 3.4e-6 (its
 * transforms scale by up to 8 and 1/24). */
static void wino_check(const onx_wino_impl *im, onx_kern kn, const wino_case *cases, size_t ncase, float tol) {
    uint64_t r[4];
    rng_seed(17, r);
    for (size_t ci = 0; ci < ncase; ci++) {
        onx_win w = {.nsp = 2, .k = {3, 3}, .s = {1, 1}, .d = {1, 1}};
        w.pb[0] = cases[ci].pt, w.pb[1] = cases[ci].pl, w.pe[0] = cases[ci].pb, w.pe[1] = cases[ci].pr;
        w.in[0] = cases[ci].h, w.in[1] = cases[ci].w;
        w.out[0] = w.in[0] + w.pb[0] + w.pe[0] - 2, w.out[1] = w.in[1] + w.pb[1] + w.pe[1] - 2;
        int64_t c = cases[ci].c, m = cases[ci].m, n = cases[ci].n, H = w.in[0], W = w.in[1], OH = w.out[0],
                OW = w.out[1];
        float *x = randv(r, (size_t)(n * c * H * W)), *wt = randv(r, (size_t)(m * c * 9)), *bias = randv(r, (size_t)m);
        float *pk = malloc(sizeof(float) * im->pack_len(kn, m, c)), *tmp = malloc(sizeof(float) * (size_t)(m * c));
        float *work = malloc(sizeof(float) * im->work(&w, c, m, n));
        float *y = malloc(sizeof(float) * (size_t)(n * m * OH * OW + 1));
        float *res = ci % 2 ? randv(r, (size_t)(n * m * OH * OW)) : NULL;
        assert_true(pk && tmp && work && y);
        y[n * m * OH * OW] = 42.0f;
        im->pack(kn, wt, m, c, tmp, pk);
        im->run(kn, &w, c, m, pk, x, n, bias, res, cases[ci].act, -0.5f, 0.5f, y, work);
        for (int64_t s = 0; s < n; s++)
            for (int64_t i = 0; i < m; i++)
                for (int64_t oy = 0; oy < OH; oy++)
                    for (int64_t ox = 0; ox < OW; ox++) {
                        double acc = bias[i], mag = fabs(acc);
                        if (res) {
                            double rv = res[((s * m + i) * OH + oy) * OW + ox];
                            acc += rv, mag += fabs(rv);
                        }
                        for (int64_t ch = 0; ch < c; ch++)
                            for (int64_t ky = 0; ky < 3; ky++)
                                for (int64_t kx = 0; kx < 3; kx++) {
                                    int64_t iy = oy + ky - w.pb[0], ix = ox + kx - w.pb[1];
                                    if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                                        double p = (double)wt[((i * c + ch) * 3 + ky) * 3 + kx] *
                                                   x[((s * c + ch) * H + iy) * W + ix];
                                        acc += p, mag += fabs(p);
                                    }
                                }
                        float want = act_of(cases[ci].act, acc, -0.5f, 0.5f),
                              got = y[((s * m + i) * OH + oy) * OW + ox];
                        if (fabsf(got - want) > tol * (float)mag)
                            fail_msg("wino case %zu: y[%lld][%lld][%lld][%lld] = %g, want %g", ci, (long long)s,
                                     (long long)i, (long long)oy, (long long)ox, got, want);
                    }
        assert_true(y[n * m * OH * OW] == 42.0f);
        free(x), free(wt), free(bias), free(pk), free(tmp), free(work), free(y), free(res);
    }
}

/* wino_check with the CPU's best kernels, then capped at AVX2 (8-tile transforms, the 6x16 tiles) when the best is
 * AVX-512. */
static void wino_both(const onx_wino_impl *im, const wino_case *cases, size_t ncase, float tol) {
    wino_check(im, onx_sgemm_best(), cases, ncase, tol);
    if (onx_sgemm_best() != ONX_K_AVX512) return;
    onx_sgemm_cap(ONX_K_AVX2);
    wino_check(im, ONX_K_AVX2, cases, ncase, tol);
    onx_sgemm_cap(ONX_K_AVX512);
}

typedef struct {
    int64_t c, m, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, n;
    onx_act act;
    int bias;
} px_case;

/* onx_px against the direct convolution in double: kernels 1x1 to 5x3, strides 1 and 2, dilations, uneven
 * paddings, output widths that split into tiles of 4 to 7 and odd row counts (a last tile of one row), 32 to 96
 * output channels, several samples, with and without bias, each activation, a residual in every other case; the word
 * after y stays untouched. */
static void test_px(void **state) {
    (void)state;
    static const px_case cases[] = {
        {64, 64, 7, 7, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 2, ONX_ACT_RELU, 1},
        {16, 32, 14, 14, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 3, ONX_ACT_NONE, 1},
        {24, 32, 14, 14, 1, 1, 2, 2, 1, 1, 0, 0, 0, 0, 2, ONX_ACT_NONE, 0},
        {8, 96, 9, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, ONX_ACT_CLIP, 1},
        {5, 32, 11, 15, 5, 3, 1, 1, 2, 1, 2, 1, 3, 0, 2, ONX_ACT_RELU, 1},
        {7, 64, 12, 19, 3, 2, 2, 2, 1, 2, 1, 0, 0, 2, 1, ONX_ACT_NONE, 0},
        {3, 32, 4, 6, 3, 3, 1, 1, 1, 1, 0, 0, 2, 1, 4, ONX_ACT_RELU, 1},
        {1, 32, 1, 40, 1, 3, 1, 1, 1, 1, 0, 1, 0, 1, 2, ONX_ACT_NONE, 1},
    };
    onx_kern kn = onx_sgemm_best();
    uint64_t r[4];
    rng_seed(23, r);
    int ran = 0;
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++) {
        const px_case *q = &cases[ci];
        onx_win w = {.nsp = 2, .k = {q->kh, q->kw}, .s = {q->sh, q->sw}, .d = {q->dh, q->dw}};
        w.pb[0] = q->pt, w.pb[1] = q->pl, w.pe[0] = q->pb, w.pe[1] = q->pr, w.in[0] = q->h, w.in[1] = q->w;
        w.out[0] = (q->h + q->pt + q->pb - (q->kh - 1) * q->dh - 1) / q->sh + 1;
        w.out[1] = (q->w + q->pl + q->pr - (q->kw - 1) * q->dw - 1) / q->sw + 1;
        if (!onx_px_ok(kn, &w, 1, q->c, q->m)) continue;
        ran++;
        int64_t c = q->c, m = q->m, n = q->n, H = q->h, W = q->w, OH = w.out[0], OW = w.out[1], K = c * q->kh * q->kw;
        float *x = randv(r, (size_t)(n * c * H * W)), *wt = randv(r, (size_t)(m * K)), *bias = randv(r, (size_t)m);
        float *pk = malloc(sizeof(float) * onx_px_pack_len(m, K)),
              *work = malloc(sizeof(float) * onx_px_work(&w, c, n));
        float *y = malloc(sizeof(float) * (size_t)(n * m * OH * OW + 1));
        float *res = ci % 2 ? randv(r, (size_t)(n * m * OH * OW)) : NULL;
        assert_true(pk && work && y);
        y[n * m * OH * OW] = 42.0f;
        onx_px_pack(wt, m, K, pk);
        onx_px(&w, c, m, pk, x, n, q->bias ? bias : NULL, res, q->act, -0.5f, 0.5f, y, work);
        for (int64_t s = 0; s < n; s++)
            for (int64_t i = 0; i < m; i++)
                for (int64_t oy = 0; oy < OH; oy++)
                    for (int64_t ox = 0; ox < OW; ox++) {
                        double acc = q->bias ? bias[i] : 0.0, mag = fabs(acc);
                        if (res) {
                            double rv = res[((s * m + i) * OH + oy) * OW + ox];
                            acc += rv, mag += fabs(rv);
                        }
                        for (int64_t ch = 0; ch < c; ch++)
                            for (int64_t ky = 0; ky < q->kh; ky++)
                                for (int64_t kx = 0; kx < q->kw; kx++) {
                                    int64_t iy = oy * q->sh + ky * q->dh - q->pt, ix = ox * q->sw + kx * q->dw - q->pl;
                                    if (iy >= 0 && iy < H && ix >= 0 && ix < W) {
                                        double p = (double)wt[((i * c + ch) * q->kh + ky) * q->kw + kx] *
                                                   x[((s * c + ch) * H + iy) * W + ix];
                                        acc += p, mag += fabs(p);
                                    }
                                }
                        float want = act_of(q->act, acc, -0.5f, 0.5f), got = y[((s * m + i) * OH + oy) * OW + ox];
                        if (fabsf(got - want) > 1e-6f * (float)mag + 1e-7f)
                            fail_msg("px case %zu: y[%lld][%lld][%lld][%lld] = %g, want %g", ci, (long long)s,
                                     (long long)i, (long long)oy, (long long)ox, got, want);
                    }
        assert_true(y[n * m * OH * OW] == 42.0f);
        free(x), free(wt), free(bias), free(pk), free(work), free(y), free(res);
    }
    if (!ran) skip(); /* AVX-512 only: onx_px_ok refuses every case */
}

static void test_wino(void **state) {
    (void)state;
    static const wino_case cases[] = {
        {32, 64, 14, 14, 1, 1, 1, 1, 1, ONX_ACT_RELU},
        {8, 8, 7, 7, 1, 1, 1, 1, 3, ONX_ACT_NONE},
        {9, 17, 5, 9, 0, 2, 1, 0, 2, ONX_ACT_CLIP},
        {16, 8, 28, 28, 1, 1, 1, 1, 13, ONX_ACT_RELU},
        {8, 24, 6, 32, 2, 1, 0, 1, 1, ONX_ACT_NONE},
        {12, 8, 3, 3, 1, 1, 1, 1, 40, ONX_ACT_RELU},
        {8, 16, 20, 56, 1, 1, 1, 1, 1, ONX_ACT_RELU},
        {8, 8, 9, 35, 1, 0, 1, 2, 2, ONX_ACT_NONE},
        {8, 12, 14, 17, 0, 0, 0, 0, 3, ONX_ACT_NONE},
        /* 7x7 with padding 1: the planes in registers on AVX-512 (onx_wino_p7_ok), a residual in the second */
        {32, 64, 7, 7, 1, 1, 1, 1, 5, ONX_ACT_RELU},
        {16, 32, 7, 7, 1, 1, 1, 1, 4, ONX_ACT_CLIP},
    };
    if (onx_sgemm_best() == ONX_K_NONE) skip(); /* the kernel runs any size; onx_wino_ok picks */
    wino_both(&onx_wino_f2, cases, sizeof cases / sizeof cases[0], 1e-6f);
}

/* F(4x4, 3x3): rows of tiles over 16 (two chunks of lanes), under 16 and under 8, and partial last tiles in both
 * directions;
 * the sizes onx_wino4_ok takes (resnet18's 56x56 and 28x28 stages) and smaller ones it runs all the same. */
static void test_wino4(void **state) {
    (void)state;
    static const wino_case cases[] = {
        {64, 64, 56, 56, 1, 1, 1, 1, 1, ONX_ACT_RELU}, {32, 48, 28, 28, 1, 1, 1, 1, 6, ONX_ACT_NONE},
        {9, 17, 29, 33, 0, 2, 1, 0, 2, ONX_ACT_CLIP},  {8, 8, 7, 7, 1, 1, 1, 1, 3, ONX_ACT_NONE},
        {8, 24, 6, 70, 2, 1, 0, 1, 1, ONX_ACT_RELU},   {12, 8, 3, 3, 1, 1, 1, 1, 40, ONX_ACT_RELU},
        {8, 8, 9, 67, 1, 0, 1, 2, 2, ONX_ACT_NONE},    {8, 12, 14, 17, 0, 0, 0, 0, 3, ONX_ACT_NONE},
        {16, 8, 31, 30, 2, 2, 2, 2, 2, ONX_ACT_RELU},
    };
    onx_win big = {.nsp = 2, .k = {3, 3}, .s = {1, 1}, .d = {1, 1}, .in = {56, 56}, .out = {56, 56}};
    if (!onx_wino4_ok(&big, 1, 64, 64)) skip(); /* AVX2 or AVX-512 */
    wino_both(&onx_wino_f4, cases, sizeof cases / sizeof cases[0], 1e-5f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgemm),        cmocka_unit_test(test_depthwise), cmocka_unit_test(test_depthwise16),
        cmocka_unit_test(test_deinterleave), cmocka_unit_test(test_fc),        cmocka_unit_test(test_wino),
        cmocka_unit_test(test_wino4),        cmocka_unit_test(test_px),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
