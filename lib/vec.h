/* vec.h - small vectorisable float loops shared by the MLP and the ONNX kernels. */
#ifndef VEC_H
#define VEC_H

#include <math.h>
#include <stddef.h>

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

/* The sum of n floats in VEC_BLOCK float lanes, gathered in double. */
static inline double vec_sum(const float *x, size_t n) {
    float acc[VEC_BLOCK] = {0};
    size_t i = 0;
    for (; i + VEC_BLOCK <= n; i += VEC_BLOCK)
        for (size_t k = 0; k < VEC_BLOCK; k++) acc[k] += x[i + k];
    double s = 0;
    for (size_t k = 0; k < VEC_BLOCK; k++) s += acc[k];
    for (; i < n; i++) s += x[i];
    return s;
}

#endif
