/* nn_bn.c - batch normalisation over channels (torch.nn.BatchNorm2d/1d): batch statistics in training, running ones
 * in eval; fused with a following relu and 2x2 max pool. */
#include <math.h>

#include "nn_layers.h"
#include "vec.h"

#define BN_EPS 1e-5
#define BN_MOMENTUM 0.1
#define LANES 16

/* Sums in LANES float lanes (gcc vectorises the fixed inner loop), gathered in double. */
static double sum_plane(const float *restrict p, size_t n, float m) {
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (size_t k = 0; k < LANES; k++) acc[k] += p[i + k] - m;
    double s = 0;
    for (size_t k = 0; k < LANES; k++) s += acc[k];
    for (; i < n; i++) s += p[i] - m;
    return s;
}

static double sqdev_plane(const float *restrict p, size_t n, float m) {
    float acc[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (size_t k = 0; k < LANES; k++) acc[k] += (p[i + k] - m) * (p[i + k] - m);
    double s = 0;
    for (size_t k = 0; k < LANES; k++) s += acc[k];
    for (; i < n; i++) s += (double)(p[i] - m) * (p[i] - m);
    return s;
}

/* sum(a) and sum(a * xhat) over n floats, xhat = (x - m) * inv. */
static void dot_plane(const float *restrict a, const float *restrict x, size_t n, float m, float inv, double *sa,
                      double *sab) {
    float s8[LANES] = {0}, t8[LANES] = {0};
    size_t i = 0;
    for (; i + LANES <= n; i += LANES)
        for (size_t k = 0; k < LANES; k++) {
            s8[k] += a[i + k];
            t8[k] += a[i + k] * ((x[i + k] - m) * inv);
        }
    double s = 0, t = 0;
    for (size_t k = 0; k < LANES; k++) {
        s += s8[k];
        t += t8[k];
    }
    for (; i < n; i++) {
        s += a[i];
        t += (double)a[i] * ((x[i] - m) * inv);
    }
    *sa += s;
    *sab += t;
}

void nn_plane_stats(const float *x, size_t hw, double *out) {
    double mean = sum_plane(x, hw, 0.0f) / (double)hw;
    out[0] = mean;
    out[1] = sqdev_plane(x, hw, (float)mean);
}

/* One layer's arguments, for the per-channel and per-sample parts run by par_for. */
typedef struct {
    const nn_layer *L;
    const float *gamma, *beta, *x, *dy, *yp;
    float *state, *y, *stat, *dgamma, *dbeta, *dx;
    const float *cstat; /* backward's statistics */
    const double *pstat;
    const int32_t *arg;
    int32_t *argo;
    size_t n;
    int train;
} bn_task;

/* Channels [c0, c1): mean and 1/std (batch statistics from the planes' means and squared deviations, combined as
 * Chan et al.; or the running ones), running statistics updated in training. */
static void stats_part(void *ctx, size_t c0, size_t c1) {
    const bn_task *t = ctx;
    size_t C = (size_t)t->L->in.c, hw = (size_t)t->L->in.h * (size_t)t->L->in.w, n = t->n, M = n * hw;
    float *rmean = t->state, *rvar = t->state + C;
    for (size_t c = c0; c < c1; c++) {
        double mean = 0, var = 0;
        if (t->train) {
            /* sum of the planes' squared deviations, plus hw times that of their means from the mean, the means
             * shifted by the first one */
            double q = 0, sd = 0, sd2 = 0, shift = 0, ps[2];
            for (size_t smp = 0; smp < n; smp++) {
                const double *st = t->pstat ? t->pstat + 2 * (smp * C + c) : ps;
                if (!t->pstat) nn_plane_stats(t->x + (smp * C + c) * hw, hw, ps);
                if (smp == 0) shift = st[0];
                q += st[1];
                sd += st[0] - shift;
                sd2 += (st[0] - shift) * (st[0] - shift);
            }
            mean = shift + sd / (double)n;
            q += (double)hw * (sd2 - sd * sd / (double)n);
            var = q > 0 ? q / (double)M : 0;
            rmean[c] = (float)((1 - BN_MOMENTUM) * rmean[c] + BN_MOMENTUM * mean);
            rvar[c] = (float)((1 - BN_MOMENTUM) * rvar[c] + BN_MOMENTUM * var * (double)M / (double)(M - 1));
        } else {
            mean = rmean[c];
            var = rvar[c];
        }
        t->stat[c] = (float)mean;
        t->stat[C + c] = (float)(1.0 / sqrt(var + BN_EPS));
    }
}

/* y = gamma * (x - m) * inv + beta, as one multiply-add, over samples [lo, hi). */
static void apply_part(void *ctx, size_t lo, size_t hi) {
    const bn_task *t = ctx;
    size_t C = (size_t)t->L->in.c, hw = (size_t)t->L->in.h * (size_t)t->L->in.w;
    for (size_t smp = lo; smp < hi; smp++)
        for (size_t c = 0; c < C; c++) {
            float a = t->gamma[c] * t->stat[C + c], b = t->beta[c] - a * t->stat[c];
            vec_affine(t->y + (smp * C + c) * hw, t->x + (smp * C + c) * hw, hw, a, b);
        }
}

int nn_bn_forward(const nn_layer *L, const float *gamma, const float *beta, float *state, const float *x, size_t n,
                  int train, const double *pstat, float *y, float *stat, par *p) {
    size_t M = n * (size_t)L->in.h * (size_t)L->in.w;
    if (train && M < 2) return TR_EINVAL;
    bn_task t = {.L = L,
                 .gamma = gamma,
                 .beta = beta,
                 .x = x,
                 .state = state,
                 .y = y,
                 .stat = stat,
                 .pstat = pstat,
                 .n = n,
                 .train = train};
    par_for(p, (size_t)L->in.c, stats_part, &t);
    if (y) par_for(p, n, apply_part, &t);
    return TR_OK;
}

/* out = relu(a x + b) over n floats (restrict: gcc -O2 vectorises the blocks). */
static void affine_relu(float *restrict out, const float *restrict x, size_t n, float a, float b) {
    size_t i = 0;
    for (; i + VEC_BLOCK <= n; i += VEC_BLOCK)
        for (size_t k = 0; k < VEC_BLOCK; k++) {
            float v = a * x[i + k] + b;
            out[i + k] = v > 0.0f ? v : 0.0f;
        }
    for (; i < n; i++) {
        float v = a * x[i] + b;
        out[i] = v > 0.0f ? v : 0.0f;
    }
}

/* The fused batch norm, relu and 2x2 max pool over samples [lo, hi): each plane through relu(a x + b), pooled. */
static void relu_max2_part(void *ctx, size_t lo, size_t hi) {
    const bn_task *t = ctx;
    int H = t->L->in.h, W = t->L->in.w, OH = H / 2, OW = W / 2;
    size_t C = (size_t)t->L->in.c, hw = (size_t)H * (size_t)W, ohw = (size_t)OH * (size_t)OW;
    float plane[NN_FUSE_MAX_HW];
    for (size_t smp = lo; smp < hi; smp++)
        for (size_t c = 0; c < C; c++) {
            float a = t->gamma[c] * t->stat[C + c], b = t->beta[c] - a * t->stat[c];
            float *yp = t->y + (smp * C + c) * ohw;
            int32_t *ap = t->argo ? t->argo + (smp * C + c) * ohw : NULL;
            affine_relu(plane, t->x + (smp * C + c) * hw, hw, a, b);
            for (int oy = 0; oy < OH; oy++)
                nn_max2_row(plane + 2 * oy * W, plane + 2 * oy * W + W, W, OW, 2 * oy * W, yp + (size_t)oy * (size_t)OW,
                            ap ? ap + (size_t)oy * (size_t)OW : NULL);
        }
}

void nn_bn_relu_max2_forward(const nn_layer *L, const float *gamma, const float *beta, const float *x, size_t n,
                             const float *stat, float *y, int32_t *arg, par *p) {
    bn_task t = {.L = L, .gamma = gamma, .beta = beta, .x = x, .y = y, .stat = (float *)stat, .argo = arg, .n = n};
    par_for(p, n, relu_max2_part, &t);
}

static void backward_part(void *ctx, size_t c0, size_t c1) {
    const bn_task *t = ctx;
    size_t C = (size_t)t->L->in.c, hw = (size_t)t->L->in.h * (size_t)t->L->in.w, n = t->n, M = n * hw;
    const float *x = t->x, *dy = t->dy, *stat = t->cstat;
    for (size_t c = c0; c < c1; c++) {
        double sg = 0, sb = 0;
        for (size_t smp = 0; smp < n; smp++) {
            size_t o = (smp * C + c) * hw;
            dot_plane(dy + o, x + o, hw, stat[c], stat[C + c], &sb, &sg);
        }
        t->dgamma[c] = (float)sg;
        t->dbeta[c] = (float)sb;
        if (t->dx == NULL) continue;
        float k = t->gamma[c] * stat[C + c], mb = t->train ? (float)(sb / (double)M) : 0.0f,
              mg = t->train ? (float)(sg / (double)M) : 0.0f;
        /* dx = k * (dy - mb - (x - m) * inv * mg) as k dy + b x + c */
        float bx = -k * mg * stat[C + c], c0v = k * (mg * stat[C + c] * stat[c] - mb);
        for (size_t smp = 0; smp < n; smp++) {
            size_t o = (smp * C + c) * hw;
            vec_axpbyc(t->dx + o, dy + o, x + o, hw, k, bx, c0v);
        }
    }
}

void nn_bn_backward(const nn_layer *L, const float *gamma, const float *x, const float *stat, int train,
                    const float *dy, size_t n, float *dgamma, float *dbeta, float *dx, par *p) {
    bn_task t = {.L = L,
                 .gamma = gamma,
                 .x = x,
                 .dy = dy,
                 .dgamma = dgamma,
                 .dbeta = dbeta,
                 .dx = dx,
                 .cstat = stat,
                 .n = n,
                 .train = train};
    par_for(p, (size_t)L->in.c, backward_part, &t);
}

/* The fused backward over channels [c0, c1): the batch norm's output gradient is dy at each pooled output's argmax
 * where that output is positive (the relu passed it), zero elsewhere. */
static void relu_max2_backward_part(void *ctx, size_t c0, size_t c1) {
    const bn_task *t = ctx;
    int H = t->L->in.h, W = t->L->in.w;
    size_t C = (size_t)t->L->in.c, hw = (size_t)H * (size_t)W, ohw = (size_t)(H / 2) * (size_t)(W / 2), n = t->n;
    size_t M = n * hw;
    const float *stat = t->cstat;
    for (size_t c = c0; c < c1; c++) {
        float m = stat[c], inv = stat[C + c];
        double sg = 0, sb = 0;
        for (size_t smp = 0; smp < n; smp++) {
            size_t o = (smp * C + c) * ohw;
            const float *xp = t->x + (smp * C + c) * hw, *yp = t->yp + o, *d = t->dy + o;
            const int32_t *ap = t->arg + o;
            float s4[4] = {0}, g4[4] = {0};
            size_t j = 0;
            for (; j + 4 <= ohw; j += 4)
                for (size_t k = 0; k < 4; k++) {
                    float g = yp[j + k] > 0.0f ? d[j + k] : 0.0f; /* branch-free: the signs are random */
                    s4[k] += g;
                    g4[k] += g * ((xp[ap[j + k]] - m) * inv);
                }
            for (; j < ohw; j++) {
                float g = yp[j] > 0.0f ? d[j] : 0.0f;
                s4[0] += g;
                g4[0] += g * ((xp[ap[j]] - m) * inv);
            }
            sb += (double)s4[0] + s4[1] + s4[2] + s4[3];
            sg += (double)g4[0] + g4[1] + g4[2] + g4[3];
        }
        t->dgamma[c] = (float)sg;
        t->dbeta[c] = (float)sb;
        if (t->dx == NULL) continue;
        float k = t->gamma[c] * inv, mb = t->train ? (float)(sb / (double)M) : 0.0f,
              mg = t->train ? (float)(sg / (double)M) : 0.0f;
        float bx = -k * mg * inv, c0v = k * (mg * inv * m - mb);
        for (size_t smp = 0; smp < n; smp++) {
            size_t o = (smp * C + c) * ohw;
            const float *xp = t->x + (smp * C + c) * hw, *yp = t->yp + o, *d = t->dy + o;
            const int32_t *ap = t->arg + o;
            float *dxp = t->dx + (smp * C + c) * hw;
            vec_affine(dxp, xp, hw, bx, c0v);
            for (size_t j = 0; j < ohw; j++) { /* k * 0 + v is v: the entries the relu stopped keep their value */
                float g = yp[j] > 0.0f ? d[j] : 0.0f;
                dxp[ap[j]] = k * g + bx * xp[ap[j]] + c0v;
            }
        }
    }
}

void nn_bn_relu_max2_backward(const nn_layer *L, const float *gamma, const float *x, const float *stat, int train,
                              const float *y, const int32_t *arg, const float *dy, size_t n, float *dgamma,
                              float *dbeta, float *dx, par *p) {
    bn_task t = {.L = L,
                 .gamma = gamma,
                 .x = x,
                 .dy = dy,
                 .yp = y,
                 .dgamma = dgamma,
                 .dbeta = dbeta,
                 .dx = dx,
                 .cstat = stat,
                 .arg = arg,
                 .n = n,
                 .train = train};
    par_for(p, (size_t)L->in.c, relu_max2_backward_part, &t);
}
