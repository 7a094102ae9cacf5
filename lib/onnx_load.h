/* onnx_load.h - loader internals shared by the graph modules (not for users of onnx.h). */
#ifndef ONNX_LOAD_H
#define ONNX_LOAD_H

#include "onnx_op.h"

struct Onnx__TensorProto;

/* Convert a TensorProto (initializer or attribute) into a new constant
 * value; *vi its index. Checks dtype, dims, data length, external data. */
int onx_load_tensor(onx_graph *g, const struct Onnx__TensorProto *t, const char *owner, int *vi, tr_err *err);
/* Append a value named name (copied, sanitised); its index or -1. */
int onx_value_new(onx_graph *g, const char *name);

/* Passes over a loaded graph (onnx_opt.c): fold BatchNormalization into
 * the preceding Conv, fuse activations, drop dead nodes, liveness. */
int onx_optimize(onx_graph *g, tr_err *err);
/* After onx_optimize's liveness: a value computed while running (the input or a live node's output
 * that someone reads), and a live node's output, read later or not (Split's unused parts). */
int onx_is_runtime(const onx_graph *g, int v);
int onx_is_written(const onx_graph *g, int v);
/* After onx_optimize: pack Conv node nd's final weights for this CPU's kernels (onnx_k_conv.c). */
int onx_conv_prepare(onx_graph *g, onx_node *nd, tr_err *err);
/* Before onx_conv_prepare: 1 if the path it will choose for Conv node nd adds a residual (input 3,
 * shaped as its output) before its activation: Winograd, onx_px and the SGEMM over all samples. */
int onx_conv_takes_residual(const onx_node *nd);
/* After onx_conv_prepare: 1 if Conv node nd runs on its packed weights only (its weight input's bytes unread). */
int onx_conv_packed(const onx_node *nd);
/* Run node nd at load on constant inputs, making its outputs constants. */
int onx_fold(onx_graph *g, onx_node *nd, tr_err *err);
/* Concrete view of value v for batch size n (data pointer left NULL). */
void onx_view(const onx_value *v, int64_t n, onx_t *t);

#endif
