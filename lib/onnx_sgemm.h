/* onnx_sgemm.h - the convolutions' own SGEMM: weights packed once at load, bias and activation fused. */
#ifndef ONNX_SGEMM_H
#define ONNX_SGEMM_H

#include <stddef.h>
#include <stdint.h>

#include "onnx_op.h"

#define ONX_KC 256      /* depth of one packed block of B */
#define ONX_NC 480      /* columns of one block of B (a multiple of every kernel's tile width) */
#define ONX_MAX_TAPS 49 /* taps of one onx_sgemm (kernel positions of a convolution on its grid) */

/* The register-tile kernels: 6x16 with AVX2+FMA, 8x32 with AVX-512F (and 16 rows x up to 28
 * columns for the narrow last columns of a block: 7x7 or 14x14 outputs, Winograd tile counts). */
typedef enum { ONX_K_NONE, ONX_K_AVX2, ONX_K_AVX512 } onx_kern;

/* The best kernel this CPU runs, at most the cap; ONX_K_NONE (callers use OpenBLAS and plain C)
 * off x86-64 or without AVX2. Every vector path of the graph executor and the trainer chooses by it. */
onx_kern onx_sgemm_best(void);
/* Cap onx_sgemm_best at max (ONX_K_AVX512: no cap), so that tests run the AVX2 and the plain paths on
 * a CPU with AVX-512. Not thread-safe: set it before loading a model, never while one runs. */
void onx_sgemm_cap(onx_kern max);
/* Rows of A per tile of kernel kn. */
int onx_sgemm_mr(onx_kern kn);

/* Floats of a packed m x k matrix A for kernel kn: ceil(m / mr) panels of k x mr, zero-padded. */
size_t onx_pack_a_len(onx_kern kn, int64_t m, int64_t k);
/* Pack row-major a (m x k, lda k) into out (onx_pack_a_len floats). */
void onx_pack_a(onx_kern kn, const float *a, int64_t m, int64_t k, float *out);

/* A block of B: rows [k0, k0 + kc), columns [n0, n0 + nc). Return a pointer to its first element
 * with rows *ldb floats apart: in place when B is stored so (a 1x1 convolution's input), else
 * written into work (at most ONX_KC x ONX_NC floats, rows ONX_NC apart at most). */
typedef const float *(*onx_bblock)(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *work,
                                   int64_t *ldb);
/* B stored row-major with rows ldb floats apart: the onx_bblock that returns its blocks in place. */
typedef struct {
    const float *b;
    int64_t ldb;
} onx_bsrc;
const float *onx_bblock_strided(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *work,
                                int64_t *ldb);
/* Where C lives: column n of row i is at c + (n / seg) * ld_seg + i * ldc + n % seg, so a GEMM
 * whose columns are several samples' pixels writes each sample's NCHW block in place. res (NULL:
 * none), laid out as C: a residual added before the activation, to each block of columns while it
 * is in cache (a fused Add after a pointwise convolution). */
typedef struct {
    float *c;
    int64_t ldc, seg, ld_seg;
    const float *res;
} onx_cmap;

/* C = act(A * B + bias) for A (m x k) packed for kn, B (k x n); bias (m floats) may be NULL.
 * k = ntap * kg: A's columns and B's rows are tap-major, and B's row (t, r) is row r of the
 * block returned for r's depth block shifted by toff[t] floats (toff NULL: one tap, no shift),
 * so a convolution over a padded grid needs no im2col. Column blocks do not straddle C's
 * segments when a segment is ONX_NC columns or more. work: onx_sgemm_work() floats. */
void onx_sgemm(onx_kern kn, int64_t m, int64_t n, int64_t kg, int ntap, const int64_t *toff, const float *ap,
               onx_bblock block, const void *ctx, const onx_cmap *cm, const float *bias, onx_act act, float lo,
               float hi, float *work);
size_t onx_sgemm_work(void);

#endif
