/* nn_act.c - elementwise activations (relu, gelu, tanh, sigmoid) and seeded inverted dropout, forward and backward. */
#include <math.h>
#include <string.h>

#include "nn_layers.h"
#include "rng.h"
#include "vec.h"

/* Blocks of 16 with a constant trip count: gcc -O2 vectorises them into compare-and-mask (see vec.h). */
static void relu_forward(const float *restrict x, size_t cnt, float *restrict y) {
    size_t i = 0;
    for (; i + 16 <= cnt; i += 16)
        for (size_t k = 0; k < 16; k++) {
            float v = x[i + k];
            y[i + k] = v > 0.0f ? v : 0.0f;
        }
    for (; i < cnt; i++) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

static void relu_backward(const float *restrict x, const float *restrict dy, size_t cnt, float *restrict dx) {
    size_t i = 0;
    for (; i + 16 <= cnt; i += 16)
        for (size_t k = 0; k < 16; k++) {
            float v = x[i + k], d = dy[i + k];
            dx[i + k] = v > 0.0f ? d : 0.0f;
        }
    for (; i < cnt; i++) dx[i] = x[i] > 0.0f ? dy[i] : 0.0f;
}

/* The formulas of vec.h, which the MLP's mdl_act_apply uses too. */
void nn_act_forward(nn_kind k, const float *x, size_t cnt, float *y) {
    if (k == NN_RELU && y != x) {
        relu_forward(x, cnt, y);
        return;
    }
    if (y != x) memcpy(y, x, cnt * sizeof *y);
    switch (k) {
    case NN_RELU:
        vec_relu(y, cnt);
        break;
    case NN_GELU:
        vec_gelu(y, cnt);
        break;
    case NN_TANH:
        vec_tanh(y, cnt);
        break;
    case NN_SIGMOID:
        vec_sigmoid(y, cnt);
        break;
    default:
        break;
    }
}

void nn_act_backward(nn_kind k, const float *x, const float *y, const float *dy, size_t cnt, float *dx) {
    switch (k) {
    case NN_RELU:
        relu_backward(x, dy, cnt, dx);
        break;
    case NN_GELU:
        for (size_t i = 0; i < cnt; i++) {
            double z = x[i];
            dx[i] = (float)(dy[i] * (0.5 * (1 + erf(z / sqrt(2.0))) +
                                     z * exp(-0.5 * z * z) / sqrt(2 * 3.14159265358979323846)));
        }
        break;
    case NN_TANH:
        for (size_t i = 0; i < cnt; i++) dx[i] = dy[i] * (1.0f - y[i] * y[i]);
        break;
    case NN_SIGMOID:
        for (size_t i = 0; i < cnt; i++) dx[i] = dy[i] * y[i] * (1.0f - y[i]);
        break;
    default:
        memcpy(dx, dy, cnt * sizeof *dx);
        break;
    }
}

void nn_dropout_forward(float p, const float *x, size_t cnt, uint64_t rng[4], float *mask, float *y) {
    float keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < cnt; i++) {
        mask[i] = rng_uniform(rng) < (double)p ? 0.0f : keep;
        y[i] = x[i] * mask[i];
    }
}

void nn_dropout_backward(const float *mask, const float *dy, size_t cnt, float *dx) {
    for (size_t i = 0; i < cnt; i++) dx[i] = dy[i] * mask[i];
}
