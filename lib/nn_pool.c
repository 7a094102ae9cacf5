/* nn_pool.c - max pooling, average pooling (count_include_pad, as torch's default) and global average pooling. */
#include <float.h>
#include <string.h>

#include "nn_layers.h"

/* One plane of max or average pooling; arg gets the argmax (max only). */
static void pool_plane(const nn_layer *L, const float *x, float *y, int32_t *arg) {
    int H = L->in.h, W = L->in.w, k = L->k, s = L->stride, p = L->pad, OH = L->outs.h, OW = L->outs.w;
    float inv = 1.0f / (float)(k * k);
    for (int oy = 0; oy < OH; oy++)
        for (int ox = 0; ox < OW; ox++) {
            int y0 = oy * s - p, x0 = ox * s - p, best = -1;
            float m = -FLT_MAX, sum = 0;
            for (int i = y0 < 0 ? 0 : y0; i < y0 + k && i < H; i++)
                for (int j = x0 < 0 ? 0 : x0; j < x0 + k && j < W; j++) {
                    float v = x[i * W + j];
                    sum += v;
                    if (v > m || best < 0) { /* the first maximum wins, as torch's CPU kernel */
                        m = v;
                        best = i * W + j;
                    }
                }
            if (L->kind == NN_MAXPOOL) {
                y[oy * OW + ox] = m;
                arg[oy * OW + ox] = best;
            } else
                y[oy * OW + ox] = sum * inv;
        }
}

void nn_pool_forward(const nn_layer *L, const float *x, size_t n, float *y, int32_t *arg) {
    size_t planes = n * (size_t)L->in.c, hw = (size_t)L->in.h * (size_t)L->in.w;
    size_t ohw = (size_t)L->outs.h * (size_t)L->outs.w;
    if (L->kind == NN_GAP) {
        for (size_t q = 0; q < planes; q++) {
            double s = 0;
            for (size_t i = 0; i < hw; i++) s += x[q * hw + i];
            y[q] = (float)(s / (double)hw);
        }
        return;
    }
    for (size_t q = 0; q < planes; q++) pool_plane(L, x + q * hw, y + q * ohw, arg ? arg + q * ohw : NULL);
}

void nn_pool_backward(const nn_layer *L, const int32_t *arg, const float *dy, size_t n, float *dx) {
    size_t planes = n * (size_t)L->in.c, hw = (size_t)L->in.h * (size_t)L->in.w;
    size_t ohw = (size_t)L->outs.h * (size_t)L->outs.w;
    memset(dx, 0, planes * hw * sizeof *dx);
    if (L->kind == NN_GAP) {
        float inv = 1.0f / (float)hw;
        for (size_t q = 0; q < planes; q++)
            for (size_t i = 0; i < hw; i++) dx[q * hw + i] = dy[q] * inv;
        return;
    }
    if (L->kind == NN_MAXPOOL) {
        for (size_t q = 0; q < planes; q++)
            for (size_t o = 0; o < ohw; o++) dx[q * hw + (size_t)arg[q * ohw + o]] += dy[q * ohw + o];
        return;
    }
    int H = L->in.h, W = L->in.w, k = L->k, s = L->stride, p = L->pad, OH = L->outs.h, OW = L->outs.w;
    float inv = 1.0f / (float)(k * k);
    for (size_t q = 0; q < planes; q++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                int y0 = oy * s - p, x0 = ox * s - p;
                float g = dy[q * ohw + (size_t)(oy * OW + ox)] * inv;
                for (int i = y0 < 0 ? 0 : y0; i < y0 + k && i < H; i++)
                    for (int j = x0 < 0 ? 0 : x0; j < x0 + k && j < W; j++) dx[q * hw + (size_t)(i * W + j)] += g;
            }
}
