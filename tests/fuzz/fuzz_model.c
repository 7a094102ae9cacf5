/* fuzz_model.c - fuzz target: model files through mdl_load_mem, then a forward pass on what loads. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "mlp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int init;
    if (!init) {
        openblas_set_num_threads(1);
        init = 1;
    }
    uint8_t *buf = fz_dup(data, size);
    mdl_model *m = NULL;
    tr_err err;
    int rc = mdl_load_mem(buf, size, &m, &err);
    fz_check_status("mdl_load_mem", rc, &err);
    if (rc == TR_OK) {
        int in = mdl_input_dim(m), out = mdl_output_dim(m);
        if (mdl_mlp(m)->n_layers < 1 || in < 1 || out < 1) fz_fail("mdl_load_mem", "model without layers");
        for (int l = 1; l < mdl_mlp(m)->n_layers; l++)
            if (mdl_mlp(m)->layers[l].in != mdl_mlp(m)->layers[l - 1].out)
                fz_fail("mdl_load_mem", "layers do not chain");
        if (strlen(m->sha256) != 64) fz_fail("mdl_load_mem", "no sha256");
        /* every weight came from the file, so dims are bounded by its size */
        float *x = calloc(2 * (size_t)in, sizeof(float)), *y = calloc(2 * (size_t)out, sizeof(float));
        mdl_ws ws = {0};
        if (x == NULL || y == NULL) abort();
        for (int j = 0; j < in; j++) x[j] = x[in + j] = (float)(j % 7) - 3.0f;
        for (size_t n = 1; n <= 2; n++) {
            rc = mdl_forward(m, x, n, y, -1, &ws, &err);
            fz_check_status("mdl_forward", rc, &err);
        }
        /* huge finite weights may overflow to inf/NaN: not checked, only that nothing crashes */
        rc = mdl_forward(m, x, 1, y, 1, &ws, &err);
        fz_check_status("mdl_forward", rc, &err);
        mdl_ws_free(&ws);
        free(x);
        free(y);
        mdl_free(m);
    } else if (m != NULL) {
        fz_fail("mdl_load_mem", "failure left *out set");
    }
    free(buf);
    return 0;
}
