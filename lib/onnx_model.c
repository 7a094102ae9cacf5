/* onnx_model.c - an ONNX graph behind the model interface: forward, describe, metadata. */
#include "onnx_model.h"

#include <stdio.h>
#include <stdlib.h>

#include "onnx.h"

void onx_model_ws_free(struct onx_ws *ws) {
    onx_ws_free(ws);
}

static int onnx_forward(const mdl_model *m, const float *x, size_t n, float *y, mdl_ws *ws, tr_err *err) {
    return onx_forward(m->impl, x, n, y, &ws->onx, err);
}

static void onnx_free(void *impl) {
    onx_free(impl);
}

static cJSON *shape_json(const int64_t *shape, int rank) {
    cJSON *a = cJSON_CreateArray();
    int ok = a != NULL && cJSON_AddItemToArray(a, cJSON_CreateString("batch"));
    for (int i = 0; ok && i < rank; i++) ok &= cJSON_AddItemToArray(a, cJSON_CreateNumber((double)shape[i]));
    if (!ok) {
        cJSON_Delete(a);
        return NULL;
    }
    return a;
}

/* Input and output shapes (batch first), ops by count, opset, multiply-adds per sample. */
static int onnx_describe(const mdl_model *m, cJSON *o) {
    const onx_graph *g = m->impl;
    int64_t shape[MDL_MAX_RANK];
    onx_opcount ops[128];
    int n_ops = onx_op_counts(g, ops, 128), ok = 1, rank;
    cJSON *in = cJSON_AddObjectToObject(o, "input"), *out = cJSON_AddObjectToObject(o, "output"), *a;
    ok &= in != NULL && out != NULL;
    ok &= ok && cJSON_AddStringToObject(in, "name", onx_input_name(g)) != NULL;
    rank = onx_input_shape(g, shape);
    ok &= ok && (a = shape_json(shape, rank)) != NULL && cJSON_AddItemToObject(in, "shape", a);
    ok &= ok && cJSON_AddStringToObject(out, "name", onx_output_name(g)) != NULL;
    rank = onx_output_shape(g, shape);
    ok &= ok && (a = shape_json(shape, rank)) != NULL && cJSON_AddItemToObject(out, "shape", a);
    if (ok && onx_fixed_batch(g))
        ok &= cJSON_AddNumberToObject(o, "fixed_batch", (double)onx_fixed_batch(g)) != NULL;
    else if (ok)
        ok &= cJSON_AddNullToObject(o, "fixed_batch") != NULL;
    ok &= cJSON_AddNumberToObject(o, "opset", onx_opset(g)) != NULL;
    ok &= cJSON_AddNumberToObject(o, "macs", onx_macs(g)) != NULL;
    cJSON *oc = cJSON_AddArrayToObject(o, "ops");
    ok &= oc != NULL;
    for (int i = 0; ok && i < n_ops; i++) {
        cJSON *e = cJSON_CreateObject();
        ok &= e != NULL && cJSON_AddItemToArray(oc, e);
        ok &= ok && cJSON_AddStringToObject(e, "op", ops[i].name) != NULL;
        ok &= ok && cJSON_AddNumberToObject(e, "count", ops[i].count) != NULL;
    }
    return ok ? 0 : -1;
}

static const mdl_ops onnx_ops = {"onnx", onnx_forward, onnx_free, onnx_describe};

int onx_model_load(const char *path, mdl_model **out, tr_err *err) {
    uint8_t *buf = NULL;
    size_t len = 0;
    *out = NULL;
    int rc = tr_read_file(path, ONX_MAX_FILE, &buf, &len, err);
    if (rc == TR_OK) rc = onx_model_load_mem(buf, len, out, err);
    free(buf);
    return rc;
}

int onx_model_load_mem(const uint8_t *buf, size_t len, mdl_model **out, tr_err *err) {
    size_t nkv;
    const char **kv = NULL;
    onx_graph *g = NULL;
    mdl_model *m = NULL;
    *out = NULL;
    int rc = onx_open_mem(buf, len, &g, err);
    if (rc) goto fail;
    if ((m = mdl_alloc(&onnx_ops, MDL_FMT_ONNX)) == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "", "out of memory");
        goto fail;
    }
    m->impl = g;
    g = NULL;
    m->input_dim = onx_input_dim(m->impl);
    m->output_dim = onx_output_dim(m->impl);
    m->in_rank = onx_input_shape(m->impl, m->in_shape);
    m->n_params = onx_param_count(m->impl);
    nkv = onx_meta_count(m->impl);
    if ((kv = calloc(2 * nkv + 1, sizeof *kv)) == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "", "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < nkv; i++) onx_meta_at(m->impl, i, &kv[2 * i], &kv[2 * i + 1]);
    if ((rc = mdl_meta_apply(m, nkv, kv, err))) goto fail;
    if ((rc = tr_sha256_hex(buf, len, m->sha256, err))) goto fail;
    free(kv);
    *out = m;
    return TR_OK;
fail:
    free(kv);
    onx_free(g);
    mdl_free(m);
    return rc;
}
