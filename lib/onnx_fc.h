/* onnx_fc.h - a fully connected layer at small batches (Gemm with a transposed constant B). */
#ifndef ONNX_FC_H
#define ONNX_FC_H

#include <stdint.h>

/* Batches of at most this many rows take onx_fc; larger ones OpenBLAS's SGEMM. */
#define ONX_FC_MAX_ROWS 16

/* 1 when onx_fc runs m rows on this CPU (AVX-512F, 1 <= m <= ONX_FC_MAX_ROWS). */
int onx_fc_ok(int64_t m);
/* y[r][j] += alpha * sum_kk x[r][kk] * w[j][kk] for r < m, j < n: x m x k, w n x k, y m x n,
 * all row-major and dense. */
void onx_fc(const float *x, int64_t m, int64_t k, const float *w, int64_t n, float alpha, float *y);

#endif
