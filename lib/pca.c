/* pca.c - principal axes of a set of rows: double covariance (BLAS dsyrk) and LAPACK dsyevr. */
#include "pca.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

/* LAPACK (shipped inside OpenBLAS): eigenpairs il..iu of a symmetric matrix. */
extern void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a, const int *lda,
                    const double *vl, const double *vu, const int *il, const int *iu, const double *abstol, int *m,
                    double *w, double *z, const int *ldz, int *isuppz, double *work, const int *lwork, int *iwork,
                    const int *liwork, int *info);

void pca_sample(size_t n, size_t m, size_t *idx, size_t *count) {
    if (n <= m) {
        for (size_t i = 0; i < n; i++) idx[i] = i;
        *count = n;
        return;
    }
    /* n <= 2^31 rows and m < n: i * n fits in 64 bits */
    for (size_t i = 0; i < m; i++) idx[i] = (size_t)((unsigned long long)i * n / m);
    *count = m;
}

#define ROWS_PER_BLOCK 1024 /* rows converted to double at once */

int pca_project(const float *x, size_t n, size_t dim, size_t ld, int k, double *out, double *var, tr_err *err) {
    double *mean = NULL, *blk = NULL, *cov = NULL, *w = NULL, *z = NULL, *work = NULL;
    int *iwork = NULL, *isuppz = NULL, rc = TR_OK;
    if (k < 1 || k > 8 || dim < 1 || ld < dim)
        return tr_seterr(err, TR_EINVAL, "k", "pca: k %d must be 1..8 and dim %zu >= 1, ld %zu >= dim", k, dim, ld);
    if (dim > PCA_MAX_DIM)
        return tr_seterr(err, TR_ELIMIT, "dim", "pca: %zu dimensions is over the limit of %d", dim, PCA_MAX_DIM);
    memset(out, 0, n * (size_t)k * sizeof *out);
    if (var) memset(var, 0, (size_t)k * sizeof *var);
    if (n < 2) return TR_OK;
    int kk = (size_t)k < dim ? k : (int)dim, d = (int)dim;
    size_t rows = n < ROWS_PER_BLOCK ? n : ROWS_PER_BLOCK;
    mean = calloc(dim, sizeof *mean);
    blk = malloc(rows * dim * sizeof *blk);
    cov = calloc(dim * dim, sizeof *cov);
    w = malloc(dim * sizeof *w);
    z = malloc(dim * (size_t)kk * sizeof *z);
    isuppz = malloc(2 * (size_t)kk * sizeof *isuppz);
    if (!mean || !blk || !cov || !w || !z || !isuppz) {
        rc = tr_seterr(err, TR_ENOMEM, "", "pca: out of memory for %zu x %zu", n, dim);
        goto done;
    }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < dim; j++) mean[j] += x[i * ld + j];
    for (size_t j = 0; j < dim; j++) mean[j] /= (double)n;
    /* covariance (upper triangle, row-major) = sum of centred outer products, block by block */
    for (size_t r0 = 0; r0 < n; r0 += rows) {
        size_t nb = n - r0 < rows ? n - r0 : rows;
        for (size_t i = 0; i < nb; i++)
            for (size_t j = 0; j < dim; j++) blk[i * dim + j] = (double)x[(r0 + i) * ld + j] - mean[j];
        cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d, (int)nb, 1.0, blk, d, 1.0, cov, d);
    }
    for (size_t i = 0; i < dim * dim; i++) cov[i] /= (double)(n - 1);
    /* row-major upper == column-major lower: ask LAPACK for the top kk pairs (ascending) */
    int il = d - kk + 1, iu = d, m = 0, info = 0, lwork = -1, liwork = -1, iw_q = 0;
    double vl = 0, vu = 0, abstol = 0, w_q = 0;
    dsyevr_("V", "I", "L", &d, cov, &d, &vl, &vu, &il, &iu, &abstol, &m, w, z, &d, isuppz, &w_q, &lwork, &iw_q, &liwork,
            &info);
    if (info != 0) {
        rc = tr_seterr(err, TR_EINTERNAL, "", "pca: dsyevr workspace query failed (info %d)", info);
        goto done;
    }
    lwork = (int)w_q;
    liwork = iw_q;
    work = malloc((size_t)lwork * sizeof *work);
    iwork = malloc((size_t)liwork * sizeof *iwork);
    if (!work || !iwork) {
        rc = tr_seterr(err, TR_ENOMEM, "", "pca: out of memory for the eigensolver");
        goto done;
    }
    dsyevr_("V", "I", "L", &d, cov, &d, &vl, &vu, &il, &iu, &abstol, &m, w, z, &d, isuppz, work, &lwork, iwork, &liwork,
            &info);
    if (info != 0 || m != kk) {
        rc = tr_seterr(err, TR_EINTERNAL, "", "pca: dsyevr failed (info %d, %d of %d eigenpairs)", info, m, kk);
        goto done;
    }
    for (int a = 0; a < kk; a++) {
        double *v = z + (size_t)(kk - 1 - a) * dim; /* column: axis a (largest first) */
        size_t big = 0;
        for (size_t j = 1; j < dim; j++)
            if (fabs(v[j]) > fabs(v[big])) big = j;
        double sign = v[big] < 0 ? -1.0 : 1.0;
        if (var) var[a] = w[kk - 1 - a] > 0 ? w[kk - 1 - a] : 0;
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (size_t j = 0; j < dim; j++) s += ((double)x[i * ld + j] - mean[j]) * v[j];
            out[i * (size_t)k + (size_t)a] = sign * s;
        }
    }
done:
    free(mean);
    free(blk);
    free(cov);
    free(w);
    free(z);
    free(isuppz);
    free(work);
    free(iwork);
    return rc;
}
