/* train_loss.c - one batch's forward through the network, in-batch mining, the loss and backprop to the parameters. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grad.h"
#include "train_impl.h"

/* Input and embedding buffers for n rows. */
static int ensure_fwd(trn *t, size_t n, tr_err *err) {
    if (n <= t->cap_fwd) return TR_OK;
    size_t nd, no;
    if (!tr_size_mul(n, t->dim, &nd) || !tr_size_mul(n, t->out_dim, &no))
        return tr_seterr(err, TR_ELIMIT, "batch", "batch of %zu rows overflows", n);
    int rc;
    if ((rc = trn_grow((void **)&t->X, nd, sizeof(float), err)) ||
        (rc = trn_grow((void **)&t->En, no, sizeof(float), err)) ||
        (rc = trn_grow((void **)&t->dcur, no, sizeof(float), err)) ||
        (rc = trn_grow((void **)&t->Ed, no, sizeof(double), err)) ||
        (rc = trn_grow((void **)&t->dE, no, sizeof(double), err)) || (rc = nn_net_reserve(&t->nn, n, err)))
        return rc;
    t->cap_fwd = n;
    return TR_OK;
}

/* Loss buffers for an n-row batch. */
static int ensure_loss(trn *t, size_t n, tr_err *err) {
    if (n <= t->cap_loss) return TR_OK;
    size_t nn, w;
    if (!tr_size_mul(n, n, &nn) || !tr_size_mul(n, t->out_dim, &w) || !tr_size_add(w, nn, &w) || !tr_size_add(w, n, &w))
        return tr_seterr(err, TR_ELIMIT, "batch", "batch of %zu rows overflows", n);
    int rc;
    if ((rc = trn_grow((void **)&t->D, nn, sizeof(double), err)) ||
        (rc = trn_grow((void **)&t->G, nn, sizeof(double), err)) ||
        (rc = trn_grow((void **)&t->work, w, sizeof(double), err)))
        return rc;
    t->cap_loss = n;
    return TR_OK;
}

/* Mine and take the loss over the distance matrix t->D: fills t->G (dL/dD) and the statistics. */
static int batch_loss(trn *t, const int64_t *labels, size_t n, trn_stats *st, tr_err *err) {
    const trn_config *c = &t->cfg;
    mine_result mr;
    int rc;
    double loss = 0;
    memset(&mr, 0, sizeof mr);
    memset(t->G, 0, n * n * sizeof(double));
    if (is_pair_loss(c->loss)) {
        grd_pair_stats ps;
        if ((rc = grd_pairs(c->loss, t->D, labels, n, c->margin, t->G, &loss, &ps, err))) goto done;
        /* categories over all in-batch triplets, for the progress display */
        if ((rc = mine_run(MINE_BATCH_ALL, t->D, labels, n, LOSS_TRIPLET, c->margin, 0, &mr, err))) goto done;
        st->active = ps.n_pairs ? (double)ps.n_active / (double)ps.n_pairs : 0;
        st->mean_d_ap = ps.mean_d_sim;
        st->mean_d_an = ps.mean_d_dis;
        st->n_triplets = (double)ps.n_pairs;
    } else {
        /* exactly as many list entries as the miner can produce */
        size_t max_list = 0;
        for (size_t a = 0; a < n; a++) {
            size_t pos = 0;
            for (size_t j = 0; j < n; j++) pos += j != a && labels[j] == labels[a];
            size_t neg = n - 1 - pos;
            max_list += c->mining == MINE_BATCH_HARD ? 1 : c->mining == MINE_SEMI_HARD ? pos : pos * neg;
        }
        if ((rc = mine_run(c->mining, t->D, labels, n, c->loss, c->margin, max_list, &mr, err))) goto done;
        if (mr.n_listed != mr.n_total) {
            rc = tr_seterr(err, TR_EINTERNAL, "mining", "miner listed %zu of %zu triplets", mr.n_listed, mr.n_total);
            goto done;
        }
        /* batch-all hinge averages over the triplets with loss > 0 (Hermans et al.); the others over all mined */
        size_t cnt = (c->mining == MINE_BATCH_ALL && c->loss == LOSS_TRIPLET) ? mr.n_positive : mr.n_total;
        if (cnt) loss = grd_triplets(c->loss, mr.t, mr.n_listed, c->margin, 1.0 / (double)cnt, t->G, n);
        double sap = 0, san = 0;
        for (size_t i = 0; i < mr.n_listed; i++) {
            sap += mr.t[i].d_ap;
            san += mr.t[i].d_an;
        }
        st->active = mr.n_total ? (double)mr.n_positive / (double)mr.n_total : 0;
        st->mean_d_ap = mr.n_listed ? sap / (double)mr.n_listed : 0;
        st->mean_d_an = mr.n_listed ? san / (double)mr.n_listed : 0;
        st->n_triplets = (double)mr.n_total;
    }
    size_t tot = mr.counts[LOSS_CAT_EASY] + mr.counts[LOSS_CAT_SEMI_HARD] + mr.counts[LOSS_CAT_HARD];
    for (int k = 0; k < LOSS_CAT_COUNT; k++) st->share[k] = tot ? (double)mr.counts[k] / (double)tot : 0;
    st->loss = loss;
    st->collapsed = fabs(st->mean_d_ap) < c->collapse_eps && fabs(st->mean_d_an) < c->collapse_eps;
    rc = TR_OK;
done:
    mine_result_free(&mr);
    return rc;
}

int trn_loss_grad(trn *t, const float *x, const int64_t *labels, size_t n, trn_stats *st, tr_err *err) {
    const trn_config *c = &t->cfg;
    const float *Z, *E;
    int rc;
    memset(st, 0, sizeof *st);
    if (n < 2 || n > TRN_MAX_BATCH)
        return tr_seterr(err, TR_EINVAL, "batch", "batch of %zu rows is not in 2..%d", n, TRN_MAX_BATCH);
    if ((rc = ensure_fwd(t, n, err)) || (rc = ensure_loss(t, n, err))) return rc;
    size_t od = t->out_dim;
    trn_preprocess(t, x, n, t->X);
    if ((rc = nn_net_forward(&t->nn, t->w, t->state, t->X, n, 1, t->rng, &Z, err))) return rc;
    E = Z;
    if (c->normalize) {
        memcpy(t->En, Z, n * od * sizeof(float));
        mdl_l2_normalize(t->En, n, od);
        E = t->En;
    }
    if ((rc = dist_matrix(c->metric, E, n, E, n, od, t->D, err))) return rc;
    for (size_t i = 0; i < n * od; i++) t->Ed[i] = E[i];
    if ((rc = batch_loss(t, labels, n, st, err))) return rc;
    if ((rc = grd_dist_backward(c->metric, t->Ed, n, od, t->D, t->G, t->dE, t->work, err))) return rc;
    if (c->normalize) {
        for (size_t i = 0; i < n * od; i++) t->Ed[i] = Z[i];
        grd_l2norm_backward(t->Ed, n, od, t->dE);
    }
    for (size_t i = 0; i < n * od; i++) t->dcur[i] = (float)t->dE[i];
    return nn_net_backward(&t->nn, t->w, t->dcur, t->g, NULL, err);
}
