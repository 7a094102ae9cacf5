/* fuzz_onnx.c - fuzz target: ONNX ModelProtos through onx_open_mem, the accessors and a forward pass. */
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "onnx.h"
#include "onnx_sgemm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = fz_dup(data, size);
    onx_graph *g = NULL;
    tr_err err;
    /* every kernel family on one CPU: the input's length picks the cap (AVX-512, AVX2, plain C), set before
     * the load that packs the weights for it */
    static const onx_kern caps[3] = {ONX_K_AVX512, ONX_K_AVX2, ONX_K_NONE};
    onx_sgemm_cap(caps[size % 3]);
    int rc = onx_open_mem(buf, size, &g, &err);
    fz_check_status("onx_open_mem", rc, &err);
    free(buf);
    if (rc != TR_OK) {
        if (g != NULL) fz_fail("onx_open_mem", "failure left *out set");
        return 0;
    }
    int64_t shape[8];
    size_t din = onx_input_dim(g), dout = onx_output_dim(g), n = 1;
    int r = onx_input_shape(g, shape);
    for (int i = 0; i < r; i++) n *= (size_t)shape[i];
    if (n != din || din == 0) fz_fail("onx_input_shape", "shape and input_dim disagree");
    for (size_t i = 0; i < onx_meta_count(g); i++) {
        const char *k, *v;
        onx_meta_at(g, i, &k, &v);
        if (k == NULL || v == NULL || onx_meta(g, k) == NULL) fz_fail("onx_meta", "metadata pair missing");
    }
    onx_opcount ops[64];
    if (onx_op_counts(g, ops, 64) < 1) fz_fail("onx_op_counts", "a loaded graph has no ops");
    (void)onx_param_count(g);
    /* run small graphs on batch 1 and 3 (a fixed batch pads or splits) */
    if (din <= 65536 && dout <= 65536 && onx_macs(g) < 2e7) {
        float *x = calloc(3 * din, sizeof *x), *y = calloc(3 * dout, sizeof *y);
        if (!x || !y) abort();
        for (size_t i = 0; i < 3 * din; i++) x[i] = (float)(i % 7) - 3.0f;
        onx_ws *ws = NULL;
        rc = onx_forward(g, x, 1, y, &ws, &err);
        fz_check_status("onx_forward", rc, &err);
        rc = onx_forward(g, x, 3, y, &ws, &err);
        fz_check_status("onx_forward", rc, &err);
        onx_ws_free(ws);
        free(x);
        free(y);
    }
    onx_free(g);
    return 0;
}
