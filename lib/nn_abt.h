/* nn_abt.h - the product of a weight gradient, S = A B^T, with A and B read where they lie. */
#ifndef NN_ABT_H
#define NN_ABT_H

#include <stddef.h>

/* S = (add ? S : 0) + A B^T for A (m x k) and B (n x k), rows ld floats apart, S (m x n) with rows n apart: on
 * AVX-512, 4 rows of A against 4 rows of B in dot products of 16 lanes (no packing, no transposes: a weight
 * gradient whose B is a handful of rows, or whose k is long, pays no copy); elsewhere OpenBLAS's SGEMM. The sums'
 * order depends on k only, never on the thread that runs it. */
void nn_abt(size_t m, size_t n, size_t k, const float *A, const float *B, size_t ld, int add, float *S);

#endif
