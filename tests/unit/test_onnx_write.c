/* test_onnx_write.c - onx_write: networks of every layer kind with random weights, written as ONNX, loaded by
 * mdl_load and run by mdl_forward against a direct float64 forward of the same weights; metadata read back;
 * argument errors; atomic replacement. `test_onnx_write --emit DIR` writes the Fashion-MNIST recipe model and
 * its inputs for tests/cli/onnx_write_ort.sh (ONNX Runtime against tripletd). */
#include <dirent.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../tmpdir.h"
#include "model.h"
#include "nn_arch.h"
#include "onnx_write.h"

#define RECIPE "conv32k3p1,bn,relu,maxpool2,conv64k3p1,bn,relu,maxpool2,flatten,fc256,relu,fc128"

static uint64_t rng_state = 88172645463325252u;
static double urand(double lo, double hi) { /* xorshift64: the same weights on every machine */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Weights scaled by fan-in, BatchNorm statistics away from the identity. */
static void random_weights(const nn_arch *a, float *p, float *s) {
    for (int i = 0; i < a->n; i++) {
        const nn_layer *L = &a->l[i];
        int bn = L->kind == NN_BN;
        size_t fan = L->n_b ? L->n_w / L->n_b : 1;
        for (size_t k = 0; k < L->n_w; k++) p[L->w_off + k] = (float)(bn ? urand(0.5, 1.5) : urand(-1, 1) / sqrt(fan));
        for (size_t k = 0; k < L->n_b; k++) p[L->b_off + k] = (float)urand(-0.2, 0.2);
        for (size_t k = 0; k < L->n_s / 2; k++) {
            s[L->s_off + k] = (float)urand(-0.3, 0.3);
            s[L->s_off + L->n_s / 2 + k] = (float)urand(0.5, 2.0);
        }
    }
}

static size_t numel(nn_shape s) {
    return (size_t)s.c * (size_t)s.h * (size_t)s.w;
}

/* One layer of the reference forward on one sample (CHW, float64). */
static void ref_layer(const nn_layer *L, const float *p, const float *st, const double *x, double *y) {
    const nn_shape in = L->in, o = L->outs;
    size_t ni = numel(in), no = numel(o);
    switch (L->kind) {
    case NN_CONV: {
        int cg = in.c / L->groups, og = L->out / L->groups;
        for (int oc = 0; oc < o.c; oc++)
            for (int oy = 0; oy < o.h; oy++)
                for (int ox = 0; ox < o.w; ox++) {
                    double acc = p[L->b_off + (size_t)oc];
                    for (int ic = 0; ic < cg; ic++)
                        for (int ky = 0; ky < L->k; ky++)
                            for (int kx = 0; kx < L->k; kx++) {
                                int iy = oy * L->stride - L->pad + ky, ix = ox * L->stride - L->pad + kx;
                                if (iy < 0 || ix < 0 || iy >= in.h || ix >= in.w) continue;
                                int c = oc / og * cg + ic;
                                acc += p[L->w_off +
                                         (((size_t)oc * (size_t)cg + (size_t)ic) * (size_t)L->k + (size_t)ky) *
                                             (size_t)L->k +
                                         (size_t)kx] *
                                       x[((size_t)c * (size_t)in.h + (size_t)iy) * (size_t)in.w + (size_t)ix];
                            }
                    y[((size_t)oc * (size_t)o.h + (size_t)oy) * (size_t)o.w + (size_t)ox] = acc;
                }
        return;
    }
    case NN_MAXPOOL:
    case NN_AVGPOOL:
        for (int c = 0; c < o.c; c++)
            for (int oy = 0; oy < o.h; oy++)
                for (int ox = 0; ox < o.w; ox++) {
                    double m = -INFINITY, sum = 0;
                    for (int ky = 0; ky < L->k; ky++)
                        for (int kx = 0; kx < L->k; kx++) {
                            int iy = oy * L->stride - L->pad + ky, ix = ox * L->stride - L->pad + kx;
                            if (iy < 0 || ix < 0 || iy >= in.h || ix >= in.w) continue;
                            double v = x[((size_t)c * (size_t)in.h + (size_t)iy) * (size_t)in.w + (size_t)ix];
                            m = v > m ? v : m;
                            sum += v;
                        }
                    y[((size_t)c * (size_t)o.h + (size_t)oy) * (size_t)o.w + (size_t)ox] =
                        L->kind == NN_MAXPOOL ? m : sum / (L->k * L->k);
                }
        return;
    case NN_GAP:
        for (int c = 0; c < in.c; c++) {
            double sum = 0;
            size_t hw = (size_t)in.h * (size_t)in.w;
            for (size_t i = 0; i < hw; i++) sum += x[(size_t)c * hw + i];
            y[c] = sum / (double)hw;
        }
        return;
    case NN_BN: {
        size_t hw = ni / (size_t)in.c;
        for (size_t i = 0; i < ni; i++) {
            size_t c = i / hw;
            double mean = st[L->s_off + c], var = st[L->s_off + (size_t)in.c + c];
            y[i] = (x[i] - mean) / sqrt(var + 1e-5) * p[L->w_off + c] + p[L->b_off + c];
        }
        return;
    }
    case NN_FC:
        for (int r = 0; r < L->out; r++) {
            double acc = p[L->b_off + (size_t)r];
            for (size_t k = 0; k < ni; k++) acc += p[L->w_off + (size_t)r * ni + k] * x[k];
            y[r] = acc;
        }
        return;
    default:
        for (size_t i = 0; i < no; i++) {
            double v = x[i];
            y[i] = L->kind == NN_RELU      ? (v > 0 ? v : 0)
                   : L->kind == NN_GELU    ? 0.5 * v * (1 + erf(v / sqrt(2.0)))
                   : L->kind == NN_TANH    ? tanh(v)
                   : L->kind == NN_SIGMOID ? 1 / (1 + exp(-v))
                                           : v; /* dropout, flatten */
        }
    }
}

/* The whole network on n samples of pixel values (image preprocessing of im applied first). */
static void ref_forward(const nn_arch *a, const float *p, const float *st, const mdl_image *im, const float *x,
                        size_t n, double *out) {
    size_t cap = numel(a->input);
    for (int i = 0; i < a->n; i++) cap = numel(a->l[i].outs) > cap ? numel(a->l[i].outs) : cap;
    double *u = malloc(cap * sizeof *u), *v = malloc(cap * sizeof *v);
    assert_true(u && v);
    size_t din = numel(a->input), dout = nn_arch_out_dim(a), plane = (size_t)a->input.h * (size_t)a->input.w;
    for (size_t r = 0; r < n; r++) {
        for (size_t i = 0; i < din; i++) {
            size_t c = i / plane;
            u[i] = im ? (x[r * din + i] / 255.0 - im->mean[c]) / im->std[c] : x[r * din + i];
        }
        for (int l = 0; l < a->n; l++) {
            ref_layer(&a->l[l], p, st, u, v);
            double *t = u;
            u = v;
            v = t;
        }
        memcpy(out + r * dout, u, dout * sizeof *u);
    }
    free(u);
    free(v);
}

static void path_in_tmp(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/test_onnx_write_%d_%s", test_tmpdir(), (int)getpid(), name);
}

/* Write arch with random weights, load it, forward n samples; compare with the reference. */
static void roundtrip(const char *arch, nn_shape in, const mdl_image *im, size_t n) {
    static nn_arch a;
    tr_err err;
    char path[512];
    if (nn_arch_parse(arch, in, &a, &err)) fail_msg("%s: %s", arch, err.msg);
    float *p = malloc((a.n_params + 1) * sizeof *p), *s = malloc((a.n_state + 1) * sizeof *s);
    size_t din = numel(in), dout = nn_arch_out_dim(&a);
    float *x = malloc(n * din * sizeof *x), *y = malloc(n * dout * sizeof *y);
    double *want = malloc(n * dout * sizeof *want);
    assert_true(p && s && x && y && want);
    random_weights(&a, p, s);
    for (size_t i = 0; i < n * din; i++) x[i] = (float)(im ? floor(urand(0, 256)) : urand(-2, 2));
    const char *meta[] = {"name", "t", "normalize", "false", "recipe", arch};
    path_in_tmp(path, sizeof path, "rt.onnx");
    if (onx_write(path, &a, p, a.n_state ? s : NULL, im, meta, 3, &err)) fail_msg("%s: write: %s", arch, err.msg);
    mdl_model *m = NULL;
    if (mdl_load(path, &m, &err)) fail_msg("%s: load: %s", arch, err.msg);
    assert_string_equal(mdl_format_name(m), "onnx");
    assert_int_equal(m->input_dim, din);
    assert_int_equal(m->output_dim, dout);
    assert_string_equal(mdl_meta(m, "recipe"), arch);
    assert_int_equal(m->has_image, im != NULL);
    mdl_ws ws = {0};
    if (mdl_forward(m, x, n, y, -1, &ws, &err)) fail_msg("%s: forward: %s", arch, err.msg);
    ref_forward(&a, p, s, im, x, n, want);
    for (size_t i = 0; i < n * dout; i++)
        if (!(fabs(y[i] - want[i]) <= 1e-4 + 1e-3 * fabs(want[i])))
            fail_msg("%s: output %zu: %.7g, want %.7g", arch, i, (double)y[i], want[i]);
    mdl_ws_free(&ws);
    mdl_free(m);
    unlink(path);
    free(p);
    free(s);
    free(x);
    free(y);
    free(want);
}

static void test_recipe(void **state) {
    (void)state;
    mdl_image im = {1, 28, 28, {0.2860f, 0, 0}, {0.3530f, 1, 1}};
    roundtrip(RECIPE, (nn_shape){1, 28, 28}, &im, 3);
}

/* Every layer kind: strides, padding, groups, pools with padding, gap, dropout, BatchNorm1d after fc. */
static void test_every_layer(void **state) {
    (void)state;
    mdl_image im = {3, 11, 9, {0.5f, 0.25f, 0.1f}, {0.2f, 0.5f, 1.0f}};
    roundtrip("conv8k3s2p1,gelu,avgpool3s1p1,conv12k3p1g4,bn,tanh,maxpool3s2p1,dropout0.25,conv6k1,sigmoid,gap,"
              "fc10,bn,relu,fc5",
              (nn_shape){3, 11, 9}, &im, 4);
    roundtrip("conv4k5p2g1,relu,avgpool2,gap", (nn_shape){2, 7, 6}, NULL, 2); /* ends 4-D: flattened */
}

/* Flat inputs: the MLP form (input [batch, C]), a conv after fc (reshaped to C x 1 x 1), only dropout. */
static void test_flat(void **state) {
    (void)state;
    roundtrip("20-16-8", (nn_shape){20, 1, 1}, NULL, 5);
    roundtrip("fc16,bn,relu,conv4k1,flatten,fc3", (nn_shape){10, 1, 1}, NULL, 3);
    roundtrip("dropout0.5", (nn_shape){6, 1, 1}, NULL, 2);
}

/* The metadata as tripletd reads it: scoring defaults, name, image, any extra key. */
static void test_metadata(void **state) {
    (void)state;
    static nn_arch a;
    tr_err err;
    char path[512];
    assert_int_equal(nn_arch_parse("conv2k3,relu,flatten,fc4", (nn_shape){1, 5, 5}, &a, &err), TR_OK);
    float p[256] = {0}, s[1] = {0};
    assert_true(a.n_params <= 256);
    mdl_image im = {1, 5, 5, {0.25f, 0, 0}, {0.5f, 1, 1}};
    const char *meta[] = {
        "name", "fashion-mnist-cnn", "description", "a test", "normalize", "true",    "metric", "cosine",
        "loss", "triplet",           "margin",      "0.3",    "recipe",    "--arch x"};
    path_in_tmp(path, sizeof path, "meta.onnx");
    assert_int_equal(onx_write(path, &a, p, s, &im, meta, 7, &err), TR_OK);
    mdl_model *m = NULL;
    if (mdl_load(path, &m, &err)) fail_msg("load: %s", err.msg);
    assert_int_equal(m->n_params, a.n_params);
    assert_string_equal(m->name, "fashion-mnist-cnn");
    assert_string_equal(m->description, "a test");
    assert_int_equal(m->normalize, 1);
    assert_int_equal(m->metric, DIST_COSINE);
    assert_true(fabs(m->margin - 0.3) < 1e-12);
    assert_true(m->has_image && m->image.channels == 1 && m->image.height == 5 && m->image.width == 5);
    assert_true(m->image.mean[0] == 0.25f && m->image.std[0] == 0.5f);
    assert_string_equal(mdl_meta(m, "recipe"), "--arch x");
    cJSON *d = mdl_describe_json(m);
    assert_non_null(d);
    cJSON *op = cJSON_GetObjectItem(d, "opset"), *in = cJSON_GetObjectItem(d, "input");
    assert_true(cJSON_IsNumber(op) && op->valueint == 13);
    char *txt = cJSON_PrintUnformatted(cJSON_GetObjectItem(in, "shape"));
    assert_string_equal(txt, "[\"batch\",1,5,5]");
    free(txt);
    cJSON_Delete(d);
    mdl_free(m);
    unlink(path);
}

/* Refusals, each with its status and a message naming the problem; nothing is left behind. */
static void test_errors(void **state) {
    (void)state;
    static nn_arch a;
    tr_err err;
    char path[512], dir[512];
    assert_int_equal(nn_arch_parse("conv2k3,bn,flatten,fc4", (nn_shape){1, 5, 5}, &a, &err), TR_OK);
    float p[256] = {0}, s[16] = {0};
    mdl_image bad_dims = {1, 5, 4, {0, 0, 0}, {1, 1, 1}}, bad_std = {1, 5, 5, {0, 0, 0}, {0, 1, 1}};
    const char *dup[] = {"name", "a", "name", "b"}, *img[] = {"image", "{}"}, *empty[] = {"", "x"};
    path_in_tmp(path, sizeof path, "err.onnx");
    struct {
        const float *p, *s;
        const mdl_image *im;
        const char *const *meta;
        size_t n_meta;
        int code;
        const char *msg;
    } cases[] = {
        {NULL, s, NULL, NULL, 0, TR_EINVAL, "parameters"},
        {p, NULL, NULL, NULL, 0, TR_EINVAL, "state values, none given"},
        {p, s, &bad_dims, NULL, 0, TR_EINVAL, "image 1x5x4 does not match the input 1x5x5"},
        {p, s, &bad_std, NULL, 0, TR_EINVAL, "std finite and > 0"},
        {p, s, NULL, dup, 2, TR_EINVAL, "metadata key \"name\" given twice"},
        {p, s, &bad_std, img, 1, TR_EINVAL, "std"},
        {p, s, NULL, empty, 1, TR_EINVAL, "empty key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = onx_write(path, &a, cases[i].p, cases[i].s, cases[i].im, cases[i].meta, cases[i].n_meta, &err);
        if (rc != cases[i].code || !strstr(err.msg, cases[i].msg))
            fail_msg("case %zu: %d \"%s\", want %d \"%s\"", i, rc, err.msg, cases[i].code, cases[i].msg);
        assert_int_equal(access(path, F_OK), -1);
    }
    mdl_image ok_im = {1, 5, 5, {0, 0, 0}, {1, 1, 1}};
    assert_int_equal(onx_write(path, &a, p, s, &ok_im, img, 1, &err), TR_EINVAL);
    assert_non_null(strstr(err.msg, "\"image\" given twice"));
    snprintf(dir, sizeof dir, "%s/test_onnx_write_%d_missing/x.onnx", test_tmpdir(), (int)getpid());
    assert_int_equal(onx_write(dir, &a, p, s, NULL, NULL, 0, &err), TR_EIO);
    assert_non_null(strstr(err.msg, "x.onnx"));
}

/* A write replaces the file whole and leaves no temporary beside it. */
static void test_atomic(void **state) {
    (void)state;
    static nn_arch a;
    tr_err err;
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s/test_onnx_write_%d_dir", test_tmpdir(), (int)getpid());
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/m.onnx", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("old", f);
    fclose(f);
    assert_int_equal(nn_arch_parse("4-3", (nn_shape){4, 1, 1}, &a, &err), TR_OK);
    float p[15] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0.5f, -0.5f, 0};
    assert_int_equal(onx_write(path, &a, p, NULL, NULL, NULL, 0, &err), TR_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    mdl_model *m = NULL;
    if (mdl_load(path, &m, &err)) fail_msg("load: %s", err.msg);
    float x[4] = {1, 0, 0, 1}, y[3];
    mdl_ws ws = {0};
    assert_int_equal(mdl_forward(m, x, 1, y, 0, &ws, &err), TR_OK);
    assert_true(y[0] == 1 + 4 + 0.5f && y[1] == 5 + 8 - 0.5f && y[2] == 9 + 12);
    mdl_ws_free(&ws);
    mdl_free(m);
    int n = 0;
    DIR *d = opendir(dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;) n += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(n, 1);
    unlink(path);
    rmdir(dir);
}

/* --emit DIR: the recipe model (image metadata, normalize true) as model.onnx, with 8 samples of pixel values
 * as inputs.json (JSON array of arrays). */
static int emit(const char *dir) {
    static nn_arch a;
    tr_err err;
    char path[1024];
    if (nn_arch_parse(RECIPE, (nn_shape){1, 28, 28}, &a, &err)) return fprintf(stderr, "%s\n", err.msg), 1;
    float *p = malloc(a.n_params * sizeof *p), *s = malloc(a.n_state * sizeof *s);
    if (!p || !s) return 1;
    random_weights(&a, p, s);
    mdl_image im = {1, 28, 28, {0.2860f, 0, 0}, {0.3530f, 1, 1}};
    const char *meta[] = {"name", "onnx-write-test", "normalize", "true", "metric", "sqeuclidean", "recipe", RECIPE};
    snprintf(path, sizeof path, "%s/model.onnx", dir);
    int rc = onx_write(path, &a, p, s, &im, meta, 4, &err);
    free(p);
    free(s);
    if (rc) return fprintf(stderr, "%s\n", err.msg), 1;
    snprintf(path, sizeof path, "%s/inputs.json", dir);
    FILE *f = fopen(path, "w");
    if (!f) return 1;
    for (int r = 0; r < 8; r++)
        for (int i = 0; i < 784; i++)
            fprintf(f, "%s%d%s", i ? "," : r ? ",[" : "[[", (int)urand(0, 256), i < 783 ? "" : "]");
    fputs("]\n", f);
    return fclose(f) != 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "--emit") == 0) return emit(argv[2]);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_recipe),   cmocka_unit_test(test_every_layer), cmocka_unit_test(test_flat),
        cmocka_unit_test(test_metadata), cmocka_unit_test(test_errors),      cmocka_unit_test(test_atomic),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
