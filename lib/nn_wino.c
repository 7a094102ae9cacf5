/* nn_wino.c - training's 3x3 stride-1 convolutions by Winograd F(2x2, 3x3), 2.25x fewer multiply-adds than the
 * im2col GEMMs of nn_conv.c for each of the three products:
 *   forward:         y = conv(x, W), onx_wino (the inference kernel, lib/onnx_wino.c);
 *   input gradient:  dx = conv(dy, W'), W' the kernels flipped with their channels swapped (the adjoint of a
 *                    stride-1 convolution), onx_wino again;
 *   weight gradient: with U = G g G^T, V = B^T d B and Y = A^T (U . V) A per tile, dL/dU = sum over tiles of
 *                    V . (A dY A^T): 16 GEMMs of out x in channels over the tiles of a chunk of samples, then
 *                    dW = G^T (dL/dU) G.
 * The chunks and their partials are those of nn_conv.c, so the result does not depend on the thread count. */
#include <stdlib.h>
#include <string.h>

#include "nn_abt.h"
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
 * forward window (AVX2, 8+ channels in and out), with 32+ 2x2 output tiles per sample and the input gradient's
 * rows, as wide as the input's, no wider than onx_wino's. Measured on the 7x7 planes of a 64 -> 128 layer, 16
 * tiles covering 8x8, Winograd lost to im2col even with the tiles of NN_CONV_CHUNK samples in each GEMM (the
 * forward alone, onnx_wino.c, takes those on AVX2). */
#define NN_WINO_MIN_T 32
int nn_wino_ok(const nn_layer *L) {
    if (L->kind != NN_CONV || L->k != 3 || L->stride != 1 || L->groups != 1 || L->pad < 0 || L->pad > 2) return 0;
    onx_win f = win_of(L, 0);
    return onx_wino_ok(&f, 1, L->in.c, L->out) && L->in.w <= ONX_WINO_MAX_W && onx_wino_tiles(&f) >= NN_WINO_MIN_T;
}

/* Samples whose transformed inputs V and output gradients Z the weight gradient's GEMMs take at a time: as many
 * as keep the two within NN_WINO_VZ_BYTES, so they stay in the core's cache between the transforms that write
 * them and the GEMMs that read them (a chunk's whole V and Z, 6 MB for 32 channels on 28x28, went to memory and
 * back). */
#define NN_WINO_VZ_BYTES (512 * 1024)
/* At least this many tiles per GEMM: nn_abt's dot products pay a reduction per 4 x 4 block of the result, which a
 * 7x7 plane's 16 tiles (one sample) do not repay. */
#define NN_WINO_MIN_TILES 192
static size_t sub_samples(const nn_layer *L) {
    onx_win f = win_of(L, 0);
    size_t T = (size_t)onx_wino_tiles(&f), per = 16 * sizeof(float) * (size_t)(L->in.c + L->out) * T;
    size_t k = NN_WINO_VZ_BYTES / per, kmin = (NN_WINO_MIN_TILES + T - 1) / T;
    k = k < kmin ? kmin : k; /* kmin >= 1 */
    return k > NN_CONV_CHUNK ? NN_CONV_CHUNK : k;
}

/* Per thread: the chunk's output gradients, the transformed inputs V and output gradients Z of sub_samples, the
 * 16 transformed weight gradients, the input transform's scratch, then onx_wino's work (the larger of forward and
 * input gradient). */
static size_t t_cols(const nn_layer *L) {
    onx_win f = win_of(L, 0);
    return sub_samples(L) * (size_t)onx_wino_tiles(&f);
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
        onx_wino(onx_sgemm_best(), &w, L->in.c, L->out, t->pk, t->x + s0 * nn_size(L->in), (int64_t)gn, t->b, NULL,
                 ONX_ACT_NONE, 0.0f, 0.0f, y, work);
        if (t->pstat)
            for (size_t q = 0; q < gn * OC; q++) nn_plane_stats(y + q * ohw, ohw, t->pstat + 2 * (s0 * OC + q));
    }
}

/* dw[(i * c + ch) * 9 + 3 ki + kj] = (G^T S G)[ki][kj] for the 16 m x c matrices S; G's rows [1 0 0], [.5 .5 .5],
 * [.5 -.5 .5], [0 0 1]: with S's columns b (S G)[a] = (s0 + (s1 + s2) / 2, (s1 - s2) / 2, s3 + (s1 + s2) / 2),
 * and the same over rows. FOLD_LANES entries at a time, each step a loop over the lanes (vectorised), the nine
 * results then interleaved into dw. */
#define FOLD_LANES 16
static void fold_lanes(const float *S, size_t mc, size_t e0, size_t nl, float *dw) {
    float r[4][3][FOLD_LANES], o[9][FOLD_LANES];
    for (int a = 0; a < 4; a++) {
        const float *s0 = S + (size_t)(4 * a) * mc + e0, *s1 = s0 + mc, *s2 = s1 + mc, *s3 = s2 + mc;
        for (size_t l = 0; l < FOLD_LANES; l++) {
            size_t q = l < nl ? l : 0;
            float h = 0.5f * (s1[q] + s2[q]);
            r[a][0][l] = s0[q] + h, r[a][1][l] = 0.5f * (s1[q] - s2[q]), r[a][2][l] = s3[q] + h;
        }
    }
    for (int kj = 0; kj < 3; kj++)
        for (size_t l = 0; l < FOLD_LANES; l++) {
            float h = 0.5f * (r[1][kj][l] + r[2][kj][l]);
            o[kj][l] = r[0][kj][l] + h, o[3 + kj][l] = 0.5f * (r[1][kj][l] - r[2][kj][l]),
            o[6 + kj][l] = r[3][kj][l] + h;
        }
    for (size_t l = 0; l < nl; l++)
        for (int k = 0; k < 9; k++) dw[(e0 + l) * 9 + (size_t)k] = o[k][l];
}

static void fold(const float *S, size_t m, size_t c, float *dw) {
    size_t mc = m * c;
    for (size_t e0 = 0; e0 < mc; e0 += FOLD_LANES)
        fold_lanes(S, mc, e0, mc - e0 < FOLD_LANES ? mc - e0 : FOLD_LANES, dw);
}

static void backward_part(void *ctx, size_t lo, size_t hi, int tid) {
    const wino_task *t = ctx;
    const nn_layer *L = t->L;
    onx_win f = win_of(L, 0), d = win_of(L, 1);
    size_t C = (size_t)L->in.c, OC = (size_t)L->out, ohw = (size_t)L->outs.h * (size_t)L->outs.w;
    size_t nw = OC * C * 9, T = (size_t)onx_wino_tiles(&f), sub = sub_samples(L);
    float *dyb = t->work + (size_t)tid * nn_conv_work(L), *V = dyb + NN_CONV_CHUNK * nn_size(L->outs);
    float *Z = V + 16 * C * t_cols(L), *S = Z + 16 * OC * t_cols(L), *eo = S + 16 * OC * C;
    float *ow = eo + onx_wino_in_work(&f);
    for (size_t c = lo; c < hi; c++) {
        float *dwp = t->part + c * (nw + OC), *dbp = dwp + nw;
        size_t s0 = c * NN_CONV_CHUNK, gn = s0 + NN_CONV_CHUNK < t->n ? NN_CONV_CHUNK : t->n - s0;
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
        for (size_t q0 = 0; q0 < gn; q0 += sub) {
            size_t qn = gn - q0 < sub ? gn - q0 : sub, cols = qn * T;
            onx_wino_in(&f, (int64_t)C, t->x + (s0 + q0) * nn_size(L->in), (int64_t)qn, V, eo);
            onx_wino_out_adj(&f, (int64_t)OC, dys + q0 * OC * ohw, (int64_t)qn, Z);
            for (size_t xi = 0; xi < 16; xi++)
                nn_abt(OC, C, cols, Z + xi * OC * cols, V + xi * C * cols, cols, q0 != 0, S + xi * OC * C);
        }
        fold(S, OC, C, dwp);
        if (t->dx)
            onx_wino(onx_sgemm_best(), &d, (int64_t)OC, (int64_t)C, t->pkt, dys, (int64_t)gn, NULL, NULL, ONX_ACT_NONE,
                     0.0f, 0.0f, t->dx + s0 * nn_size(L->in), ow);
    }
}

/* The packed transformed kernels: W for the forward, W' (flipped, channels swapped) for the input gradient. */
static float *pack(const nn_layer *L, const float *w, int dx) {
    size_t C = (size_t)L->in.c, M = (size_t)L->out, rows = dx ? C : M, cols = dx ? M : C;
    size_t len = onx_wino_pack_len(onx_sgemm_best(), (int64_t)rows, (int64_t)cols);
    float *pk = malloc(sizeof(float) * (len + M * C * (dx ? 10 : 1)));
    if (!pk) return NULL;
    float *tmp = pk + len, *wt = tmp + M * C;
    if (dx)
        for (size_t i = 0; i < M; i++)
            for (size_t ch = 0; ch < C; ch++)
                for (int kk = 0; kk < 9; kk++)
                    wt[(ch * M + i) * 9 + (size_t)(8 - kk)] = w[(i * C + ch) * 9 + (size_t)kk];
    onx_wino_pack(onx_sgemm_best(), dx ? wt : w, (int64_t)rows, (int64_t)cols, tmp, pk);
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
