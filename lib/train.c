/* train.c - metric-learning trainer: construction, preprocessing, the step loop, embedding. */
#include "train_impl.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"

#define TRN_EMBED_BLOCK 256 /* rows per inference block of a layer list */

int trn_grow(void **p, size_t n, size_t size, tr_err *err) {
    size_t bytes;
    if (!tr_size_mul(n, size, &bytes))
        return tr_seterr(err, TR_ELIMIT, "batch", "buffer of %zu x %zu bytes overflows", n, size);
    void *q = realloc(*p, bytes ? bytes : 1);
    if (q == NULL) return tr_seterr(err, TR_ENOMEM, "batch", "cannot allocate %zu bytes of training buffers", bytes);
    *p = q;
    return TR_OK;
}
#define grow(p, n, size, err) trn_grow((void **)(p), n, size, err)

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static size_t class_of(const trn *t, int64_t label) {
    size_t lo = 0, hi = t->n_classes;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (t->cls_label[mid] <= label)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* The MLP form's network view over the flat parameters, with the resolved preprocessing. */
static int bind_net(trn *t, tr_err *err) {
    const trn_config *c = &t->cfg;
    int rc;
    t->net.n_layers = c->n_layers;
    t->net.act = c->act;
    for (int l = 0; l < c->n_layers; l++) {
        const nn_layer *L = trn_fc(t, l);
        t->net.layers[l] = (mdl_layer){c->dims[l], c->dims[l + 1], t->w + L->w_off, t->w + L->b_off};
    }
    if ((rc = grow(&t->net.in_mean, t->dim, sizeof(float), err)) ||
        (rc = grow(&t->net.in_scale, t->dim, sizeof(float), err)))
        return rc;
    for (size_t i = 0; i < t->dim; i++) {
        t->net.in_mean[i] = (float)t->in_mean;
        t->net.in_scale[i] = (float)t->in_scale;
    }
    return TR_OK;
}

/* Flat parameters, gradients, Adam moments (zeroed) and BN state for the architecture. */
static int setup_params(trn *t, tr_err *err) {
    int rc = trn_config_arch(&t->cfg, &t->arch, err);
    if (rc) return rc;
    size_t np = t->arch.n_params;
    if (np > MDL_MAX_PARAMS) return tr_seterr(err, TR_ELIMIT, "arch", "more than %u parameters", MDL_MAX_PARAMS);
    t->n_params = np;
    t->out_dim = nn_arch_out_dim(&t->arch);
    if ((rc = grow(&t->w, np, sizeof(float), err)) || (rc = grow(&t->g, np, sizeof(float), err)) ||
        (rc = grow(&t->m, np, sizeof(float), err)) || (rc = grow(&t->v, np, sizeof(float), err)) ||
        (rc = grow(&t->state, t->arch.n_state, sizeof(float), err)))
        return rc;
    memset(t->g, 0, np * sizeof(float));
    memset(t->m, 0, np * sizeof(float));
    memset(t->v, 0, np * sizeof(float));
    if ((rc = nn_net_init(&t->nn, &t->arch, err)) ||
        (rc = par_new(t->cfg.threads < 64 ? t->cfg.threads : 64, &t->par, err)))
        return rc;
    nn_net_set_par(&t->nn, t->par);
    /* the MLP form's few large GEMMs run whole on OpenBLAS's threads (the caller sets them to cfg.threads), as fast
     * as on ours and the same on any thread count */
    t->nn.blas_threads = !t->cfg.layers[0];
    return TR_OK;
}

/* The sampler's classes: sorted distinct labels, and the rows grouped by class in pool. */
static int setup_classes(trn *t, tr_err *err) {
    size_t n = t->n, nc = 0;
    int64_t *sorted = NULL;
    int rc;
    if ((rc = grow(&sorted, n, sizeof *sorted, err))) return rc;
    memcpy(sorted, t->labels, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_i64);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || sorted[i] != sorted[i - 1]) sorted[nc++] = sorted[i];
    if (nc < (size_t)t->cfg.classes_per_batch) {
        rc = tr_seterr(err, TR_EINVAL, "classes-per-batch", "classes-per-batch is %d but the data has only %zu classes",
                       t->cfg.classes_per_batch, nc);
        goto done;
    }
    t->n_classes = nc;
    if ((rc = grow(&t->cls_label, nc, sizeof(int64_t), err)) || (rc = grow(&t->cls_off, nc + 1, sizeof(size_t), err)) ||
        (rc = grow(&t->cursor, nc, sizeof(size_t), err)) || (rc = grow(&t->cls_tmp, nc, sizeof(size_t), err)) ||
        (rc = grow(&t->pool, n, sizeof(size_t), err)))
        goto done;
    memcpy(t->cls_label, sorted, nc * sizeof(int64_t));
    memset(t->cls_off, 0, (nc + 1) * sizeof(size_t));
    for (size_t i = 0; i < n; i++) t->cls_off[class_of(t, t->labels[i]) + 1]++;
    for (size_t c = 0; c < nc; c++) t->cls_off[c + 1] += t->cls_off[c];
    memcpy(t->cursor, t->cls_off, nc * sizeof(size_t));
    for (size_t i = 0; i < n; i++) t->pool[t->cursor[class_of(t, t->labels[i])]++] = i;
done:
    free(sorted);
    return rc;
}

/* A layer list's preprocessing: per channel, the mean and 1/std of the raw training values. */
static int channel_stats(trn *t, tr_err *err) {
    size_t C = (size_t)t->arch.input.c, hw = t->dim / C;
    for (size_t c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (size_t r = 0; r < t->n; r++) {
            const float *p = t->x + r * t->dim + c * hw;
            for (size_t i = 0; i < hw; i++) s += p[i];
        }
        double cnt = (double)t->n * (double)hw, mean = s / cnt;
        for (size_t r = 0; r < t->n; r++) {
            const float *p = t->x + r * t->dim + c * hw;
            for (size_t i = 0; i < hw; i++) q += (p[i] - mean) * (p[i] - mean);
        }
        double sd = sqrt(q / cnt);
        if (!isfinite(mean) || !isfinite(sd))
            return tr_seterr(err, TR_EINVAL, "data", "channel %zu of the training data is not finite", c);
        t->ch_mean[c] = (float)mean;
        t->ch_scale[c] = (float)(sd > 0 ? 1.0 / sd : 1.0);
    }
    return TR_OK;
}

/* Input preprocessing. The MLP form: the configured mean and scale, scale 0
 * becoming 1 / max|x - mean|; a layer list: per channel from the data. */
static int setup_input(trn *t, tr_err *err) {
    size_t nd = t->n * t->dim, C = (size_t)t->arch.input.c;
    int rc;
    if ((rc = grow(&t->ch_mean, C, sizeof(float), err)) || (rc = grow(&t->ch_scale, C, sizeof(float), err))) return rc;
    if (t->layers) return channel_stats(t, err);
    t->in_mean = t->cfg.input_mean;
    t->in_scale = t->cfg.input_scale;
    if (t->in_scale == 0) {
        double mx = 0;
        for (size_t i = 0; i < nd; i++) {
            double a = fabs((double)t->x[i] - t->in_mean);
            if (!isfinite(a))
                return tr_seterr(err, TR_EINVAL, "data", "row %zu feature %zu is not finite", i / t->dim, i % t->dim);
            if (a > mx) mx = a;
        }
        t->in_scale = mx > 0 ? 1.0 / mx : 1.0;
    }
    t->cfg.input_scale = t->in_scale;
    for (size_t c = 0; c < C; c++) {
        t->ch_mean[c] = (float)t->in_mean;
        t->ch_scale[c] = (float)t->in_scale;
    }
    return bind_net(t, err);
}

void trn_preprocess(const trn *t, const float *x, size_t n, float *out) {
    size_t C = (size_t)t->arch.input.c, hw = t->dim / C;
    for (size_t r = 0; r < n; r++)
        for (size_t c = 0; c < C; c++) {
            const float *xp = x + r * t->dim + c * hw;
            float *o = out + r * t->dim + c * hw, m = t->ch_mean[c], s = t->ch_scale[c];
            for (size_t i = 0; i < hw; i++) o[i] = (xp[i] - m) * s;
        }
}

int trn_new(const trn_config *cfg, const float *x, const int64_t *labels, size_t n, size_t dim, trn **out,
            tr_err *err) {
    trn *t = NULL;
    int rc = trn_config_check(cfg, err);
    *out = NULL;
    if (rc) return rc;
    size_t want =
        cfg->layers[0] ? (size_t)cfg->input_c * (size_t)cfg->input_h * (size_t)cfg->input_w : (size_t)cfg->dims[0];
    if (cfg->layers[0] && cfg->input_c == 0)
        return tr_seterr(err, TR_EINVAL, "input", "a layer list needs the input shape (input_c x input_h x input_w)");
    if (dim != want && cfg->layers[0])
        return tr_seterr(err, TR_EDIM, "input", "data has %zu features but the input %dx%dx%d has %zu", dim,
                         cfg->input_c, cfg->input_h, cfg->input_w, want);
    if (dim != want)
        return tr_seterr(err, TR_EDIM, "arch", "data has %zu features but arch input width is %zu", dim, want);
    if (n < 2) return tr_seterr(err, TR_EINVAL, "data", "need at least 2 training rows, got %zu", n);
    size_t nd;
    if (!tr_size_mul(n, dim, &nd)) return tr_seterr(err, TR_ELIMIT, "data", "%zu x %zu overflows", n, dim);
    t = calloc(1, sizeof *t);
    if (t == NULL) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    t->cfg = *cfg;
    t->x = x;
    t->labels = labels;
    t->n = n;
    t->dim = dim;
    t->layers = cfg->layers[0] != '\0';
    if ((rc = setup_params(t, err)) || (rc = setup_classes(t, err)) || (rc = setup_input(t, err))) goto fail;

    /* seeded state: weights first, then the class pools */
    rng_seed(cfg->seed, t->rng);
    trn_init_params(&t->arch, t->w, t->state, t->rng);
    for (size_t c = 0; c < t->n_classes; c++) {
        rng_shuffle(t->rng, t->pool + t->cls_off[c], t->cls_off[c + 1] - t->cls_off[c]);
        t->cursor[c] = t->cls_off[c];
    }
    size_t bs = (size_t)cfg->classes_per_batch * (size_t)cfg->samples_per_class;
    t->steps_per_epoch =
        cfg->steps_per_epoch ? cfg->steps_per_epoch : (int)(n / bs > 0 ? (n / bs > INT32_MAX ? INT32_MAX : n / bs) : 1);
    t->cfg.steps_per_epoch = t->steps_per_epoch;
    if ((rc = grow(&t->bx, bs * dim, sizeof(float), err)) || (rc = grow(&t->blabels, bs, sizeof(int64_t), err)) ||
        (rc = grow(&t->aug, dim, sizeof(float), err)))
        goto fail;
    *out = t;
    return TR_OK;
fail:
    trn_free(t);
    return rc;
}

void trn_free(trn *t) {
    if (t == NULL) return;
    void *bufs[] = {t->w,         t->g,       t->m,           t->v,           t->state,   t->ch_mean, t->ch_scale,
                    t->cls_label, t->cls_off, t->cursor,      t->pool,        t->cls_tmp, t->X,       t->En,
                    t->dcur,      t->aug,     t->Ed,          t->D,           t->G,       t->dE,      t->work,
                    t->bx,        t->blabels, t->net.in_mean, t->net.in_scale};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    nn_net_free(&t->nn);
    par_free(t->par);
    mdl_ws_free(&t->ws);
    free(t);
}

const trn_config *trn_get_config(const trn *t) {
    return &t->cfg;
}
float *trn_params(trn *t, size_t *n_params) {
    if (n_params) *n_params = t->n_params;
    return t->w;
}
const float *trn_grads(const trn *t) {
    return t->g;
}
float *trn_state(trn *t, size_t *n_state) {
    if (n_state) *n_state = t->arch.n_state;
    return t->state;
}
const nn_arch *trn_arch(const trn *t) {
    return &t->arch;
}
int trn_is_layers(const trn *t) {
    return t->layers;
}
size_t trn_out_dim(const trn *t) {
    return t->out_dim;
}
double trn_input_mean(const trn *t) {
    return t->in_mean;
}
double trn_input_scale(const trn *t) {
    return t->in_scale;
}
int trn_done(const trn *t) {
    return t->epoch >= t->cfg.epochs;
}
int64_t trn_steps_done(const trn *t) {
    return t->step;
}
int trn_epochs_done(const trn *t) {
    return t->epoch;
}
void trn_set_epochs(trn *t, int epochs) {
    t->cfg.epochs = epochs < 0 ? 0 : epochs;
}

int trn_image(const trn *t, mdl_image *img, tr_err *err) {
    const nn_shape in = t->arch.input;
    memset(img, 0, sizeof *img);
    if (!t->layers) return tr_seterr(err, TR_EINVAL, "arch", "the MLP form has no image preprocessing");
    if (in.c > 3) return tr_seterr(err, TR_EINVAL, "input", "an image has 1 to 3 channels, the input has %d", in.c);
    img->channels = in.c;
    img->height = in.h;
    img->width = in.w;
    for (int c = 0; c < in.c; c++) {
        img->mean[c] = t->ch_mean[c] / 255.0f;
        img->std[c] = 1.0f / (t->ch_scale[c] * 255.0f);
    }
    return TR_OK;
}

/* ---- the loop ---- */

int trn_step_batch(trn *t, const float *x, const int64_t *labels, size_t n, trn_stats *st, tr_err *err) {
    int rc = trn_loss_grad(t, x, labels, n, st, err);
    if (rc) return rc;
    t->step++;
    trn_adam(t);
    st->step = t->step;
    return TR_OK;
}

static void acc_add(trn *t, const trn_stats *s) {
    t->acc[TRN_ACC_LOSS] += s->loss;
    t->acc[TRN_ACC_ACTIVE] += s->active;
    t->acc[TRN_ACC_EASY] += s->share[LOSS_CAT_EASY];
    t->acc[TRN_ACC_SEMI] += s->share[LOSS_CAT_SEMI_HARD];
    t->acc[TRN_ACC_HARD] += s->share[LOSS_CAT_HARD];
    t->acc[TRN_ACC_DAP] += s->mean_d_ap;
    t->acc[TRN_ACC_DAN] += s->mean_d_an;
    t->acc[TRN_ACC_NTRIP] += s->n_triplets;
    t->acc[TRN_ACC_STEPS] += 1;
}

static void acc_mean(const trn *t, int epoch, trn_stats *s) {
    double k = t->acc[TRN_ACC_STEPS] > 0 ? t->acc[TRN_ACC_STEPS] : 1;
    memset(s, 0, sizeof *s);
    s->step = t->step;
    s->epoch = epoch;
    s->step_in_epoch = (int)t->acc[TRN_ACC_STEPS];
    s->steps_per_epoch = t->steps_per_epoch;
    s->loss = t->acc[TRN_ACC_LOSS] / k;
    s->active = t->acc[TRN_ACC_ACTIVE] / k;
    s->share[LOSS_CAT_EASY] = t->acc[TRN_ACC_EASY] / k;
    s->share[LOSS_CAT_SEMI_HARD] = t->acc[TRN_ACC_SEMI] / k;
    s->share[LOSS_CAT_HARD] = t->acc[TRN_ACC_HARD] / k;
    s->mean_d_ap = t->acc[TRN_ACC_DAP] / k;
    s->mean_d_an = t->acc[TRN_ACC_DAN] / k;
    s->n_triplets = t->acc[TRN_ACC_NTRIP] / k;
    s->collapsed = fabs(s->mean_d_ap) < t->cfg.collapse_eps && fabs(s->mean_d_an) < t->cfg.collapse_eps;
}

/* One step; *epoch_end set (with the epoch's means in *es) when it closed an epoch. */
static int step_once(trn *t, trn_stats *st, int *epoch_end, trn_stats *es, tr_err *err) {
    const trn_config *c = &t->cfg;
    size_t bs = (size_t)c->classes_per_batch * (size_t)c->samples_per_class;
    trn_sample_batch(t);
    int rc = trn_loss_grad(t, t->bx, t->blabels, bs, st, err);
    if (rc) return rc;
    t->step++;
    trn_adam(t);
    t->step_in_epoch++;
    st->step = t->step;
    st->epoch = t->epoch;
    st->step_in_epoch = t->step_in_epoch;
    st->steps_per_epoch = t->steps_per_epoch;
    acc_add(t, st);
    *epoch_end = 0;
    if (t->step_in_epoch >= t->steps_per_epoch) {
        acc_mean(t, t->epoch, es);
        *epoch_end = 1;
        memset(t->acc, 0, sizeof t->acc);
        t->epoch++;
        t->step_in_epoch = 0;
    }
    return TR_OK;
}

int trn_step(trn *t, trn_stats *st, tr_err *err) {
    int end;
    trn_stats es;
    return step_once(t, st, &end, &es, err);
}

int trn_run(trn *t, trn_progress_fn cb, void *user, int *stopped, tr_err *err) {
    if (stopped) *stopped = 0;
    while (!trn_done(t)) {
        trn_stats st, es;
        int end, rc = step_once(t, &st, &end, &es, err);
        if (rc) return rc;
        int stop = cb ? cb(user, TRN_EV_STEP, &st) : 0;
        if (end && cb && cb(user, TRN_EV_EPOCH, &es)) stop = 1;
        if (stop && !trn_done(t)) {
            if (stopped) *stopped = 1;
            return TR_OK;
        }
    }
    return TR_OK;
}

int trn_embed(trn *t, const float *x, size_t n, float *out, tr_err *err) {
    const trn_config *c = &t->cfg;
    int rc = TR_OK;
    if (!t->layers) {
        rc = mlp_net_forward(&t->net, x, n, out, &t->ws, err);
    } else {
        if ((rc = grow(&t->aug, TRN_EMBED_BLOCK * t->dim, sizeof(float), err))) return rc;
        for (size_t r = 0; r < n && rc == TR_OK; r += TRN_EMBED_BLOCK) {
            size_t m = n - r < TRN_EMBED_BLOCK ? n - r : TRN_EMBED_BLOCK;
            trn_preprocess(t, x + r * t->dim, m, t->aug);
            rc = nn_net_infer(&t->nn, t->w, t->state, t->aug, m, out + r * t->out_dim, err);
        }
    }
    if (rc == TR_OK && c->normalize) mdl_l2_normalize(out, n, t->out_dim);
    return rc;
}
