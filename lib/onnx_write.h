/* onnx_write.h - write a trained layer-sequence network (nn_arch.h) as an ONNX file tripletd serves. */
#ifndef ONNX_WRITE_H
#define ONNX_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"
#include "nn_arch.h"
#include "tr_err.h"

/* Write a ModelProto (opset 13, IR 7) for a with its parameters (a->n_params
 * floats, nn_arch.h's layout) and BatchNorm running statistics (a->n_state
 * floats; NULL when there are none). Graph input "input" [batch, C, H, W]
 * ([batch, C] for a flat input and no spatial layer), output "embedding"
 * [batch, D], batch symbolic. Layers map to Conv, BatchNormalization
 * (running statistics, eps 1e-5), Relu, the erf form of Gelu, Tanh,
 * Sigmoid, MaxPool, AveragePool (count_include_pad), GlobalAveragePool,
 * Flatten and Gemm (transB); dropout is left out. Parameter tensors are
 * named as PyTorch's nn.Sequential names them ("0.weight", "1.running_mean").
 * metadata_props: the `image` JSON when image is not NULL, then n_meta
 * key/value pairs from meta (meta[2i] key, meta[2i+1] value; keys unique,
 * not "image"). Written atomically (temporary file, fsync, rename).
 * TR_EINVAL on an inconsistent argument, TR_EIO naming the path. */
int onx_write(const char *path, const nn_arch *a, const float *params, const float *state, const mdl_image *image,
              const char *const *meta, size_t n_meta, tr_err *err);
/* The same ModelProto packed into *out (malloc'd, *out_len bytes; the caller frees it) instead of a file. */
int onx_write_mem(const nn_arch *a, const float *params, const float *state, const mdl_image *image,
                  const char *const *meta, size_t n_meta, uint8_t **out, size_t *out_len, tr_err *err);

#endif
