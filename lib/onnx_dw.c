/* onnx_dw.c - depthwise convolution: one channel at a time (AVX2 rows over a zero-padded copy of the
 * channel), or, on small planes with AVX-512, 16 channels at a time (channels in the vector lanes). */
#include "onnx_dw.h"

#include <math.h>
#include <string.h>

#include "onnx_sgemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "onnx_simd.h"
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

/* Columns of one phase plane: every vector of 8 outputs (the last one too) reads inside it. */
static int64_t plane_w(const onx_win *w) {
    return (w->out[1] + 7) / 8 * 8 + (w->k[1] - 1) / w->s[1];
}

static int64_t plane_h(const onx_win *w) {
    return w->in[0] + w->pb[0] + w->pe[0];
}

int onx_dw_ok(const onx_win *w) {
    return HAVE_X86 && onx_sgemm_best() != ONX_K_NONE && w->d[1] == 1 && (w->s[1] == 1 || w->s[1] == 2) && w->k[1] <= 8;
}

/* dw16: padded planes of at most this many pixels (a 28x28 input with its padding; 16 channels
 * of it, 58 KB, stay in L2), outputs of at most this many pixels (14x14: on larger outputs the
 * channel-at-a-time rows are as fast; 28x28 stride 1: 0.57 against 0.66 ns an output on one Zen 5
 * core, 7x7: 1.35 against 0.87), kernels of at most this many taps. */
#define DW16_MAX_PIXELS 1024
#define DW16_MAX_OUT 196
#define DW16_MAX_TAPS 25
#define DW16_RUN 7 /* outputs of a row computed together (7x7 and 14x14 planes: whole runs) */

/* Columns of the padded input of 16 channels, pixel-major (16 floats a padded pixel); its rows: plane_h. */
static int64_t pad16_w(const onx_win *w) {
    return w->in[1] + w->pb[1] + w->pe[1];
}

int onx_dw16_ok(const onx_win *w) {
    return HAVE_X86 && onx_sgemm_best() != ONX_K_NONE && plane_h(w) * pad16_w(w) <= DW16_MAX_PIXELS &&
           w->out[0] * w->out[1] <= DW16_MAX_OUT && w->k[0] * w->k[1] <= DW16_MAX_TAPS;
}

size_t onx_dw_work(const onx_win *w) { /* the planes, then a stride-2 row's line; or dw16's buffers */
    size_t one = (size_t)(w->s[1] * plane_h(w) * plane_w(w) + 2 * ((plane_w(w) + 7) / 8 * 8));
    size_t sixteen = onx_dw16_ok(w) ? (size_t)(16 * (plane_h(w) * pad16_w(w) + w->out[0] * w->out[1] + 16)) : 0;
    return one > sixteen ? one : sixteen;
}

#if HAVE_X86
/* line[0, 2n) -> even[0, n), odd[0, n); n a multiple of 8. */
__attribute__((target("avx2"))) static void deinterleave(const float *line, int64_t n, float *even, float *odd) {
    for (int64_t t = 0; t + 8 <= n; t += 8) {
        __m256 a = _mm256_loadu_ps(line + 2 * t), b = _mm256_loadu_ps(line + 2 * t + 8);
        __m256 e = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
               o = _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1));
        _mm256_storeu_ps(even + t, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), 0xd8)));
        _mm256_storeu_ps(odd + t, _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(o), 0xd8)));
    }
}

/* Plane f (of s1) holds padded column t * s1 + f at t: output ox, tap j reads plane j % s1 at
 * ox + j / s1, so a stride-2 row becomes contiguous loads. A stride-2 row is padded into the
 * line after the planes first, then split. */
static void make_planes(const float *x, const onx_win *w, float *work) {
    int64_t H = w->in[0], W = w->in[1], PH = plane_h(w), PW = plane_w(w), s1 = w->s[1], pb = w->pb[1];
    int64_t PW8 = (PW + 7) / 8 * 8, copy = W < s1 * PW8 - pb ? W : s1 * PW8 - pb;
    float *line = work + s1 * PH * PW;
    for (int64_t r = 0; r < PH; r++) {
        float *dst = work + r * PW;
        int64_t iy = r - w->pb[0];
        if (iy < 0 || iy >= H) {
            for (int64_t f = 0; f < s1; f++) memset(dst + f * PH * PW, 0, sizeof(float) * (size_t)PW);
            continue;
        }
        float *row = s1 == 1 ? dst : line; /* padded row: column u is input column u - pb */
        int64_t len = s1 == 1 ? PW : 2 * PW8;
        memset(row, 0, sizeof(float) * (size_t)pb);
        memcpy(row + pb, x + iy * W, sizeof(float) * (size_t)copy);
        memset(row + pb + copy, 0, sizeof(float) * (size_t)(len - pb - copy));
        if (s1 == 2) {
            deinterleave(line, PW8 - 8, dst, dst + PH * PW);
            for (int64_t t = PW8 - 8; t < PW; t++) dst[t] = line[2 * t], dst[PH * PW + t] = line[2 * t + 1];
        }
    }
}

__attribute__((target("avx2,fma"))) static void dw_rows(const float *wk, float bias, const onx_win *w, float *y,
                                                        float lo, float hi, int act, const float *work) {
    int64_t PH = plane_h(w), PW = plane_w(w), s1 = w->s[1], OH = w->out[0], OW = w->out[1], kh = w->k[0], kw = w->k[1];
    __m256 vl = _mm256_set1_ps(lo), vh = _mm256_set1_ps(hi), vb = _mm256_set1_ps(bias);
    int tail = (int)(OW % 8);
    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int64_t oy = 0; oy < OH; oy++) {
        float *yr = y + oy * OW;
        for (int64_t ox = 0; ox < OW; ox += 8) {
            __m256 acc = vb;
            for (int64_t i = 0; i < kh; i++) {
                const float *row = work + (oy * w->s[0] + i * w->d[0]) * PW + ox;
                for (int64_t j = 0; j < kw; j++)
                    acc = _mm256_fmadd_ps(_mm256_broadcast_ss(wk + i * kw + j),
                                          _mm256_loadu_ps(row + (j % s1) * PH * PW + j / s1), acc);
            }
            if (act) acc = _mm256_min_ps(_mm256_max_ps(acc, vl), vh);
            if (ox + 8 <= OW)
                _mm256_storeu_ps(yr + ox, acc);
            else
                _mm256_maskstore_ps(yr + ox, mask, acc);
        }
    }
}

/* 3x3, the common case: the nine weights stay in registers. */
__attribute__((target("avx2,fma"))) static void dw_rows3(const float *wk, float bias, const onx_win *w, float *y,
                                                         float lo, float hi, int act, const float *work) {
    int64_t PH = plane_h(w), PW = plane_w(w), s1 = w->s[1], OH = w->out[0], OW = w->out[1];
    __m256 vl = _mm256_set1_ps(lo), vh = _mm256_set1_ps(hi), vb = _mm256_set1_ps(bias), wv[9];
    for (int t = 0; t < 9; t++) wv[t] = _mm256_broadcast_ss(wk + t);
    /* offsets of taps j = 0, 1, 2 in the planes */
    int64_t o0 = 0, o1 = s1 == 1 ? 1 : PH * PW, o2 = s1 == 1 ? 2 : 1;
    int tail = (int)(OW % 8);
    __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(tail), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int64_t oy = 0; oy < OH; oy++) {
        float *yr = y + oy * OW;
        const float *r0 = work + oy * w->s[0] * PW, *r1 = r0 + w->d[0] * PW, *r2 = r1 + w->d[0] * PW;
        for (int64_t ox = 0; ox < OW; ox += 8) {
            __m256 a = _mm256_fmadd_ps(wv[0], _mm256_loadu_ps(r0 + ox + o0), vb);
            __m256 b = _mm256_mul_ps(wv[1], _mm256_loadu_ps(r0 + ox + o1));
            a = _mm256_fmadd_ps(wv[2], _mm256_loadu_ps(r0 + ox + o2), a);
            b = _mm256_fmadd_ps(wv[3], _mm256_loadu_ps(r1 + ox + o0), b);
            a = _mm256_fmadd_ps(wv[4], _mm256_loadu_ps(r1 + ox + o1), a);
            b = _mm256_fmadd_ps(wv[5], _mm256_loadu_ps(r1 + ox + o2), b);
            a = _mm256_fmadd_ps(wv[6], _mm256_loadu_ps(r2 + ox + o0), a);
            b = _mm256_fmadd_ps(wv[7], _mm256_loadu_ps(r2 + ox + o1), b);
            a = _mm256_fmadd_ps(wv[8], _mm256_loadu_ps(r2 + ox + o2), a);
            a = _mm256_add_ps(a, b);
            if (act) a = _mm256_min_ps(_mm256_max_ps(a, vl), vh);
            if (ox + 8 <= OW)
                _mm256_storeu_ps(yr + ox, a);
            else
                _mm256_maskstore_ps(yr + ox, mask, a);
        }
    }
}

__attribute__((target("avx2"))) static inline void store8(float *p, int64_t n, __m256 v) {
    onx_store8(p, n, 0, v);
}

/* The kernel of V channels a vector (VT, its intrinsics' prefix PF, its V x V transpose TR, LOADN and STOREN of the
 * first n lanes), x and y channels xs and ys floats apart: the channels' pixels transposed into the pixel-major
 * buffer (its padding zero: only the interior is written), every output pixel one vector of taps, transposed back.
 * dw16 (AVX-512) and dw8 (AVX2) below. */
#define DW_KERNEL(NAME, TARGET, VT, PF, V, TR, LOADN, STOREN)                                                          \
    __attribute__((target(TARGET))) static void NAME(const float *x, int64_t xs, const float *wk, const float *bias,   \
                                                     const onx_win *w, float *y, int64_t ys, float lo, float hi,       \
                                                     int act, float *work) {                                           \
        int64_t HW = w->in[0] * w->in[1], W = w->in[1], PW = pad16_w(w), OH = w->out[0], OW = w->out[1];               \
        int64_t P = OH * OW, kw = w->k[1], kk = w->k[0] * kw, toff[DW16_MAX_TAPS], xst = w->s[1] * V;                  \
        float *buf = work, *ob = work + V * plane_h(w) * PW, wv[DW16_MAX_TAPS][V];                                     \
        VT r[V];                                                                                                       \
        for (int64_t p0 = 0, iy = 0, ix = 0; p0 < HW; p0 += V) {                                                       \
            int64_t n = HW - p0 < V ? HW - p0 : V;                                                                     \
            for (int c = 0; c < V; c++) r[c] = LOADN(x + c * xs + p0, n);                                              \
            TR(r);                                                                                                     \
            for (int64_t q = 0; q < n; q++) {                                                                          \
                PF##storeu_ps(buf + ((iy + w->pb[0]) * PW + ix + w->pb[1]) * V, r[q]);                                 \
                if (++ix == W) ix = 0, iy++;                                                                           \
            }                                                                                                          \
        }                                                                                                              \
        for (int64_t t = 0; t < kk; t++) { /* tap t: its weights of the V channels, its offset in buf */               \
            for (int c = 0; c < V; c++) wv[t][c] = wk[c * kk + t];                                                     \
            toff[t] = (t / kw * w->d[0] * PW + t % kw * w->d[1]) * V;                                                  \
        }                                                                                                              \
        VT vb = bias ? PF##loadu_ps(bias) : PF##setzero_ps(), vl = PF##set1_ps(lo), vh = PF##set1_ps(hi);              \
        for (int64_t oy = 0; oy < OH; oy++) {                                                                          \
            const float *row = buf + oy * w->s[0] * PW * V;                                                            \
            float *orow = ob + oy * OW * V;                                                                            \
            int64_t ox = 0;                                                                                            \
            for (; ox + DW16_RUN <= OW; ox += DW16_RUN) { /* DW16_RUN outputs: independent FMA chains */               \
                VT acc[DW16_RUN];                                                                                      \
                const float *b0 = row + ox * xst;                                                                      \
                _Pragma("GCC unroll 8") for (int u = 0; u < DW16_RUN; u++) acc[u] = vb;                                \
                for (int64_t t = 0; t < kk; t++) {                                                                     \
                    VT wt = PF##loadu_ps(wv[t]);                                                                       \
                    _Pragma("GCC unroll 8") for (int u = 0; u < DW16_RUN; u++) acc[u] =                                \
                        PF##fmadd_ps(wt, PF##loadu_ps(b0 + u * xst + toff[t]), acc[u]);                                \
                }                                                                                                      \
                _Pragma("GCC unroll 8") for (int u = 0; u < DW16_RUN; u++) {                                           \
                    if (act) acc[u] = PF##min_ps(PF##max_ps(acc[u], vl), vh);                                          \
                    PF##storeu_ps(orow + (ox + u) * V, acc[u]);                                                        \
                }                                                                                                      \
            }                                                                                                          \
            for (; ox < OW; ox++) {                                                                                    \
                const float *b0 = row + ox * xst;                                                                      \
                VT acc = vb;                                                                                           \
                for (int64_t t = 0; t < kk; t++)                                                                       \
                    acc = PF##fmadd_ps(PF##loadu_ps(wv[t]), PF##loadu_ps(b0 + toff[t]), acc);                          \
                if (act) acc = PF##min_ps(PF##max_ps(acc, vl), vh);                                                    \
                PF##storeu_ps(orow + ox * V, acc);                                                                     \
            }                                                                                                          \
        }                                                                                                              \
        for (int64_t p0 = 0; p0 < P; p0 += V) {                                                                        \
            int64_t n = P - p0 < V ? P - p0 : V;                                                                       \
            for (int q = 0; q < V; q++) r[q] = PF##loadu_ps(ob + (p0 + q) * V); /* ob has V spare pixels */            \
            TR(r);                                                                                                     \
            for (int c = 0; c < V; c++) STOREN(y + c * ys + p0, n, r[c]);                                              \
        }                                                                                                              \
    }
DW_KERNEL(dw16, "avx512f", __m512, _mm512_, 16, onx_tr16, onx_load16, onx_store16)
DW_KERNEL(dw8, "avx2,fma", __m256, _mm256_, 8, onx_tr8, onx_load8, store8)
#endif

void onx_dw16(const float *x, int64_t xs, const float *wk, const float *bias, int64_t nc, const onx_win *w, float *y,
              int64_t ys, onx_act act, float lo, float hi, float *work) {
#if HAVE_X86
    if (act == ONX_ACT_RELU) lo = 0.0f, hi = INFINITY;
    memset(work, 0, sizeof(float) * 16 * (size_t)(plane_h(w) * pad16_w(w))); /* the padding, once for all blocks */
    int wide = onx_sgemm_best() == ONX_K_AVX512;
    void (*kern)(const float *, int64_t, const float *, const float *, const onx_win *, float *, int64_t, float, float,
                 int, float *) = wide ? dw16 : dw8;
    int64_t kk = w->k[0] * w->k[1], step = wide ? 16 : 8;
    for (int64_t c = 0; c < nc / 16 * 16; c += step)
        kern(x + c * xs, xs, wk + c * kk, bias ? bias + c : NULL, w, y + c * ys, ys, lo, hi, act != ONX_ACT_NONE, work);
#else
    (void)x, (void)xs, (void)wk, (void)bias, (void)nc, (void)w, (void)y, (void)ys, (void)act, (void)lo, (void)hi;
    (void)work;
#endif
}

void onx_dw(const float *x, const float *wk, float bias, const onx_win *w, float *y, onx_act act, float lo, float hi,
            float *work) {
#if HAVE_X86
    if (act == ONX_ACT_RELU) lo = 0.0f, hi = INFINITY;
    make_planes(x, w, work);
    if (w->k[0] == 3 && w->k[1] == 3)
        dw_rows3(wk, bias, w, y, lo, hi, act != ONX_ACT_NONE, work);
    else
        dw_rows(wk, bias, w, y, lo, hi, act != ONX_ACT_NONE, work);
#else
    (void)x, (void)wk, (void)bias, (void)w, (void)y, (void)act, (void)lo, (void)hi, (void)work;
#endif
}

void onx_deinterleave2(const float *line, int64_t n, float *even, float *odd) {
    int64_t t = 0;
#if HAVE_X86
    if (onx_sgemm_best() != ONX_K_NONE) deinterleave(line, t = n / 8 * 8, even, odd);
#endif
    for (; t < n; t++) even[t] = line[2 * t], odd[t] = line[2 * t + 1];
}
