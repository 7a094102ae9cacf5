/* onnx_simd.h - register helpers the AVX-512 kernels share (onnx_sgemm.c, onnx_dw.c). x86-64 only: include it
 * where <immintrin.h> is included. */
#ifndef ONNX_SIMD_H
#define ONNX_SIMD_H

#include <immintrin.h>

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

#endif
