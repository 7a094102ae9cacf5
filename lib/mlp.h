/* mlp.h - the MLP network behind the model interface: layers, activations, safetensors read and write. */
#ifndef MLP_H
#define MLP_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "st.h"

#define MDL_MAX_LAYERS 64
#define MDL_MAX_DIM 65536
#define MDL_MAX_PARAMS (512u * 1024u * 1024u) /* floats */

typedef enum { MDL_ACT_RELU, MDL_ACT_GELU, MDL_ACT_TANH, MDL_ACT_SIGMOID, MDL_ACT_IDENTITY, MDL_ACT_COUNT } mdl_act;

/* "relu" ... -> 0 and *out; unknown -> -1. GELU is the exact erf form
 * (torch.nn.GELU default). */
int mdl_act_parse(const char *s, mdl_act *out);
const char *mdl_act_name(mdl_act a);
/* Apply the activation in place to n floats (vectorisable, branch-free). */
void mdl_act_apply(mdl_act a, float *x, size_t n);

typedef struct {
    int in, out;
    float *w; /* out x in, row-major (PyTorch nn.Linear layout: y = W x + b) */
    float *b; /* out, or NULL */
} mdl_layer;

/* The network of a safetensors model (format MDL_FMT_SAFETENSORS). */
typedef struct {
    int n_layers;
    mdl_layer layers[MDL_MAX_LAYERS];
    mdl_act act;    /* between consecutive layers, none after the last */
    float *in_mean; /* [input_dim] or NULL: x' = (x - mean) * scale */
    float *in_scale;
} mlp_net;

/* The MLP of m, or NULL when m is another format. Training, saving and
 * evaluation against the untrained network need the layers themselves. */
mlp_net *mdl_mlp(const mdl_model *m);

/* The raw network (no image preprocessing, no L2) on n rows into y, through
 * ws; what mdl_forward runs for an MLP. TR_ENOMEM / TR_ELIMIT. */
int mlp_net_forward(const mlp_net *net, const float *x, size_t n, float *y, mdl_ws *ws, tr_err *err);
/* The MLP's input preprocessing x' = (x - input.mean) * input.scale on n
 * rows into out; a plain copy when m has no such tensors or is not an MLP. */
void mlp_input_preprocess(const mdl_model *m, const float *x, size_t n, float *out);

/* Build a model with zeroed weights for dims[0] -> ... -> dims[n_layers];
 * every layer has a bias. Metadata defaults: sqeuclidean, triplet, 0.2. */
int mdl_new(const int *dims, int n_layers, mdl_act act, int normalize, mdl_model **out, tr_err *err);

/* Build a model from an opened, header-validated safetensors file (rules in
 * proto/model-format.md); every refusal names the tensor or metadata key. */
int mlp_from_st(const st_file *f, mdl_model **out, tr_err *err);

/* Save an MLP model as F32 safetensors with "{2i}.weight"/"{2i}.bias" names
 * (the indices an nn.Sequential of Linear+activation pairs has) and all
 * metadata; extra_meta adds (or overrides) n_extra key/value pairs.
 * TR_EINVAL when m is not an MLP. */
int mdl_save(const mdl_model *m, const char *path, const char *const *extra_meta, size_t n_extra, tr_err *err);

#endif
