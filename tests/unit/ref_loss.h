/* ref_loss.h - shared by test_train.c and test_train_cnn.c (header only): a float64 reference of a batch's loss from
 * its embeddings, and the trainer's gradient checked against central differences of a reference network's loss. */
#ifndef TESTS_REF_LOSS_H
#define TESTS_REF_LOSS_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "mine.h"
#include "train.h"

static double ref_dist(dist_metric m, const double *a, const double *b, size_t dim) {
    double s = 0, na = 0, nb = 0, dot = 0;
    for (size_t d = 0; d < dim; d++) {
        s += (a[d] - b[d]) * (a[d] - b[d]);
        dot += a[d] * b[d];
        na += a[d] * a[d];
        nb += b[d] * b[d];
    }
    switch (m) {
    case DIST_SQEUCLIDEAN:
        return s;
    case DIST_EUCLIDEAN:
        return sqrt(s);
    case DIST_COSINE:
        return na == 0 || nb == 0 ? 1 : 1 - dot / (sqrt(na) * sqrt(nb));
    default:
        return -dot;
    }
}

/* The loss of c over n embeddings h (n x od, L2-normalised in place when c->normalize): the pair losses over all
 * pairs i < j, the triplet losses over the mined triplets (batch-all hinge: mean over those with loss > 0). */
static double ref_embedding_loss(const trn_config *c, double *h, size_t n, size_t od, const int64_t *labels) {
    double *D = calloc(n * n, sizeof *D), loss = 0;
    assert_non_null(D);
    if (c->normalize)
        for (size_t i = 0; i < n; i++) {
            double s = 0;
            for (size_t d = 0; d < od; d++) s += h[i * od + d] * h[i * od + d];
            double nrm = sqrt(s) > 1e-12 ? sqrt(s) : 1e-12;
            for (size_t d = 0; d < od; d++) h[i * od + d] /= nrm;
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) D[i * n + j] = i == j ? 0 : ref_dist(c->metric, h + i * od, h + j * od, od);
    if (c->loss == LOSS_CONTRASTIVE || c->loss == LOSS_CONTRASTIVE_SQUARED) {
        size_t cnt = 0;
        for (size_t i = 0; i < n; i++)
            for (size_t j = i + 1; j < n; j++, cnt++) {
                double d = D[i * n + j], hinge = c->margin - d > 0 ? c->margin - d : 0;
                double l = labels[i] == labels[j] ? d : hinge;
                loss += c->loss == LOSS_CONTRASTIVE ? l : l * l;
            }
        loss /= (double)cnt;
    } else {
        mine_result mr;
        tr_err err;
        assert_int_equal(mine_run(c->mining, D, labels, n, c->loss, c->margin, n * n * n, &mr, &err), TR_OK);
        size_t npos = 0;
        for (size_t i = 0; i < mr.n_listed; i++) {
            double z = mr.t[i].d_ap - mr.t[i].d_an;
            double l = c->loss == LOSS_TRIPLET_SOFT ? log1p(exp(z)) : (z + c->margin > 0 ? z + c->margin : 0);
            npos += l > 0;
            loss += l;
        }
        size_t cnt = c->mining == MINE_BATCH_ALL && c->loss == LOSS_TRIPLET ? npos : mr.n_listed;
        loss = cnt ? loss / (double)cnt : 0;
        mine_result_free(&mr);
    }
    free(D);
    return loss;
}

/* The batch loss of a reference network with parameters w, for c, x (n x dim) and labels. */
typedef double (*ref_net_loss)(const trn_config *c, const double *w, const float *x, const int64_t *labels, size_t n);

/* The trainer's loss and analytic gradient for c on x (n x dim; parameters w0, or the trainer's seeded ones when
 * NULL) against the reference loss and its central differences in every parameter. */
static void check_fd(const trn_config *c, ref_net_loss ref, const float *x, const int64_t *labels, size_t n, size_t dim,
                     const float *w0) {
    trn *t = NULL;
    tr_err err;
    trn_stats st;
    assert_int_equal(trn_new(c, x, labels, n, dim, &t, &err), TR_OK);
    size_t np;
    float *w = trn_params(t, &np);
    if (w0) memcpy(w, w0, np * sizeof *w);
    assert_int_equal(trn_loss_grad(t, x, labels, n, &st, &err), TR_OK);
    const float *g = trn_grads(t);
    double *wd = malloc(np * sizeof *wd);
    assert_non_null(wd);
    for (size_t i = 0; i < np; i++) wd[i] = w[i];
    double l0 = ref(c, wd, x, labels, n);
    if (!(fabs(l0 - st.loss) <= 1e-5 * (1 + fabs(l0)))) {
        print_error("%s/%s/normalize=%d/%s: loss %.9g, reference %.9g\n", loss_name(c->loss), dist_name(c->metric),
                    c->normalize, mine_name(c->mining), st.loss, l0);
        fail();
    }
    double gmax = 0;
    for (size_t i = 0; i < np; i++) {
        const double h = 1e-6;
        double keep = wd[i];
        wd[i] = keep + h;
        double lp = ref(c, wd, x, labels, n);
        wd[i] = keep - h;
        double lm = ref(c, wd, x, labels, n);
        wd[i] = keep;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd) > gmax) gmax = fabs(fd);
        if (fabs(fd - g[i]) > 2e-4 + 2e-3 * fabs(fd)) {
            print_error("%s/%s/normalize=%d/%s/%s: param %zu analytic %.8g vs finite difference %.8g\n",
                        loss_name(c->loss), dist_name(c->metric), c->normalize, mine_name(c->mining),
                        c->layers[0] ? c->layers : mdl_act_name(c->act), i, (double)g[i], fd);
            fail();
        }
    }
    assert_true(gmax > 1e-3); /* the check compared real gradients */
    free(wd);
    trn_free(t);
}

#endif
