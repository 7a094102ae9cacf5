/* onnx_fc.h - a fully connected layer at small batches (Gemm with a transposed constant B). */
#ifndef ONNX_FC_H
#define ONNX_FC_H

#include <stdint.h>

/* Batches of at most this many rows take onx_fc (ONX_FC_MAX_ROWS_AVX2 with AVX2 alone); larger ones OpenBLAS's
 * SGEMM. */
#define ONX_FC_MAX_ROWS 16
#define ONX_FC_MAX_ROWS_AVX2 8

/* 1 when onx_fc runs m rows on this CPU: AVX-512F and 1 <= m <= ONX_FC_MAX_ROWS, or AVX2 and FMA and
 * 1 <= m <= ONX_FC_MAX_ROWS_AVX2. */
int onx_fc_ok(int64_t m);
/* The fewest rows, above one, from which onx_fc beats OpenBLAS's SGEMM here (one row: its GEMV, as fast). */
int64_t onx_fc_min_rows(void);
/* y[r][j] += alpha * sum_kk x[r][kk] * w[j][kk] for r < m, j < n: x m x k, w n x k, y m x n,
 * all row-major and dense. */
void onx_fc(const float *x, int64_t m, int64_t k, const float *w, int64_t n, float alpha, float *y);

#endif
