/* train_impl.h - the trainer's state, shared by its modules (train*.c); not a public header. */
#ifndef TRAIN_IMPL_H
#define TRAIN_IMPL_H

#include "nn_net.h"
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
    /* the network: an MLP's fc,act,fc... or the layer list, run by nn_net */
    nn_arch arch;
    nn_net nn;
    par *par;   /* cfg.threads for the loops that are not GEMMs (OpenBLAS has its own) */
    int layers; /* cfg.layers set: a layer list, else the MLP form */
    /* preprocessing x' = (x - ch_mean[c]) * ch_scale[c] per input channel
     * (the MLP form: one value for every feature, in_mean / in_scale) */
    double in_mean, in_scale;
    float *ch_mean, *ch_scale;
    /* parameters, gradients, Adam moments (arch.n_params), BN running statistics (arch.n_state) */
    size_t n_params;
    float *w, *g, *m, *v, *state;
    /* the MLP form's network over w, run by the MLP module's forward so
     * trn_embed and the exported safetensors compute alike */
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
    /* X: preprocessed input rows (cap_fwd); loss buffers for cap_loss rows */
    size_t cap_fwd, cap_loss, out_dim;
    float *X, *En, *dcur, *aug;
    double *Ed, *D, *G, *dE, *work;
    float *bx;
    int64_t *blabels;
};

/* The pair losses train on all in-batch pairs; the others on mined triplets. */
static inline int is_pair_loss(loss_kind k) {
    return k == LOSS_CONTRASTIVE || k == LOSS_CONTRASTIVE_SQUARED;
}

/* The l-th fully connected layer of the MLP form. */
static inline const nn_layer *trn_fc(const trn *t, int l) {
    for (int i = 0; i < t->arch.n; i++)
        if (t->arch.l[i].kind == NN_FC && l-- == 0) return &t->arch.l[i];
    return NULL;
}

/* realloc *p to n * size bytes; TR_ENOMEM / TR_ELIMIT naming the batch. */
int trn_grow(void **p, size_t n, size_t size, tr_err *err);

/* Initial parameters of a drawn from rng as torch initialises each layer:
 * Linear and Conv2d kaiming_uniform_(a = sqrt(5)) weights and biases
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)); BN gamma 1, beta 0, running mean 0,
 * running variance 1 (state may be NULL when a has none). */
void trn_init_params(const nn_arch *a, float *w, float *state, uint64_t rng[4]);

/* Preprocess n raw rows into out (n x dim) with the per-channel mean and scale. */
void trn_preprocess(const trn *t, const float *x, size_t n, float *out);

/* The next PK batch into t->bx / t->blabels, augmented when configured. */
void trn_sample_batch(trn *t);

/* Adam with the configured weight decay and the learning rate of the schedule; t->step already counts this step. */
void trn_adam(trn *t);

/* The config as checkpoint metadata: TRN_CFG_N keys ("cfg.arch", ...);
 * trn_cfg_format writes value i into buf, trn_cfg_parse reads it into c
 * (TR_EFORMAT naming the key). Keys from TRN_CFG_REQUIRED on may be absent
 * (checkpoints of earlier versions): the default stays. */
#define TRN_CFG_N 24
#define TRN_CFG_REQUIRED 21
const char *trn_cfg_key(size_t i);
void trn_cfg_format(const trn_config *c, size_t i, char *buf, size_t len);
int trn_cfg_parse(trn_config *c, size_t i, const char *s, tr_err *err);

#endif
