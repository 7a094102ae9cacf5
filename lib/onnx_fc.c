/* onnx_fc.c - a fully connected layer at small batches: dot products over the weight rows (AVX-512 or AVX2). */
#include "onnx_fc.h"

#include "onnx_sgemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

/* With AVX2 (a Zen 3 core, one thread), against OpenBLAS's SGEMM: 784 -> 256 at 2, 4, 8 and 16 rows 90, 72, 96 and
 * 121 us against 40, 43, 84 and 153; 1280 -> 1000 at 2, 4 and 16 rows 477, 396 and 736 us against 224, 225 and 938.
 * On AVX-512 SGEMM was the faster at 2 to 4 rows (784 -> 256: 15 us for 4 rows, 65 for 5; onx_fc 25 for 5). */
int onx_fc_ok(int64_t m) {
    onx_kern kn = onx_sgemm_best();
    return HAVE_X86 && m >= 1 && kn != ONX_K_NONE && m <= (kn == ONX_K_AVX512 ? ONX_FC_MAX_ROWS : ONX_FC_MAX_ROWS_AVX2);
}

int64_t onx_fc_min_rows(void) {
    return onx_sgemm_best() == ONX_K_AVX512 ? 5 : 2;
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

/* AVX2: 16 vector registers hold 4 samples by 2 weight rows (8 sums, each weight vector meets 4 samples, as
 * fc_block4 does) or one sample by 8 rows; the last k % 8 products are summed one by one. */
__attribute__((target("avx2,fma"))) static inline float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

/* Rows [j0, j0 + 2) of w against rows [0, 4) of x, as fc_block. */
__attribute__((target("avx2,fma"))) static void fc8_block(const float *x, int64_t mr, int64_t k, const float *w,
                                                          int64_t nr, float alpha, float *y, int64_t ldy) {
    __m256 acc[4][2];
    const float *wr[2], *xr[4];
    for (int r = 0; r < 4; r++) xr[r] = x + (r < mr ? r : mr - 1) * k;
    for (int j = 0; j < 2; j++) wr[j] = w + (j < nr ? j : nr - 1) * k;
    for (int r = 0; r < 4; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    int64_t kk = 0;
    for (; kk + 8 <= k; kk += 8) {
        __m256 w0 = _mm256_loadu_ps(wr[0] + kk), w1 = _mm256_loadu_ps(wr[1] + kk);
        _Pragma("GCC unroll 4") for (int r = 0; r < 4; r++) {
            __m256 xv = _mm256_loadu_ps(xr[r] + kk);
            acc[r][0] = _mm256_fmadd_ps(xv, w0, acc[r][0]), acc[r][1] = _mm256_fmadd_ps(xv, w1, acc[r][1]);
        }
    }
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++) {
            float d = hsum8(acc[r][j]);
            for (int64_t q = kk; q < k; q++) d += xr[r][q] * wr[j][q];
            y[r * ldy + j] += alpha * d;
        }
}

/* One sample, eight weight rows at a time, as fc_row8. */
__attribute__((target("avx2,fma"))) static void fc8_row8(const float *x, int64_t k, const float *w, int64_t nr,
                                                         float alpha, float *y) {
    __m256 acc[8];
    const float *wr[8];
    for (int j = 0; j < 8; j++) wr[j] = w + (j < nr ? j : nr - 1) * k, acc[j] = _mm256_setzero_ps();
    int64_t kk = 0;
    for (; kk + 8 <= k; kk += 8) {
        __m256 xv = _mm256_loadu_ps(x + kk);
        _Pragma("GCC unroll 8") for (int j = 0; j < 8; j++) acc[j] =
            _mm256_fmadd_ps(_mm256_loadu_ps(wr[j] + kk), xv, acc[j]);
    }
    for (int j = 0; j < nr; j++) {
        float d = hsum8(acc[j]);
        for (int64_t q = kk; q < k; q++) d += x[q] * wr[j][q];
        y[j] += alpha * d;
    }
}
#endif

void onx_fc(const float *x, int64_t m, int64_t k, const float *w, int64_t n, float alpha, float *y) {
#if HAVE_X86
    static const fc_fn fns[4] = {fc_block1, fc_block2, fc_block4, fc_block4}; /* 3 rows: as fast as 4 */
    if (onx_sgemm_best() != ONX_K_AVX512 && m == 1) {
        for (int64_t j0 = 0; j0 < n; j0 += 8) fc8_row8(x, k, w + j0 * k, n - j0 < 8 ? n - j0 : 8, alpha, y + j0);
        return;
    }
    if (onx_sgemm_best() != ONX_K_AVX512) {
        for (int64_t r0 = 0; r0 < m; r0 += 4)
            for (int64_t j0 = 0; j0 < n; j0 += 2)
                fc8_block(x + r0 * k, m - r0 < 4 ? m - r0 : 4, k, w + j0 * k, n - j0 < 2 ? n - j0 : 2, alpha,
                          y + r0 * n + j0, n);
        return;
    }
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
