/* nn_wino.c - training's 3x3 stride-1 convolutions by Winograd F(2x2, 3x3), 2.25x fewer multiply-adds than the
 * im2col GEMMs of nn_conv.c for each of the three products:
 *   forward:         y = conv(x, W), onx_wino (the inference kernel, lib/onnx_wino.c);
 *   input gradient:  dx = conv(dy, W'), W' the kernels flipped with their channels swapped (the adjoint of a
 *                    stride-1 convolution), onx_wino again;
 *   weight gradient: with U = G g G^T, V = B^T d B and Y = A^T (U . V) A per tile, dL/dU = sum over tiles of
 *                    V . (A dY A^T): 16 GEMMs of out x in channels over the tiles of a chunk of samples, then
 *                    dW = G^T (dL/dU) G.
 * The chunks and their partials are those of nn_conv.c, so the result does not depend on the thread count. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "nn_layers.h"
#include "onnx_wino.h"
#include "vec.h"

/* The forward window, and the input gradient's: the output gradient padded by k - 1 - pad. */
static onx_win win_of(const nn_layer *L, int dx) {
    int64_t q = dx ? 2 - L->pad : L->pad;
    onx_win w = {2, {3, 3}, {1, 1}, {1, 1}, {q, q}, {q, q}, {L->in.h, L->in.w}, {L->outs.h, L->outs.w}};
    if (dx) w.in[0] = L->outs.h, w.in[1] = L->outs.w, w.out[0] = L->in.h, w.out[1] = L->in.w;
    return w;
}

/* A 3x3 stride-1 layer whose input gradient is a stride-1 window too (pad 0 to 2), on which onx_wino_ok takes the
 * forward window (AVX-512, 8+ channels in and out, 32+ 2x2 output tiles per sample), with the input gradient's
 * rows, as wide as the input's, no wider than onx_wino's. Measured on the 7x7 planes of a 64 -> 128 layer, 16
 * tiles covering 8x8, Winograd lost to im2col even with the tiles of NN_CONV_CHUNK samples in each GEMM. */
int nn_wino_ok(const nn_layer *L) {
    if (L->kind != NN_CONV || L->k != 3 || L->stride != 1 || L->groups != 1 || L->pad < 0 || L->pad > 2) return 0;
    onx_win f = win_of(L, 0);
    return onx_wino_ok(&f, 1, L->in.c, L->out) && L->in.w <= ONX_WINO_MAX_W;
}

/* Per thread: the chunk's output gradients, its transformed inputs V and output gradients Z, the 16 transformed
 * weight gradients, the input transform's scratch, then onx_wino's work (the larger of forward and input
 * gradient). */
static size_t t_cols(const nn_layer *L) {
    onx_win f = win_of(L, 0);
    return (size_t)NN_CONV_CHUNK * (size_t)onx_wino_tiles(&f);
}

size_t nn_wino_work(const nn_layer *L) {
    onx_win f = win_of(L, 0), d = win_of(L, 1);
    size_t C = (size_t)L->in.c, M = (size_t)L->out, cols = t_cols(L);
    size_t fw = onx_wino_work(&f, L->in.c, L->out, NN_CONV_CHUNK),
           dw = onx_wino_work(&d, L->out, L->in.c, NN_CONV_CHUNK);
    return NN_CONV_CHUNK * nn_size(L->outs) + 16 * (C + M) * cols + 16 * M * C + onx_wino_in_work(&f) +
           (fw > dw ? fw : dw);
}

typedef struct {
    const nn_layer *L;
    size_t n;
    const float *pk, *pkt, *b, *x, *dy;
    float *y, *dx, *work, *part;
    double *pstat;
    const nn_dy_src *dysrc;
} wino_task;

static void forward_part(void *ctx, size_t lo, size_t hi, int tid) {
    const wino_task *t = ctx;
    const nn_layer *L = t->L;
    onx_win w = win_of(L, 0);
    size_t ohw = (size_t)L->outs.h * (size_t)L->outs.w, OC = (size_t)L->out;
    float *work = t->work + (size_t)tid * nn_conv_work(L);
    for (size_t c = lo; c < hi; c++) {
        size_t s0 = c * NN_CONV_CHUNK, gn = s0 + NN_CONV_CHUNK < t->n ? NN_CONV_CHUNK : t->n - s0;
        float *y = t->y + s0 * OC * ohw;
        onx_wino(ONX_K_AVX512, &w, L->in.c, L->out, t->pk, t->x + s0 * nn_size(L->in), (int64_t)gn, t->b, ONX_ACT_NONE,
                 0.0f, 0.0f, y, work);
        if (t->pstat)
            for (size_t q = 0; q < gn * OC; q++) nn_plane_stats(y + q * ohw, ohw, t->pstat + 2 * (s0 * OC + q));
    }
}

/* dw[(i * c + ch) * 9 + 3 ki + kj] = (G^T S G)[ki][kj] for the 16 m x c matrices S; G's rows [1 0 0], [.5 .5 .5],
 * [.5 -.5 .5], [0 0 1]. */
static void fold(const float *S, size_t m, size_t c, float *dw) {
    static const float G[4][3] = {{1, 0, 0}, {0.5f, 0.5f, 0.5f}, {0.5f, -0.5f, 0.5f}, {0, 0, 1}};
    size_t mc = m * c;
    for (size_t e = 0; e < mc; e++) {
        float s[4][4], r[4][3];
        for (int xi = 0; xi < 16; xi++) s[xi / 4][xi % 4] = S[(size_t)xi * mc + e];
        for (int a = 0; a < 4; a++) /* S G */
            for (int kj = 0; kj < 3; kj++)
                r[a][kj] = s[a][0] * G[0][kj] + s[a][1] * G[1][kj] + s[a][2] * G[2][kj] + s[a][3] * G[3][kj];
        for (int ki = 0; ki < 3; ki++) /* G^T (S G) */
            for (int kj = 0; kj < 3; kj++)
                dw[e * 9 + (size_t)(3 * ki + kj)] =
                    G[0][ki] * r[0][kj] + G[1][ki] * r[1][kj] + G[2][ki] * r[2][kj] + G[3][ki] * r[3][kj];
    }
}

static void backward_part(void *ctx, size_t lo, size_t hi, int tid) {
    const wino_task *t = ctx;
    const nn_layer *L = t->L;
    onx_win f = win_of(L, 0), d = win_of(L, 1);
    size_t C = (size_t)L->in.c, OC = (size_t)L->out, ohw = (size_t)L->outs.h * (size_t)L->outs.w;
    size_t nw = OC * C * 9, T = (size_t)onx_wino_tiles(&f);
    float *dyb = t->work + (size_t)tid * nn_conv_work(L), *V = dyb + NN_CONV_CHUNK * nn_size(L->outs);
    float *Z = V + 16 * C * t_cols(L), *S = Z + 16 * OC * t_cols(L), *eo = S + 16 * OC * C;
    float *ow = eo + onx_wino_in_work(&f);
    for (size_t c = lo; c < hi; c++) {
        float *dwp = t->part + c * (nw + OC), *dbp = dwp + nw;
        size_t s0 = c * NN_CONV_CHUNK, gn = s0 + NN_CONV_CHUNK < t->n ? NN_CONV_CHUNK : t->n - s0, cols = gn * T;
        const float *dys = dyb;
        if (t->dy)
            dys = t->dy + s0 * OC * ohw;
        else
            for (size_t q = 0; q < gn; q++) t->dysrc->fn(t->dysrc->ctx, s0 + q, dyb + q * OC * ohw);
        for (size_t q = 0; q < gn; q++)
            for (size_t oc = 0; oc < OC; oc++) {
                float v = (float)vec_sum(dys + (q * OC + oc) * ohw, ohw);
                dbp[oc] = q == 0 ? v : dbp[oc] + v;
            }
        onx_wino_in(&f, (int64_t)C, t->x + s0 * nn_size(L->in), (int64_t)gn, V, eo);
        onx_wino_out_adj(&f, (int64_t)OC, dys, (int64_t)gn, Z);
        for (size_t xi = 0; xi < 16; xi++)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)OC, (int)C, (int)cols, 1.0f, Z + xi * OC * cols,
                        (int)cols, V + xi * C * cols, (int)cols, 0.0f, S + xi * OC * C, (int)C);
        fold(S, OC, C, dwp);
        if (t->dx)
            onx_wino(ONX_K_AVX512, &d, (int64_t)OC, (int64_t)C, t->pkt, dys, (int64_t)gn, NULL, ONX_ACT_NONE, 0.0f,
                     0.0f, t->dx + s0 * nn_size(L->in), ow);
    }
}

/* The packed transformed kernels: W for the forward, W' (flipped, channels swapped) for the input gradient. */
static float *pack(const nn_layer *L, const float *w, int dx) {
    size_t C = (size_t)L->in.c, M = (size_t)L->out, rows = dx ? C : M, cols = dx ? M : C;
    size_t len = onx_wino_pack_len(ONX_K_AVX512, (int64_t)rows, (int64_t)cols);
    float *pk = malloc(sizeof(float) * (len + M * C * (dx ? 10 : 1)));
    if (!pk) return NULL;
    float *tmp = pk + len, *wt = tmp + M * C;
    if (dx)
        for (size_t i = 0; i < M; i++)
            for (size_t ch = 0; ch < C; ch++)
                for (int kk = 0; kk < 9; kk++)
                    wt[(ch * M + i) * 9 + (size_t)(8 - kk)] = w[(i * C + ch) * 9 + (size_t)kk];
    onx_wino_pack(ONX_K_AVX512, dx ? wt : w, (int64_t)rows, (int64_t)cols, tmp, pk);
    return pk;
}

int nn_wino_forward(const nn_layer *L, const float *w, const float *b, const float *x, size_t n, float *y,
                    double *pstat, float *work, par *p) {
    float *pk = pack(L, w, 0);
    if (!pk) return -1;
    wino_task t = {L, n, pk, NULL, b, x, NULL, y, NULL, work, NULL, pstat, NULL};
    par_for_id(p, (n + NN_CONV_CHUNK - 1) / NN_CONV_CHUNK, forward_part, &t);
    free(pk);
    return 0;
}

int nn_wino_backward(const nn_layer *L, const float *w, const float *x, const float *dy, const nn_dy_src *dysrc,
                     size_t n, float *dx, float *work, float *part, par *p) {
    float *pkt = dx ? pack(L, w, 1) : NULL;
    if (dx && !pkt) return -1;
    wino_task t = {L, n, NULL, pkt, NULL, x, dy, NULL, dx, work, part, NULL, dysrc};
    par_for_id(p, (n + NN_CONV_CHUNK - 1) / NN_CONV_CHUNK, backward_part, &t);
    free(pkt);
    return 0;
}
