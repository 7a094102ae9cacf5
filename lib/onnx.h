/* onnx.h - ONNX graphs (proto/model-format.md): load with strict validation, describe, forward. */
#ifndef ONNX_H
#define ONNX_H

#include <stddef.h>
#include <stdint.h>

#include "tr_err.h"

#define ONX_MAX_FILE (1024u * 1024u * 1024u) /* bytes */
#define ONX_MAX_NODES 100000
#define ONX_MAX_ELEMS (1 << 26) /* elements of one tensor per sample (or per fixed batch) */
#define ONX_MIN_OPSET 1
#define ONX_MAX_OPSET 17

typedef struct onx_graph onx_graph;
typedef struct onx_ws onx_ws; /* one thread's arena and plans */

/* Read and validate a .onnx file (or an image in memory; buf need not
 * outlive the graph). Every refusal names the node or tensor. */
int onx_open(const char *path, onx_graph **out, tr_err *err);
int onx_open_mem(const uint8_t *buf, size_t len, onx_graph **out, tr_err *err);
void onx_free(onx_graph *g); /* NULL is a no-op */
/* 1 when buf parses as a ModelProto with an IR version and a graph (not validated further): lets a
 * refusal of a file without the .onnx suffix say that it is an ONNX model. */
int onx_is_model(const uint8_t *buf, size_t len);

/* Per-sample input shape (without the batch dim): rank, dims into shape[8]. */
int onx_input_shape(const onx_graph *g, int64_t *shape);
size_t onx_input_dim(const onx_graph *g);
size_t onx_output_dim(const onx_graph *g);
/* Fixed batch size B of the file, or 0 when the batch dim is symbolic. */
int64_t onx_fixed_batch(const onx_graph *g);
int onx_opset(const onx_graph *g);

/* metadata_props: count, pair i, value of key (NULL when absent). */
size_t onx_meta_count(const onx_graph *g);
void onx_meta_at(const onx_graph *g, size_t i, const char **key, const char **val);
const char *onx_meta(const onx_graph *g, const char *key);

/* Forward n samples (n x input_dim floats, row-major) into y (n x
 * output_dim). *ws is the calling thread's workspace: NULL on first use,
 * created and then reused (plans and arena kept); free it with onx_ws_free.
 * Any number of threads may run one graph, each with its own ws. */
int onx_forward(const onx_graph *g, const float *x, size_t n, float *y, onx_ws **ws, tr_err *err);
void onx_ws_free(onx_ws *ws); /* NULL is a no-op */

/* Summary for inspect and GET /v1/model. ops[] gets up to cap (name, count)
 * pairs of the ops in the file, in first-use order; returns their number. */
typedef struct {
    const char *name;
    int count;
} onx_opcount;
int onx_op_counts(const onx_graph *g, onx_opcount *ops, int cap);
/* Elements of the file's initializers (any data type), each once, as in the file: the sum of their
 * shapes' products, before BatchNormalization folding or any other rewrite; Constant nodes are not counted. */
size_t onx_param_count(const onx_graph *g);
double onx_macs(const onx_graph *g); /* multiply-adds per sample */
const char *onx_input_name(const onx_graph *g);
const char *onx_output_name(const onx_graph *g);
/* Per-sample output shape (without the batch dim): rank, dims. */
int onx_output_shape(const onx_graph *g, int64_t *shape);

#endif
