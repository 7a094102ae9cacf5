/* mlp.c - the MLP network: safetensors layers, forward on OpenBLAS, save; its mdl_ops. */
#include "mlp.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nn_layers.h"
#include "vec.h"

static const char *act_names[MDL_ACT_COUNT] = {"relu", "gelu", "tanh", "sigmoid", "identity"};

int mdl_act_parse(const char *s, mdl_act *out) {
    for (int i = 0; i < MDL_ACT_COUNT; i++)
        if (strcmp(s, act_names[i]) == 0) {
            *out = (mdl_act)i;
            return 0;
        }
    return -1;
}

const char *mdl_act_name(mdl_act a) {
    return (unsigned)a < MDL_ACT_COUNT ? act_names[a] : "?";
}

void mdl_act_apply(mdl_act a, float *x, size_t n) {
    switch (a) {
    case MDL_ACT_RELU:
        vec_relu(x, n);
        break;
    case MDL_ACT_GELU:
        vec_gelu(x, n);
        break;
    case MDL_ACT_TANH:
        vec_tanh(x, n);
        break;
    case MDL_ACT_SIGMOID:
        vec_sigmoid(x, n);
        break;
    default:
        break;
    }
}

static void mlp_free(void *impl) {
    mlp_net *net = impl;
    if (net == NULL) return;
    for (int l = 0; l < net->n_layers; l++) {
        free(net->layers[l].w);
        free(net->layers[l].b);
    }
    free(net->in_mean);
    free(net->in_scale);
    free(net);
}

static int mlp_forward(const mdl_model *m, const float *x, size_t n, float *y, mdl_ws *ws, tr_err *err);
static int mlp_describe(const mdl_model *m, cJSON *o);

static const mdl_ops mlp_ops = {"safetensors", mlp_forward, mlp_free, mlp_describe};

mlp_net *mdl_mlp(const mdl_model *m) {
    return m && m->ops == &mlp_ops ? m->impl : NULL;
}

/* A model around an empty network (the caller fills the layers). */
static mdl_model *mlp_alloc(void) {
    mdl_model *m = mdl_alloc(&mlp_ops, MDL_FMT_SAFETENSORS);
    mlp_net *net = calloc(1, sizeof *net);
    if (m == NULL || net == NULL) {
        free(net);
        mdl_free(m);
        return NULL;
    }
    m->impl = net;
    net->act = MDL_ACT_RELU;
    return m;
}

int mdl_new(const int *dims, int n_layers, mdl_act act, int normalize, mdl_model **out, tr_err *err) {
    int rc = TR_OK;
    *out = NULL;
    if (n_layers < 1 || n_layers > MDL_MAX_LAYERS)
        return tr_seterr(err, TR_EINVAL, "layers", "%d layers, expected 1..%d", n_layers, MDL_MAX_LAYERS);
    size_t params = 0;
    for (int l = 0; l <= n_layers; l++)
        if (dims[l] < 1 || dims[l] > MDL_MAX_DIM)
            return tr_seterr(err, TR_EINVAL, "layers", "dims[%d] = %d is outside 1..%d", l, dims[l], MDL_MAX_DIM);
    for (int l = 0; l < n_layers; l++) params += (size_t)dims[l] * (size_t)dims[l + 1] + (size_t)dims[l + 1];
    if (params > MDL_MAX_PARAMS)
        return tr_seterr(err, TR_ELIMIT, "layers", "%zu parameters, limit %u", params, MDL_MAX_PARAMS);
    mdl_model *m = mlp_alloc();
    if (m == NULL) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    mlp_net *net = m->impl;
    net->act = act;
    m->normalize = normalize;
    for (int l = 0; l < n_layers; l++) {
        mdl_layer *ly = &net->layers[l];
        ly->in = dims[l];
        ly->out = dims[l + 1];
        ly->w = calloc((size_t)ly->in * (size_t)ly->out, sizeof(float));
        ly->b = calloc((size_t)ly->out, sizeof(float));
        net->n_layers = l + 1;
        if (!ly->w || !ly->b) {
            rc = tr_seterr(err, TR_ENOMEM, "", "out of memory");
            goto fail;
        }
        m->n_params += (size_t)ly->in * (size_t)ly->out + (size_t)ly->out;
    }
    m->input_dim = (size_t)dims[0];
    m->output_dim = (size_t)dims[n_layers];
    m->in_rank = 1;
    m->in_shape[0] = dims[0];
    *out = m;
    return TR_OK;
fail:
    mdl_free(m);
    return rc;
}

/* "12.weight" -> 12, kind 'w'; "12.bias" -> 'b'; else -1. */
static long layer_index(const char *name, char *kind) {
    const char *p = name;
    long v = 0;
    if (!isdigit((unsigned char)*p) || (p[0] == '0' && isdigit((unsigned char)p[1]))) return -1; /* no "01" */
    for (; isdigit((unsigned char)*p); p++) {
        v = v * 10 + (*p - '0');
        if (v > 1000000) return -1;
    }
    if (strcmp(p, ".weight") == 0)
        *kind = 'w';
    else if (strcmp(p, ".bias") == 0)
        *kind = 'b';
    else
        return -1;
    return v;
}

typedef struct {
    long idx;
    const st_tensor *w, *b;
} layer_ref;

static int by_idx(const void *a, const void *b) {
    long x = ((const layer_ref *)a)->idx, y = ((const layer_ref *)b)->idx;
    return (x > y) - (x < y);
}

static int is_float(st_dtype d) {
    return d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64;
}

static int copy_f32(const st_file *f, const st_tensor *t, float **dst, tr_err *err) {
    *dst = malloc((t->nelem ? t->nelem : 1) * sizeof(float));
    if (*dst == NULL) return tr_seterr(err, TR_ENOMEM, t->name, "tensor \"%s\": out of memory", t->name);
    return st_to_f32(f, t, *dst, err);
}

/* Check every tensor's name, rank and chaining before converting any weight. */
static int plan_layers(const st_file *f, layer_ref *refs, int *n_refs, const st_tensor **mean, const st_tensor **scale,
                       tr_err *err) {
    int n = 0;
    *mean = *scale = NULL;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        char kind = 0;
        if (strcmp(t->name, "input.mean") == 0) {
            *mean = t;
            continue;
        }
        if (strcmp(t->name, "input.scale") == 0) {
            *scale = t;
            continue;
        }
        long idx = layer_index(t->name, &kind);
        if (idx < 0)
            return tr_seterr(
                err, TR_EFORMAT, t->name,
                "tensor \"%s\": unknown name (expected \"{i}.weight\", \"{i}.bias\", \"input.mean\", \"input.scale\")",
                t->name);
        int j = 0;
        while (j < n && refs[j].idx != idx) j++;
        if (j == n) {
            if (n == MDL_MAX_LAYERS)
                return tr_seterr(err, TR_ELIMIT, t->name, "tensor \"%s\": more than %d layers", t->name,
                                 MDL_MAX_LAYERS);
            refs[n++] = (layer_ref){idx, NULL, NULL};
        }
        if (!is_float(t->dtype))
            return tr_seterr(err, TR_EFORMAT, t->name,
                             "tensor \"%s\": dtype %s is not a float type (F32, F16, BF16, F64)", t->name,
                             st_dtype_name(t->dtype));
        if (kind == 'w')
            refs[j].w = t;
        else
            refs[j].b = t;
    }
    const st_tensor *pre[2] = {*mean, *scale};
    for (int i = 0; i < 2; i++)
        if (pre[i] && !is_float(pre[i]->dtype))
            return tr_seterr(err, TR_EFORMAT, pre[i]->name,
                             "tensor \"%s\": dtype %s is not a float type (F32, F16, BF16, F64)", pre[i]->name,
                             st_dtype_name(pre[i]->dtype));
    if (n == 0) return tr_seterr(err, TR_EFORMAT, "", "no layers: the file has no \"{i}.weight\" tensor");
    qsort(refs, (size_t)n, sizeof *refs, by_idx);
    size_t params = 0;
    for (int l = 0; l < n; l++) {
        const st_tensor *w = refs[l].w, *b = refs[l].b;
        if (w == NULL)
            return tr_seterr(err, TR_EFORMAT, b->name, "tensor \"%s\": no matching \"%ld.weight\"", b->name,
                             refs[l].idx);
        if (w->ndim != 2)
            return tr_seterr(err, TR_EFORMAT, w->name, "tensor \"%s\": expected 2 dimensions [out, in], got %d",
                             w->name, w->ndim);
        if (w->shape[0] < 1 || w->shape[1] < 1 || w->shape[0] > MDL_MAX_DIM || w->shape[1] > MDL_MAX_DIM)
            return tr_seterr(err, TR_ELIMIT, w->name, "tensor \"%s\": shape [%lld,%lld] outside 1..%d", w->name,
                             (long long)w->shape[0], (long long)w->shape[1], MDL_MAX_DIM);
        if (l > 0 && w->shape[1] != refs[l - 1].w->shape[0])
            return tr_seterr(err, TR_EFORMAT, w->name,
                             "tensor \"%s\": shape [%lld,%lld] does not chain with layer %ld output %lld", w->name,
                             (long long)w->shape[0], (long long)w->shape[1], refs[l - 1].idx,
                             (long long)refs[l - 1].w->shape[0]);
        if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
            return tr_seterr(err, TR_EFORMAT, b->name, "tensor \"%s\": expected shape [%lld] to match \"%s\"", b->name,
                             (long long)w->shape[0], w->name);
        params += w->nelem + (b ? b->nelem : 0);
        if (params > MDL_MAX_PARAMS)
            return tr_seterr(err, TR_ELIMIT, w->name, "tensor \"%s\": model exceeds %u parameters", w->name,
                             MDL_MAX_PARAMS);
    }
    for (int i = 0; i < 2; i++)
        if (pre[i] && (pre[i]->ndim != 1 || pre[i]->shape[0] != refs[0].w->shape[1]))
            return tr_seterr(err, TR_EFORMAT, pre[i]->name,
                             "tensor \"%s\": expected shape [%lld] (the input dimension)", pre[i]->name,
                             (long long)refs[0].w->shape[1]);
    *n_refs = n;
    return TR_OK;
}

/* Metadata pairs of f as one key/value list (pointers into f). */
static const char **st_pairs(const st_file *f, size_t *n) {
    size_t nm = st_meta_count(f);
    const char **kv = calloc(2 * nm + 1, sizeof(char *));
    if (kv == NULL) return NULL;
    for (size_t i = 0; i < nm; i++) st_meta_at(f, i, &kv[2 * i], &kv[2 * i + 1]);
    *n = nm;
    return kv;
}

int mlp_from_st(const st_file *f, mdl_model **out, tr_err *err) {
    int rc, n = 0;
    mdl_model *m = NULL;
    mlp_net *net;
    layer_ref refs[MDL_MAX_LAYERS];
    const st_tensor *mean, *scale;
    const char **kv = NULL, *v;
    size_t len, nkv = 0;
    const uint8_t *buf = st_bytes(f, &len);
    *out = NULL;
    if ((rc = plan_layers(f, refs, &n, &mean, &scale, err))) goto fail;
    if ((m = mlp_alloc()) == NULL || (kv = st_pairs(f, &nkv)) == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "", "out of memory");
        goto fail;
    }
    net = m->impl;
    m->input_dim = (size_t)refs[0].w->shape[1];
    m->output_dim = (size_t)refs[n - 1].w->shape[0];
    m->in_rank = 1;
    m->in_shape[0] = (int64_t)m->input_dim;
    if ((rc = mdl_meta_apply(m, nkv, kv, err))) goto fail;
    if ((v = mdl_meta(m, "activation")) && mdl_act_parse(v, &net->act) != 0) {
        rc = tr_seterr(err, TR_EFORMAT, "activation",
                       "metadata \"activation\": \"%s\" is not one of relu, gelu, tanh, sigmoid, identity", v);
        goto fail;
    }
    snprintf(m->dtype, sizeof m->dtype, "%s", st_dtype_name(refs[0].w->dtype));
    for (int l = 0; l < n; l++) {
        mdl_layer *ly = &net->layers[l];
        net->n_layers = l + 1;
        ly->out = (int)refs[l].w->shape[0];
        ly->in = (int)refs[l].w->shape[1];
        if ((rc = copy_f32(f, refs[l].w, &ly->w, err))) goto fail;
        if (refs[l].b && (rc = copy_f32(f, refs[l].b, &ly->b, err))) goto fail;
        if (refs[l].w->dtype != refs[0].w->dtype || (refs[l].b && refs[l].b->dtype != refs[0].w->dtype))
            snprintf(m->dtype, sizeof m->dtype, "mixed");
        m->n_params += refs[l].w->nelem + (refs[l].b ? refs[l].b->nelem : 0);
    }
    if (mean && (rc = copy_f32(f, mean, &net->in_mean, err))) goto fail;
    if (scale && (rc = copy_f32(f, scale, &net->in_scale, err))) goto fail;
    if ((rc = tr_sha256_hex(buf, len, m->sha256, err))) goto fail;
    free(kv);
    *out = m;
    return TR_OK;
fail:
    free(kv);
    mdl_free(m);
    return rc;
}

/* Rows per pass through all layers. Large batches go through the network in blocks so a
 * block's hidden activations (2048 x 256 floats = 2 MiB) stay in the last-level cache between
 * the GEMM, the bias and activation passes and the next layer's GEMM; a 4096-row batch
 * otherwise streams more through memory. Smaller blocks (512) were as fast on one thread but
 * up to a third slower on two, where every GEMM call is a rendezvous of OpenBLAS's threads. */
#ifndef MDL_FWD_BLOCK
#define MDL_FWD_BLOCK 2048
#endif

/* x' = (x - mean) * scale per feature, n rows, into pre. */
static void preprocess_rows(const mlp_net *m, const float *x, size_t n, float *pre) {
    int in = m->layers[0].in;
    for (size_t r = 0; r < n; r++) {
        const float *xr = x + r * (size_t)in;
        float *pr = pre + r * (size_t)in;
        if (m->in_mean && m->in_scale)
            for (int j = 0; j < in; j++) pr[j] = (xr[j] - m->in_mean[j]) * m->in_scale[j];
        else if (m->in_mean)
            for (int j = 0; j < in; j++) pr[j] = xr[j] - m->in_mean[j];
        else
            for (int j = 0; j < in; j++) pr[j] = xr[j] * m->in_scale[j];
    }
}

/* Forward n <= MDL_FWD_BLOCK rows; scratch holds the hidden buffers and the preprocessed input. */
static void forward_block(const mlp_net *m, const float *x, size_t n, float *y, float *scratch, size_t hid,
                          size_t nbuf) {
    float *bufs[2] = {scratch, scratch + (nbuf > 1 ? n * hid : 0)}, *pre = scratch + nbuf * n * hid;
    const float *cur = x;
    if (m->in_mean || m->in_scale) {
        preprocess_rows(m, x, n, pre);
        cur = pre;
    }
    for (int l = 0; l < m->n_layers; l++) {
        const mdl_layer *ly = &m->layers[l];
        float *dst = l == m->n_layers - 1 ? y : bufs[l & 1];
        nn_dense(ly->w, ly->b, ly->in, ly->out, cur, n, dst);
        if (l < m->n_layers - 1) mdl_act_apply(m->act, dst, n * (size_t)ly->out);
        cur = dst;
    }
}

void mlp_input_preprocess(const mdl_model *model, const float *x, size_t n, float *out) {
    const mlp_net *m = mdl_mlp(model);
    if (m && (m->in_mean || m->in_scale))
        preprocess_rows(m, x, n, out);
    else
        memcpy(out, x, n * model->input_dim * sizeof(float));
}

static int mlp_forward(const mdl_model *model, const float *x, size_t n, float *y, mdl_ws *ws, tr_err *err) {
    return mlp_net_forward(model->impl, x, n, y, ws, err);
}

int mlp_net_forward(const mlp_net *m, const float *x, size_t n, float *y, mdl_ws *ws, tr_err *err) {
    size_t in = (size_t)m->layers[0].in, out = (size_t)m->layers[m->n_layers - 1].out, hid = 0;
    for (int l = 0; l + 1 < m->n_layers; l++) hid = (size_t)m->layers[l].out > hid ? (size_t)m->layers[l].out : hid;
    /* scratch per block: two ping-pong hidden buffers (one suffices for two layers) and the preprocessed input */
    size_t nbuf = m->n_layers > 2 ? 2 : (size_t)(m->n_layers - 1);
    size_t per = nbuf * hid + (m->in_mean || m->in_scale ? in : 0), blk = n < MDL_FWD_BLOCK ? n : MDL_FWD_BLOCK;
    if (n > INT_MAX) return tr_seterr(err, TR_ELIMIT, "", "batch of %zu is too large", n);
    if (tr_scratch_reserve(&ws->buf, blk * per > 0 ? blk * per : 1))
        return tr_seterr(err, TR_ENOMEM, "", "out of memory for a batch of %zu", n);
    for (size_t r = 0; r < n; r += blk) {
        size_t k = n - r < blk ? n - r : blk;
        forward_block(m, x + r * in, k, y + r * out, ws->buf.p, hid, nbuf);
    }
    return TR_OK;
}

/* Layers as GET /v1/model and inspect show them; the last has no activation ("identity"). */
static int mlp_describe(const mdl_model *model, cJSON *o) {
    const mlp_net *m = model->impl;
    int ok = 1;
    cJSON *dims = cJSON_AddArrayToObject(o, "dims"), *layers = cJSON_AddArrayToObject(o, "layers");
    ok &= dims != NULL && layers != NULL && cJSON_AddItemToArray(dims, cJSON_CreateNumber(m->layers[0].in));
    for (int l = 0; ok && l < m->n_layers; l++) {
        cJSON *ly = cJSON_CreateObject();
        ok &= cJSON_AddItemToArray(dims, cJSON_CreateNumber(m->layers[l].out)) && ly != NULL &&
              cJSON_AddItemToArray(layers, ly);
        if (!ok) break;
        ok &= cJSON_AddNumberToObject(ly, "in", m->layers[l].in) != NULL;
        ok &= cJSON_AddNumberToObject(ly, "out", m->layers[l].out) != NULL;
        ok &=
            cJSON_AddStringToObject(ly, "activation", l + 1 < m->n_layers ? mdl_act_name(m->act) : "identity") != NULL;
        ok &= cJSON_AddBoolToObject(ly, "bias", m->layers[l].b != NULL) != NULL;
    }
    ok &= cJSON_AddStringToObject(o, "activation", mdl_act_name(m->act)) != NULL;
    ok &= cJSON_AddBoolToObject(o, "input_mean", m->in_mean != NULL) != NULL;
    ok &= cJSON_AddBoolToObject(o, "input_scale", m->in_scale != NULL) != NULL;
    return ok ? 0 : -1;
}

/* Replace or append key=value in a key/value list of n pairs (cap pairs). */
static void kv_set(const char **kv, size_t *n, const char *key, const char *val) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp(kv[2 * i], key) == 0) {
            kv[2 * i + 1] = val;
            return;
        }
    kv[2 * *n] = key;
    kv[2 * *n + 1] = val;
    (*n)++;
}

int mdl_save(const mdl_model *model, const char *path, const char *const *extra_meta, size_t n_extra, tr_err *err) {
    const mdl_model *m = model;
    const mlp_net *net = mdl_mlp(model);
    int rc;
    if (net == NULL) return tr_seterr(err, TR_EINVAL, "", "only an MLP model can be saved as safetensors");
    size_t nt = 0, nkv = 0, cap = m->n_meta + n_extra + 8;
    char names[MDL_MAX_LAYERS][2][24], margin[32];
    st_wtensor ts[2 * MDL_MAX_LAYERS + 2];
    const char **kv = calloc(2 * cap, sizeof(char *));
    if (kv == NULL) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < m->n_meta; i++) kv_set(kv, &nkv, m->meta[2 * i], m->meta[2 * i + 1]);
    snprintf(margin, sizeof margin, "%.9g", m->margin);
    kv_set(kv, &nkv, "activation", mdl_act_name(net->act));
    kv_set(kv, &nkv, "normalize", m->normalize ? "true" : "false");
    kv_set(kv, &nkv, "metric", dist_name(m->metric));
    kv_set(kv, &nkv, "loss", loss_name(m->loss));
    kv_set(kv, &nkv, "margin", margin);
    if (m->name[0]) kv_set(kv, &nkv, "name", m->name);
    if (m->description[0]) kv_set(kv, &nkv, "description", m->description);
    for (size_t i = 0; i < n_extra; i++) kv_set(kv, &nkv, extra_meta[2 * i], extra_meta[2 * i + 1]);
    for (int l = 0; l < net->n_layers; l++) {
        const mdl_layer *ly = &net->layers[l];
        snprintf(names[l][0], sizeof names[l][0], "%d.weight", 2 * l);
        snprintf(names[l][1], sizeof names[l][1], "%d.bias", 2 * l);
        ts[nt++] = (st_wtensor){names[l][0], ST_F32, 2, {ly->out, ly->in}, ly->w};
        if (ly->b) ts[nt++] = (st_wtensor){names[l][1], ST_F32, 1, {ly->out}, ly->b};
    }
    if (net->in_mean) ts[nt++] = (st_wtensor){"input.mean", ST_F32, 1, {mdl_input_dim(m)}, net->in_mean};
    if (net->in_scale) ts[nt++] = (st_wtensor){"input.scale", ST_F32, 1, {mdl_input_dim(m)}, net->in_scale};
    rc = st_write(path, ts, nt, (const char *const *)kv, nkv, err);
    free(kv);
    return rc;
}
