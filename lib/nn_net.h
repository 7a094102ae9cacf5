/* nn_net.h - runs an nn_arch over an NCHW batch: a forward that keeps what backward needs, and the backward. */
#ifndef NN_NET_H
#define NN_NET_H

#include <stddef.h>
#include <stdint.h>

#include "nn_arch.h"
#include "par.h"
#include "tr_err.h"

/* A runner's buffers for one architecture, grown to the largest batch seen
 * and reused (no allocation per step once warm). Zero-initialise with
 * nn_net_init; free with nn_net_free. One thread at a time. */
typedef struct {
    nn_arch a;
    size_t cap;                    /* rows the buffers hold */
    size_t n;                      /* rows of the last forward */
    int train;                     /* its mode */
    const float *x;                /* its input (borrowed) */
    const float *y[NN_MAX_LAYERS]; /* each layer's output: own[i] or, for flatten, its input (none inside a chain) */
    float *own[NN_MAX_LAYERS];     /* layer output buffers */
    float *aux[NN_MAX_LAYERS];     /* dropout: mask */
    float *stat[NN_MAX_LAYERS];    /* bn: batch mean and 1/std used; a chain's backward coefficients */
    int32_t *arg[NN_MAX_LAYERS];   /* maxpool: argmax per output */
    double *pstat[NN_MAX_LAYERS];  /* conv before a batch norm: its output planes' statistics (training) */
    float *xarg[NN_MAX_LAYERS];    /* the pool of a chain: its batch norm's input at each argmax */
    char fused[NN_MAX_LAYERS];     /* the last layer of a chain run as one: its length, 3 for batch norm, relu,
                                      2x2 max pool, 2 for batch norm, relu */
    float *work;                   /* conv: per-thread im2col scratch */
    float *part;                   /* conv: per-chunk partial gradients */
    float *g[2];                   /* backward's gradient ping-pong */
    par *par;                      /* threads (borrowed; NULL: the caller) */
    int blas_threads;              /* 1: GEMMs whole on the caller, threaded by OpenBLAS (an MLP's few large ones) */
} nn_net;

int nn_net_init(nn_net *net, const nn_arch *a, tr_err *err);
void nn_net_free(nn_net *net); /* NULL is a no-op */
/* Run the layers on p's threads (borrowed, may be NULL; the GEMMs too when
 * OpenBLAS runs one thread, openblas_set_num_threads(1)); results do not
 * depend on it. */
void nn_net_set_par(nn_net *net, par *p);
/* Grow the buffers for n rows now (forward does it too). TR_ENOMEM / TR_ELIMIT. */
int nn_net_reserve(nn_net *net, size_t n, tr_err *err);

/* Forward n samples x (n x input values, NCHW per sample) with params
 * (a.n_params) and state (a.n_state BN running statistics). train: batch
 * statistics (state updated as torch does) and dropout drawn from rng;
 * else running statistics and no dropout (state untouched, rng unused,
 * may be NULL). *y receives the output rows (n x out dim), owned by net
 * and valid until the next forward. x must stay valid for backward. */
int nn_net_forward(nn_net *net, const float *params, float *state, const float *x, size_t n, int train, uint64_t rng[4],
                   const float **y, tr_err *err);
/* Backward of the last forward: dy (n x out dim) is dL/dy; writes dL/dparams
 * into grads (a.n_params, overwritten) and dL/dx into dx (NULL: skipped). */
int nn_net_backward(nn_net *net, const float *params, const float *dy, float *grads, float *dx, tr_err *err);
/* Inference-mode forward of any number of rows into y (n x out dim), in
 * blocks, without keeping anything for backward. */
int nn_net_infer(nn_net *net, const float *params, float *state, const float *x, size_t n, float *y, tr_err *err);

#endif
