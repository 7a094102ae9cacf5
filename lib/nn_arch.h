/* nn_arch.h - a trainable layer-sequence architecture (an MLP or a CNN): the
 * layer list parsed from `tripletctl train --arch`, each layer's shapes and
 * where its parameters live in one flat array.
 *
 * Parameter layout (PyTorch's, so state_dicts map one to one):
 *   NN_CONV  weight [out, in_c / groups, k, k], then bias [out]
 *   NN_FC    weight [out, in] (row-major, y = W x + b), then bias [out]
 *   NN_BN    weight (gamma) [c], then bias (beta) [c]; running mean [c] and
 *            running variance [c] live in the separate state array
 *            (eps 1e-5, momentum 0.1, biased batch variance for the
 *            normalisation and unbiased for the running update, as
 *            torch.nn.BatchNorm2d)
 * Other layers have no parameters. A flat vector input is the shape
 * c = dim, h = w = 1. */
#ifndef NN_ARCH_H
#define NN_ARCH_H

#include <stddef.h>

#include "tr_err.h"

#define NN_MAX_LAYERS 64

typedef enum {
    NN_CONV,    /* "conv<out>k<k>[s<stride>][p<pad>][g<groups>]" e.g. conv32k3p1 */
    NN_BN,      /* "bn": BatchNorm2d over channels (BatchNorm1d after flatten/fc) */
    NN_RELU,    /* "relu" */
    NN_GELU,    /* "gelu" (exact erf form) */
    NN_TANH,    /* "tanh" */
    NN_SIGMOID, /* "sigmoid" */
    NN_MAXPOOL, /* "maxpool<k>[s<stride>][p<pad>]", stride defaults to k */
    NN_AVGPOOL, /* "avgpool<k>[s<stride>][p<pad>]" (count_include_pad) */
    NN_GAP,     /* "gap": global average pooling to c x 1 x 1 */
    NN_DROPOUT, /* "dropout<p>" e.g. dropout0.25; identity in the written model */
    NN_FLATTEN, /* "flatten": c x h x w -> (c*h*w) x 1 x 1 */
    NN_FC,      /* "fc<out>": Linear over a flat input */
    NN_KIND_COUNT
} nn_kind;

typedef struct {
    int c, h, w;
} nn_shape;

typedef struct {
    nn_kind kind;
    int out;                    /* conv: output channels; fc: output features */
    int k, stride, pad, groups; /* conv and pools */
    float p;                    /* dropout probability */
    nn_shape in, outs;          /* per-sample shapes */
    size_t w_off, n_w;          /* weight (conv, fc) or gamma (bn) in the parameters */
    size_t b_off, n_b;          /* bias (conv, fc) or beta (bn) */
    size_t s_off, n_s;          /* bn: running mean then running variance in the state */
} nn_layer;

typedef struct {
    nn_shape input;
    int n;
    nn_layer l[NN_MAX_LAYERS];
    size_t n_params, n_state;
} nn_arch;

/* Parse a comma-separated layer list for an input shape, filling every
 * layer's shapes and offsets. The MLP form "784-256-128" (widths joined by
 * '-', input first) is accepted too and means fc256,relu,fc128 on a flat
 * input. TR_EINVAL naming the layer (index and text) and the problem, e.g.
 * a kernel larger than its padded input or groups not dividing channels. */
int nn_arch_parse(const char *s, nn_shape input, nn_arch *a, tr_err *err);
/* The layer list back in the --arch syntax. */
void nn_arch_format(const nn_arch *a, char *buf, size_t len);
/* Output features per sample (c*h*w of the last layer's output). */
size_t nn_arch_out_dim(const nn_arch *a);
/* The syntax name of a kind ("conv", "bn", ..., "fc"). */
const char *nn_kind_name(nn_kind k);
/* 1 when a is an MLP a safetensors model can hold: a flat input and
 * fc(,act,fc)* with one activation kind, stored in *act (NN_KIND_COUNT
 * when there is a single fc). */
int nn_arch_is_mlp(const nn_arch *a, nn_kind *act);

#endif
