/* nn_fc.c - the fully connected layer y = x W^T + b (torch.nn.Linear) and its gradients, on sgemm. */
#include <cblas.h>
#include <string.h>

#include "nn_layers.h"
#include "onnx_fc.h"

void nn_dense(const float *w, const float *b, int in, int out, const float *x, size_t n, float *y) {
    float beta = 0.0f;
    if (b) { /* bias rows + beta = 1 replace the zeroing pass GEMM would do for beta = 0 */
        for (size_t i = 0; i < n; i++) memcpy(y + i * (size_t)out, b, (size_t)out * sizeof *y);
        beta = 1.0f;
    }
    /* 5 to 16 rows (a server's cross-request batch): OpenBLAS's SGEMM takes 65 us for 5 rows of
     * 784 -> 256 (15 us for 4), dot products over the weight rows (onx_fc) 25 us; at 2 to 4 rows
     * SGEMM is the faster (measured on AVX-512, one thread) */
    if (n > 4 && onx_fc_ok((int64_t)n)) {
        if (!b) memset(y, 0, n * (size_t)out * sizeof *y);
        onx_fc(x, (int64_t)n, in, w, out, 1.0f, y);
    } else if (n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, beta, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, out, in, 1.0f, x, in, w, in, beta, y, out);
}

void nn_fc_forward(const nn_layer *L, const float *w, const float *b, const float *x, size_t n, float *y) {
    nn_dense(w, b, L->in.c, L->out, x, n, y);
}

void nn_fc_backward(const nn_layer *L, const float *w, const float *x, const float *dy, size_t n, float *dw, float *db,
                    float *dx) {
    int in = L->in.c, out = L->out;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, (int)n, 1.0f, dy, out, x, in, 0.0f, dw, in);
    memset(db, 0, (size_t)out * sizeof *db);
    for (size_t i = 0; i < n; i++)
        for (int o = 0; o < out; o++) db[o] += dy[i * (size_t)out + (size_t)o];
    if (dx) cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}
