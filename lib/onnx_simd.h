/* onnx_simd.h - register helpers the vector kernels share (onnx_sgemm.c, onnx_dw.c, onnx_wino.c, onnx_wino4.c).
 * x86-64 only: include it where <immintrin.h> is included. */
#ifndef ONNX_SIMD_H
#define ONNX_SIMD_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* Transpose a 16 x 16 block held as 16 vectors, in place: r[i] lane j <- r[j] lane i. */
static inline __attribute__((target("avx512f"))) void onx_tr16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i]), _mm512_castps_pd(t[i + 2])));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(t[i + 1]), _mm512_castps_pd(t[i + 3])));
    }
    /* r[4a + b] holds rows 4a..4a+3 in 128-bit lane groups; gather lanes across a */
    for (int b = 0; b < 4; b++) {
        __m512 a0 = _mm512_shuffle_f32x4(r[b], r[4 + b], 0x88), a1 = _mm512_shuffle_f32x4(r[b], r[4 + b], 0xdd);
        __m512 a2 = _mm512_shuffle_f32x4(r[8 + b], r[12 + b], 0x88),
               a3 = _mm512_shuffle_f32x4(r[8 + b], r[12 + b], 0xdd);
        t[b] = _mm512_shuffle_f32x4(a0, a2, 0x88);
        t[8 + b] = _mm512_shuffle_f32x4(a0, a2, 0xdd);
        t[4 + b] = _mm512_shuffle_f32x4(a1, a3, 0x88);
        t[12 + b] = _mm512_shuffle_f32x4(a1, a3, 0xdd);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

/* Transpose an 8 x 8 block held as 8 vectors, in place: r[i] lane j <- r[j] lane i. */
static inline __attribute__((target("avx2"))) void onx_tr8(__m256 r[8]) {
    __m256 t[8], s[8];
    for (int i = 0; i < 8; i += 2)
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]), t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    for (int i = 0; i < 8; i += 4) {
        s[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44), s[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        s[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44), s[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    for (int i = 0; i < 4; i++)
        r[i] = _mm256_permute2f128_ps(s[i], s[4 + i], 0x20), r[4 + i] = _mm256_permute2f128_ps(s[i], s[4 + i], 0x31);
}

/* Lanes t with lo <= t < hi of an AVX-512 mask. */
static inline __attribute__((target("avx512f"))) __mmask16 onx_lanes16(int64_t lo, int64_t hi) {
    lo = lo < 0 ? 0 : lo > 16 ? 16 : lo, hi = hi < 0 ? 0 : hi > 16 ? 16 : hi;
    return hi > lo ? (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1)) : 0;
}

/* The lanes of mask mk at p, the rest zero; lanes t with lo <= t < hi at p; the first n lanes at p; and the first
 * n lanes of v stored at p. A whole vector goes through a plain load or store: a masked load that misses the cache
 * costs about twice a plain one on AMD Zen 5 (three arrays streamed from memory: 0.53 against 0.30 ns a float), so
 * only a part vector is masked. */
static inline __attribute__((target("avx512f"))) __m512 onx_load16m(__mmask16 mk, const float *p) {
    return mk == (__mmask16)0xffff ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mk, p);
}
static inline __attribute__((target("avx512f"))) __m512 onx_load16r(const float *p, int64_t lo, int64_t hi) {
    return onx_load16m(onx_lanes16(lo, hi), p);
}
static inline __attribute__((target("avx512f"))) __m512 onx_load16(const float *p, int64_t n) {
    return onx_load16r(p, 0, n);
}
static inline __attribute__((target("avx512f"))) void onx_store16(float *p, int64_t n, __m512 v) {
    if (n >= 16)
        _mm512_storeu_ps(p, v);
    else
        _mm512_mask_storeu_ps(p, onx_lanes16(0, n), v);
}

/* Lanes t with lo <= t < hi of an AVX2 mask. */
static inline __attribute__((target("avx2"))) __m256i onx_lanes8(int64_t lo, int64_t hi) {
    __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    lo = lo < 0 ? 0 : lo > 8 ? 8 : lo, hi = hi < 0 ? 0 : hi > 8 ? 8 : hi;
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_set1_epi32((int)lo), idx),
                               _mm256_cmpgt_epi32(_mm256_set1_epi32((int)hi), idx));
}

/* A row of n tiles 8 at a time from t0; a last chunk of fewer, when the row has 8 or more, starts 8 before the end
 * instead (its overlap recomputes the same values), so only rows of under 8 tiles store part of a vector. */
static inline int64_t onx_chunk8(int64_t n, int64_t t0) {
    return n >= 8 && t0 + 8 > n ? n - 8 : t0;
}

/* Lanes t with lo <= t < hi at p, the rest zero; the first n lanes at p. A whole vector by a plain load: vmaskmovps
 * is slower than a plain load on AMD cores (as a masked AVX-512 load that misses the cache, onx_load16m). */
static inline __attribute__((target("avx2"))) __m256 onx_load8r(const float *p, int64_t lo, int64_t hi) {
    return lo <= 0 && hi >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, onx_lanes8(lo, hi));
}
static inline __attribute__((target("avx2"))) __m256 onx_load8(const float *p, int64_t n) {
    return onx_load8r(p, 0, n);
}

/* The first n lanes of v at p; the rest may be written too when spill (the values there are written again later).
 * A masked store (vmaskmovps) costs a dozen cycles on AMD cores: a part goes through the stack instead. */
static inline __attribute__((target("avx2"))) void onx_store8(float *p, int64_t n, int spill, __m256 v) {
    if (n >= 8 || spill) {
        _mm256_storeu_ps(p, v);
        return;
    }
    float t[8];
    _mm256_storeu_ps(t, v);
    memcpy(p, t, sizeof(float) * (size_t)(n > 0 ? n : 0));
}

#endif
