/* test_onnx_backend.c - ONNX's own backend test data (tests/data/onnx-backend, from the public onnx
 * repository: pytorch-converted and pytorch-operator cases with one input): every case either matches
 * its output_0.pb or is refused with the exact reason listed here. */
#include <dirent.h>
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
#include "onnx/onnx.pb-c.h"

/* Cases refused on purpose, with the start of the message. A case not
 * listed must load and match. When an op is added, its rows go. */
static const char *const BACKEND_REFUSED[][2] = {
    /* outside the supported set: 3-D convs and pools, transposed convs,
     * integer or double inputs */
    {"test_Conv3d", "node 0 \"\" (Conv): input 0 \"0\" has shape [2,3,3,4,5], expected rank 3 to 4"},
    {"test_Conv3d_dilated", "node 0 \"\" (Conv): input 0 \"0\" has shape [2,3,5,5,5], expected rank 3 to 4"},
    {"test_Conv3d_dilated_strided", "node 0 \"\" (Conv): input 0 \"0\" has shape [2,3,5,5,5], expected rank 3 to 4"},
    {"test_Conv3d_groups", "node 0 \"\" (Conv): input 0 \"0\" has shape [2,4,4,5,4], expected rank 3 to 4"},
    {"test_Conv3d_no_bias", "node 0 \"\" (Conv): input 0 \"0\" has shape [2,3,3,4,5], expected rank 3 to 4"},
    {"test_Conv3d_stride", "node 0 \"\" (Conv): input 0 \"0\" has shape [2,3,5,5,5], expected rank 3 to 4"},
    {"test_Conv3d_stride_padding", "node 0 \"\" (Conv): input 0 \"0\" has shape [2,3,5,5,5], expected rank 3 to 4"},
    {"test_ConvTranspose2d", "node 0 \"\": op ConvTranspose (opset 6) is not supported"},
    {"test_ConvTranspose2d_no_bias", "node 0 \"\": op ConvTranspose (opset 6) is not supported"},
    {"test_Embedding", "input \"0\": element type int64; only float inputs are supported"},
    {"test_Embedding_sparse", "input \"0\": element type int64; only float inputs are supported"},
    {"test_MaxPool3d", "node 0 \"\" (MaxPool): input 0 \"0\" has shape [2,3,5,5,5], expected rank 3 to 4"},
    {"test_MaxPool3d_stride", "node 0 \"\" (MaxPool): input 0 \"0\" has shape [2,3,5,5,5], expected rank 3 to 4"},
    {"test_MaxPool3d_stride_padding",
     "node 0 \"\" (MaxPool): input 0 \"0\" has shape [2,3,5,5,5], expected rank 3 to 4"},
    {"test_operator_addconstant", "input \"0\": element type double; only float inputs are supported"},
    {"test_operator_convtranspose", "node 0 \"\": op ConvTranspose (opset 6) is not supported"},
    {"test_operator_non_float_params", "input \"0\": element type int64; only float inputs are supported"},
    /* opset-6 definitions that changed at opset 7 (ONNX Runtime refuses these too) */
    {"test_AvgPool1d", "node 1 \"\" (AveragePool): op AveragePool at opset 6 is not supported"},
    {"test_AvgPool1d_stride", "node 1 \"\" (AveragePool): op AveragePool at opset 6 is not supported"},
    {"test_AvgPool2d", "node 0 \"\" (AveragePool): op AveragePool at opset 6 is not supported"},
    {"test_AvgPool2d_stride", "node 0 \"\" (AveragePool): op AveragePool at opset 6 is not supported"},
    {"test_AvgPool3d", "node 0 \"\" (AveragePool): op AveragePool at opset 6 is not supported"},
    {"test_AvgPool3d_stride", "node 0 \"\" (AveragePool): op AveragePool at opset 6 is not supported"},
    {"test_AvgPool3d_stride1_pad0_gpu_input", "node 0 \"\" (AveragePool): op AveragePool at opset 6 is not supported"},
    {"test_Linear", "node 0 \"\" (Gemm): op Gemm at opset 6 is not supported"},
    {"test_operator_params", "node 0 \"\" (Add): op Add at opset 6 is not supported"},
    /* built from ops whose opset-6 definitions changed at opset 7 */
    {"test_GLU", "node 2 \"\" (Mul): op Mul at opset 6 is not supported"},
    {"test_GLU_dim", "node 2 \"\" (Mul): op Mul at opset 6 is not supported"},
    {"test_PoissonNLLLLoss_no_reduce", "node 2 \"\" (Mul): op Mul at opset 6 is not supported"},
    {"test_Softsign", "node 2 \"\" (Add): op Add at opset 6 is not supported"},
    {NULL, NULL},
};

/* Generated cases refused on purpose: ONNX's node cases (tests/golden/gen_onnx_node.py); the opset
 * cases run by ONNX Runtime (tests/golden/gen_onnx_opsets.py) have none. */
static const char *const NODE_REFUSED[][2] = {
    /* the output does not keep the input's rows: concatenated, flattened, reduced, transposed, gathered,
     * reshaped, sliced, split or tiled along the batch dimension (a sample's output must be its own row) */
    {"test_concat_1d_axis_0", "output \"output\" has shape [4]; its first dimension must be the batch"},
    {"test_concat_1d_axis_negative_1", "output \"output\" has shape [4]; its first dimension must be the batch"},
    {"test_concat_2d_axis_0", "output \"output\" has shape [4,2]; its first dimension must be the batch"},
    {"test_concat_2d_axis_negative_2", "output \"output\" has shape [4,2]; its first dimension must be the batch"},
    {"test_concat_3d_axis_0", "output \"output\" has shape [4,2,2]; its first dimension must be the batch"},
    {"test_concat_3d_axis_negative_3", "output \"output\" has shape [4,2,2]; its first dimension must be the batch"},
    {"test_expand_dim_changed", "output \"expanded\" has shape [2,3,6]; its first dimension must be the batch"},
    {"test_flatten_axis0", "output \"b\" has shape [1,120]; its first dimension must be the batch"},
    {"test_flatten_axis2", "output \"b\" has shape [6,20]; its first dimension must be the batch"},
    {"test_flatten_axis3", "output \"b\" has shape [24,5]; its first dimension must be the batch"},
    {"test_flatten_negative_axis1", "output \"b\" has shape [120,1]; its first dimension must be the batch"},
    {"test_flatten_negative_axis2", "output \"b\" has shape [24,5]; its first dimension must be the batch"},
    {"test_flatten_negative_axis3", "output \"b\" has shape [6,20]; its first dimension must be the batch"},
    {"test_gather_0", "output \"y\" has shape [3,4,3,2]; its first dimension must be the batch"},
    {"test_gather_negative_indices", "output \"y\" has shape [3]; its first dimension must be the batch"},
    {"test_gemm_all_attributes", "output \"y\" has shape [3,5]; its first dimension must be the batch"},
    {"test_gemm_transposeA", "output \"y\" has shape [3,4]; its first dimension must be the batch"},
    {"test_reduce_l2_default_axes_keepdims_example",
     "output \"reduced\" has shape [1,1,1]; its first dimension must be the batch"},
    {"test_reduce_l2_default_axes_keepdims_random",
     "output \"reduced\" has shape [1,1,1]; its first dimension must be the batch"},
    {"test_reduce_max_default_axes_keepdim_example",
     "output \"reduced\" has shape [1,1,1]; its first dimension must be the batch"},
    {"test_reduce_max_default_axes_keepdims_random",
     "output \"reduced\" has shape [1,1,1]; its first dimension must be the batch"},
    {"test_reduce_mean_default_axes_keepdims_example",
     "output \"reduced\" has shape [1,1,1]; its first dimension must be the batch"},
    {"test_reduce_mean_default_axes_keepdims_random",
     "output \"reduced\" has shape [1,1,1]; its first dimension must be the batch"},
    {"test_reduce_sum_default_axes_keepdims_example",
     "output \"reduced\" has shape [1,1,1]; its first dimension must be the batch"},
    {"test_reduce_sum_default_axes_keepdims_random",
     "output \"reduced\" has shape [1,1,1]; its first dimension must be the batch"},
    {"test_reshape_negative_extended_dims",
     "output \"reshaped\" has shape [1,2,3,4]; its first dimension must be the batch"},
    {"test_reshape_one_dim", "output \"reshaped\" has shape [24]; its first dimension must be the batch"},
    {"test_reshape_reordered_all_dims", "output \"reshaped\" has shape [4,2,3]; its first dimension must be the batch"},
    {"test_slice", "output \"y\" has shape [3,10,5]; its first dimension must be the batch"},
    {"test_slice_neg_steps", "output \"y\" has shape [19,3,2]; its first dimension must be the batch"},
    {"test_split_equal_parts_1d", "output \"output_1\" has shape [2]; its first dimension must be the batch"},
    {"test_split_equal_parts_default_axis", "output \"output_1\" has shape [2]; its first dimension must be the batch"},
    {"test_split_variable_parts_1d", "output \"output_1\" has shape [2]; its first dimension must be the batch"},
    {"test_split_variable_parts_default_axis",
     "output \"output_1\" has shape [2]; its first dimension must be the batch"},
    {"test_squeeze", "output \"y\" has shape [3,4,5]; its first dimension must be the batch"},
    {"test_tile", "output \"z\" has shape [14,18,16,10]; its first dimension must be the batch"},
    {"test_tile_precomputed", "output \"z\" has shape [4,4]; its first dimension must be the batch"},
    {"test_transpose_all_permutations_2",
     "output \"transposed\" has shape [3,2,4]; its first dimension must be the batch"},
    {"test_transpose_all_permutations_3",
     "output \"transposed\" has shape [3,4,2]; its first dimension must be the batch"},
    {"test_transpose_all_permutations_4",
     "output \"transposed\" has shape [4,2,3]; its first dimension must be the batch"},
    {"test_transpose_all_permutations_5",
     "output \"transposed\" has shape [4,3,2]; its first dimension must be the batch"},
    {"test_transpose_default", "output \"transposed\" has shape [4,3,2]; its first dimension must be the batch"},
    {"test_unsqueeze_axis_0", "output \"y\" has shape [1,3,4,5]; its first dimension must be the batch"},
    /* normalising across the batch dimension */
    {"test_layer_normalization_2d_axis0",
     "node 0 \"\" (LayerNormalization): normalising across the batch dimension is not supported"},
    {"test_layer_normalization_2d_axis_negative_2",
     "node 0 \"\" (LayerNormalization): normalising across the batch dimension is not supported"},
    {"test_layer_normalization_3d_axis0_epsilon",
     "node 0 \"\" (LayerNormalization): normalising across the batch dimension is not supported"},
    {"test_layer_normalization_3d_axis_negative_3_epsilon",
     "node 0 \"\" (LayerNormalization): normalising across the batch dimension is not supported"},
    {"test_layer_normalization_4d_axis0",
     "node 0 \"\" (LayerNormalization): normalising across the batch dimension is not supported"},
    {"test_layer_normalization_4d_axis_negative_4",
     "node 0 \"\" (LayerNormalization): normalising across the batch dimension is not supported"},
    /* outside the supported set: 3-D pools, training-mode batch norm, unsigned integer tensors, empty batches */
    {"test_averagepool_3d_default",
     "node 0 \"\" (AveragePool): input 0 \"x\" has shape [1,3,32,32,32], expected rank 3 to 4"},
    {"test_batchnorm_epsilon_training_mode",
     "node 0 \"\" (BatchNormalization): training mode is not supported (inference only)"},
    {"test_batchnorm_example_training_mode",
     "node 0 \"\" (BatchNormalization): training mode is not supported (inference only)"},
    {"test_maxpool_3d_default", "node 0 \"\" (MaxPool): input 0 \"x\" has shape [1,3,32,32,32], expected rank 3 to 4"},
    {"test_pow_types_float32_uint32",
     "tensor \"y\": data type uint32 is not supported (float, double, int64, int32, bool)"},
    {"test_pow_types_float32_uint64",
     "tensor \"y\": data type uint64 is not supported (float, double, int64, int32, bool)"},
    {"test_reshape_allowzero_reordered", "input \"data\": batch dimension 0 is out of range 1..65536"},
    {"test_split_zero_size_splits", "input \"input\": batch dimension 0 is out of range 1..65536"},
    {NULL, NULL},
};

static const char *const (*refused)[2] = BACKEND_REFUSED;

static const char *root(void) {
    const char *r = getenv("TRIPLET_ROOT");
    return r ? r : ".";
}

static uint8_t *slurp(const char *path, size_t *len) {
    uint8_t *b;
    tr_err err;
    if (tr_read_file(path, SIZE_MAX, &b, len, &err) != TR_OK) fail_msg("%s", err.msg);
    return b;
}

/* A float TensorProto's values (raw or typed) and their count. */
static float *read_tensor(const char *path, size_t *n, int64_t *dim0) {
    size_t len;
    uint8_t *b = slurp(path, &len);
    Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, b);
    free(b);
    assert_non_null(t);
    assert_int_equal(t->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
    *n = t->has_raw_data ? t->raw_data.len / 4 : t->n_float_data;
    *dim0 = t->n_dims ? t->dims[0] : 1;
    float *v = malloc(*n * sizeof *v + 1);
    assert_non_null(v);
    if (*n) memcpy(v, t->has_raw_data ? (const void *)t->raw_data.data : (const void *)t->float_data, *n * sizeof *v);
    onnx__tensor_proto__free_unpacked(t, NULL);
    return v;
}

static const char *expected_refusal(const char *name, int *listed) {
    *listed = 0;
    for (size_t i = 0; refused[i][0]; i++)
        if (!strcmp(refused[i][0], name)) {
            *listed = 1;
            return refused[i][1];
        }
    return NULL;
}

static int run_case(const char *dir, const char *name) {
    char path[1400];
    int listed, failed = 0;
    const char *want = expected_refusal(name, &listed);
    snprintf(path, sizeof path, "%s/%s/model.onnx", dir, name);
    onx_graph *g = NULL;
    tr_err err = {0};
    int rc = onx_open(path, &g, &err);
    if (listed) {
        if (rc == TR_OK)
            print_error("%s: loads, but is listed as refused\n", name), failed = 1;
        else if (want && strncmp(err.msg, want, strlen(want)))
            print_error("%s: refused with \"%s\", expected \"%s...\"\n", name, err.msg, want), failed = 1;
        else if (!want)
            print_message("%s: refused: %s\n", name, err.msg);
        onx_free(g);
        return failed;
    }
    if (rc != TR_OK) {
        print_error("%s: %s\n", name, err.msg);
        return 1;
    }
    size_t nx, ny;
    int64_t bx, by;
    snprintf(path, sizeof path, "%s/%s/input_0.pb", dir, name);
    float *x = read_tensor(path, &nx, &bx);
    snprintf(path, sizeof path, "%s/%s/output_0.pb", dir, name);
    float *want_y = read_tensor(path, &ny, &by);
    size_t rows = onx_fixed_batch(g) ? (size_t)onx_fixed_batch(g) : (size_t)bx;
    if (rows * onx_input_dim(g) != nx || rows * onx_output_dim(g) != ny) {
        print_error("%s: sizes %zu/%zu do not match the graph's %zu x %zu/%zu\n", name, nx, ny, rows, onx_input_dim(g),
                    onx_output_dim(g));
        failed = 1;
    } else {
        float *y = calloc(ny + 1, sizeof *y);
        onx_ws *ws = NULL;
        if (onx_forward(g, x, rows, y, &ws, &err)) print_error("%s: %s\n", name, err.msg), failed = 1;
        for (size_t i = 0; i < ny && !failed; i++)
            if (!(fabsf(y[i] - want_y[i]) <= 1e-4f + 1e-3f * fabsf(want_y[i])) && !(isnan(y[i]) && isnan(want_y[i])))
                print_error("%s: element %zu is %g, expected %g\n", name, i, (double)y[i], (double)want_y[i]),
                    failed = 1;
        onx_ws_free(ws);
        free(y);
    }
    free(x);
    free(want_y);
    onx_free(g);
    return failed;
}

static int cmp_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs every case of dir; at least min_cases must be there. */
static void run_dir(const char *dir, int min_cases) {
    DIR *d = opendir(dir);
    assert_non_null(d);
    char *names[1024];
    int n = 0, failed = 0, passed = 0;
    for (struct dirent *e; (e = readdir(d)) && n < 1024;)
        if (!strncmp(e->d_name, "test_", 5)) names[n++] = strdup(e->d_name);
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_name);
    for (int i = 0; i < n; i++) {
        int listed, f = run_case(dir, names[i]);
        expected_refusal(names[i], &listed);
        failed += f;
        passed += !f && !listed;
        free(names[i]);
    }
    print_message("%d cases: %d match their outputs, %d failed\n", n, passed, failed);
    assert_true(n >= min_cases);
    assert_int_equal(failed, 0);
}

static void test_backend(void **state) {
    (void)state;
    char dir[1024];
    snprintf(dir, sizeof dir, "%.900s/tests/data/onnx-backend", root());
    refused = BACKEND_REFUSED;
    run_dir(dir, 90);
}

/* Generated cases in the folder given on the command line (tests/onnx/conformance.sh), at least min_cases of them. */
static const char *case_dir;
static int min_cases;

static void test_generated(void **state) {
    (void)state;
    refused = NODE_REFUSED;
    run_dir(case_dir, min_cases);
}

/* test_onnx_backend [DIR MIN]: the committed backend cases, or the >= MIN cases generated in DIR
 * (ONNX's node cases, or the opset cases with ONNX Runtime's outputs). */
int main(int argc, char **argv) {
    const struct CMUnitTest backend[] = {cmocka_unit_test(test_backend)};
    const struct CMUnitTest generated[] = {cmocka_unit_test(test_generated)};
    if (argc > 2) {
        case_dir = argv[1];
        min_cases = atoi(argv[2]);
        return cmocka_run_group_tests(generated, NULL, NULL);
    }
    return cmocka_run_group_tests(backend, NULL, NULL);
}
