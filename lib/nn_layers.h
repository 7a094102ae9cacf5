/* nn_layers.h - forward and backward of each trainable layer kind over an NCHW batch; used by nn_net.c. */
#ifndef NN_LAYERS_H
#define NN_LAYERS_H

#include <stddef.h>
#include <stdint.h>

#include "nn_arch.h"
#include "par.h"

/* Conventions: n samples; x is the layer's input (n x L->in values), y its
 * output (n x L->outs values); backward takes dy (not modified) and writes
 * dx (NULL: not wanted) and the layer's parameter gradients, overwriting
 * them. Buffers never alias unless a function says so. p (may be NULL)
 * runs the loops that are not GEMMs on its threads. */

static inline size_t nn_size(nn_shape s) {
    return (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

/* Convolution as one im2col and GEMM per sample (per 4 samples for small
 * output planes), spread over p's threads. work holds nn_conv_work floats
 * per thread of p (the im2col columns, their gradient, output gradients).
 * Backward sums the weight gradients of each
 * chunk of NN_CONV_CHUNK samples into its own partial in part
 * (nn_conv_part floats) and adds the partials in chunk order: the result
 * does not depend on the thread count. pstat (may be NULL) receives each
 * output plane's nn_plane_stats, for a batch norm after. */
#define NN_CONV_CHUNK 8
size_t nn_conv_work(const nn_layer *L);
size_t nn_conv_part(const nn_layer *L, size_t n);
void nn_conv_forward(const nn_layer *L, const float *w, const float *b, const float *x, size_t n, float *y,
                     double *pstat, float *work, par *p);
/* dy NULL: dysrc->fn(dysrc->ctx, s, out) writes sample s's output gradient into out (one sample's outputs), in
 * the thread's scratch. */
typedef struct {
    void (*fn)(const void *ctx, size_t s, float *out);
    const void *ctx;
} nn_dy_src;
void nn_conv_backward(const nn_layer *L, const float *w, const float *x, const float *dy, const nn_dy_src *dysrc,
                      size_t n, float *dw, float *db, float *dx, float *work, float *part, par *p);

/* nn_wino.c: 3x3 stride-1 convolutions (groups 1, pad 0 to 2, 8+ channels in and out, 32+ 2x2 output tiles, an
 * AVX2 CPU) by Winograd F(2x2, 3x3), for nn_conv_forward and nn_conv_backward, which call them when nn_wino_ok:
 * the same contract (backward fills part, the caller reduces it), -1 when out of memory (the caller then runs its
 * im2col GEMMs). work: nn_wino_work floats per thread. */
int nn_wino_ok(const nn_layer *L);
size_t nn_wino_work(const nn_layer *L);
int nn_wino_forward(const nn_layer *L, const float *w, const float *b, const float *x, size_t n, float *y,
                    double *pstat, float *work, par *p);
int nn_wino_backward(const nn_layer *L, const float *w, const float *x, const float *dy, const nn_dy_src *dysrc,
                     size_t n, float *dx, float *work, float *part, par *p);

/* Fully connected y = x W^T + b over flat rows. nn_dense is the MLP's
 * forward kernel (lib/mlp.c; b may be NULL, sgemv for one row). */
void nn_dense(const float *w, const float *b, int in, int out, const float *x, size_t n, float *y);
/* The trainer's forward and backward split their GEMMs in column blocks over
 * p's threads (blocks fixed by the shape: the result is the same on any);
 * p NULL: one GEMM each, OpenBLAS's threads on it. */
void nn_fc_forward(const nn_layer *L, const float *w, const float *b, const float *x, size_t n, float *y, par *p);
void nn_fc_backward(const nn_layer *L, const float *w, const float *x, const float *dy, size_t n, float *dw, float *db,
                    float *dx, par *p);

/* Batch normalisation per channel (over n, h, w). Training: batch mean and
 * biased variance, running mean/var in state updated (unbiased variance,
 * momentum 0.1); eval: the running statistics. stat (2c: the mean and
 * 1/sqrt(var+eps) used) is kept for backward, which recomputes x-hat from
 * the input x. pstat (may be NULL: computed here) holds each input plane's
 * mean and sum of squared deviations (nn_plane_stats, sample-major), as the
 * convolution before can give them. y NULL: stat only. TR_EINVAL when
 * training on one value per channel. */
int nn_bn_forward(const nn_layer *L, const float *gamma, const float *beta, float *state, const float *x, size_t n,
                  int train, const double *pstat, float *y, float *stat, par *p);
void nn_bn_backward(const nn_layer *L, const float *gamma, const float *x, const float *stat, int train,
                    const float *dy, size_t n, float *dgamma, float *dbeta, float *dx, par *p);
/* out[0] = the mean of x's hw values, out[1] = the sum of their squared deviations from it. */
void nn_plane_stats(const float *x, size_t hw, double *out);

/* Batch norm (its stat from nn_bn_forward with y NULL), relu and 2x2 max
 * pool (stride 2, no padding) in one pass: y, arg and xarg (may be NULL)
 * as the pool's output, argmax and the batch norm input there, the two
 * layers between never stored. Planes of at most NN_FUSE_MAX_HW values.
 * The backward reads those (a positive output is where the relu passed the
 * gradient) and gives the batch norm's dgamma and dbeta, and coef (3c
 * floats) from which nn_bn_relu_max2_dx gives one sample's dL/dx, as the
 * three backwards would (x, y, arg, xarg, dy, dx: that sample's). */
#define NN_FUSE_MAX_HW 4096
void nn_bn_relu_max2_forward(const nn_layer *L, const float *gamma, const float *beta, const float *x, size_t n,
                             const float *stat, float *y, int32_t *arg, float *xarg, par *p);
void nn_bn_relu_max2_backward(const nn_layer *L, const float *gamma, const float *stat, int train, const float *y,
                              const float *xarg, const float *dy, size_t n, float *dgamma, float *dbeta, float *coef,
                              par *p);
void nn_bn_relu_max2_dx(const nn_layer *L, const float *coef, const float *x, const float *y, const int32_t *arg,
                        const float *xarg, const float *dy, float *dx);

/* Batch norm (its stat as above) and relu in one pass, y the relu's output; the backward as above, the batch
 * norm's input x whole (nn_bn_relu_dx: one sample's). */
void nn_bn_relu_forward(const nn_layer *L, const float *gamma, const float *beta, const float *x, size_t n,
                        const float *stat, float *y, par *p);
void nn_bn_relu_backward(const nn_layer *L, const float *gamma, const float *stat, int train, const float *x,
                         const float *y, const float *dy, size_t n, float *dgamma, float *dbeta, float *coef, par *p);
void nn_bn_relu_dx(const nn_layer *L, const float *coef, const float *x, const float *y, const float *dy, float *dx);

/* Max, average (count_include_pad) and global average pooling. arg (max
 * only) keeps each output's input index within its sample plane. */
void nn_pool_forward(const nn_layer *L, const float *x, size_t n, float *y, int32_t *arg);
void nn_pool_backward(const nn_layer *L, const int32_t *arg, const float *dy, size_t n, float *dx);
/* One output row of a 2x2 stride-2 max pool from input rows r0 and r1 (W wide): y and arg (may be NULL; indices
 * base + the offset in r0, r1 counted as one plane W wide) for OW outputs. */
void nn_max2_row(const float *r0, const float *r1, int W, int OW, int base, float *y, int32_t *arg);

/* Elementwise activations (NN_RELU, NN_GELU, NN_TANH, NN_SIGMOID) over cnt
 * values; backward reads the input x and the output y. */
void nn_act_forward(nn_kind k, const float *x, size_t cnt, float *y);
void nn_act_backward(nn_kind k, const float *x, const float *y, const float *dy, size_t cnt, float *dx);
/* Inverted dropout: mask[i] = 0 with probability p, else 1/(1-p), drawn from rng. */
void nn_dropout_forward(float p, const float *x, size_t cnt, uint64_t rng[4], float *mask, float *y);
void nn_dropout_backward(const float *mask, const float *dy, size_t cnt, float *dx);

#endif
