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
    /* a server's cross-request batch of a few rows: dot products over the weight rows (onx_fc), where OpenBLAS's
     * SGEMM would pack all the weights on every call (onnx_fc.c has the rows from which that pays per CPU) */
    if ((int64_t)n >= onx_fc_min_rows() && onx_fc_ok((int64_t)n)) {
        if (!b) memset(y, 0, n * (size_t)out * sizeof *y);
        onx_fc(x, (int64_t)n, in, w, out, 1.0f, y);
    } else if (n == 1)
        cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, beta, y, 1);
    else
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, out, in, 1.0f, x, in, w, in, beta, y, out);
}

/* C (m x n, ldc) = alpha op(A) op(B) + beta C in column blocks of C spread over p's threads. The blocks depend on the
 * shape alone (at most 8, at least 64 columns wide), never on the thread count, so neither does the result. */
typedef struct {
    int ta, tb, m, n, k, lda, ldb, ldc, nb;
    const float *a, *b;
    float beta, *c;
} gemm_task;

static void gemm_part(void *ctx, size_t lo, size_t hi) {
    const gemm_task *t = ctx;
    for (size_t blk = lo; blk < hi; blk++) {
        int j0 = (int)blk * t->nb, nj = t->n - j0 < t->nb ? t->n - j0 : t->nb;
        cblas_sgemm(CblasRowMajor, t->ta ? CblasTrans : CblasNoTrans, t->tb ? CblasTrans : CblasNoTrans, t->m, nj, t->k,
                    1.0f, t->a, t->lda, t->b + (size_t)j0 * (t->tb ? (size_t)t->ldb : 1), t->ldb, t->beta, t->c + j0,
                    t->ldc);
    }
}

static void gemm_blocks(par *p, int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                        float beta, float *c, int ldc) {
    int nb = (n + 7) / 8;
    nb = nb < 64 ? 64 : (nb + 15) / 16 * 16;
    if (p == NULL) nb = n; /* one GEMM that OpenBLAS threads */
    gemm_task t = {ta, tb, m, n, k, lda, ldb, ldc, nb, a, b, beta, c};
    par_for(p, (size_t)((n + nb - 1) / nb), gemm_part, &t);
}

void nn_fc_forward(const nn_layer *L, const float *w, const float *b, const float *x, size_t n, float *y, par *p) {
    int in = L->in.c, out = L->out;
    for (size_t i = 0; i < n; i++) memcpy(y + i * (size_t)out, b, (size_t)out * sizeof *y);
    gemm_blocks(p, 0, 1, (int)n, out, in, x, in, w, in, 1.0f, y, out);
}

void nn_fc_backward(const nn_layer *L, const float *w, const float *x, const float *dy, size_t n, float *dw, float *db,
                    float *dx, par *p) {
    int in = L->in.c, out = L->out;
    gemm_blocks(p, 1, 0, out, in, (int)n, dy, out, x, in, 0.0f, dw, in);
    memset(db, 0, (size_t)out * sizeof *db);
    for (size_t i = 0; i < n; i++)
        for (int o = 0; o < out; o++) db[o] += dy[i * (size_t)out + (size_t)o];
    if (dx) gemm_blocks(p, 0, 0, (int)n, in, out, dy, out, w, in, 0.0f, dx, in);
}
