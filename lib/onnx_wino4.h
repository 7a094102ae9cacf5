/* onnx_wino4.h - 3x3 stride-1 convolutions by Winograd F(4x4, 3x3) on the packed-weight SGEMM. */
#ifndef ONNX_WINO4_H
#define ONNX_WINO4_H

#include <stddef.h>
#include <stdint.h>

#include "onnx_op.h"
#include "onnx_sgemm.h"
#include "onnx_wino.h"

/* The samples a run needs for window w with c input and m output channels in one group to run here, 0 for never. It
 * takes a 3x3 kernel, stride and dilation 1, at least 64 channels in and out (32 with AVX2), on a CPU with AVX-512F
 * (16 tiles a vector) or AVX2 and FMA (8). 1 for an output of at least 32 4x4 tiles (28x28 and up); with AVX2 and
 * 128+ channels in and out, enough samples for 16 tiles a run (1 for 14x14, 4 for 7x7). Other outputs and smaller
 * runs stay with F(2x2, 3x3) (onnx_wino.c), whose weights are 16/36 the size. onx_wino4_ok: 1 when that is 1. */
int64_t onx_wino4_min_n(const onx_win *w, int64_t grp, int64_t c, int64_t m);
int onx_wino4_ok(const onx_win *w, int64_t grp, int64_t c, int64_t m);

/* Floats of the transformed weights for kernel kn: 36 packed m x c matrices. */
size_t onx_wino4_pack_len(onx_kern kn, int64_t m, int64_t c);
/* wt (m x c x 3 x 3) -> out: U = G g G^T per (m, c) in double, each of its 36 entries packed as A; tmp: m * c
 * floats of scratch. */
void onx_wino4_pack(onx_kern kn, const float *wt, int64_t m, int64_t c, float *tmp, float *out);

/* Floats of work onx_wino4 needs for up to n samples (it never shrinks as n grows). */
size_t onx_wino4_work(const onx_win *w, int64_t c, int64_t m, int64_t n);
/* y (n x m x OH x OW) = act(conv(x, weights) + bias + res), x n x c x H x W, pk from onx_wino4_pack; bias and
 * res (shaped as y) may be NULL. */
void onx_wino4(onx_kern kn, const onx_win *w, int64_t c, int64_t m, const float *pk, const float *x, int64_t n,
               const float *bias, const float *res, onx_act act, float lo, float hi, float *y, float *work);

/* The entry points above as a variant (onnx_wino.h). */
extern const onx_wino_impl onx_wino_f4;

#endif
