/* nn_bn.c - batch normalisation over channels (torch.nn.BatchNorm2d/1d): batch statistics in training, running ones in
 * eval. */
#include <math.h>

#include "nn_layers.h"

#define BN_EPS 1e-5
#define BN_MOMENTUM 0.1

int nn_bn_forward(const nn_layer *L, const float *gamma, const float *beta, float *state, const float *x, size_t n,
                  int train, float *y, float *xhat, float *stat) {
    size_t C = (size_t)L->in.c, hw = (size_t)L->in.h * (size_t)L->in.w, M = n * hw;
    float *rmean = state, *rvar = state + C;
    if (train && M < 2) return TR_EINVAL;
    for (size_t c = 0; c < C; c++) {
        double mean, var;
        if (train) {
            double s = 0, q = 0;
            for (size_t smp = 0; smp < n; smp++) {
                const float *p = x + (smp * C + c) * hw;
                for (size_t i = 0; i < hw; i++) s += p[i];
            }
            mean = s / (double)M;
            for (size_t smp = 0; smp < n; smp++) {
                const float *p = x + (smp * C + c) * hw;
                for (size_t i = 0; i < hw; i++) q += (p[i] - mean) * (p[i] - mean);
            }
            var = q / (double)M;
            rmean[c] = (float)((1 - BN_MOMENTUM) * rmean[c] + BN_MOMENTUM * mean);
            rvar[c] = (float)((1 - BN_MOMENTUM) * rvar[c] + BN_MOMENTUM * var * (double)M / (double)(M - 1));
        } else {
            mean = rmean[c];
            var = rvar[c];
        }
        float m = (float)mean, inv = (float)(1.0 / sqrt(var + BN_EPS)), g = gamma[c], b = beta[c];
        stat[c] = m;
        stat[C + c] = inv;
        for (size_t smp = 0; smp < n; smp++) {
            size_t o = (smp * C + c) * hw;
            for (size_t i = 0; i < hw; i++) {
                float h = (x[o + i] - m) * inv;
                xhat[o + i] = h;
                y[o + i] = g * h + b;
            }
        }
    }
    return TR_OK;
}

void nn_bn_backward(const nn_layer *L, const float *gamma, const float *xhat, const float *stat, int train,
                    const float *dy, size_t n, float *dgamma, float *dbeta, float *dx) {
    size_t C = (size_t)L->in.c, hw = (size_t)L->in.h * (size_t)L->in.w, M = n * hw;
    for (size_t c = 0; c < C; c++) {
        double sg = 0, sb = 0;
        for (size_t smp = 0; smp < n; smp++) {
            size_t o = (smp * C + c) * hw;
            for (size_t i = 0; i < hw; i++) {
                sb += dy[o + i];
                sg += (double)dy[o + i] * xhat[o + i];
            }
        }
        dgamma[c] = (float)sg;
        dbeta[c] = (float)sb;
        if (dx == NULL) continue;
        float k = gamma[c] * stat[C + c], mb = train ? (float)(sb / (double)M) : 0.0f,
              mg = train ? (float)(sg / (double)M) : 0.0f;
        for (size_t smp = 0; smp < n; smp++) {
            size_t o = (smp * C + c) * hw;
            for (size_t i = 0; i < hw; i++) dx[o + i] = k * (dy[o + i] - mb - xhat[o + i] * mg);
        }
    }
}
