/* model.c - the model interface: open by format, common metadata, forward with preprocessing, describe. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlp.h"
#include "onnx.h"
#include "onnx_model.h"
#include "st.h"

void mdl_l2_normalize(float *x, size_t n, size_t dim) {
    for (size_t r = 0; r < n; r++) {
        float *v = x + r * dim;
        double ss = 0;
        for (size_t j = 0; j < dim; j++) ss += (double)v[j] * v[j];
        double nrm = sqrt(ss);
        float inv = (float)(1.0 / (nrm > 1e-12 ? nrm : 1e-12));
        for (size_t j = 0; j < dim; j++) v[j] *= inv;
    }
}

void mdl_ws_free(mdl_ws *ws) {
    if (ws == NULL) return;
    tr_scratch_free(&ws->buf);
    tr_scratch_free(&ws->pre);
    onx_model_ws_free(ws->onx);
    ws->onx = NULL;
}

mdl_model *mdl_alloc(const mdl_ops *ops, mdl_format format) {
    mdl_model *m = calloc(1, sizeof *m);
    if (m == NULL) return NULL;
    m->ops = ops;
    m->format = format;
    m->metric = DIST_SQEUCLIDEAN;
    m->loss = LOSS_TRIPLET;
    m->margin = 0.2;
    snprintf(m->dtype, sizeof m->dtype, "F32");
    return m;
}

void mdl_free(mdl_model *m) {
    if (m == NULL) return;
    if (m->impl) m->ops->free_impl(m->impl);
    for (size_t i = 0; i < 2 * m->n_meta; i++) free(m->meta[i]);
    free(m->meta);
    free(m);
}

const char *mdl_meta(const mdl_model *m, const char *key) {
    for (size_t i = 0; i < m->n_meta; i++)
        if (strcmp(m->meta[2 * i], key) == 0) return m->meta[2 * i + 1];
    return NULL;
}

/* Read n numbers of a JSON array into out; 0 or -1. */
static int json_floats(const cJSON *a, float *out, int n) {
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != n) return -1;
    int i = 0;
    for (const cJSON *e = a->child; e; e = e->next, i++) {
        if (!cJSON_IsNumber(e) || !isfinite(e->valuedouble)) return -1;
        out[i] = (float)e->valuedouble;
    }
    return 0;
}

static int json_int(const cJSON *o, const char *key, int lo, int hi, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return -1;
    *out = (int)v->valuedouble;
    return 0;
}

/* The `image` metadata value: {"channels", "height", "width", "mean", "std"} and no other key, checked
 * against the input: its shape when it is [batch, C, H, W], else input_dim = C x H x W. */
static int parse_image(mdl_model *m, const char *v, tr_err *err) {
    static const char *const KEYS[] = {"channels", "height", "width", "mean", "std", NULL};
    mdl_image im = {0};
    const char *why = NULL, *unknown = NULL;
    char key[48];
    cJSON *o = cJSON_Parse(v), *e;
    if (cJSON_IsObject(o))
        for (e = o->child; e && !unknown; e = e->next) {
            unknown = e->string;
            for (const char *const *k = KEYS; *k && unknown; k++)
                if (strcmp(*k, e->string) == 0) unknown = NULL;
        }
    if (unknown) {
        tr_seterr(err, TR_EFORMAT, "image",
                  "metadata \"image\": key \"%s\" is not one of channels, height, width, mean, std",
                  tr_printable(unknown, key, sizeof key));
        cJSON_Delete(o);
        return TR_EFORMAT;
    }
    if (!cJSON_IsObject(o))
        why = "is not a JSON object";
    else if (json_int(o, "channels", 1, 3, &im.channels) || im.channels == 2)
        why = "\"channels\" is not 1 or 3";
    else if (json_int(o, "height", 1, 65536, &im.height))
        why = "\"height\" is not an integer in 1..65536";
    else if (json_int(o, "width", 1, 65536, &im.width))
        why = "\"width\" is not an integer in 1..65536";
    else if (json_floats(cJSON_GetObjectItemCaseSensitive(o, "mean"), im.mean, im.channels))
        why = "\"mean\" is not an array of one finite number per channel";
    else if (json_floats(cJSON_GetObjectItemCaseSensitive(o, "std"), im.std, im.channels))
        why = "\"std\" is not an array of one finite number per channel";
    for (int c = 0; !why && c < im.channels; c++)
        if (!(im.std[c] > 0)) why = "\"std\" has a value that is not > 0";
    cJSON_Delete(o);
    if (why) return tr_seterr(err, TR_EFORMAT, "image", "metadata \"image\": %s", why);
    if (m->in_rank == 3 && (m->in_shape[0] != im.channels || m->in_shape[1] != im.height || m->in_shape[2] != im.width))
        return tr_seterr(err, TR_EFORMAT, "image",
                         "metadata \"image\": %d x %d x %d (channels x height x width) does not match the input "
                         "shape [batch, %lld, %lld, %lld]",
                         im.channels, im.height, im.width, (long long)m->in_shape[0], (long long)m->in_shape[1],
                         (long long)m->in_shape[2]);
    if ((size_t)im.channels * (size_t)im.height * (size_t)im.width != m->input_dim)
        return tr_seterr(err, TR_EFORMAT, "image",
                         "metadata \"image\": %d x %d x %d = %zu values, but the model takes %zu", im.channels,
                         im.height, im.width, (size_t)im.channels * im.height * im.width, m->input_dim);
    m->image = im;
    m->has_image = 1;
    return TR_OK;
}

int mdl_meta_apply(mdl_model *m, size_t n, const char *const *kv, tr_err *err) {
    const char *v;
    if ((m->meta = calloc(2 * n + 1, sizeof(char *))) == NULL) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < n; i++) {
        m->meta[2 * i] = strdup(kv[2 * i]);
        m->meta[2 * i + 1] = strdup(kv[2 * i + 1]);
        m->n_meta = i + 1;
        if (!m->meta[2 * i] || !m->meta[2 * i + 1]) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    }
    if ((v = mdl_meta(m, "normalize"))) {
        if (strcmp(v, "true") == 0)
            m->normalize = 1;
        else if (strcmp(v, "false") == 0)
            m->normalize = 0;
        else
            return tr_seterr(err, TR_EFORMAT, "normalize",
                             "metadata \"normalize\": \"%s\" is not \"true\" or \"false\"", v);
    }
    if ((v = mdl_meta(m, "metric")) && dist_parse(v, &m->metric) != 0)
        return tr_seterr(err, TR_EFORMAT, "metric",
                         "metadata \"metric\": \"%s\" is not one of sqeuclidean, euclidean, cosine, dot", v);
    if ((v = mdl_meta(m, "loss")) && loss_parse(v, &m->loss) != 0)
        return tr_seterr(
            err, TR_EFORMAT, "loss",
            "metadata \"loss\": \"%s\" is not one of triplet, triplet-soft, contrastive, contrastive-squared, infonce",
            v);
    if ((v = mdl_meta(m, "margin"))) {
        char *end;
        double d = strtod(v, &end);
        if (end == v || *end != '\0' || !isfinite(d) || d < 0)
            return tr_seterr(err, TR_EFORMAT, "margin", "metadata \"margin\": \"%s\" is not a finite number >= 0", v);
        m->margin = d;
    }
    if ((v = mdl_meta(m, "name"))) snprintf(m->name, sizeof m->name, "%s", v);
    if ((v = mdl_meta(m, "description"))) snprintf(m->description, sizeof m->description, "%s", v);
    if ((v = mdl_meta(m, "image"))) return parse_image(m, v, err);
    return TR_OK;
}

static int has_suffix(const char *s, const char *suf) {
    size_t n = strlen(s), k = strlen(suf);
    return n >= k && strcmp(s + n - k, suf) == 0;
}

int mdl_load_mem(const uint8_t *buf, size_t len, mdl_model **out, tr_err *err) {
    st_file *f = NULL;
    *out = NULL;
    int rc = st_open_mem(buf, len, &f, err);
    if (rc == TR_OK) rc = mlp_from_st(f, out, err);
    st_close(f);
    return rc;
}

/* After a safetensors refusal of path: say so when the file is an ONNX model under another name. */
static void hint_onnx(const char *path, tr_err *err) {
    static const char hint[] = ": this is an ONNX model; its file name must end in .onnx";
    uint8_t *buf;
    size_t len, n;
    tr_err ignored;
    if (!err || tr_read_file(path, ONX_MAX_FILE, &buf, &len, &ignored)) return;
    if (onx_is_model(buf, len) && (n = strlen(err->msg)) + sizeof hint <= sizeof err->msg)
        memcpy(err->msg + n, hint, sizeof hint);
    free(buf);
}

int mdl_load(const char *path, mdl_model **out, tr_err *err) {
    st_file *f = NULL;
    *out = NULL;
    if (has_suffix(path, ".onnx")) return onx_model_load(path, out, err);
    int rc = st_open(path, &f, err);
    if (rc == TR_EFORMAT || rc == TR_ELIMIT) hint_onnx(path, err);
    if (rc == TR_OK) rc = mlp_from_st(f, out, err);
    st_close(f);
    return rc;
}

/* Image models take pixel values 0..255 (CHW): x/255, then (x - mean[c]) / std[c]. */
static const float *preprocess(const mdl_model *m, const float *x, size_t n, mdl_ws *ws, tr_err *err) {
    const mdl_image *im = &m->image;
    size_t plane = (size_t)im->height * (size_t)im->width, total;
    if (!tr_size_mul(n, m->input_dim, &total) || tr_scratch_reserve(&ws->pre, total ? total : 1)) {
        tr_seterr(err, TR_ENOMEM, "", "out of memory for a batch of %zu", n);
        return NULL;
    }
    for (size_t r = 0; r < n; r++)
        for (int c = 0; c < im->channels; c++) {
            const float *s = x + r * m->input_dim + (size_t)c * plane;
            float *d = ws->pre.p + r * m->input_dim + (size_t)c * plane;
            float a = 1.0f / (255.0f * im->std[c]), b = -im->mean[c] / im->std[c];
            for (size_t i = 0; i < plane; i++) d[i] = s[i] * a + b;
        }
    return ws->pre.p;
}

int mdl_forward(const mdl_model *m, const float *x, size_t n, float *y, int normalize, mdl_ws *ws, tr_err *err) {
    int rc;
    if (n == 0) return TR_OK;
    if (m->has_image && (x = preprocess(m, x, n, ws, err)) == NULL) return err ? err->code : TR_ENOMEM;
    if ((rc = m->ops->forward(m, x, n, y, ws, err))) return rc;
    if (normalize < 0 ? m->normalize : normalize) mdl_l2_normalize(y, n, m->output_dim);
    return TR_OK;
}

/* The double of the shortest decimal that reads back as f: JSON shows the number the file or the request wrote. */
static double float_shortest(float f) {
    char buf[32];
    return strtod(tr_shortest(f, 1, buf, sizeof buf), NULL);
}

static cJSON *image_json(const mdl_image *im) {
    cJSON *o = cJSON_CreateObject();
    int ok = o != NULL;
    ok &= cJSON_AddNumberToObject(o, "channels", im->channels) != NULL;
    ok &= cJSON_AddNumberToObject(o, "height", im->height) != NULL;
    ok &= cJSON_AddNumberToObject(o, "width", im->width) != NULL;
    cJSON *mean = cJSON_AddArrayToObject(o, "mean"), *std = cJSON_AddArrayToObject(o, "std");
    ok &= mean != NULL && std != NULL;
    for (int c = 0; ok && c < im->channels; c++) {
        ok &= cJSON_AddItemToArray(mean, cJSON_CreateNumber(float_shortest(im->mean[c])));
        ok &= cJSON_AddItemToArray(std, cJSON_CreateNumber(float_shortest(im->std[c])));
    }
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

cJSON *mdl_describe_json(const mdl_model *m) {
    cJSON *o = cJSON_CreateObject(), *meta, *img;
    int ok = o != NULL;
    ok &= cJSON_AddStringToObject(o, "name", m->name) != NULL;
    ok &= cJSON_AddStringToObject(o, "description", m->description) != NULL;
    ok &= cJSON_AddStringToObject(o, "format", m->ops->format) != NULL;
    ok &= cJSON_AddNumberToObject(o, "input_dim", (double)m->input_dim) != NULL;
    ok &= cJSON_AddNumberToObject(o, "output_dim", (double)m->output_dim) != NULL;
    ok &= ok && m->ops->describe(m, o) == 0;
    ok &= cJSON_AddBoolToObject(o, "normalize", m->normalize) != NULL;
    ok &= cJSON_AddStringToObject(o, "metric", dist_name(m->metric)) != NULL;
    ok &= cJSON_AddStringToObject(o, "loss", loss_name(m->loss)) != NULL;
    ok &= cJSON_AddNumberToObject(o, "margin", m->margin) != NULL;
    ok &= cJSON_AddNumberToObject(o, "parameters", (double)m->n_params) != NULL;
    ok &= cJSON_AddStringToObject(o, "dtype", m->dtype) != NULL;
    ok &= cJSON_AddStringToObject(o, "sha256", m->sha256) != NULL;
    if (ok && m->has_image)
        ok &= (img = image_json(&m->image)) != NULL && cJSON_AddItemToObject(o, "image", img);
    else if (ok)
        ok &= cJSON_AddNullToObject(o, "image") != NULL;
    ok &= ok && (meta = cJSON_AddObjectToObject(o, "metadata")) != NULL;
    for (size_t i = 0; ok && i < m->n_meta; i++)
        ok &= cJSON_AddStringToObject(meta, m->meta[2 * i], m->meta[2 * i + 1]) != NULL;
    if (!ok) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
