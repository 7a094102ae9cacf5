/* train.h - metric-learning trainer: PK batches, in-batch mining, backprop, Adam. */
#ifndef TRAIN_H
#define TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "loss.h"
#include "mine.h"
#include "mlp.h"
#include "nn_arch.h"
#include "tr_err.h"

#define TRN_MAX_BATCH 65536
#define TRN_LAYERS_MAX 512 /* bytes of a layer list, NUL included */

/* Learning-rate schedules (per step): constant; cosine annealing from lr to
 * 0 over all epochs x steps (torch CosineAnnealingLR, eta_min 0); step:
 * lr * gamma^floor(epoch / every). */
typedef enum { TRN_LR_CONSTANT, TRN_LR_COSINE, TRN_LR_STEP } trn_lr_schedule;

/* Every training option. trn_config_default() gives the shipped recipe
 * (FaceNet semi-hard hinge on an L2-normalised 784-256-128 ReLU MLP). */
typedef struct {
    int dims[MDL_MAX_LAYERS + 1]; /* MLP: dims[0] input ... dims[n_layers] output */
    int n_layers;
    mdl_act act;
    /* A layer list (lib/nn_arch.h syntax, e.g. a CNN) instead of the MLP of
     * dims and act when not empty, over the per-sample input shape
     * input_c x input_h x input_w (0: not known yet; trn_new needs it). */
    char layers[TRN_LAYERS_MAX];
    int input_c, input_h, input_w;
    int aug_crop, aug_flip; /* images: random crop after zero padding of aug_crop pixels; random horizontal flip */
    trn_lr_schedule lr_schedule;
    int lr_step_every; /* step schedule: epochs between drops (0: epochs / 3, at least 1) */
    double lr_gamma;   /* step schedule: factor per drop */
    int normalize;     /* L2-normalise the embeddings */
    dist_metric metric;
    loss_kind loss;       /* triplet, triplet-soft, contrastive, contrastive-squared */
    mine_strategy mining; /* triplet losses only */
    double margin;
    int classes_per_batch; /* P */
    int samples_per_class; /* K */
    int epochs;
    int steps_per_epoch;                             /* 0: n_train / (P*K), at least 1 */
    double lr, beta1, beta2, adam_eps, weight_decay; /* torch.optim.Adam (L2 decay) */
    uint64_t seed;
    int threads;         /* the trainer's threads; a layer list's GEMMs run on them when the caller has OpenBLAS at one
                            thread, the MLP form's on OpenBLAS's (the caller sets those: cfg.threads) */
    double input_mean;   /* MLP: x' = (x - mean) * scale, for every feature (a layer list: per channel, */
    double input_scale;  /* from the data, see trn_image); 0: 1 / max|x| over the training data */
    double collapse_eps; /* collapsed when mean d_ap and d_an are both below */
} trn_config;

void trn_config_default(trn_config *cfg);
/* "784-256-128" -> dims / n_layers (layers cleared), or a layer list
 * "conv32k3p1,...,fc128" -> layers (its shapes are checked once the input
 * shape is known). TR_EINVAL naming the bad part. */
int trn_parse_arch(const char *s, trn_config *cfg, tr_err *err);
/* "784-256-128" or the layer list into buf. */
void trn_format_arch(const trn_config *cfg, char *buf, size_t len);
/* The network of cfg (the MLP of dims/act as fc,act,fc... on a flat input,
 * or the layer list on the input shape). TR_EINVAL as nn_arch_parse. */
int trn_config_arch(const trn_config *cfg, nn_arch *a, tr_err *err);
/* "1x28x28" -> c, h, w (each 0..65536); 0, or -1 when malformed. */
int trn_parse_shape(const char *s, int *c, int *h, int *w);
/* --augment "crop4,flip" / "none" and --lr-schedule "cosine",
 * "step[:every[:gamma]]", "constant"; TR_EINVAL naming the bad part. */
int trn_parse_augment(const char *s, trn_config *cfg, tr_err *err);
void trn_format_augment(const trn_config *cfg, char *buf, size_t len);
int trn_parse_lr_schedule(const char *s, trn_config *cfg, tr_err *err);
void trn_format_lr_schedule(const trn_config *cfg, char *buf, size_t len);
/* The learning rate of a step (0-based) in an epoch of a run of epochs x steps_per_epoch. */
double trn_lr_at(const trn_config *cfg, int64_t step, int epoch, int steps_per_epoch);
/* A one-line description of the recipe (for model metadata and logs). */
void trn_recipe(const trn_config *cfg, char *buf, size_t len);
/* Check a config for consistency (names the bad option). */
int trn_config_check(const trn_config *cfg, tr_err *err);

/* Per-step (or, in an epoch event, per-epoch mean) statistics. For the
 * triplet losses the shares are over the mined triplets; for the pair
 * losses, over all in-batch triplets (diagnostic) and d_ap/d_an are the
 * mean distances of similar/dissimilar pairs. */
typedef struct {
    int64_t step;      /* steps done in total (1 after the first) */
    int epoch;         /* 0-based epoch this step belongs to */
    int step_in_epoch; /* 1-based */
    int steps_per_epoch;
    double loss;
    double active;                /* fraction of triplets (pairs) with loss > 0 */
    double share[LOSS_CAT_COUNT]; /* easy / semi-hard / hard fractions */
    double mean_d_ap, mean_d_an;
    double n_triplets; /* triplets (pairs) the loss was taken over */
    int collapsed;     /* mean d_ap and d_an both < collapse_eps */
} trn_stats;

typedef enum { TRN_EV_STEP, TRN_EV_EPOCH } trn_event;

/* Progress callback: called after every step and after every epoch (with
 * the epoch's mean stats). Return nonzero to stop after this step. */
typedef int (*trn_progress_fn)(void *user, trn_event ev, const trn_stats *st);

typedef struct trn trn;

/* A trainer over n rows of dim raw features x (row-major) with labels.
 * x and labels are borrowed and must outlive the trainer. Weights are
 * Kaiming-uniform (torch.nn.Linear's default) from the seeded PRNG. */
int trn_new(const trn_config *cfg, const float *x, const int64_t *labels, size_t n, size_t dim, trn **out, tr_err *err);
void trn_free(trn *t); /* NULL is a no-op */
const trn_config *trn_get_config(const trn *t);

/* Run until cfg.epochs epochs are done or cb asks to stop; cb may be NULL.
 * *stopped (may be NULL) is set to 1 when cb stopped it early. */
int trn_run(trn *t, trn_progress_fn cb, void *user, int *stopped, tr_err *err);
/* One optimisation step on the next PK batch. */
int trn_step(trn *t, trn_stats *st, tr_err *err);
int trn_done(const trn *t);
int64_t trn_steps_done(const trn *t);
int trn_epochs_done(const trn *t);
/* Change the total number of epochs (e.g. to extend a resumed run). */
void trn_set_epochs(trn *t, int epochs);

/* Loss and parameter gradients (in trn_grads) for one given batch of n raw
 * rows, without updating anything. Used by the tests and by trn_step. */
int trn_loss_grad(trn *t, const float *x, const int64_t *labels, size_t n, trn_stats *st, tr_err *err);
/* One optimiser step on a given batch: trn_loss_grad, then Adam (with the
 * configured weight decay). Counts in Adam's step t but not in the
 * sampler's epochs. For custom loops and the tests. */
int trn_step_batch(trn *t, const float *x, const int64_t *labels, size_t n, trn_stats *st, tr_err *err);
/* The flat parameters in lib/nn_arch.h's layout (an MLP: per layer W, out
 * x in row-major, then b). Writable (tests set weights through it). */
float *trn_params(trn *t, size_t *n_params);
const float *trn_grads(const trn *t);
/* The BN running statistics (arch n_state floats; writable) and the network. */
float *trn_state(trn *t, size_t *n_state);
const nn_arch *trn_arch(const trn *t);
/* 1 when the network is a layer list (exported as ONNX), 0 for the MLP form (safetensors). */
int trn_is_layers(const trn *t);
/* Output features per sample. */
size_t trn_out_dim(const trn *t);
/* A layer list's input preprocessing as `image` metadata: pixels 0..255,
 * x/255, then (x - mean[c]) / std[c] with mean and std per channel from
 * the training data. TR_EINVAL for the MLP form or more than 3 channels. */
int trn_image(const trn *t, mdl_image *img, tr_err *err);
/* Preprocessing in use (input_scale resolved). */
double trn_input_mean(const trn *t);
double trn_input_scale(const trn *t);

/* Embed n raw rows with the current weights into out (n x output dim),
 * preprocessing included (inference mode: BN running statistics, no
 * dropout); the same as the exported model's forward. */
int trn_embed(trn *t, const float *x, size_t n, float *out, tr_err *err);

/* A model holding the current weights, preprocessing tensors and metadata
 * (activation, normalize, metric, loss, margin). Free with mdl_free.
 * TR_EINVAL for a layer list (those are written as ONNX). */
int trn_export(const trn *t, mdl_model **out, tr_err *err);

/* The untrained network of cfg: the same seeded initial weights trn_new
 * draws (they depend on seed and arch only), with x' = (x - input_mean) *
 * input_scale (scale 0 taken as 1) as input.mean / input.scale. For the
 * "untrained" evaluation baseline. Free with mdl_free. */
int trn_init_model(const trn_config *cfg, mdl_model **out, tr_err *err);

/* The untrained network of m's architecture with cfg's seed. An MLP: cfg
 * (its seed, metric, ...) with m's layer widths, activation and normalize,
 * through trn_init_model, then m's own input.mean / input.scale. An ONNX
 * model that tripletctl train wrote (metadata training.arch and
 * training.input): that layer list with the trainer's initial weights and
 * BatchNorm statistics (mean 0, variance 1) and m's metadata and `image`
 * preprocessing. TR_EINVAL for any other model. Free with mdl_free. */
int trn_init_like(const mdl_model *m, const trn_config *cfg, mdl_model **out, tr_err *err);

/* Checkpoint: weights, Adam moments, step, PRNG and sampler state, the
 * config and a caller string (note, may be NULL) in one safetensors file,
 * written atomically. */
int trn_checkpoint_save(const trn *t, const char *path, const char *note, tr_err *err);
/* Read the config a checkpoint was made with. */
int trn_checkpoint_config(const char *path, trn_config *cfg, tr_err *err);
/* Restore a trainer made with that config over the same data. *note (may be
 * NULL) receives a malloc'd copy of the saved note ("" if none). */
int trn_checkpoint_load(trn *t, const char *path, char **note, tr_err *err);

#endif
