/* onnx_convpx.c - convolutions with small outputs by output channels: weights as vectors, pixels broadcast.
 *
 * The packed SGEMM puts output channels down its tiles and pixels across, 32 at a time: a 7x7 output is a
 * whole tile and a narrow one of 17 columns that runs at two thirds of the speed (resnet18's last stage,
 * a third of its time). Turned around, 32 output channels are two vectors of weights and up to 14
 * pixels (two rows of up to 7) are broadcast from a zero-padded copy of the input: every tile is whole
 * for any output of 4 or more columns, a tile sums over all of K in registers, and its 14 x 32 results
 * are written once, transposed into NCHW. */
#include "onnx_convpx.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#define PX_CH 32      /* output channels of a panel: two AVX-512 vectors */
#define PX_RW 7       /* the widest tile row */
#define PX_MAX_P 1024 /* pixels of the largest output taken */
#define PX_MIN_K 64   /* sums of fewer products do not pay for the transposed store */

/* Floats of one channel of the zero-padded input. */
static int64_t plane_of(const onx_win *w) {
    return (w->in[0] + w->pb[0] + w->pe[0]) * (w->in[1] + w->pb[1] + w->pe[1]);
}

int onx_px_ok(onx_kern kn, const onx_win *w, int64_t grp, int64_t c, int64_t m) {
    int64_t P = w->out[0] * w->out[1], plane = plane_of(w);
    int plain = w->k[0] == 1 && w->k[1] == 1 && w->s[0] == 1 && w->s[1] == 1 && !w->pb[0] && !w->pb[1] && !w->pe[0] &&
                !w->pe[1];
    return HAVE_X86 && kn == ONX_K_AVX512 && grp == 1 && m % PX_CH == 0 && P >= 16 && P <= PX_MAX_P && w->out[1] >= 4 &&
           w->s[1] <= 2 && !plain && c * w->k[0] * w->k[1] >= PX_MIN_K && c * plane < INT32_MAX;
}

size_t onx_px_pack_len(int64_t m, int64_t k) {
    return (size_t)(m * k);
}

void onx_px_pack(const float *wt, int64_t m, int64_t k, float *out) {
    for (int64_t p = 0; p < m / PX_CH; p++)
        for (int64_t r = 0; r < k; r++)
            for (int64_t j = 0; j < PX_CH; j++) *out++ = wt[(p * PX_CH + j) * k + r];
}

size_t onx_px_work(const onx_win *w, int64_t c, int64_t n) {
    /* the padded input, then the offsets of K */
    return (size_t)(n * c * plane_of(w) + c * w->k[0] * w->k[1] + 16);
}

#if HAVE_X86
/* A tile of RH output rows (rs floats apart in the padded input) of RW pixels (S floats apart) x 32
 * channels: t[(r * RW + i) * 32 + j] = act(bias[j] + sum over k of wp[k * 32 + j] * xb[koff[k] + r * rs + i * S]). */
static inline __attribute__((always_inline, target("avx512f"))) void
px_tile(const float *wp, const float *xb, int64_t rs, const int32_t *koff, int64_t K, const float *bias, int clamp,
        float lo, float hi, float *t, const int RH, const int RW, const int S) {
    __m512 a[2][PX_RW][2];
    __m512 b0 = bias ? _mm512_loadu_ps(bias) : _mm512_setzero_ps();
    __m512 b1 = bias ? _mm512_loadu_ps(bias + 16) : _mm512_setzero_ps();
#pragma GCC unroll 2
    for (int r = 0; r < RH; r++)
#pragma GCC unroll 7
        for (int i = 0; i < RW; i++) a[r][i][0] = b0, a[r][i][1] = b1;
    for (int64_t k = 0; k < K; k++, wp += PX_CH) {
        __m512 w0 = _mm512_loadu_ps(wp), w1 = _mm512_loadu_ps(wp + 16);
        const float *xk = xb + koff[k];
#pragma GCC unroll 2
        for (int r = 0; r < RH; r++)
#pragma GCC unroll 7
            for (int i = 0; i < RW; i++) {
                __m512 v = _mm512_set1_ps(xk[r * rs + i * S]);
                a[r][i][0] = _mm512_fmadd_ps(v, w0, a[r][i][0]);
                a[r][i][1] = _mm512_fmadd_ps(v, w1, a[r][i][1]);
            }
    }
    __m512 vl = _mm512_set1_ps(lo), vh = _mm512_set1_ps(hi);
#pragma GCC unroll 2
    for (int r = 0; r < RH; r++)
#pragma GCC unroll 7
        for (int i = 0; i < RW; i++)
#pragma GCC unroll 2
            for (int h = 0; h < 2; h++) {
                __m512 v = a[r][i][h];
                if (clamp) v = _mm512_min_ps(_mm512_max_ps(v, vl), vh);
                _mm512_storeu_ps(t + (r * RW + i) * PX_CH + 16 * h, v);
            }
}

typedef void (*px_fn)(const float *wp, const float *xb, int64_t rs, const int32_t *koff, int64_t K, const float *bias,
                      int clamp, float lo, float hi, float *t);
#define PX_FN(RH, RW, S)                                                                                               \
    __attribute__((target("avx512f"))) static void px_##RH##_##RW##_##S(                                               \
        const float *wp, const float *xb, int64_t rs, const int32_t *koff, int64_t K, const float *bias, int clamp,    \
        float lo, float hi, float *t) {                                                                                \
        px_tile(wp, xb, rs, koff, K, bias, clamp, lo, hi, t, RH, RW, S);                                               \
    }
#define PX_FNS(S)                                                                                                      \
    PX_FN(1, 4, S)                                                                                                     \
    PX_FN(1, 5, S) PX_FN(1, 6, S) PX_FN(1, 7, S) PX_FN(2, 4, S) PX_FN(2, 5, S) PX_FN(2, 6, S) PX_FN(2, 7, S)
PX_FNS(1)
PX_FNS(2)
/* [stride - 1][rows - 1][width - 4] */
static const px_fn px_fns[2][2][4] = {
    {{px_1_4_1, px_1_5_1, px_1_6_1, px_1_7_1}, {px_2_4_1, px_2_5_1, px_2_6_1, px_2_7_1}},
    {{px_1_4_2, px_1_5_2, px_1_6_2, px_1_7_2}, {px_2_4_2, px_2_5_2, px_2_6_2, px_2_7_2}},
};
#endif

/* x (c x H x W) into the middle of xp's zeroed planes (Hp x Wp). */
static void pad_copy(const onx_win *w, int64_t c, const float *x, float *xp) {
    int64_t H = w->in[0], W = w->in[1], Wp = W + w->pb[1] + w->pe[1], plane = plane_of(w);
    memset(xp, 0, sizeof(float) * (size_t)(c * plane));
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t iy = 0; iy < H; iy++)
            memcpy(xp + ch * plane + (iy + w->pb[0]) * Wp + w->pb[1], x + (ch * H + iy) * W, sizeof(float) * (size_t)W);
}

void onx_px(const onx_win *w, int64_t c, int64_t m, const float *pk, const float *x, int64_t n, const float *bias,
            const float *res, onx_act act, float lo, float hi, float *y, float *work) {
#if HAVE_X86
    int64_t Wp = w->in[1] + w->pb[1] + w->pe[1], plane = plane_of(w), OH = w->out[0], OW = w->out[1], P = OH * OW;
    int64_t kk = w->k[0] * w->k[1], K = c * kk, rs = w->s[0] * Wp, s1 = w->s[1], HW = w->in[0] * w->in[1];
    float *xp = work, t[2 * PX_RW * PX_CH];
    int32_t *koff = (int32_t *)(xp + n * c * plane);
    for (int64_t s = 0; s < n; s++) pad_copy(w, c, x + s * c * HW, xp + s * c * plane);
    for (int64_t ch = 0; ch < c; ch++)
        for (int64_t i = 0; i < w->k[0]; i++)
            for (int64_t j = 0; j < w->k[1]; j++)
                koff[(ch * w->k[0] + i) * w->k[1] + j] = (int32_t)(ch * plane + i * w->d[0] * Wp + j * w->d[1]);
    if (act == ONX_ACT_RELU) lo = 0.0f, hi = INFINITY;
    int64_t nt = (OW + PX_RW - 1) / PX_RW; /* tiles across a row, widths as even as can be (4 to 7) */
    for (int64_t mp = 0; mp < m / PX_CH; mp++) {
        const float *wp = pk + mp * K * PX_CH, *bp = bias ? bias + mp * PX_CH : NULL;
        for (int64_t s = 0; s < n; s++) {
            const float *xs = xp + s * c * plane;
            float *ys = y + (s * m + mp * PX_CH) * P;
            for (int64_t oy = 0; oy < OH; oy += 2) {
                int rh = OH - oy < 2 ? 1 : 2;
                for (int64_t ti = 0, ox0 = 0; ti < nt; ti++) {
                    int rw = (int)(OW / nt + (ti < OW % nt));
                    px_fns[s1 - 1][rh - 1][rw - 4](wp, xs + oy * rs + ox0 * s1, rs, koff, K, bp,
                                                   !res && act != ONX_ACT_NONE, lo, hi, t);
                    for (int r = 0; r < rh; r++)
                        for (int i = 0; i < rw; i++) {
                            const float *tv = t + (r * rw + i) * PX_CH;
                            float *yp = ys + (oy + r) * OW + ox0 + i;
                            for (int j = 0; j < PX_CH; j++) yp[j * P] = tv[j];
                        }
                    ox0 += rw;
                }
            }
            if (res) /* this sample's 32 planes, still in cache */
                for (int j = 0; j < PX_CH; j++)
                    onx_add_act(ys + j * P, res + (s * m + mp * PX_CH + j) * P, (size_t)P, act, lo, hi);
        }
    }
#else
    (void)w, (void)c, (void)m, (void)pk, (void)x, (void)n, (void)bias, (void)res, (void)act, (void)lo, (void)hi,
        (void)y;
    (void)work;
#endif
}
