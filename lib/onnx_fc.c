/* onnx_fc.c - a fully connected layer at small batches: AVX-512 dot products over the weight rows. */
#include "onnx_fc.h"

#include "onnx_sgemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

int onx_fc_ok(int64_t m) {
    return HAVE_X86 && m >= 1 && m <= ONX_FC_MAX_ROWS && onx_sgemm_best() == ONX_K_AVX512;
}

#if HAVE_X86
/* Rows [j0, j0 + 4) of w against rows [0, MR) of x: y[r * ldy + j] += alpha * dot. Rows of w
 * past n (nr < 4) and of x past mr read the last row again and are not stored. OpenBLAS's SGEMM would pack all of w
 * on every call, and its GEMV takes one sample at a time: here w streams once per MR samples. */
#define FC_BLOCK(MR)                                                                                                   \
    __attribute__((target("avx512f"))) static void fc_block##MR(const float *x, int64_t mr, int64_t k, const float *w, \
                                                                int64_t nr, float alpha, float *y, int64_t ldy) {      \
        __m512 acc[MR][4];                                                                                             \
        const float *wr[4], *xr[MR];                                                                                   \
        _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) xr[r] = x + (r < mr ? r : mr - 1) * k;                    \
        _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) wr[j] = w + (j < nr ? j : nr - 1) * k;                     \
        _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++)       \
            acc[r][j] = _mm512_setzero_ps();                                                                           \
        int64_t kk = 0;                                                                                                \
        for (; kk + 16 <= k; kk += 16) {                                                                               \
            __m512 wv[4];                                                                                              \
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) wv[j] = _mm512_loadu_ps(wr[j] + kk);                   \
            _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) {                                                     \
                __m512 xv = _mm512_loadu_ps(xr[r] + kk);                                                               \
                _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) acc[r][j] = _mm512_fmadd_ps(xv, wv[j], acc[r][j]); \
            }                                                                                                          \
        }                                                                                                              \
        if (kk < k) {                                                                                                  \
            __mmask16 mk = (__mmask16)((1u << (k - kk)) - 1);                                                          \
            __m512 wv[4];                                                                                              \
            _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) wv[j] = _mm512_maskz_loadu_ps(mk, wr[j] + kk);         \
            _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) {                                                     \
                __m512 xv = _mm512_maskz_loadu_ps(mk, xr[r] + kk);                                                     \
                _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) acc[r][j] = _mm512_fmadd_ps(xv, wv[j], acc[r][j]); \
            }                                                                                                          \
        }                                                                                                              \
        for (int r = 0; r < mr; r++)                                                                                   \
            for (int j = 0; j < nr; j++) y[r * ldy + j] += alpha * _mm512_reduce_add_ps(acc[r][j]);                    \
    }
FC_BLOCK(1)
FC_BLOCK(2)
FC_BLOCK(4)

/* One sample: eight weight rows at a time, eight streams from memory (the weights of a large
 * layer do not stay in cache between calls; the GEMV is bound by how fast they stream). */
__attribute__((target("avx512f"))) static void fc_row8(const float *x, int64_t k, const float *w, int64_t nr,
                                                       float alpha, float *y) {
    __m512 acc[8];
    const float *wr[8];
    _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) wr[j] = w + (j < nr ? j : nr - 1) * k,
                                                        acc[j] = _mm512_setzero_ps();
    int64_t kk = 0;
    for (; kk + 16 <= k; kk += 16) {
        __m512 xv = _mm512_loadu_ps(x + kk);
        _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) acc[j] =
            _mm512_fmadd_ps(_mm512_loadu_ps(wr[j] + kk), xv, acc[j]);
    }
    if (kk < k) {
        __mmask16 mk = (__mmask16)((1u << (k - kk)) - 1);
        __m512 xv = _mm512_maskz_loadu_ps(mk, x + kk);
        _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) acc[j] =
            _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mk, wr[j] + kk), xv, acc[j]);
    }
    for (int j = 0; j < nr; j++) y[j] += alpha * _mm512_reduce_add_ps(acc[j]);
}

typedef void (*fc_fn)(const float *x, int64_t mr, int64_t k, const float *w, int64_t nr, float alpha, float *y,
                      int64_t ldy);
#endif

void onx_fc(const float *x, int64_t m, int64_t k, const float *w, int64_t n, float alpha, float *y) {
#if HAVE_X86
    static const fc_fn fns[4] = {fc_block1, fc_block2, fc_block4, fc_block4}; /* 3 rows: as fast as 4 */
    if (m == 1) {
        for (int64_t j0 = 0; j0 < n; j0 += 8) fc_row8(x, k, w + j0 * k, n - j0 < 8 ? n - j0 : 8, alpha, y + j0);
        return;
    }
    for (int64_t r0 = 0; r0 < m; r0 += 4) {
        int64_t mr = m - r0 < 4 ? m - r0 : 4;
        for (int64_t j0 = 0; j0 < n; j0 += 4)
            fns[mr - 1](x + r0 * k, mr, k, w + j0 * k, n - j0 < 4 ? n - j0 : 4, alpha, y + r0 * n + j0, n);
    }
#else
    (void)x, (void)m, (void)k, (void)w, (void)n, (void)alpha, (void)y;
#endif
}
