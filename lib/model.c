/* model.c - MLP embedding models: validate and load safetensors, forward on OpenBLAS, save. */
#include "model.h"

#include <cblas.h>
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st.h"

static const char *act_names[ACT_COUNT] = {"relu", "gelu", "tanh", "sigmoid", "identity"};

int mdl_act_parse(const char *s, mdl_act *out) {
    for (int i = 0; i < ACT_COUNT; i++)
        if (strcmp(s, act_names[i]) == 0) {
            *out = (mdl_act)i;
            return 0;
        }
    return -1;
}

const char *mdl_act_name(mdl_act a) { return (unsigned)a < ACT_COUNT ? act_names[a] : "?"; }

void mdl_act_apply(mdl_act a, float *x, size_t n) {
    switch (a) {
    case ACT_RELU: {
        /* Blocks of 16 with a constant inner trip count: gcc -O2 turns them into vector max
         * instructions; a plain loop stays scalar and branchy (7 ns per element on random signs). */
        size_t i = 0;
        for (; i + 16 <= n; i += 16)
            for (size_t k = 0; k < 16; k++) {
                float v = x[i + k];
                x[i + k] = v > 0.0f ? v : 0.0f;
            }
        for (; i < n; i++) x[i] = x[i] > 0.0f ? x[i] : 0.0f;
        break;
    }
    case ACT_GELU:
        for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.70710678118654752f));
        break;
    case ACT_TANH:
        for (size_t i = 0; i < n; i++) x[i] = tanhf(x[i]);
        break;
    case ACT_SIGMOID:
        for (size_t i = 0; i < n; i++) x[i] = 1.0f / (1.0f + expf(-x[i]));
        break;
    default:
        break;
    }
}

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

void mdl_free(mdl_model *m) {
    if (m == NULL) return;
    for (int l = 0; l < m->n_layers; l++) {
        free(m->layers[l].w);
        free(m->layers[l].b);
    }
    free(m->in_mean);
    free(m->in_scale);
    for (size_t i = 0; i < 2 * m->n_meta; i++) free(m->meta[i]);
    free(m->meta);
    free(m);
}

static void set_defaults(mdl_model *m) {
    m->act = ACT_RELU;
    m->metric = DIST_SQEUCLIDEAN;
    m->loss = LOSS_TRIPLET;
    m->margin = 0.2;
    snprintf(m->dtype, sizeof m->dtype, "F32");
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
    mdl_model *m = calloc(1, sizeof *m);
    if (m == NULL) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    set_defaults(m);
    m->act = act;
    m->normalize = normalize;
    for (int l = 0; l < n_layers; l++) {
        mdl_layer *ly = &m->layers[l];
        ly->in = dims[l];
        ly->out = dims[l + 1];
        ly->w = calloc((size_t)ly->in * (size_t)ly->out, sizeof(float));
        ly->b = calloc((size_t)ly->out, sizeof(float));
        m->n_layers = l + 1;
        if (!ly->w || !ly->b) {
            rc = tr_seterr(err, TR_ENOMEM, "", "out of memory");
            goto fail;
        }
        m->n_params += (size_t)ly->in * (size_t)ly->out + (size_t)ly->out;
    }
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
    if (strcmp(p, ".weight") == 0) *kind = 'w';
    else if (strcmp(p, ".bias") == 0) *kind = 'b';
    else return -1;
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

static int is_float(st_dtype d) { return d == ST_F32 || d == ST_F16 || d == ST_BF16 || d == ST_F64; }

static int copy_f32(const st_file *f, const st_tensor *t, float **dst, tr_err *err) {
    *dst = malloc((t->nelem ? t->nelem : 1) * sizeof(float));
    if (*dst == NULL) return tr_seterr(err, TR_ENOMEM, t->name, "tensor \"%s\": out of memory", t->name);
    return st_to_f32(f, t, *dst, err);
}

static int parse_metadata(mdl_model *m, const st_file *f, tr_err *err) {
    const char *v;
    if ((v = st_meta(f, "activation")) && mdl_act_parse(v, &m->act) != 0)
        return tr_seterr(err, TR_EFORMAT, "activation",
                         "metadata \"activation\": \"%s\" is not one of relu, gelu, tanh, sigmoid, identity", v);
    if ((v = st_meta(f, "normalize"))) {
        if (strcmp(v, "true") == 0) m->normalize = 1;
        else if (strcmp(v, "false") == 0) m->normalize = 0;
        else return tr_seterr(err, TR_EFORMAT, "normalize", "metadata \"normalize\": \"%s\" is not \"true\" or \"false\"", v);
    }
    if ((v = st_meta(f, "metric")) && dist_parse(v, &m->metric) != 0)
        return tr_seterr(err, TR_EFORMAT, "metric",
                         "metadata \"metric\": \"%s\" is not one of sqeuclidean, euclidean, cosine, dot", v);
    if ((v = st_meta(f, "loss")) && loss_parse(v, &m->loss) != 0)
        return tr_seterr(err, TR_EFORMAT, "loss", "metadata \"loss\": \"%s\" is not one of triplet, triplet-soft, contrastive, contrastive-squared, infonce", v);
    if ((v = st_meta(f, "margin"))) {
        char *end;
        double d = strtod(v, &end);
        if (end == v || *end != '\0' || !isfinite(d) || d < 0)
            return tr_seterr(err, TR_EFORMAT, "margin", "metadata \"margin\": \"%s\" is not a finite number >= 0", v);
        m->margin = d;
    }
    if ((v = st_meta(f, "name"))) snprintf(m->name, sizeof m->name, "%s", v);
    if ((v = st_meta(f, "description"))) snprintf(m->description, sizeof m->description, "%s", v);
    size_t nm = st_meta_count(f);
    if ((m->meta = calloc(2 * nm + 1, sizeof(char *))) == NULL) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < nm; i++) {
        const char *k, *val;
        st_meta_at(f, i, &k, &val);
        m->meta[2 * i] = strdup(k);
        m->meta[2 * i + 1] = strdup(val);
        m->n_meta = i + 1;
        if (!m->meta[2 * i] || !m->meta[2 * i + 1]) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    }
    return TR_OK;
}

/* Check every tensor's name, rank and chaining before converting any weight. */
static int plan_layers(const st_file *f, layer_ref *refs, int *n_refs, const st_tensor **mean, const st_tensor **scale,
                       tr_err *err) {
    int n = 0;
    *mean = *scale = NULL;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        char kind = 0;
        if (strcmp(t->name, "input.mean") == 0) { *mean = t; continue; }
        if (strcmp(t->name, "input.scale") == 0) { *scale = t; continue; }
        long idx = layer_index(t->name, &kind);
        if (idx < 0)
            return tr_seterr(err, TR_EFORMAT, t->name,
                             "tensor \"%s\": unknown name (expected \"{i}.weight\", \"{i}.bias\", \"input.mean\", \"input.scale\")",
                             t->name);
        int j = 0;
        while (j < n && refs[j].idx != idx) j++;
        if (j == n) {
            if (n == MDL_MAX_LAYERS)
                return tr_seterr(err, TR_ELIMIT, t->name, "tensor \"%s\": more than %d layers", t->name, MDL_MAX_LAYERS);
            refs[n++] = (layer_ref){idx, NULL, NULL};
        }
        if (!is_float(t->dtype))
            return tr_seterr(err, TR_EFORMAT, t->name, "tensor \"%s\": dtype %s is not a float type (F32, F16, BF16, F64)",
                             t->name, st_dtype_name(t->dtype));
        if (kind == 'w') refs[j].w = t;
        else refs[j].b = t;
    }
    const st_tensor *pre[2] = {*mean, *scale};
    for (int i = 0; i < 2; i++)
        if (pre[i] && !is_float(pre[i]->dtype))
            return tr_seterr(err, TR_EFORMAT, pre[i]->name, "tensor \"%s\": dtype %s is not a float type (F32, F16, BF16, F64)",
                             pre[i]->name, st_dtype_name(pre[i]->dtype));
    if (n == 0) return tr_seterr(err, TR_EFORMAT, "", "no layers: the file has no \"{i}.weight\" tensor");
    qsort(refs, (size_t)n, sizeof *refs, by_idx);
    size_t params = 0;
    for (int l = 0; l < n; l++) {
        const st_tensor *w = refs[l].w, *b = refs[l].b;
        if (w == NULL)
            return tr_seterr(err, TR_EFORMAT, b->name, "tensor \"%s\": no matching \"%ld.weight\"", b->name, refs[l].idx);
        if (w->ndim != 2)
            return tr_seterr(err, TR_EFORMAT, w->name, "tensor \"%s\": expected 2 dimensions [out, in], got %d", w->name,
                             w->ndim);
        if (w->shape[0] < 1 || w->shape[1] < 1 || w->shape[0] > MDL_MAX_DIM || w->shape[1] > MDL_MAX_DIM)
            return tr_seterr(err, TR_ELIMIT, w->name, "tensor \"%s\": shape [%lld,%lld] outside 1..%d", w->name,
                             (long long)w->shape[0], (long long)w->shape[1], MDL_MAX_DIM);
        if (l > 0 && w->shape[1] != refs[l - 1].w->shape[0])
            return tr_seterr(err, TR_EFORMAT, w->name, "tensor \"%s\": shape [%lld,%lld] does not chain with layer %ld output %lld",
                             w->name, (long long)w->shape[0], (long long)w->shape[1], refs[l - 1].idx,
                             (long long)refs[l - 1].w->shape[0]);
        if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
            return tr_seterr(err, TR_EFORMAT, b->name, "tensor \"%s\": expected shape [%lld] to match \"%s\"", b->name,
                             (long long)w->shape[0], w->name);
        params += w->nelem + (b ? b->nelem : 0);
        if (params > MDL_MAX_PARAMS)
            return tr_seterr(err, TR_ELIMIT, w->name, "tensor \"%s\": model exceeds %u parameters", w->name, MDL_MAX_PARAMS);
    }
    for (int i = 0; i < 2; i++)
        if (pre[i] && (pre[i]->ndim != 1 || pre[i]->shape[0] != refs[0].w->shape[1]))
            return tr_seterr(err, TR_EFORMAT, pre[i]->name, "tensor \"%s\": expected shape [%lld] (the input dimension)",
                             pre[i]->name, (long long)refs[0].w->shape[1]);
    *n_refs = n;
    return TR_OK;
}

/* Build a model from an opened, header-validated file: plan (all checks), then convert. */
static int load_file(st_file *f, mdl_model **out, tr_err *err) {
    int rc, n = 0;
    mdl_model *m = NULL;
    layer_ref refs[MDL_MAX_LAYERS];
    const st_tensor *mean, *scale;
    size_t len;
    const uint8_t *buf = st_bytes(f, &len);
    if ((rc = plan_layers(f, refs, &n, &mean, &scale, err))) goto fail;
    if ((m = calloc(1, sizeof *m)) == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "", "out of memory");
        goto fail;
    }
    set_defaults(m);
    if ((rc = parse_metadata(m, f, err))) goto fail;
    snprintf(m->dtype, sizeof m->dtype, "%s", st_dtype_name(refs[0].w->dtype));
    for (int l = 0; l < n; l++) {
        mdl_layer *ly = &m->layers[l];
        m->n_layers = l + 1;
        ly->out = (int)refs[l].w->shape[0];
        ly->in = (int)refs[l].w->shape[1];
        if ((rc = copy_f32(f, refs[l].w, &ly->w, err))) goto fail;
        if (refs[l].b && (rc = copy_f32(f, refs[l].b, &ly->b, err))) goto fail;
        if (refs[l].w->dtype != refs[0].w->dtype || (refs[l].b && refs[l].b->dtype != refs[0].w->dtype))
            snprintf(m->dtype, sizeof m->dtype, "mixed");
        m->n_params += refs[l].w->nelem + (refs[l].b ? refs[l].b->nelem : 0);
    }
    if (mean && (rc = copy_f32(f, mean, &m->in_mean, err))) goto fail;
    if (scale && (rc = copy_f32(f, scale, &m->in_scale, err))) goto fail;
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (!EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        rc = tr_seterr(err, TR_EINTERNAL, "", "sha256 failed");
        goto fail;
    }
    for (int i = 0; i < 32; i++) snprintf(m->sha256 + 2 * i, 3, "%02x", md[i]);
    *out = m;
    return TR_OK;
fail:
    mdl_free(m);
    return rc;
}

int mdl_load_mem(const uint8_t *buf, size_t len, mdl_model **out, tr_err *err) {
    st_file *f = NULL;
    *out = NULL;
    int rc = st_open_mem(buf, len, &f, err);
    if (rc == TR_OK) rc = load_file(f, out, err);
    st_close(f);
    return rc;
}

int mdl_load(const char *path, mdl_model **out, tr_err *err) {
    st_file *f = NULL;
    *out = NULL;
    int rc = st_open(path, &f, err);
    if (rc == TR_OK) rc = load_file(f, out, err);
    st_close(f);
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

/* Forward n <= MDL_FWD_BLOCK rows; scratch holds the hidden buffers and the preprocessed input. */
static void forward_block(const mdl_model *m, const float *x, size_t n, float *y, float *scratch, size_t hid, size_t nbuf) {
    int in = mdl_input_dim(m);
    float *bufs[2] = {scratch, scratch + (nbuf > 1 ? n * hid : 0)}, *pre = scratch + nbuf * n * hid;
    const float *cur = x;
    if (m->in_mean || m->in_scale) {
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
        cur = pre;
    }
    for (int l = 0; l < m->n_layers; l++) {
        const mdl_layer *ly = &m->layers[l];
        float *dst = l == m->n_layers - 1 ? y : bufs[l & 1];
        float beta = 0.0f;
        if (ly->b) { /* bias rows + beta = 1 replace the zeroing pass GEMM would do for beta = 0 */
            for (size_t r = 0; r < n; r++) memcpy(dst + r * (size_t)ly->out, ly->b, (size_t)ly->out * sizeof(float));
            beta = 1.0f;
        }
        if (n == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, ly->out, ly->in, 1.0f, ly->w, ly->in, cur, 1, beta, dst, 1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, ly->out, ly->in, 1.0f, cur, ly->in, ly->w, ly->in,
                        beta, dst, ly->out);
        if (l < m->n_layers - 1) mdl_act_apply(m->act, dst, n * (size_t)ly->out);
        cur = dst;
    }
}

int mdl_forward(const mdl_model *m, const float *x, size_t n, float *y, int normalize, tr_scratch *ws, tr_err *err) {
    size_t in = (size_t)mdl_input_dim(m), out = (size_t)mdl_output_dim(m), hid = 0;
    for (int l = 0; l + 1 < m->n_layers; l++) hid = (size_t)m->layers[l].out > hid ? (size_t)m->layers[l].out : hid;
    /* scratch per block: two ping-pong hidden buffers (one suffices for two layers) and the preprocessed input */
    size_t nbuf = m->n_layers > 2 ? 2 : (size_t)(m->n_layers - 1);
    size_t per = nbuf * hid + (m->in_mean || m->in_scale ? in : 0), blk = n < MDL_FWD_BLOCK ? n : MDL_FWD_BLOCK;
    if (n > INT_MAX) return tr_seterr(err, TR_ELIMIT, "", "batch of %zu is too large", n);
    if (n == 0) return TR_OK;
    if (tr_scratch_reserve(ws, blk * per > 0 ? blk * per : 1))
        return tr_seterr(err, TR_ENOMEM, "", "out of memory for a batch of %zu", n);
    for (size_t r = 0; r < n; r += blk) {
        size_t k = n - r < blk ? n - r : blk;
        forward_block(m, x + r * in, k, y + r * out, ws->p, hid, nbuf);
    }
    if (normalize < 0 ? m->normalize : normalize) mdl_l2_normalize(y, n, out);
    return TR_OK;
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

int mdl_save(const mdl_model *m, const char *path, const char *const *extra_meta, size_t n_extra, tr_err *err) {
    int rc;
    size_t nt = 0, nkv = 0, cap = m->n_meta + n_extra + 8;
    char names[MDL_MAX_LAYERS][2][24], margin[32];
    st_wtensor ts[2 * MDL_MAX_LAYERS + 2];
    const char **kv = calloc(2 * cap, sizeof(char *));
    if (kv == NULL) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < m->n_meta; i++) kv_set(kv, &nkv, m->meta[2 * i], m->meta[2 * i + 1]);
    snprintf(margin, sizeof margin, "%.9g", m->margin);
    kv_set(kv, &nkv, "activation", mdl_act_name(m->act));
    kv_set(kv, &nkv, "normalize", m->normalize ? "true" : "false");
    kv_set(kv, &nkv, "metric", dist_name(m->metric));
    kv_set(kv, &nkv, "loss", loss_name(m->loss));
    kv_set(kv, &nkv, "margin", margin);
    if (m->name[0]) kv_set(kv, &nkv, "name", m->name);
    if (m->description[0]) kv_set(kv, &nkv, "description", m->description);
    for (size_t i = 0; i < n_extra; i++) kv_set(kv, &nkv, extra_meta[2 * i], extra_meta[2 * i + 1]);
    for (int l = 0; l < m->n_layers; l++) {
        const mdl_layer *ly = &m->layers[l];
        snprintf(names[l][0], sizeof names[l][0], "%d.weight", 2 * l);
        snprintf(names[l][1], sizeof names[l][1], "%d.bias", 2 * l);
        ts[nt++] = (st_wtensor){names[l][0], ST_F32, 2, {ly->out, ly->in}, ly->w};
        if (ly->b) ts[nt++] = (st_wtensor){names[l][1], ST_F32, 1, {ly->out}, ly->b};
    }
    if (m->in_mean) ts[nt++] = (st_wtensor){"input.mean", ST_F32, 1, {mdl_input_dim(m)}, m->in_mean};
    if (m->in_scale) ts[nt++] = (st_wtensor){"input.scale", ST_F32, 1, {mdl_input_dim(m)}, m->in_scale};
    rc = st_write(path, ts, nt, (const char *const *)kv, nkv, err);
    free(kv);
    return rc;
}
