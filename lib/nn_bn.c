/* nn_bn.c - batch normalisation over channels (torch.nn.BatchNorm2d/1d): batch statistics in training, running ones
 * in eval. */
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

/* One layer's arguments, for the per-channel parts run by par_for. */
typedef struct {
    const nn_layer *L;
    const float *gamma, *beta, *x, *dy;
    float *state, *y, *stat, *dgamma, *dbeta, *dx;
    const float *cstat; /* backward's statistics */
    size_t n;
    int train;
} bn_task;

static void forward_part(void *ctx, size_t c0, size_t c1) {
    const bn_task *t = ctx;
    size_t C = (size_t)t->L->in.c, hw = (size_t)t->L->in.h * (size_t)t->L->in.w, n = t->n, M = n * hw;
    const float *x = t->x;
    float *rmean = t->state, *rvar = t->state + C;
    for (size_t c = c0; c < c1; c++) {
        double mean, var;
        if (t->train) {
            double s = 0, q = 0;
            /* the first value as a shift keeps the float lanes' sums small */
            float shift = x[c * hw];
            for (size_t smp = 0; smp < n; smp++) s += sum_plane(x + (smp * C + c) * hw, hw, shift);
            mean = shift + s / (double)M;
            for (size_t smp = 0; smp < n; smp++) q += sqdev_plane(x + (smp * C + c) * hw, hw, (float)mean);
            var = q / (double)M;
            rmean[c] = (float)((1 - BN_MOMENTUM) * rmean[c] + BN_MOMENTUM * mean);
            rvar[c] = (float)((1 - BN_MOMENTUM) * rvar[c] + BN_MOMENTUM * var * (double)M / (double)(M - 1));
        } else {
            mean = rmean[c];
            var = rvar[c];
        }
        float m = (float)mean, inv = (float)(1.0 / sqrt(var + BN_EPS));
        t->stat[c] = m;
        t->stat[C + c] = inv;
        /* y = gamma * (x - m) * inv + beta, as one multiply-add */
        float a = t->gamma[c] * inv, b = t->beta[c] - a * m;
        for (size_t smp = 0; smp < n; smp++) vec_affine(t->y + (smp * C + c) * hw, x + (smp * C + c) * hw, hw, a, b);
    }
}

int nn_bn_forward(const nn_layer *L, const float *gamma, const float *beta, float *state, const float *x, size_t n,
                  int train, float *y, float *stat, par *p) {
    size_t M = n * (size_t)L->in.h * (size_t)L->in.w;
    if (train && M < 2) return TR_EINVAL;
    bn_task t = {L, gamma, beta, x, NULL, state, y, stat, NULL, NULL, NULL, NULL, n, train};
    par_for(p, (size_t)L->in.c, forward_part, &t);
    return TR_OK;
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
    bn_task t = {L, gamma, NULL, x, dy, NULL, NULL, NULL, dgamma, dbeta, dx, stat, n, train};
    par_for(p, (size_t)L->in.c, backward_part, &t);
}
