/* train.c - metric-learning trainer: PK batches, in-batch mining, backprop, Adam. */
#include "train.h"

#include <cblas.h>
#if defined(__SSE__)
#include <immintrin.h>
#endif
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grad.h"
#include "rng.h"
#include "st.h"


enum { ACC_LOSS, ACC_ACTIVE, ACC_EASY, ACC_SEMI, ACC_HARD, ACC_DAP, ACC_DAN, ACC_NTRIP, ACC_STEPS, ACC_N };

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
    double acc[ACC_N];
    /* forward/backward buffers for up to cap_fwd rows, loss buffers for cap_loss */
    size_t cap_fwd, cap_loss, max_dim;
    float *X, *Z[MDL_MAX_LAYERS], *A[MDL_MAX_LAYERS], *En, *dcur, *dprev;
    double *Ed, *D, *G, *dE, *work;
    float *bx;
    int64_t *blabels;
};

/* ---- config ---- */

void trn_config_default(trn_config *c) {
    memset(c, 0, sizeof *c);
    c->dims[0] = 784;
    c->dims[1] = 256;
    c->dims[2] = 128;
    c->n_layers = 2;
    c->act = ACT_RELU;
    c->normalize = 1;
    c->metric = DIST_SQEUCLIDEAN;
    c->loss = LOSS_TRIPLET;
    c->mining = MINE_SEMI_HARD;
    c->margin = 0.2;
    c->classes_per_batch = 10;
    c->samples_per_class = 16;
    c->epochs = 10;
    c->steps_per_epoch = 0;
    c->lr = 1e-3;
    c->beta1 = 0.9;
    c->beta2 = 0.999;
    c->adam_eps = 1e-8;
    c->weight_decay = 0;
    c->seed = 1;
    c->threads = 1;
    c->input_mean = 0;
    c->input_scale = 0;
    c->collapse_eps = 1e-3;
}

int trn_parse_arch(const char *s, trn_config *cfg, tr_err *err) {
    int dims[MDL_MAX_LAYERS + 1], n = 0;
    const char *p = s;
    for (;;) {
        char *end;
        if (*p < '0' || *p > '9') return tr_seterr(err, TR_EINVAL, "arch", "arch \"%s\": expected a number at \"%s\"", s, p);
        long v = strtol(p, &end, 10);
        if (v < 1 || v > MDL_MAX_DIM) return tr_seterr(err, TR_EINVAL, "arch", "arch \"%s\": width %ld is not in 1..%d", s, v, MDL_MAX_DIM);
        if (n > MDL_MAX_LAYERS) return tr_seterr(err, TR_ELIMIT, "arch", "arch \"%s\": more than %d layers", s, MDL_MAX_LAYERS);
        dims[n++] = (int)v;
        if (*end == '\0') break;
        if (*end != '-') return tr_seterr(err, TR_EINVAL, "arch", "arch \"%s\": unexpected \"%c\" (widths are joined by '-')", s, *end);
        p = end + 1;
    }
    if (n < 2) return tr_seterr(err, TR_EINVAL, "arch", "arch \"%s\": needs at least an input and an output width", s);
    memcpy(cfg->dims, dims, (size_t)n * sizeof *dims);
    cfg->n_layers = n - 1;
    return TR_OK;
}

void trn_format_arch(const trn_config *cfg, char *buf, size_t len) {
    size_t o = 0;
    buf[0] = '\0';
    for (int i = 0; i <= cfg->n_layers && o < len; i++) {
        int k = snprintf(buf + o, len - o, i ? "-%d" : "%d", cfg->dims[i]);
        if (k < 0) break;
        o += (size_t)k;
    }
}

static int is_pair_loss(loss_kind k) { return k == LOSS_CONTRASTIVE || k == LOSS_CONTRASTIVE_SQUARED; }

void trn_recipe(const trn_config *c, char *buf, size_t len) {
    char arch[512];
    trn_format_arch(c, arch, sizeof arch);
    snprintf(buf, len,
             "tripletctl train: MLP %s %s%s, %s, %s loss%s%s, margin %g, PK batches %d classes x %d samples, "
             "%d epochs x %d steps, Adam lr %g betas (%g, %g) eps %g weight decay %g, seed %" PRIu64 ", %d threads, "
             "inputs (x - %g) * %g",
             arch, mdl_act_name(c->act), c->normalize ? ", L2-normalised" : "", dist_name(c->metric), loss_name(c->loss),
             is_pair_loss(c->loss) ? " on all in-batch pairs" : ", mining ", is_pair_loss(c->loss) ? "" : mine_name(c->mining), c->margin,
             c->classes_per_batch, c->samples_per_class, c->epochs, c->steps_per_epoch, c->lr, c->beta1, c->beta2, c->adam_eps,
             c->weight_decay, c->seed, c->threads, c->input_mean, c->input_scale);
}

int trn_config_check(const trn_config *c, tr_err *err) {
    if (c->n_layers < 1 || c->n_layers > MDL_MAX_LAYERS)
        return tr_seterr(err, TR_EINVAL, "arch", "arch has %d layers; need 1..%d", c->n_layers, MDL_MAX_LAYERS);
    for (int i = 0; i <= c->n_layers; i++)
        if (c->dims[i] < 1 || c->dims[i] > MDL_MAX_DIM)
            return tr_seterr(err, TR_EINVAL, "arch", "arch width %d at position %d is not in 1..%d", c->dims[i], i, MDL_MAX_DIM);
    if ((unsigned)c->act >= ACT_COUNT) return tr_seterr(err, TR_EINVAL, "activation", "unknown activation %d", (int)c->act);
    if ((unsigned)c->metric >= DIST_COUNT) return tr_seterr(err, TR_EINVAL, "metric", "unknown metric %d", (int)c->metric);
    if (c->loss != LOSS_TRIPLET && c->loss != LOSS_TRIPLET_SOFT && !is_pair_loss(c->loss))
        return tr_seterr(err, TR_EINVAL, "loss", "loss \"%s\" cannot be trained here (use triplet, triplet-soft, contrastive or contrastive-squared)",
                         loss_name(c->loss));
    if ((unsigned)c->mining >= MINE_COUNT) return tr_seterr(err, TR_EINVAL, "mining", "unknown mining %d", (int)c->mining);
    if (!isfinite(c->margin) || c->margin < 0) return tr_seterr(err, TR_EINVAL, "margin", "margin %g must be finite and >= 0", c->margin);
    if (c->classes_per_batch < 2)
        return tr_seterr(err, TR_EINVAL, "classes-per-batch", "classes-per-batch %d: need at least 2 classes for negatives", c->classes_per_batch);
    if (c->samples_per_class < 2)
        return tr_seterr(err, TR_EINVAL, "samples-per-class", "samples-per-class %d: need at least 2 for positives", c->samples_per_class);
    if ((int64_t)c->classes_per_batch * c->samples_per_class > TRN_MAX_BATCH)
        return tr_seterr(err, TR_ELIMIT, "classes-per-batch", "batch of %d x %d is over %d rows", c->classes_per_batch, c->samples_per_class,
                         TRN_MAX_BATCH);
    if (c->epochs < 0) return tr_seterr(err, TR_EINVAL, "epochs", "epochs %d must be >= 0", c->epochs);
    if (c->steps_per_epoch < 0) return tr_seterr(err, TR_EINVAL, "steps-per-epoch", "steps-per-epoch %d must be >= 0", c->steps_per_epoch);
    if (!(c->lr > 0) || !isfinite(c->lr)) return tr_seterr(err, TR_EINVAL, "lr", "lr %g must be > 0", c->lr);
    if (!(c->beta1 >= 0 && c->beta1 < 1)) return tr_seterr(err, TR_EINVAL, "beta1", "beta1 %g must be in [0, 1)", c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1)) return tr_seterr(err, TR_EINVAL, "beta2", "beta2 %g must be in [0, 1)", c->beta2);
    if (!(c->adam_eps > 0)) return tr_seterr(err, TR_EINVAL, "adam-eps", "adam eps %g must be > 0", c->adam_eps);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        return tr_seterr(err, TR_EINVAL, "weight-decay", "weight decay %g must be finite and >= 0", c->weight_decay);
    if (c->threads < 1 || c->threads > 256) return tr_seterr(err, TR_EINVAL, "threads", "threads %d is not in 1..256", c->threads);
    if (!isfinite(c->input_mean)) return tr_seterr(err, TR_EINVAL, "input-mean", "input mean must be finite");
    if (!(c->input_scale >= 0) || !isfinite(c->input_scale))
        return tr_seterr(err, TR_EINVAL, "input-scale", "input scale %g must be finite and >= 0 (0 = auto)", c->input_scale);
    return TR_OK;
}

/* ---- construction ---- */

static int grow(void **p, size_t n, size_t size, tr_err *err) {
    size_t bytes;
    if (!tr_size_mul(n, size, &bytes)) return tr_seterr(err, TR_ELIMIT, "batch", "buffer of %zu x %zu bytes overflows", n, size);
    void *q = realloc(*p, bytes ? bytes : 1);
    if (q == NULL) return tr_seterr(err, TR_ENOMEM, "batch", "cannot allocate %zu bytes of training buffers", bytes);
    *p = q;
    return TR_OK;
}

/* Forward buffers for n rows. */
static int ensure_fwd(trn *t, size_t n, tr_err *err) {
    if (n <= t->cap_fwd) return TR_OK;
    const trn_config *c = &t->cfg;
    size_t nd;
    if (!tr_size_mul(n, t->max_dim, &nd)) return tr_seterr(err, TR_ELIMIT, "batch", "batch of %zu rows overflows", n);
    int rc;
    if ((rc = grow((void **)&t->X, nd, sizeof(float), err)) || (rc = grow((void **)&t->En, nd, sizeof(float), err)) ||
        (rc = grow((void **)&t->dcur, nd, sizeof(float), err)) || (rc = grow((void **)&t->dprev, nd, sizeof(float), err)) ||
        (rc = grow((void **)&t->Ed, nd, sizeof(double), err)) || (rc = grow((void **)&t->dE, nd, sizeof(double), err)))
        return rc;
    for (int l = 0; l < c->n_layers; l++)
        if ((rc = grow((void **)&t->Z[l], nd, sizeof(float), err)) || (rc = grow((void **)&t->A[l], nd, sizeof(float), err))) return rc;
    t->cap_fwd = n;
    return TR_OK;
}

/* Loss buffers for an n-row batch. */
static int ensure_loss(trn *t, size_t n, tr_err *err) {
    if (n <= t->cap_loss) return TR_OK;
    size_t nn, w;
    if (!tr_size_mul(n, n, &nn) || !tr_size_mul(n, t->max_dim, &w) || !tr_size_add(w, nn, &w) || !tr_size_add(w, n, &w))
        return tr_seterr(err, TR_ELIMIT, "batch", "batch of %zu rows overflows", n);
    int rc;
    if ((rc = grow((void **)&t->D, nn, sizeof(double), err)) || (rc = grow((void **)&t->G, nn, sizeof(double), err)) ||
        (rc = grow((void **)&t->work, w, sizeof(double), err)))
        return rc;
    t->cap_loss = n;
    return TR_OK;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static size_t class_of(const trn *t, int64_t label) {
    size_t lo = 0, hi = t->n_classes;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (t->cls_label[mid] <= label) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* Flat parameters (per layer W then b) drawn from rng: kaiming_uniform_(a =
 * sqrt(5)) and the bias rule of nn.Linear, both U(-1/sqrt(in), 1/sqrt(in)). */
static void init_weights(const trn_config *c, float *w, uint64_t rng[4]) {
    size_t off = 0;
    for (int l = 0; l < c->n_layers; l++) {
        size_t in = (size_t)c->dims[l], out = (size_t)c->dims[l + 1];
        double bound = 1.0 / sqrt((double)in);
        for (size_t i = 0; i < in * out + out; i++) w[off + i] = (float)((2 * rng_uniform(rng) - 1) * bound);
        off += in * out + out;
    }
}

/* Copy flat parameters into a new model with the preprocessing and metadata of c. */
static int build_model(const trn_config *c, const float *w, double in_mean, double in_scale, mdl_model **out, tr_err *err) {
    mdl_model *m = NULL;
    int rc = mdl_new(c->dims, c->n_layers, c->act, c->normalize, &m, err);
    if (rc) return rc;
    mlp_net *net = mdl_mlp(m);
    size_t off = 0;
    for (int l = 0; l < c->n_layers; l++) {
        size_t in = (size_t)c->dims[l], o = (size_t)c->dims[l + 1];
        memcpy(net->layers[l].w, w + off, in * o * sizeof(float));
        memcpy(net->layers[l].b, w + off + in * o, o * sizeof(float));
        off += in * o + o;
    }
    size_t in0 = (size_t)c->dims[0];
    free(net->in_mean);
    free(net->in_scale);
    net->in_mean = malloc(in0 * sizeof(float));
    net->in_scale = malloc(in0 * sizeof(float));
    if (net->in_mean == NULL || net->in_scale == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "input.mean", "cannot allocate the preprocessing tensors");
        goto fail;
    }
    for (size_t i = 0; i < in0; i++) {
        net->in_mean[i] = (float)in_mean;
        net->in_scale[i] = (float)in_scale;
    }
    m->metric = c->metric;
    m->loss = c->loss;
    m->margin = c->margin;
    *out = m;
    return TR_OK;
fail:
    mdl_free(m);
    return rc;
}

int trn_init_model(const trn_config *cfg, mdl_model **out, tr_err *err) {
    uint64_t rng[4];
    size_t np = 0;
    int rc = trn_config_check(cfg, err);
    *out = NULL;
    if (rc) return rc;
    for (int l = 0; l < cfg->n_layers; l++) {
        np += (size_t)cfg->dims[l] * (size_t)cfg->dims[l + 1] + (size_t)cfg->dims[l + 1];
        if (np > MDL_MAX_PARAMS) return tr_seterr(err, TR_ELIMIT, "arch", "more than %u parameters", MDL_MAX_PARAMS);
    }
    float *w = malloc(np * sizeof *w);
    if (w == NULL) return tr_seterr(err, TR_ENOMEM, "arch", "cannot allocate %zu parameters", np);
    rng_seed(cfg->seed, rng);
    init_weights(cfg, w, rng);
    rc = build_model(cfg, w, cfg->input_mean, cfg->input_scale > 0 ? cfg->input_scale : 1.0, out, err);
    free(w);
    return rc;
}

/* The network view over the flat parameters, with the resolved preprocessing. */
static int bind_net(trn *t, tr_err *err) {
    const trn_config *c = &t->cfg;
    int rc;
    t->net.n_layers = c->n_layers;
    t->net.act = c->act;
    for (int l = 0; l < c->n_layers; l++)
        t->net.layers[l] = (mdl_layer){c->dims[l], c->dims[l + 1], t->w + t->off_w[l], t->w + t->off_b[l]};
    if ((rc = grow((void **)&t->net.in_mean, t->dim, sizeof(float), err)) ||
        (rc = grow((void **)&t->net.in_scale, t->dim, sizeof(float), err)))
        return rc;
    for (size_t i = 0; i < t->dim; i++) {
        t->net.in_mean[i] = (float)t->in_mean;
        t->net.in_scale[i] = (float)t->in_scale;
    }
    return TR_OK;
}

int trn_init_like(const mdl_model *m, const trn_config *cfg, mdl_model **out, tr_err *err) {
    const mlp_net *net = mdl_mlp(m);
    trn_config c = *cfg;
    *out = NULL;
    if (net == NULL) return tr_seterr(err, TR_EINVAL, "model", "only an MLP has an untrained counterpart");
    c.n_layers = net->n_layers;
    c.dims[0] = net->layers[0].in;
    for (int l = 0; l < net->n_layers; l++) c.dims[l + 1] = net->layers[l].out;
    c.act = net->act;
    c.normalize = m->normalize;
    int rc = trn_init_model(&c, out, err);
    if (rc) return rc;
    mlp_net *inet = mdl_mlp(*out);
    size_t in = m->input_dim;
    if (net->in_mean && inet->in_mean) memcpy(inet->in_mean, net->in_mean, in * sizeof(float));
    if (net->in_scale && inet->in_scale) memcpy(inet->in_scale, net->in_scale, in * sizeof(float));
    return TR_OK;
}

int trn_new(const trn_config *cfg, const float *x, const int64_t *labels, size_t n, size_t dim, trn **out, tr_err *err) {
    trn *t = NULL;
    int64_t *sorted = NULL;
    int rc = trn_config_check(cfg, err);
    *out = NULL;
    if (rc) return rc;
    if (dim != (size_t)cfg->dims[0])
        return tr_seterr(err, TR_EDIM, "arch", "data has %zu features but arch input width is %d", dim, cfg->dims[0]);
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

    /* parameters */
    size_t np = 0;
    t->max_dim = 0;
    for (int l = 0; l <= cfg->n_layers; l++)
        if ((size_t)cfg->dims[l] > t->max_dim) t->max_dim = (size_t)cfg->dims[l];
    for (int l = 0; l < cfg->n_layers; l++) {
        size_t wn = (size_t)cfg->dims[l] * (size_t)cfg->dims[l + 1];
        t->off_w[l] = np;
        t->off_b[l] = np + wn;
        np += wn + (size_t)cfg->dims[l + 1];
        if (np > MDL_MAX_PARAMS) {
            rc = tr_seterr(err, TR_ELIMIT, "arch", "more than %u parameters", MDL_MAX_PARAMS);
            goto fail;
        }
    }
    t->n_params = np;
    if ((rc = grow((void **)&t->w, np, sizeof(float), err)) || (rc = grow((void **)&t->g, np, sizeof(float), err)) ||
        (rc = grow((void **)&t->m, np, sizeof(float), err)) || (rc = grow((void **)&t->v, np, sizeof(float), err)))
        goto fail;
    memset(t->g, 0, np * sizeof(float));
    memset(t->m, 0, np * sizeof(float));
    memset(t->v, 0, np * sizeof(float));

    /* classes */
    if ((rc = grow((void **)&sorted, n, sizeof *sorted, err))) goto fail;
    memcpy(sorted, labels, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_i64);
    size_t nc = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || sorted[i] != sorted[i - 1]) sorted[nc++] = sorted[i];
    if (nc < (size_t)cfg->classes_per_batch) {
        rc = tr_seterr(err, TR_EINVAL, "classes-per-batch", "classes-per-batch is %d but the data has only %zu classes", cfg->classes_per_batch,
                       nc);
        goto fail;
    }
    t->n_classes = nc;
    if ((rc = grow((void **)&t->cls_label, nc, sizeof(int64_t), err)) || (rc = grow((void **)&t->cls_off, nc + 1, sizeof(size_t), err)) ||
        (rc = grow((void **)&t->cursor, nc, sizeof(size_t), err)) || (rc = grow((void **)&t->cls_tmp, nc, sizeof(size_t), err)) ||
        (rc = grow((void **)&t->pool, n, sizeof(size_t), err)))
        goto fail;
    memcpy(t->cls_label, sorted, nc * sizeof(int64_t));
    memset(t->cls_off, 0, (nc + 1) * sizeof(size_t));
    for (size_t i = 0; i < n; i++) t->cls_off[class_of(t, labels[i]) + 1]++;
    for (size_t c = 0; c < nc; c++) t->cls_off[c + 1] += t->cls_off[c];
    memcpy(t->cursor, t->cls_off, nc * sizeof(size_t));
    for (size_t i = 0; i < n; i++) t->pool[t->cursor[class_of(t, labels[i])]++] = i;

    /* input preprocessing */
    t->in_mean = cfg->input_mean;
    t->in_scale = cfg->input_scale;
    if (t->in_scale == 0) {
        double mx = 0;
        for (size_t i = 0; i < nd; i++) {
            double a = fabs((double)x[i] - t->in_mean);
            if (!isfinite(a)) {
                rc = tr_seterr(err, TR_EINVAL, "data", "row %zu feature %zu is not finite", i / dim, i % dim);
                goto fail;
            }
            if (a > mx) mx = a;
        }
        t->in_scale = mx > 0 ? 1.0 / mx : 1.0;
    }
    t->cfg.input_scale = t->in_scale;
    if ((rc = bind_net(t, err))) goto fail;

    /* seeded state: weights first, then the class pools */
    rng_seed(cfg->seed, t->rng);
    init_weights(cfg, t->w, t->rng);
    for (size_t c = 0; c < nc; c++) {
        rng_shuffle(t->rng, t->pool + t->cls_off[c], t->cls_off[c + 1] - t->cls_off[c]);
        t->cursor[c] = t->cls_off[c];
    }
    size_t bs = (size_t)cfg->classes_per_batch * (size_t)cfg->samples_per_class;
    t->steps_per_epoch = cfg->steps_per_epoch ? cfg->steps_per_epoch : (int)(n / bs > 0 ? (n / bs > INT32_MAX ? INT32_MAX : n / bs) : 1);
    t->cfg.steps_per_epoch = t->steps_per_epoch;
    if ((rc = grow((void **)&t->bx, bs * dim, sizeof(float), err)) || (rc = grow((void **)&t->blabels, bs, sizeof(int64_t), err))) goto fail;
    free(sorted);
    *out = t;
    return TR_OK;
fail:
    free(sorted);
    trn_free(t);
    return rc;
}

void trn_free(trn *t) {
    if (t == NULL) return;
    free(t->w);
    free(t->g);
    free(t->m);
    free(t->v);
    free(t->cls_label);
    free(t->cls_off);
    free(t->cursor);
    free(t->pool);
    free(t->cls_tmp);
    free(t->X);
    for (int l = 0; l < MDL_MAX_LAYERS; l++) {
        free(t->Z[l]);
        free(t->A[l]);
    }
    free(t->En);
    free(t->dcur);
    free(t->dprev);
    free(t->Ed);
    free(t->D);
    free(t->G);
    free(t->dE);
    free(t->work);
    free(t->bx);
    free(t->blabels);
    free(t->net.in_mean);
    free(t->net.in_scale);
    mdl_ws_free(&t->ws);
    free(t);
}

const trn_config *trn_get_config(const trn *t) { return &t->cfg; }
float *trn_params(trn *t, size_t *n_params) {
    if (n_params) *n_params = t->n_params;
    return t->w;
}
const float *trn_grads(const trn *t) { return t->g; }
double trn_input_mean(const trn *t) { return t->in_mean; }
double trn_input_scale(const trn *t) { return t->in_scale; }
int trn_done(const trn *t) { return t->epoch >= t->cfg.epochs; }
int64_t trn_steps_done(const trn *t) { return t->step; }
int trn_epochs_done(const trn *t) { return t->epoch; }
void trn_set_epochs(trn *t, int epochs) { t->cfg.epochs = epochs < 0 ? 0 : epochs; }

/* ---- forward / backward ---- */

/* Forward n raw rows; returns the embedding rows used for the loss
 * (normalised when configured). Z[last] keeps the raw output. */
static const float *forward(trn *t, const float *x, size_t n) {
    const trn_config *c = &t->cfg;
    size_t od = (size_t)c->dims[c->n_layers];
    mlp_forward_trace(&t->net, x, n, t->X, t->Z, t->A);
    const float *E = t->Z[c->n_layers - 1];
    if (!c->normalize) return E;
    memcpy(t->En, E, n * od * sizeof(float));
    mdl_l2_normalize(t->En, n, od);
    return t->En;
}

/* Multiply d (n x out, dL/dA) by the activation's derivative at layer l. */
static void act_backward(mdl_act a, const float *Z, const float *A, float *d, size_t cnt) {
    switch (a) {
    case ACT_RELU:
        for (size_t i = 0; i < cnt; i++) d[i] = Z[i] > 0 ? d[i] : 0.0f;
        break;
    case ACT_GELU:
        for (size_t i = 0; i < cnt; i++) {
            double z = Z[i];
            d[i] = (float)(d[i] * (0.5 * (1 + erf(z / sqrt(2.0))) + z * exp(-0.5 * z * z) / sqrt(2 * 3.14159265358979323846)));
        }
        break;
    case ACT_TANH:
        for (size_t i = 0; i < cnt; i++) d[i] *= 1.0f - A[i] * A[i];
        break;
    case ACT_SIGMOID:
        for (size_t i = 0; i < cnt; i++) d[i] *= A[i] * (1.0f - A[i]);
        break;
    default:
        break;
    }
}

/* Backprop dcur (n x out dim, dL/dZ[last]) through the MLP into t->g. */
static void backward(trn *t, size_t n) {
    const trn_config *c = &t->cfg;
    for (int l = c->n_layers - 1; l >= 0; l--) {
        int in = c->dims[l], out = c->dims[l + 1];
        if (l + 1 < c->n_layers) act_backward(c->act, t->Z[l], t->A[l], t->dcur, n * (size_t)out);
        const float *inp = l == 0 ? t->X : t->A[l - 1];
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, (int)n, 1.0f, t->dcur, out, inp, in, 0.0f, t->g + t->off_w[l], in);
        float *gb = t->g + t->off_b[l];
        memset(gb, 0, (size_t)out * sizeof(float));
        for (size_t i = 0; i < n; i++)
            for (int o = 0; o < out; o++) gb[o] += t->dcur[i * (size_t)out + (size_t)o];
        if (l > 0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, in, out, 1.0f, t->dcur, out, t->w + t->off_w[l], in, 0.0f, t->dprev,
                        in);
            float *tmp = t->dcur;
            t->dcur = t->dprev;
            t->dprev = tmp;
        }
    }
}

int trn_loss_grad(trn *t, const float *x, const int64_t *labels, size_t n, trn_stats *st, tr_err *err) {
    const trn_config *c = &t->cfg;
    mine_result mr;
    int rc;
    memset(&mr, 0, sizeof mr);
    memset(st, 0, sizeof *st);
    if (n < 2 || n > TRN_MAX_BATCH) return tr_seterr(err, TR_EINVAL, "batch", "batch of %zu rows is not in 2..%d", n, TRN_MAX_BATCH);
    if ((rc = ensure_fwd(t, n, err)) || (rc = ensure_loss(t, n, err))) return rc;
    size_t od = (size_t)c->dims[c->n_layers], nn = n * n;
    const float *E = forward(t, x, n);
    if ((rc = dist_matrix(c->metric, E, n, E, n, od, t->D, err))) goto fail;
    for (size_t i = 0; i < n * od; i++) t->Ed[i] = E[i];
    memset(t->G, 0, nn * sizeof(double));
    double loss = 0;
    if (is_pair_loss(c->loss)) {
        grd_pair_stats ps;
        if ((rc = grd_pairs(c->loss, t->D, labels, n, c->margin, t->G, &loss, &ps, err))) goto fail;
        /* categories over all in-batch triplets, for the progress display */
        if ((rc = mine_run(MINE_BATCH_ALL, t->D, labels, n, LOSS_TRIPLET, c->margin, 0, &mr, err))) goto fail;
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
        if ((rc = mine_run(c->mining, t->D, labels, n, c->loss, c->margin, max_list, &mr, err))) goto fail;
        if (mr.n_listed != mr.n_total) {
            rc = tr_seterr(err, TR_EINTERNAL, "mining", "miner listed %zu of %zu triplets", mr.n_listed, mr.n_total);
            goto fail;
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
    size_t tot = mr.counts[CAT_EASY] + mr.counts[CAT_SEMI_HARD] + mr.counts[CAT_HARD];
    for (int k = 0; k < CAT_COUNT; k++) st->share[k] = tot ? (double)mr.counts[k] / (double)tot : 0;
    st->loss = loss;
    st->collapsed = fabs(st->mean_d_ap) < c->collapse_eps && fabs(st->mean_d_an) < c->collapse_eps;

    if ((rc = grd_dist_backward(c->metric, t->Ed, n, od, t->D, t->G, t->dE, t->work, err))) goto fail;
    if (c->normalize) {
        const float *raw = t->Z[c->n_layers - 1];
        for (size_t i = 0; i < n * od; i++) t->Ed[i] = raw[i];
        grd_l2norm_backward(t->Ed, n, od, t->dE);
    }
    for (size_t i = 0; i < n * od; i++) t->dcur[i] = (float)t->dE[i];
    backward(t, n);
    mine_result_free(&mr);
    return TR_OK;
fail:
    mine_result_free(&mr);
    return rc;
}

/* ---- sampler, optimiser, loop ---- */

static void sample_batch(trn *t) {
    const trn_config *c = &t->cfg;
    size_t P = (size_t)c->classes_per_batch, K = (size_t)c->samples_per_class, nc = t->n_classes, o = 0;
    for (size_t i = 0; i < nc; i++) t->cls_tmp[i] = i;
    for (size_t i = 0; i < P; i++) {
        size_t j = i + rng_below(t->rng, nc - i), cl = t->cls_tmp[j];
        t->cls_tmp[j] = t->cls_tmp[i];
        t->cls_tmp[i] = cl;
        size_t lo = t->cls_off[cl], size = t->cls_off[cl + 1] - lo;
        for (size_t k = 0; k < K; k++) {
            size_t idx;
            if (size >= K) {
                if (k == 0 && t->cursor[cl] + K > lo + size) {
                    rng_shuffle(t->rng, t->pool + lo, size);
                    t->cursor[cl] = lo;
                }
                idx = t->pool[t->cursor[cl]++];
            } else {
                idx = t->pool[lo + rng_below(t->rng, size)];
            }
            memcpy(t->bx + o * t->dim, t->x + idx * t->dim, t->dim * sizeof(float));
            t->blabels[o++] = t->labels[idx];
        }
    }
}

/* The Adam update was 14% of a step at 784-256-128: GCC will not vectorise
 * sqrtf (errno), so on x86 four lanes go through SSE, which rounds exactly
 * like the scalar code (IEEE sqrt and division): the weights are the same. */
static void adam_update(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, size_t n, float b1, float b2,
                        float wd, float eps, float lr_bc1, float sq_bc2) {
    size_t i = 0;
#if defined(__SSE__)
    const __m128 vb1 = _mm_set1_ps(b1), vb2 = _mm_set1_ps(b2), vc1 = _mm_set1_ps(1 - b1), vc2 = _mm_set1_ps(1 - b2), vwd = _mm_set1_ps(wd),
                 veps = _mm_set1_ps(eps), vlr = _mm_set1_ps(lr_bc1), vsq = _mm_set1_ps(sq_bc2);
    for (; i + 4 <= n; i += 4) {
        __m128 wi = _mm_loadu_ps(w + i);
        __m128 gi = _mm_add_ps(_mm_loadu_ps(g + i), _mm_mul_ps(vwd, wi));
        __m128 mi = _mm_add_ps(_mm_mul_ps(vb1, _mm_loadu_ps(m + i)), _mm_mul_ps(vc1, gi));
        __m128 vi = _mm_add_ps(_mm_mul_ps(vb2, _mm_loadu_ps(v + i)), _mm_mul_ps(_mm_mul_ps(vc2, gi), gi));
        __m128 den = _mm_add_ps(_mm_div_ps(_mm_sqrt_ps(vi), vsq), veps);
        _mm_storeu_ps(m + i, mi);
        _mm_storeu_ps(v + i, vi);
        _mm_storeu_ps(w + i, _mm_sub_ps(wi, _mm_div_ps(_mm_mul_ps(vlr, mi), den)));
    }
#endif
    for (; i < n; i++) {
        float gi = g[i] + wd * w[i];
        m[i] = b1 * m[i] + (1 - b1) * gi;
        v[i] = b2 * v[i] + (1 - b2) * gi * gi;
        w[i] -= lr_bc1 * m[i] / (sqrtf(v[i]) / sq_bc2 + eps);
    }
}

/* torch.optim.Adam: L2 decay added to the gradient, bias corrections as torch computes them. */
static void adam(trn *t) {
    const trn_config *c = &t->cfg;
    double step = (double)t->step; /* already incremented */
    adam_update(t->w, t->g, t->m, t->v, t->n_params, (float)c->beta1, (float)c->beta2, (float)c->weight_decay, (float)c->adam_eps,
                (float)(c->lr / (1 - pow(c->beta1, step))), (float)sqrt(1 - pow(c->beta2, step)));
}

int trn_step_batch(trn *t, const float *x, const int64_t *labels, size_t n, trn_stats *st, tr_err *err) {
    int rc = trn_loss_grad(t, x, labels, n, st, err);
    if (rc) return rc;
    t->step++;
    adam(t);
    st->step = t->step;
    return TR_OK;
}

static void acc_add(trn *t, const trn_stats *s) {
    t->acc[ACC_LOSS] += s->loss;
    t->acc[ACC_ACTIVE] += s->active;
    t->acc[ACC_EASY] += s->share[CAT_EASY];
    t->acc[ACC_SEMI] += s->share[CAT_SEMI_HARD];
    t->acc[ACC_HARD] += s->share[CAT_HARD];
    t->acc[ACC_DAP] += s->mean_d_ap;
    t->acc[ACC_DAN] += s->mean_d_an;
    t->acc[ACC_NTRIP] += s->n_triplets;
    t->acc[ACC_STEPS] += 1;
}

static void acc_mean(const trn *t, int epoch, trn_stats *s) {
    double k = t->acc[ACC_STEPS] > 0 ? t->acc[ACC_STEPS] : 1;
    memset(s, 0, sizeof *s);
    s->step = t->step;
    s->epoch = epoch;
    s->step_in_epoch = (int)t->acc[ACC_STEPS];
    s->steps_per_epoch = t->steps_per_epoch;
    s->loss = t->acc[ACC_LOSS] / k;
    s->active = t->acc[ACC_ACTIVE] / k;
    s->share[CAT_EASY] = t->acc[ACC_EASY] / k;
    s->share[CAT_SEMI_HARD] = t->acc[ACC_SEMI] / k;
    s->share[CAT_HARD] = t->acc[ACC_HARD] / k;
    s->mean_d_ap = t->acc[ACC_DAP] / k;
    s->mean_d_an = t->acc[ACC_DAN] / k;
    s->n_triplets = t->acc[ACC_NTRIP] / k;
    s->collapsed = fabs(s->mean_d_ap) < t->cfg.collapse_eps && fabs(s->mean_d_an) < t->cfg.collapse_eps;
}

/* One step; *epoch_end set (with the epoch's means in *es) when it closed an epoch. */
static int step_once(trn *t, trn_stats *st, int *epoch_end, trn_stats *es, tr_err *err) {
    const trn_config *c = &t->cfg;
    size_t bs = (size_t)c->classes_per_batch * (size_t)c->samples_per_class;
    sample_batch(t);
    int rc = trn_loss_grad(t, t->bx, t->blabels, bs, st, err);
    if (rc) return rc;
    t->step++;
    adam(t);
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
    int rc = mlp_net_forward(&t->net, x, n, out, &t->ws, err);
    if (rc == TR_OK && c->normalize) mdl_l2_normalize(out, n, (size_t)c->dims[c->n_layers]);
    return rc;
}

int trn_export(const trn *t, mdl_model **out, tr_err *err) {
    *out = NULL;
    return build_model(&t->cfg, t->w, t->in_mean, t->in_scale, out, err);
}

/* ---- checkpoints ---- */

typedef enum { CF_INT, CF_DBL, CF_U64, CF_ACT, CF_METRIC, CF_LOSS, CF_MINE, CF_ARCH } cf_type;
static const struct {
    const char *key;
    cf_type type;
    size_t off;
} cfg_fields[] = {
    {"cfg.arch", CF_ARCH, 0},
    {"cfg.activation", CF_ACT, offsetof(trn_config, act)},
    {"cfg.normalize", CF_INT, offsetof(trn_config, normalize)},
    {"cfg.metric", CF_METRIC, offsetof(trn_config, metric)},
    {"cfg.loss", CF_LOSS, offsetof(trn_config, loss)},
    {"cfg.mining", CF_MINE, offsetof(trn_config, mining)},
    {"cfg.margin", CF_DBL, offsetof(trn_config, margin)},
    {"cfg.classes_per_batch", CF_INT, offsetof(trn_config, classes_per_batch)},
    {"cfg.samples_per_class", CF_INT, offsetof(trn_config, samples_per_class)},
    {"cfg.epochs", CF_INT, offsetof(trn_config, epochs)},
    {"cfg.steps_per_epoch", CF_INT, offsetof(trn_config, steps_per_epoch)},
    {"cfg.lr", CF_DBL, offsetof(trn_config, lr)},
    {"cfg.beta1", CF_DBL, offsetof(trn_config, beta1)},
    {"cfg.beta2", CF_DBL, offsetof(trn_config, beta2)},
    {"cfg.adam_eps", CF_DBL, offsetof(trn_config, adam_eps)},
    {"cfg.weight_decay", CF_DBL, offsetof(trn_config, weight_decay)},
    {"cfg.seed", CF_U64, offsetof(trn_config, seed)},
    {"cfg.threads", CF_INT, offsetof(trn_config, threads)},
    {"cfg.input_mean", CF_DBL, offsetof(trn_config, input_mean)},
    {"cfg.input_scale", CF_DBL, offsetof(trn_config, input_scale)},
    {"cfg.collapse_eps", CF_DBL, offsetof(trn_config, collapse_eps)},
};
#define N_CFG_FIELDS (sizeof cfg_fields / sizeof cfg_fields[0])
#define CK_FORMAT "tripletd-train-checkpoint-1"

static void cfg_format(const trn_config *c, size_t i, char *buf, size_t len) {
    const char *p = (const char *)c + cfg_fields[i].off;
    switch (cfg_fields[i].type) {
    case CF_INT: snprintf(buf, len, "%d", *(const int *)p); break;
    case CF_DBL: snprintf(buf, len, "%.17g", *(const double *)p); break;
    case CF_U64: snprintf(buf, len, "%" PRIu64, *(const uint64_t *)p); break;
    case CF_ACT: snprintf(buf, len, "%s", mdl_act_name(*(const mdl_act *)p)); break;
    case CF_METRIC: snprintf(buf, len, "%s", dist_name(*(const dist_metric *)p)); break;
    case CF_LOSS: snprintf(buf, len, "%s", loss_name(*(const loss_kind *)p)); break;
    case CF_MINE: snprintf(buf, len, "%s", mine_name(*(const mine_strategy *)p)); break;
    case CF_ARCH: trn_format_arch(c, buf, len); break;
    }
}

static int cfg_parse(trn_config *c, size_t i, const char *s, tr_err *err) {
    char *p = (char *)c + cfg_fields[i].off, *end = NULL;
    int bad = 0;
    switch (cfg_fields[i].type) {
    case CF_INT: {
        long v = strtol(s, &end, 10);
        bad = *s == '\0' || *end != '\0' || v < INT32_MIN || v > INT32_MAX;
        *(int *)p = (int)v;
        break;
    }
    case CF_DBL: *(double *)p = strtod(s, &end); bad = *s == '\0' || *end != '\0'; break;
    case CF_U64: *(uint64_t *)p = strtoull(s, &end, 10); bad = *s == '\0' || *end != '\0'; break;
    case CF_ACT: bad = mdl_act_parse(s, (mdl_act *)p) != 0; break;
    case CF_METRIC: bad = dist_parse(s, (dist_metric *)p) != 0; break;
    case CF_LOSS: bad = loss_parse(s, (loss_kind *)p) != 0; break;
    case CF_MINE: bad = mine_parse(s, (mine_strategy *)p) != 0; break;
    case CF_ARCH: return trn_parse_arch(s, c, err);
    }
    if (bad) return tr_seterr(err, TR_EFORMAT, cfg_fields[i].key, "checkpoint metadata \"%s\" has a bad value \"%s\"", cfg_fields[i].key, s);
    return TR_OK;
}

static uint64_t fingerprint(const trn *t) {
    uint64_t h = 1469598103934665603ull;
    h = (h ^ t->n) * 1099511628211ull;
    h = (h ^ t->dim) * 1099511628211ull;
    for (size_t i = 0; i < t->n; i++) h = (h ^ (uint64_t)t->labels[i]) * 1099511628211ull;
    return h;
}

enum { CK_STEP, CK_EPOCH, CK_STEP_IN_EPOCH, CK_DATA_N, CK_DATA_DIM, CK_FPRINT, CK_N_STATE };
static const char *const ck_state_keys[CK_N_STATE] = {"train.step", "train.epoch", "train.step_in_epoch", "data.rows", "data.dim", "data.fingerprint"};

int trn_checkpoint_save(const trn *t, const char *path, const char *note, tr_err *err) {
    const trn_config *c = &t->cfg;
    char vals[N_CFG_FIELDS + CK_N_STATE][512], lname[MDL_MAX_LAYERS][2][32];
    const char *meta[2 * (N_CFG_FIELDS + CK_N_STATE + 2)];
    st_wtensor ts[2 * MDL_MAX_LAYERS + 6];
    int64_t *pool = NULL, *cur = NULL, rng[4];
    size_t nm = 0, nt = 0;
    int rc;
    meta[nm++] = "format";
    meta[nm++] = CK_FORMAT;
    meta[nm++] = "note";
    meta[nm++] = note ? note : "";
    for (size_t i = 0; i < N_CFG_FIELDS; i++) {
        cfg_format(c, i, vals[i], sizeof vals[i]);
        meta[nm++] = cfg_fields[i].key;
        meta[nm++] = vals[i];
    }
    uint64_t state[CK_N_STATE] = {(uint64_t)t->step, (uint64_t)t->epoch, (uint64_t)t->step_in_epoch, t->n, t->dim, fingerprint(t)};
    for (size_t i = 0; i < CK_N_STATE; i++) {
        snprintf(vals[N_CFG_FIELDS + i], sizeof vals[0], "%" PRIu64, state[i]);
        meta[nm++] = ck_state_keys[i];
        meta[nm++] = vals[N_CFG_FIELDS + i];
    }
    for (int l = 0; l < c->n_layers; l++) {
        snprintf(lname[l][0], sizeof lname[l][0], "%d.weight", 2 * l);
        snprintf(lname[l][1], sizeof lname[l][1], "%d.bias", 2 * l);
        ts[nt++] = (st_wtensor){lname[l][0], ST_F32, 2, {c->dims[l + 1], c->dims[l]}, t->w + t->off_w[l]};
        ts[nt++] = (st_wtensor){lname[l][1], ST_F32, 1, {c->dims[l + 1]}, t->w + t->off_b[l]};
    }
    pool = malloc(t->n * sizeof *pool);
    cur = malloc(t->n_classes * sizeof *cur);
    if (pool == NULL || cur == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, path, "cannot allocate the sampler state");
        goto fail;
    }
    for (size_t i = 0; i < t->n; i++) pool[i] = (int64_t)t->pool[i];
    for (size_t i = 0; i < t->n_classes; i++) cur[i] = (int64_t)t->cursor[i];
    memcpy(rng, t->rng, sizeof rng); /* bit pattern of the uint64 state */
    ts[nt++] = (st_wtensor){"adam.m", ST_F32, 1, {(int64_t)t->n_params}, t->m};
    ts[nt++] = (st_wtensor){"adam.v", ST_F32, 1, {(int64_t)t->n_params}, t->v};
    ts[nt++] = (st_wtensor){"rng", ST_I64, 1, {4}, rng};
    ts[nt++] = (st_wtensor){"sampler.pool", ST_I64, 1, {(int64_t)t->n}, pool};
    ts[nt++] = (st_wtensor){"sampler.cursor", ST_I64, 1, {(int64_t)t->n_classes}, cur};
    ts[nt++] = (st_wtensor){"epoch.acc", ST_F64, 1, {ACC_N}, t->acc};
    rc = st_write(path, ts, nt, meta, nm / 2, err);
fail:
    free(pool);
    free(cur);
    return rc;
}

static int ck_open(const char *path, st_file **f, tr_err *err) {
    int rc = st_open(path, f, err);
    if (rc) return rc;
    const char *fmt = st_meta(*f, "format");
    if (fmt == NULL || strcmp(fmt, CK_FORMAT) != 0) {
        st_close(*f);
        *f = NULL;
        return tr_seterr(err, TR_EFORMAT, "format", "%s is not a training checkpoint (metadata \"format\" is not \"%s\")", path, CK_FORMAT);
    }
    return TR_OK;
}

int trn_checkpoint_config(const char *path, trn_config *cfg, tr_err *err) {
    st_file *f = NULL;
    int rc = ck_open(path, &f, err);
    if (rc) return rc;
    trn_config_default(cfg);
    for (size_t i = 0; i < N_CFG_FIELDS; i++) {
        const char *v = st_meta(f, cfg_fields[i].key);
        if (v == NULL) {
            rc = tr_seterr(err, TR_EFORMAT, cfg_fields[i].key, "checkpoint %s lacks metadata \"%s\"", path, cfg_fields[i].key);
            goto fail;
        }
        if ((rc = cfg_parse(cfg, i, v, err))) goto fail;
    }
    rc = trn_config_check(cfg, err);
fail:
    st_close(f);
    return rc;
}

/* Copy tensor name (dtype, nelem as expected) raw into dst. */
static int ck_read(const st_file *f, const char *name, st_dtype dt, size_t nelem, void *dst, tr_err *err) {
    const st_tensor *te = st_find(f, name);
    if (te == NULL) return tr_seterr(err, TR_EFORMAT, name, "checkpoint lacks tensor \"%s\"", name);
    if (te->dtype != dt || te->nelem != nelem)
        return tr_seterr(err, TR_EFORMAT, name, "checkpoint tensor \"%s\" is %s with %zu elements; expected %s with %zu", name,
                         st_dtype_name(te->dtype), te->nelem, st_dtype_name(dt), nelem);
    memcpy(dst, st_data(f, te), nelem * st_dtype_size(dt));
    return TR_OK;
}

int trn_checkpoint_load(trn *t, const char *path, char **note, tr_err *err) {
    st_file *f = NULL;
    int64_t *pool = NULL, *cur = NULL;
    uint64_t state[CK_N_STATE];
    char name[32];
    int rc = ck_open(path, &f, err);
    if (note) *note = NULL;
    if (rc) return rc;
    for (size_t i = 0; i < CK_N_STATE; i++) {
        const char *v = st_meta(f, ck_state_keys[i]);
        char *end;
        if (v == NULL || *v == '\0') {
            rc = tr_seterr(err, TR_EFORMAT, ck_state_keys[i], "checkpoint %s lacks metadata \"%s\"", path, ck_state_keys[i]);
            goto fail;
        }
        state[i] = strtoull(v, &end, 10);
        if (*end != '\0') {
            rc = tr_seterr(err, TR_EFORMAT, ck_state_keys[i], "checkpoint metadata \"%s\" is not a number: \"%s\"", ck_state_keys[i], v);
            goto fail;
        }
    }
    if (state[CK_DATA_N] != t->n || state[CK_DATA_DIM] != t->dim || state[CK_FPRINT] != fingerprint(t)) {
        rc = tr_seterr(err, TR_EINVAL, "data",
                       "checkpoint %s was made on other data (%" PRIu64 " rows x %" PRIu64 " features, labels fingerprint %" PRIu64
                       "; now %zu x %zu, %" PRIu64 ")",
                       path, state[CK_DATA_N], state[CK_DATA_DIM], state[CK_FPRINT], t->n, t->dim, fingerprint(t));
        goto fail;
    }
    for (int l = 0; l < t->cfg.n_layers; l++) {
        size_t in = (size_t)t->cfg.dims[l], o = (size_t)t->cfg.dims[l + 1];
        snprintf(name, sizeof name, "%d.weight", 2 * l);
        if ((rc = ck_read(f, name, ST_F32, in * o, t->w + t->off_w[l], err))) goto fail;
        snprintf(name, sizeof name, "%d.bias", 2 * l);
        if ((rc = ck_read(f, name, ST_F32, o, t->w + t->off_b[l], err))) goto fail;
    }
    pool = malloc(t->n * sizeof *pool);
    cur = malloc(t->n_classes * sizeof *cur);
    if (pool == NULL || cur == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, path, "cannot allocate the sampler state");
        goto fail;
    }
    uint64_t rng[4];
    if ((rc = ck_read(f, "adam.m", ST_F32, t->n_params, t->m, err)) || (rc = ck_read(f, "adam.v", ST_F32, t->n_params, t->v, err)) ||
        (rc = ck_read(f, "rng", ST_I64, 4, rng, err)) || (rc = ck_read(f, "sampler.pool", ST_I64, t->n, pool, err)) ||
        (rc = ck_read(f, "sampler.cursor", ST_I64, t->n_classes, cur, err)) || (rc = ck_read(f, "epoch.acc", ST_F64, ACC_N, t->acc, err)))
        goto fail;
    /* the pool must stay a per-class permutation; cursors inside their class */
    for (size_t c = 0; c < t->n_classes; c++) {
        for (size_t i = t->cls_off[c]; i < t->cls_off[c + 1]; i++)
            if (pool[i] < 0 || (size_t)pool[i] >= t->n || t->labels[pool[i]] != t->cls_label[c]) {
                rc = tr_seterr(err, TR_EFORMAT, "sampler.pool", "checkpoint sampler.pool[%zu] = %" PRId64 " is not a row of class %" PRId64, i,
                               pool[i], t->cls_label[c]);
                goto fail;
            }
        if (cur[c] < (int64_t)t->cls_off[c] || cur[c] > (int64_t)t->cls_off[c + 1]) {
            rc = tr_seterr(err, TR_EFORMAT, "sampler.cursor", "checkpoint sampler.cursor[%zu] = %" PRId64 " is outside its class", c, cur[c]);
            goto fail;
        }
    }
    for (size_t i = 0; i < t->n; i++) t->pool[i] = (size_t)pool[i];
    for (size_t c = 0; c < t->n_classes; c++) t->cursor[c] = (size_t)cur[c];
    memcpy(t->rng, rng, sizeof rng);
    t->step = (int64_t)state[CK_STEP];
    t->epoch = (int)state[CK_EPOCH];
    t->step_in_epoch = (int)state[CK_STEP_IN_EPOCH];
    if (note) {
        const char *s = st_meta(f, "note");
        *note = strdup(s ? s : "");
        if (*note == NULL) {
            rc = tr_seterr(err, TR_ENOMEM, "note", "out of memory");
            goto fail;
        }
    }
    rc = TR_OK;
fail:
    free(pool);
    free(cur);
    st_close(f);
    return rc;
}
