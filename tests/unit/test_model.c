/* test_model.c - model loading: a corrupt-model table (exact messages), forward vs PyTorch golden
 * outputs (sgemv and sgemm paths), normalize override, save/load round trip, concurrent forward,
 * the `image` metadata against the input's shape and as described. */
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "../golden/model_golden.h"
#include "../tmpdir.h"
#include "mlp.h"
#include "st.h"

/* ---- building model images in memory ---- */

typedef struct {
    const char *name;
    const char *dtype; /* F32, F16, I32 */
    int ndim;
    int64_t shape[2];
    long bad_at; /* element set to NaN (F32) / +Inf (F16), or -1 */
} tdesc;

#define MAXT 80

typedef struct {
    tdesc t[MAXT];
    int n;
    const char *meta[16]; /* key, value, ... */
    int n_meta;
} mdesc;

static size_t esize(const char *dt) {
    return strcmp(dt, "F16") == 0 ? 2 : 4;
}

/* Serialise d as a safetensors image; small deterministic weights (0.01 * k, alternating sign). */
static uint8_t *build(const mdesc *d, size_t *len) {
    size_t cap = 65536, hl = 0, off = 0;
    char *h = malloc(cap);
    assert_non_null(h);
    hl += (size_t)snprintf(h + hl, cap - hl, "{");
    if (d->n_meta) {
        hl += (size_t)snprintf(h + hl, cap - hl, "\"__metadata__\":{");
        for (int i = 0; i < d->n_meta; i++)
            hl +=
                (size_t)snprintf(h + hl, cap - hl, "%s\"%s\":\"%s\"", i ? "," : "", d->meta[2 * i], d->meta[2 * i + 1]);
        hl += (size_t)snprintf(h + hl, cap - hl, "}%s", d->n ? "," : "");
    }
    size_t total = 0;
    for (int i = 0; i < d->n; i++) {
        const tdesc *t = &d->t[i];
        size_t ne = 1;
        for (int k = 0; k < t->ndim; k++) ne *= (size_t)t->shape[k];
        size_t bytes = ne * esize(t->dtype);
        if (t->ndim == 1)
            hl += (size_t)snprintf(h + hl, cap - hl,
                                   "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld],\"data_offsets\":[%zu,%zu]}",
                                   i ? "," : "", t->name, t->dtype, (long long)t->shape[0], off, off + bytes);
        else
            hl += (size_t)snprintf(
                h + hl, cap - hl, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[%lld,%lld],\"data_offsets\":[%zu,%zu]}",
                i ? "," : "", t->name, t->dtype, (long long)t->shape[0], (long long)t->shape[1], off, off + bytes);
        off += bytes;
    }
    hl += (size_t)snprintf(h + hl, cap - hl, "}");
    assert_true(hl < cap);
    total = 8 + hl + off;
    uint8_t *b = malloc(total);
    assert_non_null(b);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, h, hl);
    uint8_t *p = b + 8 + hl;
    for (int i = 0; i < d->n; i++) {
        const tdesc *t = &d->t[i];
        size_t ne = 1;
        for (int k = 0; k < t->ndim; k++) ne *= (size_t)t->shape[k];
        for (size_t k = 0; k < ne; k++) {
            if (strcmp(t->dtype, "F16") == 0) {
                uint16_t v = (long)k == t->bad_at ? 0x7C00 : (k & 1 ? 0xA11F : 0x211F); /* +-0.01 */
                memcpy(p, &v, 2);
                p += 2;
            } else if (strcmp(t->dtype, "I32") == 0) {
                int32_t v = (int32_t)k;
                memcpy(p, &v, 4);
                p += 4;
            } else {
                float v = (long)k == t->bad_at ? NAN : 0.01f * (float)(k % 7) * (k & 1 ? -1.0f : 1.0f);
                memcpy(p, &v, 4);
                p += 4;
            }
        }
    }
    free(h);
    *len = total;
    return b;
}

#define W(nm, o, i)                                                                                                    \
    { nm, "F32", 2, {o, i}, -1 }
#define B(nm, o)                                                                                                       \
    { nm, "F32", 1, {o, 0}, -1 }
#define GOOD_LAYERS W("0.weight", 4, 3), B("0.bias", 4), W("2.weight", 2, 4), B("2.bias", 2)
/* A good model whose metadata key holds a bad value: refused, naming the key. */
#define BAD_META(what, key, val, msg)                                                                                  \
    { what, {{GOOD_LAYERS}, 4, {key, val}, 1}, TR_EFORMAT, key, msg }

typedef struct {
    const char *what;
    mdesc d;
    int code;
    const char *field;
    const char *msg; /* exact */
} model_case;

static const model_case CORRUPT[] = {
    {"NaN weight",
     {{{"0.weight", "F32", 2, {4, 3}, 5}, B("0.bias", 4)}, 2, {0}, 0},
     TR_EFORMAT,
     "0.weight",
     "tensor \"0.weight\": element 5 is NaN"},
    {"Inf in an F16 bias",
     {{{"0.weight", "F16", 2, {4, 3}, -1}, {"0.bias", "F16", 1, {4, 0}, 2}}, 2, {0}, 0},
     TR_EFORMAT,
     "0.bias",
     "tensor \"0.bias\": element 2 is infinite"},
    {"bias without weight",
     {{W("0.weight", 4, 3), B("2.bias", 2)}, 2, {0}, 0},
     TR_EFORMAT,
     "2.bias",
     "tensor \"2.bias\": no matching \"2.weight\""},
    {"1-D weight",
     {{B("0.weight", 4)}, 1, {0}, 0},
     TR_EFORMAT,
     "0.weight",
     "tensor \"0.weight\": expected 2 dimensions [out, in], got 1"},
    {"shapes do not chain",
     {{W("0.weight", 16, 5), W("2.weight", 8, 17)}, 2, {0}, 0},
     TR_EFORMAT,
     "2.weight",
     "tensor \"2.weight\": shape [8,17] does not chain with layer 0 output 16"},
    {"bias shape",
     {{W("0.weight", 4, 3), B("0.bias", 3)}, 2, {0}, 0},
     TR_EFORMAT,
     "0.bias",
     "tensor \"0.bias\": expected shape [4] to match \"0.weight\""},
    {"2-D bias",
     {{W("0.weight", 4, 3), W("0.bias", 4, 1)}, 2, {0}, 0},
     TR_EFORMAT,
     "0.bias",
     "tensor \"0.bias\": expected shape [4] to match \"0.weight\""},
    BAD_META("bad activation", "activation", "swish",
             "metadata \"activation\": \"swish\" is not one of relu, gelu, tanh, sigmoid, identity"),
    BAD_META("bad normalize", "normalize", "yes", "metadata \"normalize\": \"yes\" is not \"true\" or \"false\""),
    BAD_META("bad metric", "metric", "manhattan",
             "metadata \"metric\": \"manhattan\" is not one of sqeuclidean, euclidean, cosine, dot"),
    BAD_META("bad loss", "loss", "arcface",
             "metadata \"loss\": \"arcface\" is not one of triplet, triplet-soft, contrastive, contrastive-squared, "
             "infonce"),
    BAD_META("negative margin", "margin", "-0.5", "metadata \"margin\": \"-0.5\" is not a finite number >= 0"),
    BAD_META("margin not a number", "margin", "0.2x", "metadata \"margin\": \"0.2x\" is not a finite number >= 0"),
    {"unknown tensor name",
     {{GOOD_LAYERS, W("encoder.weight", 1, 1)}, 5, {0}, 0},
     TR_EFORMAT,
     "encoder.weight",
     "tensor \"encoder.weight\": unknown name (expected \"{i}.weight\", \"{i}.bias\", \"input.mean\", "
     "\"input.scale\")"},
    {"leading zero in a layer index",
     {{W("01.weight", 4, 3)}, 1, {0}, 0},
     TR_EFORMAT,
     "01.weight",
     "tensor \"01.weight\": unknown name (expected \"{i}.weight\", \"{i}.bias\", \"input.mean\", \"input.scale\")"},
    {"input.mean wrong shape",
     {{GOOD_LAYERS, B("input.mean", 4)}, 5, {0}, 0},
     TR_EFORMAT,
     "input.mean",
     "tensor \"input.mean\": expected shape [3] (the input dimension)"},
    {"input.scale int dtype",
     {{GOOD_LAYERS, {"input.scale", "I32", 1, {3, 0}, -1}}, 5, {0}, 0},
     TR_EFORMAT,
     "input.scale",
     "tensor \"input.scale\": dtype I32 is not a float type (F32, F16, BF16, F64)"},
    {"int weight",
     {{{"0.weight", "I32", 2, {4, 3}, -1}}, 1, {0}, 0},
     TR_EFORMAT,
     "0.weight",
     "tensor \"0.weight\": dtype I32 is not a float type (F32, F16, BF16, F64)"},
    {"dim over the limit",
     {{W("0.weight", 65537, 1)}, 1, {0}, 0},
     TR_ELIMIT,
     "0.weight",
     "tensor \"0.weight\": shape [65537,1] outside 1..65536"},
    {"zero dim",
     {{W("0.weight", 0, 3)}, 1, {0}, 0},
     TR_ELIMIT,
     "0.weight",
     "tensor \"0.weight\": shape [0,3] outside 1..65536"},
    {"no layers",
     {{B("input.mean", 3)}, 1, {0}, 0},
     TR_EFORMAT,
     "",
     "no layers: the file has no \"{i}.weight\" tensor"},
};

static void check_refused(const char *what, const uint8_t *b, size_t len, int code, const char *field,
                          const char *msg) {
    mdl_model *m = (mdl_model *)b;
    tr_err err;
    tr_clearerr(&err);
    int rc = mdl_load_mem(b, len, &m, &err);
    if (rc != code || m != NULL || strcmp(err.msg, msg) != 0 || strcmp(err.field, field) != 0)
        fail_msg("%s: rc %d (want %d), field \"%s\" (want \"%s\"), msg \"%s\" (want \"%s\")", what, rc, code, err.field,
                 field, err.msg, msg);
}

static void test_corrupt_models(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof CORRUPT / sizeof CORRUPT[0]; i++) {
        size_t len;
        uint8_t *b = build(&CORRUPT[i].d, &len);
        check_refused(CORRUPT[i].what, b, len, CORRUPT[i].code, CORRUPT[i].field, CORRUPT[i].msg);
        free(b);
    }
    /* too many layers: 65 chained 1x1 layers */
    mdesc d;
    memset(&d, 0, sizeof d);
    static char names[MAXT][16];
    for (int i = 0; i <= MDL_MAX_LAYERS; i++) {
        snprintf(names[i], sizeof names[i], "%d.weight", i);
        d.t[d.n++] = (tdesc)W(names[i], 1, 1);
    }
    size_t len;
    uint8_t *b = build(&d, &len);
    check_refused("too many layers", b, len, TR_ELIMIT, "64.weight", "tensor \"64.weight\": more than 64 layers");
    free(b);
    /* the safetensors layer's refusals come through unchanged */
    const uint8_t tiny[4] = {0};
    check_refused("short file", tiny, 4, TR_EFORMAT, "header",
                  "file is 4 bytes, shorter than the 8-byte header length");
}

/* The builder makes loadable models: the same shapes with good values load, with metadata applied. */
static void test_built_model_loads(void **state) {
    (void)state;
    mdesc d = {{GOOD_LAYERS, B("input.mean", 3), B("input.scale", 3)},
               6,
               {"activation", "tanh", "normalize", "true", "metric", "cosine", "loss", "contrastive", "margin", "1.5",
                "name", "tiny", "custom", "x"},
               7};
    size_t len;
    uint8_t *b = build(&d, &len);
    mdl_model *m = NULL;
    tr_err err;
    if (mdl_load_mem(b, len, &m, &err) != TR_OK) fail_msg("load: %s", err.msg);
    assert_int_equal(mdl_mlp(m)->n_layers, 2);
    assert_int_equal(mdl_input_dim(m), 3);
    assert_int_equal(mdl_output_dim(m), 2);
    assert_int_equal(mdl_mlp(m)->act, MDL_ACT_TANH);
    assert_int_equal(m->normalize, 1);
    assert_int_equal(m->metric, DIST_COSINE);
    assert_string_equal(loss_name(m->loss), "contrastive");
    assert_true(m->margin == 1.5);
    assert_string_equal(m->name, "tiny");
    assert_int_equal(m->n_params, 4 * 3 + 4 + 2 * 4 + 2);
    assert_int_equal(m->n_meta, 7);
    assert_string_equal(m->meta[12], "custom");
    assert_non_null(mdl_mlp(m)->in_mean);
    assert_non_null(mdl_mlp(m)->in_scale);
    assert_string_equal(m->dtype, "F32");
    unsigned char md[32];
    unsigned int mdlen;
    assert_true(EVP_Digest(b, len, md, &mdlen, EVP_sha256(), NULL));
    char hex[65];
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(m->sha256, hex);
    mdl_free(m);
    free(b);
    mdl_free(NULL);
}

/* ---- forward against PyTorch ---- */

static const char *root(void) {
    const char *r = getenv("TRIPLET_ROOT");
    return r && *r ? r : ".";
}

static mdl_model *load_case(const model_golden_case *g) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", root(), g->path);
    mdl_model *m = NULL;
    tr_err err;
    if (mdl_load(path, &m, &err) != TR_OK) fail_msg("%s: %s", path, err.msg);
    return m;
}

/* Relative to the row's largest magnitude, so near-zero elements do not dominate. */
static void check_row(const char *what, size_t r, const float *got, const double *want, int dim, double tol) {
    double scale = 0;
    for (int j = 0; j < dim; j++) scale = fmax(scale, fabs(want[j]));
    for (int j = 0; j < dim; j++)
        if (!(fabs(got[j] - want[j]) <= tol * scale))
            fail_msg("%s row %zu [%d]: got %.9g want %.17g (tol %g x %g)", what, r, j, got[j], want[j], tol, scale);
}

static void test_forward_golden(void **state) {
    (void)state;
    mdl_ws ws = {0};
    tr_err err;
    for (size_t c = 0; c < sizeof MODEL_GOLDEN / sizeof MODEL_GOLDEN[0]; c++) {
        const model_golden_case *g = &MODEL_GOLDEN[c];
        mdl_model *m = load_case(g);
        assert_int_equal(mdl_input_dim(m), g->in);
        assert_int_equal(mdl_output_dim(m), g->out);
        /* batch: copies of the inputs so every case, including batch-1 goldens, takes the sgemm path;
         * for the first case enough rows (4250) for two blocks of the blocked forward and a tail */
        size_t copies = c == 0 ? 850 : 3, n = copies * (size_t)g->n;
        float *x = malloc(n * (size_t)g->in * sizeof *x), *y = malloc(n * (size_t)g->out * sizeof *y);
        assert_true(x && y);
        for (size_t k = 0; k < copies; k++)
            memcpy(x + (size_t)k * g->n * g->in, g->x, (size_t)g->n * g->in * sizeof *x);
        assert_int_equal(mdl_forward(m, x, n, y, -1, &ws, &err), TR_OK);
        for (size_t r = 0; r < n; r++) check_row(g->path, r, y + r * g->out, g->y + (r % g->n) * g->out, g->out, 1e-5);
        /* one row at a time: the sgemv path */
        for (int r = 0; r < g->n; r++) {
            float y1[256];
            assert_true(g->out <= 256);
            assert_int_equal(mdl_forward(m, g->x + (size_t)r * g->in, 1, y1, -1, &ws, &err), TR_OK);
            check_row(g->path, (size_t)r, y1, g->y + (size_t)r * g->out, g->out, 1e-5);
        }
        assert_int_equal(mdl_forward(m, x, 0, y, -1, &ws, &err), TR_OK);
        free(x);
        free(y);
        mdl_free(m);
    }
    mdl_ws_free(&ws);
}

static double row_norm(const float *v, int dim) {
    double s = 0;
    for (int j = 0; j < dim; j++) s += (double)v[j] * v[j];
    return sqrt(s);
}

static void test_normalize_override(void **state) {
    (void)state;
    mdl_ws ws = {0};
    tr_err err;
    for (size_t c = 0; c < sizeof MODEL_GOLDEN / sizeof MODEL_GOLDEN[0]; c++) {
        const model_golden_case *g = &MODEL_GOLDEN[c];
        mdl_model *m = load_case(g);
        size_t sz = (size_t)g->n * g->out;
        float *yd = malloc(sz * 4), *y0 = malloc(sz * 4), *y1 = malloc(sz * 4);
        assert_true(yd && y0 && y1);
        assert_int_equal(mdl_forward(m, g->x, (size_t)g->n, yd, -1, &ws, &err), TR_OK);
        assert_int_equal(mdl_forward(m, g->x, (size_t)g->n, y0, 0, &ws, &err), TR_OK);
        assert_int_equal(mdl_forward(m, g->x, (size_t)g->n, y1, 1, &ws, &err), TR_OK);
        assert_memory_equal(yd, m->normalize ? y1 : y0, sz * 4);
        for (int r = 0; r < g->n; r++) {
            const float *r0 = y0 + (size_t)r * g->out, *r1 = y1 + (size_t)r * g->out;
            double nrm = row_norm(r0, g->out);
            assert_true(fabs(row_norm(r1, g->out) - 1.0) < 1e-6);
            for (int j = 0; j < g->out; j++) assert_true(fabs(r1[j] - r0[j] / nrm) <= 1e-6);
            /* the golden output is normalised when the model says so */
            double gn = 0;
            for (int j = 0; j < g->out; j++) gn += g->y[(size_t)r * g->out + j] * g->y[(size_t)r * g->out + j];
            assert_true(!m->normalize || fabs(sqrt(gn) - 1.0) < 1e-9);
        }
        free(yd);
        free(y0);
        free(y1);
        mdl_free(m);
    }
    /* a zero vector stays zero: v / max(|v|, 1e-12) */
    float z[3] = {0, 0, 0};
    mdl_l2_normalize(z, 1, 3);
    assert_true(z[0] == 0 && z[1] == 0 && z[2] == 0);
    mdl_ws_free(&ws);
}

static void test_save_load_round_trip(void **state) {
    (void)state;
    const int dims[] = {5, 4, 3};
    mdl_model *m = NULL, *m2 = NULL;
    tr_err err;
    assert_int_equal(mdl_new(dims, 2, MDL_ACT_GELU, 1, &m, &err), TR_OK);
    assert_int_equal(m->n_params, 5 * 4 + 4 + 4 * 3 + 3);
    for (int l = 0; l < 2; l++) {
        mdl_layer *ly = &mdl_mlp(m)->layers[l];
        for (int k = 0; k < ly->in * ly->out; k++) ly->w[k] = (float)sin(k + 10 * l) * 0.7f;
        for (int k = 0; k < ly->out; k++) ly->b[k] = 0.1f * (float)k - 0.05f;
    }
    mdl_mlp(m)->in_mean = malloc(5 * sizeof(float));
    mdl_mlp(m)->in_scale = malloc(5 * sizeof(float));
    assert_true(mdl_mlp(m)->in_mean && mdl_mlp(m)->in_scale);
    for (int j = 0; j < 5; j++) {
        mdl_mlp(m)->in_mean[j] = 0.5f * (float)j;
        mdl_mlp(m)->in_scale[j] = 1.0f / (float)(j + 1);
    }
    m->metric = DIST_COSINE;
    assert_int_equal(loss_parse("contrastive", &m->loss), 0);
    m->margin = 0.75;
    snprintf(m->name, sizeof m->name, "round-trip");
    snprintf(m->description, sizeof m->description, "saved by test_model");
    char path[512];
    snprintf(path, sizeof path, "%s/test_model_%ld.safetensors", test_tmpdir(), (long)getpid());
    const char *extra[] = {"recipe", "semi-hard", "margin", "0.75"};
    if (mdl_save(m, path, extra, 2, &err) != TR_OK) fail_msg("save: %s", err.msg);
    if (mdl_load(path, &m2, &err) != TR_OK) fail_msg("load: %s", err.msg);
    assert_int_equal(mdl_mlp(m2)->n_layers, 2);
    for (int l = 0; l < 2; l++) {
        assert_int_equal(mdl_mlp(m2)->layers[l].in, mdl_mlp(m)->layers[l].in);
        assert_int_equal(mdl_mlp(m2)->layers[l].out, mdl_mlp(m)->layers[l].out);
        assert_memory_equal(mdl_mlp(m2)->layers[l].w, mdl_mlp(m)->layers[l].w,
                            (size_t)mdl_mlp(m)->layers[l].in * mdl_mlp(m)->layers[l].out * 4);
        assert_memory_equal(mdl_mlp(m2)->layers[l].b, mdl_mlp(m)->layers[l].b, (size_t)mdl_mlp(m)->layers[l].out * 4);
    }
    assert_memory_equal(mdl_mlp(m2)->in_mean, mdl_mlp(m)->in_mean, 5 * 4);
    assert_memory_equal(mdl_mlp(m2)->in_scale, mdl_mlp(m)->in_scale, 5 * 4);
    assert_int_equal(mdl_mlp(m2)->act, MDL_ACT_GELU);
    assert_int_equal(m2->normalize, 1);
    assert_int_equal(m2->metric, DIST_COSINE);
    assert_int_equal(m2->loss, m->loss);
    assert_true(m2->margin == 0.75);
    assert_string_equal(m2->name, "round-trip");
    assert_string_equal(m2->description, "saved by test_model");
    assert_int_equal(m2->n_params, m->n_params);
    assert_int_equal(strlen(m2->sha256), 64);
    int found = 0;
    for (size_t i = 0; i < m2->n_meta; i++)
        found += strcmp(m2->meta[2 * i], "recipe") == 0 && strcmp(m2->meta[2 * i + 1], "semi-hard") == 0;
    assert_int_equal(found, 1);
    /* nn.Sequential names, so PyTorch's load_state_dict takes the file */
    st_file *f = NULL;
    assert_int_equal(st_open(path, &f, &err), TR_OK);
    assert_non_null(st_find(f, "0.weight"));
    assert_non_null(st_find(f, "2.bias"));
    assert_string_equal(st_meta(f, "activation"), "gelu");
    assert_string_equal(st_meta(f, "metric"), "cosine");
    st_close(f);
    /* same forward */
    float x[2 * 5] = {1, 2, 3, 4, 5, -1, 0.5f, 0, 2, -3}, y1[6], y2[6];
    mdl_ws ws = {0};
    assert_int_equal(mdl_forward(m, x, 2, y1, -1, &ws, &err), TR_OK);
    assert_int_equal(mdl_forward(m2, x, 2, y2, -1, &ws, &err), TR_OK);
    assert_memory_equal(y1, y2, sizeof y1);
    mdl_ws_free(&ws);
    unlink(path);
    mdl_free(m);
    mdl_free(m2);
    /* mdl_new refuses bad dims */
    const int bad[] = {5, 0, 3};
    assert_int_equal(mdl_new(bad, 2, MDL_ACT_RELU, 0, &m, &err), TR_EINVAL);
    assert_null(m);
    assert_string_equal(err.msg, "dims[1] = 0 is outside 1..65536");
    const int big[] = {65536, 65536, 65536};
    assert_int_equal(mdl_new(big, 2, MDL_ACT_RELU, 0, &m, &err), TR_ELIMIT);
    assert_int_equal(mdl_new(dims, 0, MDL_ACT_RELU, 0, &m, &err), TR_EINVAL);
}

/* ---- concurrent readers ---- */

#define N_THREADS 8
#define CONC_ROWS 64

typedef struct {
    const mdl_model *m;
    const float *x;
    float *y; /* CONC_ROWS x out */
    int iters;
    int rc;
} worker;

static void *run_worker(void *arg) {
    worker *w = arg;
    mdl_ws ws = {0};
    tr_err err;
    int in = mdl_input_dim(w->m), out = mdl_output_dim(w->m);
    for (int it = 0; it < w->iters && w->rc == TR_OK; it++) {
        /* mix batch sizes so sgemv and sgemm calls overlap across threads */
        size_t r = 0;
        while (r < CONC_ROWS && w->rc == TR_OK) {
            size_t n = ((size_t)it + r) % 3 == 0 ? 1 : 13;
            if (r + n > CONC_ROWS) n = CONC_ROWS - r;
            w->rc = mdl_forward(w->m, w->x + r * (size_t)in, n, w->y + r * (size_t)out, -1, &ws, &err);
            r += n;
        }
    }
    mdl_ws_free(&ws);
    return NULL;
}

static void test_concurrent_forward(void **state) {
    (void)state;
    const model_golden_case *g = &MODEL_GOLDEN[0]; /* the 784-64-32 model */
    mdl_model *m = load_case(g);
    int in = g->in, out = g->out;
    float *x = malloc((size_t)CONC_ROWS * in * 4), *ref = malloc((size_t)CONC_ROWS * out * 4);
    assert_true(x && ref);
    for (size_t k = 0; k < (size_t)CONC_ROWS * in; k++) x[k] = (float)sin((double)k * 0.37) * 2.0f;
    mdl_ws ws = {0};
    tr_err err;
    for (int r = 0; r < CONC_ROWS; r++) /* reference: single thread, one row at a time */
        assert_int_equal(mdl_forward(m, x + (size_t)r * in, 1, ref + (size_t)r * out, -1, &ws, &err), TR_OK);
    mdl_ws_free(&ws);
    worker w[N_THREADS];
    pthread_t th[N_THREADS];
    for (int i = 0; i < N_THREADS; i++) {
        w[i] = (worker){m, x, calloc((size_t)CONC_ROWS * out, 4), 6, TR_OK};
        assert_non_null(w[i].y);
        assert_int_equal(pthread_create(&th[i], NULL, run_worker, &w[i]), 0);
    }
    for (int i = 0; i < N_THREADS; i++) assert_int_equal(pthread_join(th[i], NULL), 0);
    for (int i = 0; i < N_THREADS; i++) {
        assert_int_equal(w[i].rc, TR_OK);
        /* sgemm and sgemv may sum in a different order: equal within float rounding, not bitwise */
        for (size_t k = 0; k < (size_t)CONC_ROWS * out; k++)
            if (!(fabsf(w[i].y[k] - ref[k]) <= 1e-6f))
                fail_msg("thread %d element %zu: %.9g vs single-thread %.9g", i, k, w[i].y[k], ref[k]);
        free(w[i].y);
    }
    free(x);
    free(ref);
    mdl_free(m);
}

/* `image` metadata as mdl_meta_apply checks it against any format's input, and as the description shows it. */
static int describe_none(const mdl_model *m, cJSON *o) {
    (void)m, (void)o;
    return 0;
}

static void test_image_meta(void **state) {
    (void)state;
    static const mdl_ops ops = {"test", NULL, NULL, describe_none};
    static const struct {
        int rank;
        int64_t shape[3];
        const char *image, *msg; /* msg NULL: accepted */
    } CASES[] = {
        {3,
         {3, 24, 32},
         "{\"channels\":3,\"height\":24,\"width\":32,\"mean\":[0.286,0.485,0.406],\"std\":[0.353,0.229,0.225]}",
         NULL},
        {1, {2304}, "{\"channels\":3,\"height\":32,\"width\":24,\"mean\":[0,0,0],\"std\":[1,1,1]}", NULL},
        {3,
         {3, 24, 32},
         "{\"channels\":3,\"height\":32,\"width\":24,\"mean\":[0,0,0],\"std\":[1,1,1]}",
         "metadata \"image\": 3 x 32 x 24 (channels x height x width) does not match the input shape [batch, 3, 24, "
         "32]"},
        {3,
         {1, 24, 32},
         "{\"channels\":3,\"height\":8,\"width\":32,\"mean\":[0,0,0],\"std\":[1,1,1]}",
         "metadata \"image\": 3 x 8 x 32 (channels x height x width) does not match the input shape [batch, 1, 24, "
         "32]"},
        {3,
         {3, 24, 32},
         "{\"channels\":3,\"height\":24,\"width\":32,\"mean\":[0,0,0],\"std\":[1,1,1],\"layout\":\"NHWC\"}",
         "metadata \"image\": key \"layout\" is not one of channels, height, width, mean, std"},
        {3,
         {3, 24, 32},
         "{\"Channels\":3}",
         "metadata \"image\": key \"Channels\" is not one of channels, height, width, mean, std"},
        {3,
         {3, 24, 32},
         "{\"a\\u0001\\\"b\":1}",
         "metadata \"image\": key \"a??b\" is not one of channels, height, width, mean, std"},
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        mdl_model *m = mdl_alloc(&ops, MDL_FMT_ONNX);
        assert_non_null(m);
        m->in_rank = CASES[i].rank;
        m->input_dim = 1;
        for (int k = 0; k < CASES[i].rank; k++)
            m->in_shape[k] = CASES[i].shape[k], m->input_dim *= (size_t)CASES[i].shape[k];
        const char *kv[] = {"image", CASES[i].image};
        tr_err err = {0};
        int rc = mdl_meta_apply(m, 1, kv, &err);
        if (CASES[i].msg) {
            assert_int_equal(rc, TR_EFORMAT);
            assert_string_equal(err.field, "image");
            assert_string_equal(err.msg, CASES[i].msg);
        } else {
            if (rc) fail_msg("case %zu: %s", i, err.msg);
            assert_true(m->has_image);
        }
        if (i == 0) { /* the float32 mean and std are shown as written, not widened to double */
            cJSON *d = mdl_describe_json(m);
            char *js = cJSON_PrintUnformatted(d);
            assert_non_null(strstr(js, "\"mean\":[0.286,0.485,0.406],\"std\":[0.353,0.229,0.225]"));
            cJSON_free(js);
            cJSON_Delete(d);
        }
        mdl_free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt_models),       cmocka_unit_test(test_built_model_loads),
        cmocka_unit_test(test_forward_golden),       cmocka_unit_test(test_normalize_override),
        cmocka_unit_test(test_save_load_round_trip), cmocka_unit_test(test_concurrent_forward),
        cmocka_unit_test(test_image_meta),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
