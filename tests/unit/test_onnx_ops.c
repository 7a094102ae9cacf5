/* test_onnx_ops.c - few-op ONNX models (tests/golden/gen_onnx_ops.py) for activations, math, reductions
 * and data movement against PyTorch or numpy at opsets 11/13/17 (and 9); refusals of malformed uses. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "onnx.h"

typedef struct {
    int n, dim;
    float *v;
} rows;

static char data_dir[900];

/* rows file: int32 n, int32 dim, n*dim float32; 0 when absent. */
static int read_rows(const char *name, rows *r) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    int32_t hdr[2];
    assert_int_equal(fread(hdr, sizeof hdr[0], 2, f), 2);
    r->n = hdr[0], r->dim = hdr[1];
    size_t n = (size_t)r->n * (size_t)r->dim;
    r->v = malloc(sizeof(float) * n + 1);
    assert_non_null(r->v);
    assert_int_equal(fread(r->v, sizeof(float), n, f), n);
    fclose(f);
    return 1;
}

static void check_close(const char *what, const float *got, const float *want, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!(fabsf(got[i] - want[i]) <= 1e-4f + 1e-3f * fabsf(want[i])))
            fail_msg("%s: element %zu is %.7g, reference %.7g", what, i, (double)got[i], (double)want[i]);
}

/* ops_<model>_op<k>_dyn.onnx against ops_<model>.in and ops_<model>_op<k>.out
 * (or ops_<model>.out when the reference does not depend on the opset):
 * all rows at once, then row by row. */
static void check_model(const char *model, int opset) {
    char name[256], path[1200];
    rows x, y;
    snprintf(name, sizeof name, "ops_%s.in", model);
    assert_true(read_rows(name, &x));
    snprintf(name, sizeof name, "ops_%s_op%d.out", model, opset);
    if (!read_rows(name, &y)) {
        snprintf(name, sizeof name, "ops_%s.out", model);
        assert_true(read_rows(name, &y));
    }
    snprintf(name, sizeof name, "ops_%s_op%d_dyn.onnx", model, opset);
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
    onx_graph *g = NULL;
    tr_err err = {0};
    if (onx_open(path, &g, &err)) fail_msg("%s: %s", name, err.msg);
    assert_int_equal(onx_input_dim(g), (size_t)x.dim);
    assert_int_equal(onx_output_dim(g), (size_t)y.dim);
    assert_int_equal(onx_opset(g), opset);
    size_t ny = (size_t)y.n * (size_t)y.dim;
    float *out = calloc(ny, sizeof *out);
    assert_non_null(out);
    onx_ws *ws = NULL;
    assert_int_equal(onx_forward(g, x.v, (size_t)x.n, out, &ws, &err), TR_OK);
    check_close(name, out, y.v, ny);
    memset(out, 0, sizeof *out * ny);
    for (int i = 0; i < x.n; i++)
        assert_int_equal(onx_forward(g, x.v + (size_t)i * (size_t)x.dim, 1, out + (size_t)i * (size_t)y.dim, &ws, &err),
                         TR_OK);
    check_close(name, out, y.v, ny);
    onx_ws_free(ws);
    onx_free(g);
    free(out);
    free(x.v);
    free(y.v);
}

static void test_models(void **state) {
    (void)state;
    static const char *const models[] = {"act", "reduce", "move", "norm", "attn", "misc"};
    static const int opsets[] = {11, 13, 17};
    for (size_t m = 0; m < sizeof models / sizeof models[0]; m++)
        for (size_t k = 0; k < sizeof opsets / sizeof opsets[0]; k++) check_model(models[m], opsets[k]);
    /* torch.zeros_like / ones_like: ConstantOfShape of the input's shape, batch size included, from opset 9 */
    static const int like_opsets[] = {9, 11, 13, 17};
    for (size_t k = 0; k < sizeof like_opsets / sizeof like_opsets[0]; k++) check_model("like", like_opsets[k]);
}

/* Malformed uses (tests/data/onnx/bad_ops, from gen_onnx_ops.py): one per failure mode, exact refusal. */
static const char *const BAD[][2] = {
    {"cast_double", "node 0 \"bad\" (Cast): casting to element type 11 is not supported (float 1, int64 7)"},
    {"clip_dynamic", "node 0 \"bad\" (Clip): input 1 must be a constant float scalar"},
    {"cos_value", "node 0 \"bad\" (ConstantOfShape): value must hold exactly one element"},
    {"expand_shape", "node 0 \"bad\" (Expand): shape [3,1,1] does not broadcast with the input [N,4,3,5]"},
    {"leaky_attr", "node 0 \"bad\" (LeakyRelu): attribute \"beta\" is not supported"},
    {"lpnorm_p", "node 0 \"bad\" (LpNormalization): p is 3; 1 or 2 are defined"},
    {"lrn_size", "node 0 \"bad\" (LRN): attribute \"size\" is required"},
    {"pad_crop_all", "node 0 \"bad\" (Pad): dimension 1: negative pads crop more than the dimension's size"},
    {"pad_reflect_cropped",
     "node 0 \"bad\" (Pad): dimension 2: reflect pads must be smaller than the (cropped) dimension's size"},
    {"prelu_slope", "node 0 \"bad\" (PRelu): slope [2] does not broadcast to the input [N,4,3,5]"},
    {"reduce_batch", "node 0 \"bad\" (ReduceMean): reducing the batch dimension is not supported"},
    {"reducesum_attr13", "node 0 \"bad\" (ReduceSum): attribute \"axes\" is not supported"},
    {"slice_dynamic", "node 0 \"bad\" (Slice): input 1 must be a 1-D int64 tensor computable at load"},
    {"slice_step0", "node 0 \"bad\" (Slice): step is 0"},
    {"softmax_batch", "node 0 \"bad\" (Softmax): a softmax across the batch dimension is not supported"},
    {"split_batch", "node 0 \"bad\" (Split): splitting the batch dimension is not supported"},
    {"split_huge", "node 0 \"bad\" (Split): split size 4611686018427387904 is not 0 to 4"},
    {"split_sum", "node 0 \"bad\" (Split): split sizes add up to 3, not 4"},
    {"sum_shapes", "node 0 \"bad\" (Sum): input 1 [2] does not broadcast with [N,4,3,5]"},
    {"tile_batch", "node 0 \"bad\" (Tile): repeating the batch dimension is not supported"},
    {"transpose_batch", "node 0 \"bad\" (Transpose): moving the batch dimension is not supported"},
    {"transpose_perm", "node 0 \"bad\" (Transpose): perm is not a permutation of 0..3"},
};

static void test_refusals(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/bad_ops/%s.onnx", data_dir, BAD[i][0]);
        onx_graph *g = NULL;
        tr_err err = {0};
        int rc = onx_open(path, &g, &err);
        if (rc == TR_OK) fail_msg("%s: loads", BAD[i][0]);
        assert_int_equal(rc, TR_EFORMAT);
        if (strcmp(err.msg, BAD[i][1])) fail_msg("%s: refused with \"%s\"", BAD[i][0], err.msg);
    }
}

int main(void) {
    const char *r = getenv("TRIPLET_ROOT");
    snprintf(data_dir, sizeof data_dir, "%s/tests/data/onnx", r ? r : ".");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_models),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
