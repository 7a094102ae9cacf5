/* vec.h - small vectorisable float loops shared by the MLP and the ONNX kernels. */
#ifndef VEC_H
#define VEC_H

#include <math.h>
#include <stddef.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* x = max(x, 0) in place over n floats. Blocks of 16 with a constant inner
 * trip count: gcc -O2 turns them into vector compare-and-mask, while a plain
 * loop stays scalar and branchy (7 ns per element on random signs). In place
 * on purpose: the same loop from one array to another is left scalar at -O2
 * unless the pointers are restrict (onnx_k_elem.c's Relu has that copy). */
static inline void vec_relu(float *x, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (size_t k = 0; k < 16; k++) {
            float v = x[i + k];
            x[i + k] = v > 0.0f ? v : 0.0f;
        }
    for (; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* GELU (exact erf form, torch.nn.GELU's default), tanh and the logistic
 * sigmoid in place: the one spelling of each that the MLP and the trainer's
 * layers share, so a trained network embeds as its exported file does. */
static inline void vec_gelu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
}
static inline void vec_tanh(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
}
static inline void vec_sigmoid(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
}

/* The loops below follow the same rule: an inner loop of 16 with a constant
 * trip count, which gcc -O2 vectorises (its cheap cost model leaves a plain
 * loop with a remainder scalar), then the remainder. */
#define VEC_BLOCK 16

/* y = a * x + b over n floats (distinct arrays: restrict is what lets gcc -O2 vectorise it). */
static inline void vec_affine(float *restrict y, const float *restrict x, size_t n, float a, float b) {
    size_t i = 0;
    for (; i + VEC_BLOCK <= n; i += VEC_BLOCK)
        for (size_t k = 0; k < VEC_BLOCK; k++) y[i + k] = a * x[i + k] + b;
    for (; i < n; i++) y[i] = a * x[i] + b;
}

/* y += x over n floats. */
static inline void vec_add(float *restrict y, const float *restrict x, size_t n) {
    size_t i = 0;
    for (; i + VEC_BLOCK <= n; i += VEC_BLOCK)
        for (size_t k = 0; k < VEC_BLOCK; k++) y[i + k] += x[i + k];
    for (; i < n; i++) y[i] += x[i];
}

/* z = a * x + b * y + c over n floats. */
static inline void vec_axpbyc(float *restrict z, const float *restrict x, const float *restrict y, size_t n, float a,
                              float b, float c) {
    size_t i = 0;
    for (; i + VEC_BLOCK <= n; i += VEC_BLOCK)
        for (size_t k = 0; k < VEC_BLOCK; k++) z[i + k] = a * x[i + k] + b * y[i + k] + c;
    for (; i < n; i++) z[i] = a * x[i] + b * y[i] + c;
}

/* acc[k] += x[i + k] - m (square: its square) over the whole blocks of x; returns the floats done. In registers:
 * gcc -O2 keeps a float[VEC_BLOCK] accumulator in memory, a store and reload per block. */
static inline size_t vec_lane_sums(float acc[VEC_BLOCK], const float *x, size_t n, float m, int square) {
    size_t i = 0;
#if defined(__SSE2__) && VEC_BLOCK == 16
    /* four named vectors: an array of them stays in memory too */
    __m128 a0 = _mm_loadu_ps(acc), a1 = _mm_loadu_ps(acc + 4), a2 = _mm_loadu_ps(acc + 8), a3 = _mm_loadu_ps(acc + 12),
           vm = _mm_set1_ps(m);
    for (; i + VEC_BLOCK <= n; i += VEC_BLOCK) {
        __m128 d0 = _mm_sub_ps(_mm_loadu_ps(x + i), vm), d1 = _mm_sub_ps(_mm_loadu_ps(x + i + 4), vm),
               d2 = _mm_sub_ps(_mm_loadu_ps(x + i + 8), vm), d3 = _mm_sub_ps(_mm_loadu_ps(x + i + 12), vm);
        a0 = _mm_add_ps(a0, square ? _mm_mul_ps(d0, d0) : d0);
        a1 = _mm_add_ps(a1, square ? _mm_mul_ps(d1, d1) : d1);
        a2 = _mm_add_ps(a2, square ? _mm_mul_ps(d2, d2) : d2);
        a3 = _mm_add_ps(a3, square ? _mm_mul_ps(d3, d3) : d3);
    }
    _mm_storeu_ps(acc, a0);
    _mm_storeu_ps(acc + 4, a1);
    _mm_storeu_ps(acc + 8, a2);
    _mm_storeu_ps(acc + 12, a3);
#else
    for (; i + VEC_BLOCK <= n; i += VEC_BLOCK)
        for (size_t k = 0; k < VEC_BLOCK; k++) acc[k] += square ? (x[i + k] - m) * (x[i + k] - m) : x[i + k] - m;
#endif
    return i;
}

/* The sum of n floats in VEC_BLOCK float lanes, gathered in double. */
static inline double vec_sum(const float *x, size_t n) {
    float acc[VEC_BLOCK] = {0};
    size_t i = vec_lane_sums(acc, x, n, 0.0f, 0);
    double s = 0;
    for (size_t k = 0; k < VEC_BLOCK; k++) s += acc[k];
    for (; i < n; i++) s += x[i];
    return s;
}

#endif
