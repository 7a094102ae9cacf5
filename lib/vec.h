/* vec.h - small vectorisable float loops shared by the MLP and the ONNX kernels. */
#ifndef VEC_H
#define VEC_H

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

#endif
