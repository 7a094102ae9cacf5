/* test_onnx.c - ONNX graphs exported by PyTorch (tests/golden/gen_onnx.py) against PyTorch's outputs:
 * opsets 11/13/17, dynamic and fixed batch, row by row and in batches, two threads at once. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "onnx.h"
#include "onnx_op.h"
#include "onnx_seg.h"
#include "onnx_sgemm.h"

#include "capped.h"

static const char *root(void) {
    const char *r = getenv("TRIPLET_ROOT");
    return r ? r : ".";
}

typedef struct {
    int n, dim;
    float *v;
} rows;

static char data_dir[900];

static rows read_rows(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    rows r = {0};
    int32_t hdr[2];
    assert_int_equal(fread(hdr, sizeof hdr[0], 2, f), 2);
    r.n = hdr[0], r.dim = hdr[1];
    r.v = malloc(sizeof(float) * (size_t)r.n * (size_t)r.dim);
    assert_non_null(r.v);
    assert_int_equal(fread(r.v, sizeof(float), (size_t)r.n * (size_t)r.dim, f), (size_t)r.n * (size_t)r.dim);
    fclose(f);
    return r;
}

static onx_graph *open_model(const char *name) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
    onx_graph *g = NULL;
    tr_err err = {0};
    int rc = onx_open(path, &g, &err);
    if (rc) fail_msg("%s: %s", name, err.msg);
    return g;
}

/* |got - want| <= 1e-4 + 1e-3 |want| everywhere. */
static void check_close(const char *what, const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= 1e-4f + 1e-3f * fabsf(want[i])))
            fail_msg("%s: element %zu is %.7g, PyTorch %.7g", what, i, (double)got[i], (double)want[i]);
}

/* model.onnx against model.in / model.out: all rows at once (a fixed batch
 * pads or splits), then one row at a time in the same workspace. */
static void check_model(const char *file, const rows *x, const rows *y, int64_t fixed, int opset) {
    onx_graph *g = open_model(file);
    assert_int_equal(onx_input_dim(g), (size_t)x->dim);
    assert_int_equal(onx_output_dim(g), (size_t)y->dim);
    assert_int_equal(onx_fixed_batch(g), fixed);
    assert_int_equal(onx_opset(g), opset);
    size_t ny = (size_t)y->n * (size_t)y->dim;
    float *out = calloc(ny, sizeof *out);
    assert_non_null(out);
    onx_ws *ws = NULL;
    tr_err err = {0};
    assert_int_equal(onx_forward(g, x->v, (size_t)x->n, out, &ws, &err), TR_OK);
    check_close(file, out, y->v, ny);
    memset(out, 0, sizeof *out * ny);
    for (int i = 0; i < x->n; i++)
        assert_int_equal(
            onx_forward(g, x->v + (size_t)i * (size_t)x->dim, 1, out + (size_t)i * (size_t)y->dim, &ws, &err), TR_OK);
    check_close(file, out, y->v, ny);
    /* 300 rows (the golden ones repeated): more than one chunk of rows,
     * and batch sizes between the planned size classes */
    size_t big = 300;
    float *bx = malloc(sizeof *bx * big * (size_t)x->dim), *by = malloc(sizeof *by * big * (size_t)y->dim);
    assert_true(bx && by);
    for (size_t i = 0; i < big; i++)
        memcpy(bx + i * (size_t)x->dim, x->v + (i % (size_t)x->n) * (size_t)x->dim, sizeof *bx * (size_t)x->dim);
    for (size_t n = 3; n <= big; n += n < 20 ? 1 : 97) {
        assert_int_equal(onx_forward(g, bx, n, by, &ws, &err), TR_OK);
        for (size_t i = 0; i < n; i++)
            check_close(file, by + i * (size_t)y->dim, y->v + (i % (size_t)y->n) * (size_t)y->dim, (size_t)y->dim);
    }
    free(bx);
    free(by);
    onx_ws_free(ws);
    free(out);
    onx_free(g);
}

static void check_set(const char *model, const int *opsets, const char *const *kinds, const int64_t *fixed, int n) {
    char name[128];
    snprintf(name, sizeof name, "%s.in", model);
    rows x = read_rows(name);
    snprintf(name, sizeof name, "%s.out", model);
    rows y = read_rows(name);
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%s_op%d_%s.onnx", model, opsets[i], kinds[i]);
        check_model(name, &x, &y, fixed[i], opsets[i]);
    }
    free(x.v);
    free(y.v);
}

static void test_golden(void **state) {
    (void)state;
    static const char *const models[] = {"fashion", "conv1d"};
    static const int opsets[] = {11, 11, 13, 13, 17, 17};
    static const char *const kinds[] = {"dyn", "b4", "dyn", "b4", "dyn", "b4"};
    static const int64_t fixed[] = {0, 4, 0, 4, 0, 4};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++) check_set(models[m], opsets, kinds, fixed, 6);
    /* residual blocks (two files: the fused paths, not the exporter's opsets, are what it adds) */
    static const int ropsets[] = {13, 17};
    static const char *const rkinds[] = {"dyn", "b4"};
    static const int64_t rfixed[] = {0, 4};
    check_set("resblock", ropsets, rkinds, rfixed, 2);
    check_set("invres", ropsets, rkinds, rfixed, 2);
    check_set("stage7", ropsets, rkinds, rfixed, 2);
    check_set("wide", ropsets, rkinds, rfixed, 1);
}

/* The residual Adds fuse into the convs whose paths take them (onnx_opt.c). resblock's: on AVX-512 both (the
 * first block's by Winograd, the second's by onnx_convpx.c), with AVX2 the Winograd one; invres's into its 1x1
 * projections on the SGEMM, AVX-512 and AVX2; without either none. An Add left is a live node. The golden test
 * checks the numbers of each. */
static void test_residual_fusion(void **state) {
    (void)state;
    static const onx_kern caps[] = {ONX_K_AVX512, ONX_K_AVX2, ONX_K_NONE};
    for (size_t i = 0; i < sizeof caps / sizeof caps[0]; i++) {
        onx_sgemm_cap(caps[i]);
        onx_kern kn = onx_sgemm_best();
        for (int f = 0; f < 2; f++) {
            onx_graph *g = open_model(f ? "invres_op13_dyn.onnx" : "resblock_op13_dyn.onnx");
            int fused = 0, adds = 0;
            for (int k = 0; k < g->n_nodes; k++) {
                const onx_node *nd = &g->nodes[k];
                fused += !nd->dead && !strcmp(nd->op->name, "Conv") && nd->n_in == 4;
                adds += !nd->dead && !strcmp(nd->op->name, "Add");
            }
            int want = kn == ONX_K_NONE ? 0 : kn == ONX_K_AVX512 || f ? 2 : 1;
            if (fused != want || adds != 2 - want)
                fail_msg("%s, kernel %d: %d convs took a residual and %d Adds are left; want %d and %d",
                         f ? "invres" : "resblock", (int)kn, fused, adds, want, 2 - want);
            onx_free(g);
        }
    }
    onx_sgemm_cap(ONX_K_AVX512);
}

/* The same golden files on the AVX2 paths (Winograd F(2x2) in 8-float vectors, the 6x16 tiles, the 8-float
 * pools) and the plain ones (OpenBLAS im2col, scalar loops): capped.h. */
static void test_golden_capped(void **state) {
    run_capped(test_golden, state);
}

/* torchvision architectures from `make test-zoo` (tests/golden/gen_zoo.py),
 * when ONNX_ZOO names their folder and ONNX_ZOO_MODELS lists them. */
static void test_zoo(void **state) {
    (void)state;
    const char *dir = getenv("ONNX_ZOO"), *list = getenv("ONNX_ZOO_MODELS");
    if (!dir || !list) {
        skip();
        return;
    }
    char saved[sizeof data_dir], models[512], *save = NULL;
    memcpy(saved, data_dir, sizeof saved);
    snprintf(data_dir, sizeof data_dir, "%s", dir);
    snprintf(models, sizeof models, "%s", list);
    static const int opsets[] = {11, 11, 13, 13, 17, 17};
    static const char *const kinds[] = {"dyn", "b2", "dyn", "b2", "dyn", "b2"};
    static const int64_t fixed[] = {0, 2, 0, 2, 0, 2};
    /* each model on this CPU's kernels, then, when it has AVX-512, on the AVX2 ones */
    onx_kern native = onx_sgemm_best();
    for (char *m = strtok_r(models, " ,", &save); m; m = strtok_r(NULL, " ,", &save))
        for (onx_kern kn = native; kn >= ONX_K_AVX2 || kn == native; kn--) {
            print_message("zoo: %s (%s)\n", m, kn == ONX_K_AVX512 ? "AVX-512" : kn == ONX_K_AVX2 ? "AVX2" : "plain");
            onx_sgemm_cap(kn);
            check_set(m, opsets, kinds, fixed, 6);
            onx_sgemm_cap(ONX_K_AVX512);
            if (kn == ONX_K_NONE) break;
        }
    memcpy(data_dir, saved, sizeof saved);
}

/* The cuts (lib/onnx_seg.h) of the shipped CNN: its segments cover its nodes in order, hand on values
 * whose rows are contiguous, and take chunks of their own (its convolutions a few rows at a time, its
 * 3136 x 256 Linear the whole run); a run of 40 rows, the first segment in sub-chunks, gives what 40
 * runs of one row give. A fixed batch is one segment; so is a graph whose weights are small. */
static void test_segments(void **state) {
    (void)state;
    char path[1024];
    snprintf(path, sizeof path, "%s/models/fashion-mnist-cnn.onnx", root());
    onx_graph *g = NULL;
    onx_segs s;
    tr_err err = {0};
    assert_int_equal(onx_open(path, &g, &err), TR_OK);
    assert_int_equal(onx_segs_make(g, (size_t)9 << 19, (size_t)16 << 20, 256, &s, &err), TR_OK);
    assert_true(s.n >= 2);
    int64_t lo = s.outer;
    for (int k = 0; k < s.n; k++) {
        const onx_seg *sk = &s.s[k];
        assert_int_equal(sk->first, k ? s.s[k - 1].last + 1 : 0);
        assert_int_equal(sk->in, k ? s.s[k - 1].out : g->input);
        assert_true(sk->first <= sk->last && sk->chunk >= 1 && sk->chunk <= s.outer);
        if (k) assert_int_not_equal(sk->chunk, s.s[k - 1].chunk); /* equal neighbours are merged */
        const onx_value *v = &g->v[sk->out];
        assert_true(s.bnd[sk->in] && s.bnd[sk->out] && v->dtype == ONX_F32 && v->dim[0].p);
        for (int i = 1; i < v->rank; i++) assert_int_equal(v->dim[i].p, 0);
        lo = sk->chunk < lo ? sk->chunk : lo;
    }
    assert_int_equal(s.s[s.n - 1].last, g->n_nodes - 1);
    assert_int_equal(s.s[s.n - 1].out, g->outputs[0]);
    assert_true(lo < 20 && s.outer >= 40);
    onx_segs_free(&s);
    size_t n = 40, din = onx_input_dim(g), dout = onx_output_dim(g);
    float *x = malloc(sizeof *x * n * din), *y = malloc(sizeof *y * n * dout), *y1 = malloc(sizeof *y1 * n * dout);
    assert_true(x && y && y1);
    for (size_t i = 0; i < n * din; i++) x[i] = sinf(0.37f * (float)i) + 0.25f * cosf(0.011f * (float)i);
    onx_ws *ws = NULL;
    assert_int_equal(onx_forward(g, x, n, y, &ws, &err), TR_OK);
    for (size_t i = 0; i < n; i++) assert_int_equal(onx_forward(g, x + i * din, 1, y1 + i * dout, &ws, &err), TR_OK);
    for (size_t i = 0; i < n * dout; i++)
        if (!(fabsf(y[i] - y1[i]) <= 1e-5f + 1e-4f * fabsf(y1[i])))
            fail_msg("row %zu, element %zu: %.7g in a run of %zu rows, %.7g alone", i / dout, i % dout, (double)y[i], n,
                     (double)y1[i]);
    onx_ws_free(ws);
    free(x);
    free(y);
    free(y1);
    /* a segment's in and out within 1 KiB at the outer chunk: no more rows than the heaviest segment's */
    assert_int_equal(onx_segs_make(g, (size_t)9 << 19, 1024, 256, &s, &err), TR_OK);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.outer, lo);
    onx_segs_free(&s);
    onx_free(g);
    static const char *const one[] = {"fashion_op13_b4.onnx", "fashion_op13_dyn.onnx"};
    for (int i = 0; i < 2; i++) {
        g = open_model(one[i]);
        assert_int_equal(onx_segs_make(g, (size_t)9 << 19, (size_t)16 << 20, 256, &s, &err), TR_OK);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.s[0].chunk, s.outer);
        if (!i) assert_int_equal(s.outer, 4);
        onx_segs_free(&s);
        onx_free(g);
    }
}

/* Load-time rewrites: the fashion CNN's three BatchNormalizations fold into
 * convs, shape arithmetic folds, and what is reported stays the file's. */
static void test_describe(void **state) {
    (void)state;
    onx_graph *g = open_model("fashion_op13_dyn.onnx");
    onx_opcount ops[32];
    int n = onx_op_counts(g, ops, 32), conv = 0, bn = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(ops[i].name, "Conv")) conv = ops[i].count;
        if (!strcmp(ops[i].name, "BatchNormalization")) bn = ops[i].count;
    }
    assert_int_equal(conv, 4);
    assert_int_equal(bn, 3);
    int64_t s[8];
    assert_int_equal(onx_input_shape(g, s), 3);
    assert_true(s[0] == 1 && s[1] == 28 && s[2] == 28);
    assert_int_equal(onx_output_shape(g, s), 1);
    assert_int_equal(s[0], 24);
    assert_string_equal(onx_input_name(g), "x");
    assert_string_equal(onx_output_name(g), "y");
    /* conv 8*28*28*9 + 16*14*14*36 + 16*7*7*9 + 12*4*4*16, gemm 192*48 + 48*24 */
    double macs = 8.0 * 784 * 9 + 16.0 * 196 * 36 + 16.0 * 49 * 9 + 12.0 * 16 * 16 + 192.0 * 48 + 48.0 * 24;
    assert_true(fabs(onx_macs(g) - macs) < 0.5);
    /* the file's initializers, not the folded weights: conv 80, BN 4*8, conv 576, BN 4*16, conv 144+16,
     * BN 4*16, conv 192+12, gemm 192*48+48, gemm 48*24+24 */
    assert_int_equal(onx_param_count(g), 80 + 32 + 576 + 64 + 160 + 64 + 204 + 9264 + 1176);
    onx_free(g);
}

/* proto/export.py's save_onnx: metadata_props carry tripletd's keys; the
 * network on (x/255 - mean)/std, L2-normalised, is PyTorch's output. */
static void test_image_model(void **state) {
    (void)state;
    onx_graph *g = open_model("fashion_image.onnx");
    assert_string_equal(onx_meta(g, "name"), "fashion-cnn-test");
    assert_string_equal(onx_meta(g, "normalize"), "true");
    assert_string_equal(onx_meta(g, "metric"), "cosine");
    assert_string_equal(onx_meta(g, "image"),
                        "{\"channels\":1,\"height\":28,\"width\":28,\"mean\":[0.286],\"std\":[0.353]}");
    assert_int_equal(onx_meta_count(g), 5);
    rows x = read_rows("fashion_image.in"), y = read_rows("fashion_image.out");
    for (size_t i = 0; i < (size_t)x.n * (size_t)x.dim; i++) x.v[i] = (x.v[i] / 255.0f - 0.286f) / 0.353f;
    float *out = calloc((size_t)y.n * (size_t)y.dim, sizeof *out);
    onx_ws *ws = NULL;
    tr_err err = {0};
    assert_int_equal(onx_forward(g, x.v, (size_t)x.n, out, &ws, &err), TR_OK);
    for (int r = 0; r < y.n; r++) {
        float *v = out + (size_t)r * (size_t)y.dim;
        double ss = 0;
        for (int i = 0; i < y.dim; i++) ss += (double)v[i] * v[i];
        for (int i = 0; i < y.dim; i++) v[i] = (float)(v[i] / sqrt(ss));
    }
    check_close("fashion_image.onnx", out, y.v, (size_t)y.n * (size_t)y.dim);
    onx_ws_free(ws);
    free(out);
    free(x.v);
    free(y.v);
    onx_free(g);
}

typedef struct {
    const onx_graph *g;
    const rows *x, *y;
    int ok;
} thread_arg;

static void *run_thread(void *p) {
    thread_arg *a = p;
    onx_ws *ws = NULL;
    float *out = malloc(sizeof *out * (size_t)a->y->n * (size_t)a->y->dim);
    a->ok = out != NULL;
    for (int it = 0; it < 20 && a->ok; it++) {
        size_t n = (size_t)(it % a->x->n) + 1;
        tr_err err = {0};
        if (onx_forward(a->g, a->x->v, n, out, &ws, &err)) a->ok = 0;
        for (size_t i = 0; i < n * (size_t)a->y->dim && a->ok; i++)
            if (!(fabsf(out[i] - a->y->v[i]) <= 1e-4f + 1e-3f * fabsf(a->y->v[i]))) a->ok = 0;
    }
    onx_ws_free(ws);
    free(out);
    return NULL;
}

static void test_threads(void **state) {
    (void)state;
    onx_graph *g = open_model("fashion_op17_dyn.onnx");
    rows x = read_rows("fashion.in"), y = read_rows("fashion.out");
    thread_arg a[2] = {{g, &x, &y, 0}, {g, &x, &y, 0}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++) assert_int_equal(pthread_create(&t[i], NULL, run_thread, &a[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    assert_true(a[0].ok && a[1].ok);
    free(x.v);
    free(y.v);
    onx_free(g);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden),   cmocka_unit_test(test_describe),
        cmocka_unit_test(test_threads),  cmocka_unit_test(test_image_model),
        cmocka_unit_test(test_zoo),      cmocka_unit_test(test_golden_capped),
        cmocka_unit_test(test_segments), cmocka_unit_test(test_residual_fusion),
    };
    snprintf(data_dir, sizeof data_dir, "%s/tests/data/onnx", root());
    return cmocka_run_group_tests(tests, NULL, NULL);
}
