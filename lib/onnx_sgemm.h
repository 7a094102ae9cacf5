/* onnx_sgemm.h - the convolutions' own SGEMM: weights packed once at load, bias and activation fused. */
#ifndef ONNX_SGEMM_H
#define ONNX_SGEMM_H

#include <stddef.h>
#include <stdint.h>

#include "onnx_op.h"

#define ONX_KC 256 /* depth of one packed block of B */
#define ONX_NC 480 /* columns of one packed block of B (a multiple of every kernel's tile width) */

/* The register-tile kernels: 6x16 with AVX2+FMA, 8x32 with AVX-512F. */
typedef enum { ONX_K_NONE, ONX_K_AVX2, ONX_K_AVX512 } onx_kern;

/* The best kernel this CPU runs; ONX_K_NONE (callers use OpenBLAS) off x86-64 or without AVX2. */
onx_kern onx_sgemm_best(void);
/* Rows of A per tile of kernel kn. */
int onx_sgemm_mr(onx_kern kn);

/* Floats of a packed m x k matrix A for kernel kn: ceil(m / mr) panels of k x mr, zero-padded. */
size_t onx_pack_a_len(onx_kern kn, int64_t m, int64_t k);
/* Pack row-major a (m x k, lda k) into out (onx_pack_a_len floats). */
void onx_pack_a(onx_kern kn, const float *a, int64_t m, int64_t k, float *out);

/* One row of a packed block of B: row rr of panels kc x nr at bp. */
typedef struct {
    float *bp;
    int64_t kc, nr, rr;
} onx_bdst;
/* B, one row at a time: fill writes row r, columns [n0, n1), to d with onx_bput. */
typedef void (*onx_brow)(const void *ctx, int64_t r, int64_t n0, int64_t n1, const onx_bdst *d);
/* Columns [j, j + cnt) (counted from n0) of d's row = src[0], src[stride], ...; zeros if src is NULL. */
void onx_bput(const onx_bdst *d, int64_t j, const float *src, int64_t stride, int64_t cnt);

/* Where C lives: column n of row i is at c + (n / seg) * ld_seg + i * ldc + n % seg, so a GEMM
 * whose columns are several samples' pixels writes each sample's NCHW block in place. */
typedef struct {
    float *c;
    int64_t ldc, seg, ld_seg;
} onx_cmap;

/* C = act(A * B + bias) for A (m x k) packed for kn, B from fill (k x n); bias (m floats) may
 * be NULL. work: onx_sgemm_work() floats. */
void onx_sgemm(onx_kern kn, int64_t m, int64_t n, int64_t k, const float *ap, onx_brow fill, const void *ctx,
               const onx_cmap *cm, const float *bias, onx_act act, float lo, float hi, float *work);
size_t onx_sgemm_work(void);

#endif
