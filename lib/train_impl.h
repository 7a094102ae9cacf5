/* train_impl.h - the trainer's state, shared by its modules (train*.c); not a public header. */
#ifndef TRAIN_IMPL_H
#define TRAIN_IMPL_H

#include "train.h"

enum {
    TRN_ACC_LOSS,
    TRN_ACC_ACTIVE,
    TRN_ACC_EASY,
    TRN_ACC_SEMI,
    TRN_ACC_HARD,
    TRN_ACC_DAP,
    TRN_ACC_DAN,
    TRN_ACC_NTRIP,
    TRN_ACC_STEPS,
    TRN_ACC_N
};

struct trn {
    trn_config cfg;
    const float *x;
    const int64_t *labels;
    size_t n, dim;
    double in_mean, in_scale;
    /* parameters, gradients, Adam moments: flat, per layer W then b */
    size_t n_params;
    size_t off_w[MDL_MAX_LAYERS], off_b[MDL_MAX_LAYERS];
    float *w, *g, *m, *v;
    /* the network over w (layers borrow w; in_mean/in_scale are per feature),
     * run by the MLP module's forward so training and export compute alike */
    mlp_net net;
    mdl_ws ws;
    /* sampler: pool holds the sample indices grouped by class */
    size_t n_classes;
    int64_t *cls_label;
    size_t *cls_off; /* n_classes + 1 */
    size_t *cursor;  /* next unused position inside each class's group */
    size_t *pool;
    size_t *cls_tmp;
    uint64_t rng[4];
    /* progress */
    int64_t step;
    int epoch, step_in_epoch, steps_per_epoch;
    double acc[TRN_ACC_N];
    /* forward/backward buffers for up to cap_fwd rows, loss buffers for cap_loss */
    size_t cap_fwd, cap_loss, max_dim;
    float *X, *Z[MDL_MAX_LAYERS], *A[MDL_MAX_LAYERS], *En, *dcur, *dprev;
    double *Ed, *D, *G, *dE, *work;
    float *bx;
    int64_t *blabels;
};

/* The pair losses train on all in-batch pairs; the others on mined triplets. */
static inline int is_pair_loss(loss_kind k) {
    return k == LOSS_CONTRASTIVE || k == LOSS_CONTRASTIVE_SQUARED;
}

/* Flat parameters (per layer W then b) drawn from rng as torch.nn.Linear
 * initialises them. */
void trn_init_weights(const trn_config *c, float *w, uint64_t rng[4]);

/* The config as checkpoint metadata: TRN_CFG_N keys ("cfg.arch", ...);
 * trn_cfg_format writes value i into buf, trn_cfg_parse reads it into c
 * (TR_EFORMAT naming the key). */
#define TRN_CFG_N 21
const char *trn_cfg_key(size_t i);
void trn_cfg_format(const trn_config *c, size_t i, char *buf, size_t len);
int trn_cfg_parse(trn_config *c, size_t i, const char *s, tr_err *err);

#endif
