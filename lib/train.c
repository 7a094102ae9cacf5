/* train.c - metric-learning trainer: construction, PK batches, in-batch mining, backprop, Adam, the loop. */
#include "train_impl.h"

#include <cblas.h>
#if defined(__SSE__)
#include <immintrin.h>
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "grad.h"
#include "rng.h"

/* ---- construction ---- */

static int grow(void **p, size_t n, size_t size, tr_err *err) {
    size_t bytes;
    if (!tr_size_mul(n, size, &bytes))
        return tr_seterr(err, TR_ELIMIT, "batch", "buffer of %zu x %zu bytes overflows", n, size);
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
        (rc = grow((void **)&t->dcur, nd, sizeof(float), err)) ||
        (rc = grow((void **)&t->dprev, nd, sizeof(float), err)) ||
        (rc = grow((void **)&t->Ed, nd, sizeof(double), err)) || (rc = grow((void **)&t->dE, nd, sizeof(double), err)))
        return rc;
    for (int l = 0; l < c->n_layers; l++)
        if ((rc = grow((void **)&t->Z[l], nd, sizeof(float), err)) ||
            (rc = grow((void **)&t->A[l], nd, sizeof(float), err)))
            return rc;
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
        if (t->cls_label[mid] <= label)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
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

/* Flat parameters, gradients and Adam moments (zeroed), with each layer's offsets. */
static int setup_params(trn *t, tr_err *err) {
    const trn_config *cfg = &t->cfg;
    size_t np = 0;
    int rc;
    t->max_dim = 0;
    for (int l = 0; l <= cfg->n_layers; l++)
        if ((size_t)cfg->dims[l] > t->max_dim) t->max_dim = (size_t)cfg->dims[l];
    for (int l = 0; l < cfg->n_layers; l++) {
        size_t wn = (size_t)cfg->dims[l] * (size_t)cfg->dims[l + 1];
        t->off_w[l] = np;
        t->off_b[l] = np + wn;
        np += wn + (size_t)cfg->dims[l + 1];
        if (np > MDL_MAX_PARAMS) return tr_seterr(err, TR_ELIMIT, "arch", "more than %u parameters", MDL_MAX_PARAMS);
    }
    t->n_params = np;
    if ((rc = grow((void **)&t->w, np, sizeof(float), err)) || (rc = grow((void **)&t->g, np, sizeof(float), err)) ||
        (rc = grow((void **)&t->m, np, sizeof(float), err)) || (rc = grow((void **)&t->v, np, sizeof(float), err)))
        return rc;
    memset(t->g, 0, np * sizeof(float));
    memset(t->m, 0, np * sizeof(float));
    memset(t->v, 0, np * sizeof(float));
    return TR_OK;
}

/* The sampler's classes: sorted distinct labels, and the rows grouped by class in pool. */
static int setup_classes(trn *t, tr_err *err) {
    size_t n = t->n, nc = 0;
    int64_t *sorted = NULL;
    int rc;
    if ((rc = grow((void **)&sorted, n, sizeof *sorted, err))) return rc;
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
    if ((rc = grow((void **)&t->cls_label, nc, sizeof(int64_t), err)) ||
        (rc = grow((void **)&t->cls_off, nc + 1, sizeof(size_t), err)) ||
        (rc = grow((void **)&t->cursor, nc, sizeof(size_t), err)) ||
        (rc = grow((void **)&t->cls_tmp, nc, sizeof(size_t), err)) ||
        (rc = grow((void **)&t->pool, n, sizeof(size_t), err)))
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

/* Input preprocessing: the configured mean and scale; scale 0 becomes 1 / max|x - mean|. */
static int setup_input(trn *t, tr_err *err) {
    size_t nd = t->n * t->dim; /* checked by trn_new */
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
    return bind_net(t, err);
}

int trn_new(const trn_config *cfg, const float *x, const int64_t *labels, size_t n, size_t dim, trn **out,
            tr_err *err) {
    trn *t = NULL;
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
    if ((rc = setup_params(t, err)) || (rc = setup_classes(t, err)) || (rc = setup_input(t, err))) goto fail;

    /* seeded state: weights first, then the class pools */
    rng_seed(cfg->seed, t->rng);
    trn_init_weights(cfg, t->w, t->rng);
    for (size_t c = 0; c < t->n_classes; c++) {
        rng_shuffle(t->rng, t->pool + t->cls_off[c], t->cls_off[c + 1] - t->cls_off[c]);
        t->cursor[c] = t->cls_off[c];
    }
    size_t bs = (size_t)cfg->classes_per_batch * (size_t)cfg->samples_per_class;
    t->steps_per_epoch =
        cfg->steps_per_epoch ? cfg->steps_per_epoch : (int)(n / bs > 0 ? (n / bs > INT32_MAX ? INT32_MAX : n / bs) : 1);
    t->cfg.steps_per_epoch = t->steps_per_epoch;
    if ((rc = grow((void **)&t->bx, bs * dim, sizeof(float), err)) ||
        (rc = grow((void **)&t->blabels, bs, sizeof(int64_t), err)))
        goto fail;
    *out = t;
    return TR_OK;
fail:
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
    case MDL_ACT_RELU:
        for (size_t i = 0; i < cnt; i++) d[i] = Z[i] > 0 ? d[i] : 0.0f;
        break;
    case MDL_ACT_GELU:
        for (size_t i = 0; i < cnt; i++) {
            double z = Z[i];
            d[i] = (float)(d[i] *
                           (0.5 * (1 + erf(z / sqrt(2.0))) + z * exp(-0.5 * z * z) / sqrt(2 * 3.14159265358979323846)));
        }
        break;
    case MDL_ACT_TANH:
        for (size_t i = 0; i < cnt; i++) d[i] *= 1.0f - A[i] * A[i];
        break;
    case MDL_ACT_SIGMOID:
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
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, out, in, (int)n, 1.0f, t->dcur, out, inp, in, 0.0f,
                    t->g + t->off_w[l], in);
        float *gb = t->g + t->off_b[l];
        memset(gb, 0, (size_t)out * sizeof(float));
        for (size_t i = 0; i < n; i++)
            for (int o = 0; o < out; o++) gb[o] += t->dcur[i * (size_t)out + (size_t)o];
        if (l > 0) {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, in, out, 1.0f, t->dcur, out,
                        t->w + t->off_w[l], in, 0.0f, t->dprev, in);
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
    if (n < 2 || n > TRN_MAX_BATCH)
        return tr_seterr(err, TR_EINVAL, "batch", "batch of %zu rows is not in 2..%d", n, TRN_MAX_BATCH);
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
    size_t tot = mr.counts[LOSS_CAT_EASY] + mr.counts[LOSS_CAT_SEMI_HARD] + mr.counts[LOSS_CAT_HARD];
    for (int k = 0; k < LOSS_CAT_COUNT; k++) st->share[k] = tot ? (double)mr.counts[k] / (double)tot : 0;
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
static void adam_update(float *restrict w, const float *restrict g, float *restrict m, float *restrict v, size_t n,
                        float b1, float b2, float wd, float eps, float lr_bc1, float sq_bc2) {
    size_t i = 0;
#if defined(__SSE__)
    const __m128 vb1 = _mm_set1_ps(b1), vb2 = _mm_set1_ps(b2), vc1 = _mm_set1_ps(1 - b1), vc2 = _mm_set1_ps(1 - b2),
                 vwd = _mm_set1_ps(wd), veps = _mm_set1_ps(eps), vlr = _mm_set1_ps(lr_bc1), vsq = _mm_set1_ps(sq_bc2);
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
    adam_update(t->w, t->g, t->m, t->v, t->n_params, (float)c->beta1, (float)c->beta2, (float)c->weight_decay,
                (float)c->adam_eps, (float)(c->lr / (1 - pow(c->beta1, step))), (float)sqrt(1 - pow(c->beta2, step)));
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
