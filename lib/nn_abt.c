/* nn_abt.c - S = A B^T for the trainer's weight gradients: AVX-512 dot products over rows read in place, OpenBLAS's
 * SGEMM elsewhere. */
#include "nn_abt.h"

#include <cblas.h>

#include "onnx_sgemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "onnx_simd.h"
#define T512 __attribute__((target("avx512f")))

/* The 16 lanes' sums of v0 .. v15, in lane l the sum of v<l>: pairs of vectors added across their halves, then
 * quarters, then 128-bit lanes (45 instructions for 16 sums). By value: an array of accumulators would live on the
 * stack and be stored on every step of the loop. */
T512 static inline __m512 hsum2(__m512 a, __m512 b) { /* per 128-bit lane: a's partial at 0 and 2, b's at 1, 3 */
    return _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
}
T512 static inline __m512 hsum4(__m512 s, __m512 t) { /* per 128-bit lane: the four vectors' partials at 0 .. 3 */
    return _mm512_add_ps(_mm512_shuffle_ps(s, t, _MM_SHUFFLE(1, 0, 1, 0)),
                         _mm512_shuffle_ps(s, t, _MM_SHUFFLE(3, 2, 3, 2)));
}
T512 static inline __m512 hsum_lanes(__m512 u0, __m512 u1, __m512 u2, __m512 u3) {
    __m512 p01 = _mm512_add_ps(_mm512_shuffle_f32x4(u0, u1, _MM_SHUFFLE(1, 0, 1, 0)),
                               _mm512_shuffle_f32x4(u0, u1, _MM_SHUFFLE(3, 2, 3, 2)));
    __m512 p23 = _mm512_add_ps(_mm512_shuffle_f32x4(u2, u3, _MM_SHUFFLE(1, 0, 1, 0)),
                               _mm512_shuffle_f32x4(u2, u3, _MM_SHUFFLE(3, 2, 3, 2)));
    return _mm512_add_ps(_mm512_shuffle_f32x4(p01, p23, _MM_SHUFFLE(2, 0, 2, 0)),
                         _mm512_shuffle_f32x4(p01, p23, _MM_SHUFFLE(3, 1, 3, 1)));
}

/* Row r of a 4-row block that has n rows: rows past the end repeat the last. */
static inline size_t row_in(size_t r, size_t n) {
    return r < n ? r : n - 1;
}

/* S[i][j] = (add ? S[i][j] : 0) + sum over t < k of A[i][t] B[j][t] for A (m x k), B (n x k), rows ld apart, S
 * rows n apart: 4 rows of A against 4 of B, 16 values of t at a time in 16 accumulators (the last step masked),
 * then summed across lanes; rows past m or n repeat the last row and their sums are dropped. Every operand is read
 * where it lies: no packing, no transposes. */
T512 static void abt512(size_t m, size_t n, size_t k, const float *A, const float *B, size_t ld, int add, float *S) {
    size_t kf = k / 16 * 16;
    __mmask16 km = (__mmask16)((1u << (k - kf)) - 1);
    for (size_t i0 = 0; i0 < m; i0 += 4)
        for (size_t j0 = 0; j0 < n; j0 += 4) {
            size_t mi = m - i0 < 4 ? m - i0 : 4, nj = n - j0 < 4 ? n - j0 : 4;
            const float *a0 = A + i0 * ld, *a1 = A + (i0 + row_in(1, mi)) * ld, *a2 = A + (i0 + row_in(2, mi)) * ld,
                        *a3 = A + (i0 + row_in(3, mi)) * ld;
            const float *b0 = B + j0 * ld, *b1 = B + (j0 + row_in(1, nj)) * ld, *b2 = B + (j0 + row_in(2, nj)) * ld,
                        *b3 = B + (j0 + row_in(3, nj)) * ld;
            __m512 c00 = _mm512_setzero_ps(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00,
                   c13 = c00, c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
            for (size_t t = 0; t <= kf; t += 16) { /* t == kf: the masked tail (no lanes when k is whole) */
                __mmask16 mk = t < kf ? (__mmask16)0xffff : km;
                __m512 x0 = onx_load16m(mk, a0 + t), x1 = onx_load16m(mk, a1 + t), x2 = onx_load16m(mk, a2 + t),
                       x3 = onx_load16m(mk, a3 + t);
                __m512 y0 = onx_load16m(mk, b0 + t), y1 = onx_load16m(mk, b1 + t), y2 = onx_load16m(mk, b2 + t),
                       y3 = onx_load16m(mk, b3 + t);
                c00 = _mm512_fmadd_ps(x0, y0, c00), c01 = _mm512_fmadd_ps(x0, y1, c01);
                c02 = _mm512_fmadd_ps(x0, y2, c02), c03 = _mm512_fmadd_ps(x0, y3, c03);
                c10 = _mm512_fmadd_ps(x1, y0, c10), c11 = _mm512_fmadd_ps(x1, y1, c11);
                c12 = _mm512_fmadd_ps(x1, y2, c12), c13 = _mm512_fmadd_ps(x1, y3, c13);
                c20 = _mm512_fmadd_ps(x2, y0, c20), c21 = _mm512_fmadd_ps(x2, y1, c21);
                c22 = _mm512_fmadd_ps(x2, y2, c22), c23 = _mm512_fmadd_ps(x2, y3, c23);
                c30 = _mm512_fmadd_ps(x3, y0, c30), c31 = _mm512_fmadd_ps(x3, y1, c31);
                c32 = _mm512_fmadd_ps(x3, y2, c32), c33 = _mm512_fmadd_ps(x3, y3, c33);
            }
            float out[16]; /* lane 4r + c: S[i0 + r][j0 + c] */
            _mm512_storeu_ps(
                out, hsum_lanes(hsum4(hsum2(c00, c01), hsum2(c02, c03)), hsum4(hsum2(c10, c11), hsum2(c12, c13)),
                                hsum4(hsum2(c20, c21), hsum2(c22, c23)), hsum4(hsum2(c30, c31), hsum2(c32, c33))));
            for (size_t r = 0; r < mi; r++)
                for (size_t c = 0; c < nj; c++) {
                    float *d = S + (i0 + r) * n + j0 + c;
                    *d = add ? *d + out[4 * r + c] : out[4 * r + c];
                }
        }
}
#endif

void nn_abt(size_t m, size_t n, size_t k, const float *A, const float *B, size_t ld, int add, float *S) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (onx_sgemm_best() == ONX_K_AVX512) {
        abt512(m, n, k, A, B, ld, add, S);
        return;
    }
#endif
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)m, (int)n, (int)k, 1.0f, A, (int)ld, B, (int)ld,
                add ? 1.0f : 0.0f, S, (int)n);
}
