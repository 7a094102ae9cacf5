/* onnx_dw.h - depthwise convolution kernels (one channel: groups == channels). */
#ifndef ONNX_DW_H
#define ONNX_DW_H

#include <stddef.h>
#include <stdint.h>

#include "onnx_op.h"

/* 1 when onx_dw runs window w on this CPU (AVX2+FMA; column dilation 1, column stride 1 or 2,
 * kernel width up to 8); else the caller uses its generic loop. */
int onx_dw_ok(const onx_win *w);
/* Floats of work onx_dw needs for one channel of window w. */
size_t onx_dw_work(const onx_win *w);
/* One channel: y (out[0] x out[1]) = act(conv(x, wk) + bias), x in[0] x in[1], wk k[0] x k[1]. */
void onx_dw(const float *x, const float *wk, float bias, const onx_win *w, float *y, onx_act act, float lo, float hi,
            float *work);

/* 1 when onx_dw16 runs window w on this CPU (AVX-512, or AVX2 with 8 channels a vector; small planes, any
 * stride and dilation). */
int onx_dw16_ok(const onx_win *w);
/* Channels [0, nc / 16 * 16), 16 at a time: channel c's input at x + c * xs and output at
 * y + c * ys, its weights at wk + c * k[0] * k[1], its bias bias[c] (bias may be NULL: 0).
 * work: onx_dw_work floats. */
void onx_dw16(const float *x, int64_t xs, const float *wk, const float *bias, int64_t nc, const onx_win *w, float *y,
              int64_t ys, onx_act act, float lo, float hi, float *work);

/* line[2u] -> even[u], line[2u + 1] -> odd[u] for u < n (splitting a row for stride 2). */
void onx_deinterleave2(const float *line, int64_t n, float *even, float *odd);

#endif
