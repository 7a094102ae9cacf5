/* grad.c - gradients of the losses, distance metrics and L2 normalisation. */
#include "grad.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GRD_NORM_EPS 1e-12

/* softplus(x) = log(1 + e^x) and its derivative sigmoid(x), both stable. */
static double softplus(double x) {
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}
static double sigmoid(double x) {
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

double grd_triplets(loss_kind k, const mine_triplet *t, size_t nt, double margin, double scale, double *G, size_t n) {
    double sum = 0;
    for (size_t i = 0; i < nt; i++) {
        double x = t[i].d_ap - t[i].d_an, l, dl;
        if (k == LOSS_TRIPLET_SOFT) {
            l = softplus(x);
            dl = sigmoid(x);
        } else {
            l = x + margin > 0 ? x + margin : 0;
            dl = l > 0 ? 1.0 : 0.0;
        }
        sum += l;
        G[(size_t)t[i].a * n + (size_t)t[i].p] += scale * dl;
        G[(size_t)t[i].a * n + (size_t)t[i].n] -= scale * dl;
    }
    return scale * sum;
}

int grd_pairs(loss_kind k, const double *D, const int64_t *labels, size_t n, double margin, double *G, double *loss,
              grd_pair_stats *st, tr_err *err) {
    if (k != LOSS_CONTRASTIVE && k != LOSS_CONTRASTIVE_SQUARED)
        return tr_seterr(err, TR_EINVAL, "loss", "loss \"%s\" is not a pair loss", loss_name(k));
    if (n < 2) return tr_seterr(err, TR_EINVAL, "batch", "a pair loss needs at least 2 items, got %zu", n);
    grd_pair_stats s;
    memset(&s, 0, sizeof s);
    s.n_pairs = n * (n - 1) / 2;
    double scale = 1.0 / (double)s.n_pairs, sum = 0, dsim = 0, ddis = 0;
    memset(G, 0, n * n * sizeof *G);
    for (size_t i = 0; i < n; i++) {
        for (size_t j = i + 1; j < n; j++) {
            double d = D[i * n + j], l, dl;
            if (labels[i] == labels[j]) {
                l = k == LOSS_CONTRASTIVE ? d : d * d;
                dl = k == LOSS_CONTRASTIVE ? 1.0 : 2 * d;
                s.n_similar++;
                dsim += d;
            } else {
                double h = margin - d > 0 ? margin - d : 0;
                l = k == LOSS_CONTRASTIVE ? h : h * h;
                dl = k == LOSS_CONTRASTIVE ? (h > 0 ? -1.0 : 0.0) : -2 * h;
                s.n_dissimilar++;
                ddis += d;
            }
            if (l > 0) s.n_active++;
            sum += l;
            G[i * n + j] = scale * dl;
        }
    }
    s.mean_d_sim = s.n_similar ? dsim / (double)s.n_similar : 0;
    s.mean_d_dis = s.n_dissimilar ? ddis / (double)s.n_dissimilar : 0;
    *loss = sum * scale;
    if (st) *st = s;
    return TR_OK;
}

int grd_dist_backward(dist_metric m, const double *E, size_t n, size_t dim, const double *D, const double *G,
                      double *dE, double *work, tr_err *err) {
    double *own = NULL;
    size_t nn, nd, need, bytes;
    if (!tr_size_mul(n, n, &nn) || !tr_size_mul(n, dim, &nd) || !tr_size_add(nn, nd, &need) ||
        !tr_size_add(need, n, &need) || !tr_size_mul(need, sizeof(double), &bytes))
        return tr_seterr(err, TR_ELIMIT, "batch", "batch of %zu x %zu is too large", n, dim);
    if (work == NULL) {
        own = malloc(bytes);
        if (own == NULL)
            return tr_seterr(err, TR_ENOMEM, "batch", "cannot allocate %zu doubles of gradient scratch", need);
        work = own;
    }
    double *H = work, *N = work + nn, *r = work + nn + nd;
    /* H = dL/dS + (dL/dS)^T where S is the pairwise term each metric is
     * built from (squared distance, or -dot, or -cos). */
    for (size_t i = 0; i < n; i++) {
        H[i * n + i] = 0;
        for (size_t j = i + 1; j < n; j++) {
            double gij = G[i * n + j], gji = G[j * n + i];
            if (m == DIST_EUCLIDEAN) {
                double dij = D[i * n + j], dji = D[j * n + i];
                gij = dij > 0 ? gij / (2 * dij) : 0;
                gji = dji > 0 ? gji / (2 * dji) : 0;
            }
            H[i * n + j] = H[j * n + i] = gij + gji;
        }
    }
    const double *B = E;
    if (m == DIST_COSINE) {
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (size_t d = 0; d < dim; d++) s += E[i * dim + d] * E[i * dim + d];
            r[i] = sqrt(s);
            double inv = r[i] > 0 ? 1.0 / r[i] : 0;
            for (size_t d = 0; d < dim; d++) N[i * dim + d] = E[i * dim + d] * inv;
        }
        B = N;
    }
    /* dE = alpha * H B */
    double alpha = (m == DIST_SQEUCLIDEAN || m == DIST_EUCLIDEAN) ? -2.0 : -1.0;
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)dim, (int)n, alpha, H, (int)n, B, (int)dim, 0.0,
                dE, (int)dim);
    if (m == DIST_SQEUCLIDEAN || m == DIST_EUCLIDEAN) {
        for (size_t i = 0; i < n; i++) {
            double ri = 0;
            for (size_t j = 0; j < n; j++) ri += H[i * n + j];
            for (size_t d = 0; d < dim; d++) dE[i * dim + d] += 2 * ri * E[i * dim + d];
        }
    } else if (m == DIST_COSINE) {
        /* dE currently holds dL/d(e_i/|e_i|); project out the radial part. */
        for (size_t i = 0; i < n; i++) {
            double *g = dE + i * dim;
            const double *u = N + i * dim;
            if (r[i] == 0) {
                memset(g, 0, dim * sizeof *g);
                continue;
            }
            double gu = 0;
            for (size_t d = 0; d < dim; d++) gu += g[d] * u[d];
            for (size_t d = 0; d < dim; d++) g[d] = (g[d] - gu * u[d]) / r[i];
        }
    }
    free(own);
    return TR_OK;
}

void grd_l2norm_backward(const double *x, size_t n, size_t dim, double *g) {
    for (size_t i = 0; i < n; i++) {
        const double *xi = x + i * dim;
        double *gi = g + i * dim, s = 0;
        for (size_t d = 0; d < dim; d++) s += xi[d] * xi[d];
        double nrm = sqrt(s);
        if (nrm > GRD_NORM_EPS) {
            double gy = 0;
            for (size_t d = 0; d < dim; d++) gy += gi[d] * xi[d];
            gy /= nrm; /* g . y with y = x / |x| */
            for (size_t d = 0; d < dim; d++) gi[d] = (gi[d] - gy * xi[d] / nrm) / nrm;
        } else {
            for (size_t d = 0; d < dim; d++) gi[d] /= GRD_NORM_EPS;
        }
    }
}
