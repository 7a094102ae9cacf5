/* model.h - the embedding model interface: open a model file (safetensors MLP or ONNX graph), describe it, forward. */
#ifndef MODEL_H
#define MODEL_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "dist.h"
#include "loss.h"
#include "tr_err.h"

typedef enum { MDL_FMT_SAFETENSORS, MDL_FMT_ONNX } mdl_format;

#define MDL_MAX_RANK 8
#define MDL_MAX_VECTOR (1 << 24) /* values per sample, in or out, of any format */

/* `image` metadata: the input is an image of channels x height x width,
 * NCHW; pixels are scaled to 0..1 (x/255), then (x - mean[c]) / std[c]. */
typedef struct {
    int channels; /* 1 or 3 */
    int height, width;
    float mean[3], std[3];
} mdl_image;

struct onx_ws;

/* One thread's workspace for mdl_forward: reused across calls and models,
 * never shared between threads. Zero-initialise; free with mdl_ws_free. */
typedef struct {
    tr_scratch buf;     /* the MLP's hidden activations */
    tr_scratch pre;     /* image preprocessing of the input */
    struct onx_ws *onx; /* the ONNX executor's arena and plans */
} mdl_ws;
void mdl_ws_free(mdl_ws *ws);

typedef struct mdl_model mdl_model;

/* What a format implements. forward runs the raw network (no image
 * preprocessing, no L2 normalisation) on n rows of input_dim floats. */
typedef struct {
    const char *format; /* "safetensors", "onnx" */
    int (*forward)(const mdl_model *m, const float *x, size_t n, float *y, mdl_ws *ws, tr_err *err);
    void (*free_impl)(void *impl);
    /* Add the format's own fields (layers or ops) to o; 0 or -1 on out of memory. */
    int (*describe)(const mdl_model *m, cJSON *o);
} mdl_ops;

/* A loaded or built model. Immutable once loaded: any number of threads may
 * call mdl_forward on it concurrently, each with its own mdl_ws. */
struct mdl_model {
    const mdl_ops *ops;
    void *impl; /* the format's network (mlp_net, onx_graph) */
    mdl_format format;
    size_t input_dim, output_dim; /* per sample, flattened */
    int in_rank;                  /* per-sample input shape, without the batch */
    int64_t in_shape[MDL_MAX_RANK];
    int has_image;
    mdl_image image;
    int normalize;      /* L2-normalise outputs: v / max(|v|, 1e-12) */
    dist_metric metric; /* scoring defaults from metadata */
    loss_kind loss;
    double margin;
    char name[128];
    char description[512];
    char dtype[8];   /* dtype of the weights in the file ("F32", ...) */
    char sha256[65]; /* hex digest of the file bytes ("" if built) */
    size_t n_params;
    /* all metadata pairs, for inspect: meta[2*i] key, meta[2*i+1] value */
    char **meta;
    size_t n_meta;
};

/* Open and validate a model file: a path ending in ".onnx" is an ONNX
 * ModelProto, anything else safetensors (proto/model-format.md). Every
 * refusal names the tensor, node or metadata key and the problem. */
int mdl_load(const char *path, mdl_model **out, tr_err *err);
/* A safetensors model from memory (buf need not outlive the model). */
int mdl_load_mem(const uint8_t *buf, size_t len, mdl_model **out, tr_err *err);
void mdl_free(mdl_model *m); /* NULL is a no-op */

static inline int mdl_input_dim(const mdl_model *m) {
    return (int)m->input_dim;
}
static inline int mdl_output_dim(const mdl_model *m) {
    return (int)m->output_dim;
}
static inline const char *mdl_format_name(const mdl_model *m) {
    return m->ops->format;
}

/* Forward a row-major batch x (n x input_dim) into y (n x output_dim):
 * image preprocessing when the model has `image` metadata (x holds pixel
 * values 0..255, CHW), the network, then L2 normalisation when asked.
 * normalize: -1 = the model's setting, 0 = off, 1 = on. TR_ENOMEM if the
 * workspace cannot grow. */
int mdl_forward(const mdl_model *m, const float *x, size_t n, float *y, int normalize, mdl_ws *ws, tr_err *err);

/* L2-normalise n rows of dim floats in place: v / max(|v|, 1e-12). */
void mdl_l2_normalize(float *x, size_t n, size_t dim);

/* The model-description object shared by GET /v1/model and `tripletctl
 * inspect --json`: name, description, format, dims, parameters, dtype,
 * sha256, scoring defaults, image preprocessing, metadata, and the
 * format's layers or ops. NULL on out of memory; the caller owns it. */
cJSON *mdl_describe_json(const mdl_model *m);

/* For format implementations: a model with defaults (sqeuclidean, triplet,
 * margin 0.2, F32) and no network; then the metadata pairs (copied) applied
 * with the common keys (name, description, normalize, metric, loss, margin,
 * image) checked. input_dim must be set before mdl_meta_apply (image is
 * checked against it). */
mdl_model *mdl_alloc(const mdl_ops *ops, mdl_format format);
int mdl_meta_apply(mdl_model *m, size_t n, const char *const *kv, tr_err *err);
/* The value of metadata key, or NULL. */
const char *mdl_meta(const mdl_model *m, const char *key);

#endif
