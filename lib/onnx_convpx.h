/* onnx_convpx.h - convolutions with small outputs by output channels: weights as vectors, pixels broadcast. */
#ifndef ONNX_CONVPX_H
#define ONNX_CONVPX_H

#include <stddef.h>
#include <stdint.h>

#include "onnx_op.h"
#include "onnx_sgemm.h"

/* 1 when a convolution of one group with c input and m output channels over window w runs here with
 * kernel kn: AVX-512, m a multiple of 32, an output of 16 to 1024 pixels at least 4 wide, at least 64
 * products a sum, not a plain 1x1 (those are a GEMM over all samples' pixels already). Such outputs
 * (7x7, 14x14) leave the packed SGEMM's columns a narrow tail (49 = 32 + 17); here every tile is whole. */
int onx_px_ok(onx_kern kn, const onx_win *w, int64_t grp, int64_t c, int64_t m);

/* Floats of the packed weights: m / 32 panels of K x 32 (K = c x kernel height x kernel width). */
size_t onx_px_pack_len(int64_t m, int64_t k);
/* wt (m x K, ONNX's [m][c][kh][kw]) -> out: panel p holds row k's channels 32p..32p+31 together. */
void onx_px_pack(const float *wt, int64_t m, int64_t k, float *out);

/* Floats of work onx_px needs for n samples. */
size_t onx_px_work(const onx_win *w, int64_t c, int64_t n);
/* y (n x m x OH x OW) = act(conv(x, weights) + bias + res), x n x c x H x W, pk from onx_px_pack; bias and
 * res (shaped as y: a residual Add fused into the Conv) may be NULL. */
void onx_px(const onx_win *w, int64_t c, int64_t m, const float *pk, const float *x, int64_t n, const float *bias,
            const float *res, onx_act act, float lo, float hi, float *y, float *work);

#endif
