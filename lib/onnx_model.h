/* onnx_model.h - an ONNX graph behind the model interface (model.h). */
#ifndef ONNX_MODEL_H
#define ONNX_MODEL_H

#include "model.h"

/* Open a .onnx file as a model: the graph (onnx.h), its metadata_props
 * through the common metadata keys, the file's sha256. */
int onx_model_load(const char *path, mdl_model **out, tr_err *err);
/* The same from a ModelProto in memory (buf need not outlive the model). */
int onx_model_load_mem(const uint8_t *buf, size_t len, mdl_model **out, tr_err *err);
void onx_model_ws_free(struct onx_ws *ws); /* NULL is a no-op */

#endif
