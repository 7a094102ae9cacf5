/* model.h - MLP embedding models: load, describe, forward, save. */
#ifndef MODEL_H
#define MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "loss.h"
#include "tr_err.h"

#define MDL_MAX_LAYERS 64
#define MDL_MAX_DIM 65536
#define MDL_MAX_PARAMS (512u * 1024u * 1024u) /* floats */

typedef enum { ACT_RELU, ACT_GELU, ACT_TANH, ACT_SIGMOID, ACT_IDENTITY, ACT_COUNT } mdl_act;

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

/* A loaded or built model. Immutable once loaded: any number of threads may
 * call mdl_forward on it concurrently, each with its own scratch. */
typedef struct mdl_model {
    int n_layers;
    mdl_layer layers[MDL_MAX_LAYERS];
    mdl_act act;          /* between consecutive layers, none after the last */
    int normalize;        /* L2-normalise outputs: v / max(|v|, 1e-12) */
    float *in_mean;       /* [input_dim] or NULL: x' = (x - mean) * scale */
    float *in_scale;      /* [input_dim] or NULL */
    dist_metric metric;   /* scoring defaults from metadata */
    loss_kind loss;
    double margin;
    char name[128];
    char description[512];
    char dtype[8];        /* dtype of the weights in the file ("F32", ...) */
    char sha256[65];      /* hex digest of the file bytes ("" if built) */
    size_t n_params;
    /* all __metadata__ pairs, for inspect: meta[2*i] key, meta[2*i+1] value */
    char **meta;
    size_t n_meta;
} mdl_model;

/* Load and validate a safetensors model (rules in proto/model-format.md).
 * Every refusal names the tensor or metadata key and the problem. */
int mdl_load(const char *path, mdl_model **out, tr_err *err);
int mdl_load_mem(const uint8_t *buf, size_t len, mdl_model **out, tr_err *err);

/* Build a model with zeroed weights for dims[0] -> ... -> dims[n_layers];
 * every layer has a bias. Metadata defaults: sqeuclidean, triplet, 0.2. */
int mdl_new(const int *dims, int n_layers, mdl_act act, int normalize, mdl_model **out, tr_err *err);
void mdl_free(mdl_model *m); /* NULL is a no-op */

/* Save as F32 safetensors with "{2i}.weight"/"{2i}.bias" names (the indices
 * an nn.Sequential of Linear+activation pairs has) and all metadata;
 * extra_meta adds (or overrides) n_extra key/value pairs. */
int mdl_save(const mdl_model *m, const char *path, const char *const *extra_meta, size_t n_extra, tr_err *err);

static inline int mdl_input_dim(const mdl_model *m) { return m->layers[0].in; }
static inline int mdl_output_dim(const mdl_model *m) { return m->layers[m->n_layers - 1].out; }

/* Forward a row-major batch x (n x input_dim) into y (n x output_dim).
 * normalize: -1 = the model's setting, 0 = off, 1 = on. ws is the caller's
 * per-thread scratch (grown as needed, reused). Uses cblas_sgemv for n == 1
 * and cblas_sgemm otherwise. TR_ENOMEM if scratch cannot grow. */
int mdl_forward(const mdl_model *m, const float *x, size_t n, float *y, int normalize, tr_scratch *ws, tr_err *err);

/* L2-normalise n rows of dim floats in place: v / max(|v|, 1e-12). */
void mdl_l2_normalize(float *x, size_t n, size_t dim);

#endif
