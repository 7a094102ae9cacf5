/* nn_conv.c - 2-D convolution (groups, stride, padding) as im2col + sgemm per sample (or per few samples) on the
 * pool's threads, and its gradients. The three GEMMs run on the inference's register tiles (onx_sgemm: the weights
 * packed once per call, the output gradients per group) where the CPU has them, on OpenBLAS otherwise. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "nn_abt.h"
#include "nn_layers.h"
#include "onnx_sgemm.h"
#include "vec.h"

/* A 1x1 convolution with stride 1 and no padding reads its input as the columns. */
static int direct(const nn_layer *L) {
    return L->k == 1 && L->stride == 1 && L->pad == 0;
}

/* Floats of each of the two im2col buffers in a thread's scratch. */
static size_t cols_len(const nn_layer *L) {
    return (size_t)L->in.c * (size_t)L->k * (size_t)L->k * (size_t)L->outs.h * (size_t)L->outs.w;
}

/* Samples per GEMM: a small output plane makes a thin GEMM (N = 49 for 7x7), which OpenBLAS runs ~9% faster with
 * the columns of 4 samples side by side. A divisor of NN_CONV_CHUNK. */
static size_t group_of(const nn_layer *L) {
    return !direct(L) && (size_t)L->outs.h * (size_t)L->outs.w < 64 ? 4 : 1;
}

/* The weight gradient's A on onx_sgemm: a group's output gradients [OC/G][g samples' pixels], packed. */
static size_t dy_pack_len(const nn_layer *L) {
    onx_kern kn = onx_sgemm_best();
    return kn == ONX_K_NONE ? 0 : onx_pack_a_len(kn, L->out / L->groups, (int64_t)group_of(L) * L->outs.h * L->outs.w);
}

/* Per thread: two im2col buffers (columns and their gradient), g + 1 samples' outputs, onx_sgemm's work, the
 * packed output gradients and one group's weight gradient. */
size_t nn_conv_work(const nn_layer *L) {
    size_t g = group_of(L), nwg = (size_t)(L->out / L->groups) * (size_t)(L->in.c / L->groups * L->k * L->k);
    size_t im = g * 2 * cols_len(L) + (g + 1) * nn_size(L->outs) + onx_sgemm_work() + dy_pack_len(L) + nwg;
    size_t wi = nn_wino_ok(L) ? nn_wino_work(L) : 0;
    return im > wi ? im : wi;
}

size_t nn_conv_part(const nn_layer *L, size_t n) {
    size_t per = (size_t)L->out * ((size_t)L->in.c / (size_t)L->groups * (size_t)L->k * (size_t)L->k + 1);
    return (n + NN_CONV_CHUNK - 1) / NN_CONV_CHUNK * per;
}

/* Output positions o in [lo, hi) read input o*s - p + kk inside 0..len-1. */
static void valid_range(int len, int out, int s, int p, int kk, int *lo, int *hi) {
    int a = p - kk, l = a > 0 ? (a + s - 1) / s : 0, h = (len - 1 + p - kk) / s + 1;
    if (len - 1 + p - kk < 0) h = 0;
    *lo = l < out ? l : out;
    *hi = h < out ? h : out;
    if (*hi < *lo) *hi = *lo;
}

/* Where tap (ki, kj) of a stride-1 "same" convolution reads its input plane: one shift by off floats, valid over
 * [lo, hi) of the plane, with the columns outside [xlo, xhi) of each row wrapped around from the next row. */
typedef struct {
    long off, lo, hi;
    int xlo, xhi;
} same_shift;

static same_shift shift_of(const nn_layer *L, int ki, int kj) {
    int W = L->in.w, p = L->pad, d = kj - p;
    long hw = (long)L->in.h * W, off = (long)(ki - p) * W + d;
    same_shift t = {off, off < 0 ? -off : 0, hw - off < hw ? hw - off : hw, d < 0 ? -d : 0, d > 0 ? W - d : W};
    return t;
}

/* Zero the wrapped columns of one (row, sample) block r of a "same" im2col. Column by column: a strided store per
 * row, where a row-by-row loop becomes one memset call per row (a few floats each). */
static void zero_wrapped(const nn_layer *L, same_shift t, float *r) {
    int H = L->in.h, W = L->in.w;
    for (int ox = 0; ox < t.xlo; ox++)
        for (int oy = 0; oy < H; oy++) r[oy * W + ox] = 0;
    for (int ox = t.xhi; ox < W; ox++)
        for (int oy = 0; oy < H; oy++) r[oy * W + ox] = 0;
}

/* im2col for stride 1 with the output as large as the input ("same" padding): each (row, sample) is one shifted
 * copy of the input plane, then the columns that wrapped around are zeroed. */
static void im2col_same(const nn_layer *L, const float *x, size_t n, size_t lo_s, size_t hi_s, float *cols) {
    int C = L->in.c, H = L->in.h, W = L->in.w, k = L->k;
    size_t hw = (size_t)H * (size_t)W, ncol = n * hw;
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                float *row = cols + ((size_t)(c * k + ki) * (size_t)k + (size_t)kj) * ncol;
                same_shift t = shift_of(L, ki, kj);
                for (size_t smp = lo_s; smp < hi_s; smp++) {
                    float *r = row + smp * hw;
                    const float *xp = x + (smp * (size_t)C + (size_t)c) * hw;
                    memset(r, 0, (size_t)t.lo * sizeof *r);
                    memcpy(r + t.lo, xp + t.lo + t.off, (size_t)(t.hi - t.lo) * sizeof *r);
                    memset(r + t.hi, 0, (size_t)((long)hw - t.hi) * sizeof *r);
                    zero_wrapped(L, t, r);
                }
            }
}

/* cols[(c*k + ki)*k + kj][smp*oh*ow + y*ow + x] = x[smp][c][y*s - p + ki][x*s - p + kj] (0 outside). */
static void im2col(const nn_layer *L, const float *x, size_t n, size_t lo_s, size_t hi_s, float *cols) {
    int C = L->in.c, H = L->in.h, W = L->in.w, k = L->k, s = L->stride, p = L->pad, OH = L->outs.h, OW = L->outs.w;
    size_t hw = (size_t)H * (size_t)W, ohw = (size_t)OH * (size_t)OW, ncol = n * ohw;
    if (s == 1 && OH == H && OW == W) {
        im2col_same(L, x, n, lo_s, hi_s, cols);
        return;
    }
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                float *row = cols + ((size_t)(c * k + ki) * (size_t)k + (size_t)kj) * ncol;
                int wlo, whi;
                valid_range(W, OW, s, p, kj, &wlo, &whi);
                for (size_t smp = lo_s; smp < hi_s; smp++) {
                    const float *xp = x + (smp * (size_t)C + (size_t)c) * hw;
                    for (int oy = 0; oy < OH; oy++) {
                        float *r = row + smp * ohw + (size_t)oy * (size_t)OW;
                        int iy = oy * s - p + ki;
                        if (iy < 0 || iy >= H) {
                            memset(r, 0, (size_t)OW * sizeof *r);
                            continue;
                        }
                        const float *xr = xp + (size_t)iy * (size_t)W + kj - p;
                        for (int ox = 0; ox < wlo; ox++) r[ox] = 0;
                        if (s == 1)
                            memcpy(r + wlo, xr + wlo, (size_t)(whi - wlo) * sizeof *r);
                        else
                            for (int ox = wlo; ox < whi; ox++) r[ox] = xr[ox * s];
                        for (int ox = whi; ox < OW; ox++) r[ox] = 0;
                    }
                }
            }
}

/* col2im for stride 1 and "same" padding, the adjoint of im2col_same: the wrapped columns of each row are zeroed in
 * cols (the caller's scratch), then each (row, sample) is one shifted add into the input plane. */
static void col2im_same(const nn_layer *L, float *cols, size_t n, size_t lo_s, size_t hi_s, float *dx) {
    int C = L->in.c, H = L->in.h, W = L->in.w, k = L->k;
    size_t hw = (size_t)H * (size_t)W, ncol = n * hw;
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                float *row = cols + ((size_t)(c * k + ki) * (size_t)k + (size_t)kj) * ncol;
                same_shift t = shift_of(L, ki, kj);
                for (size_t smp = lo_s; smp < hi_s; smp++) {
                    float *r = row + smp * hw;
                    zero_wrapped(L, t, r);
                    if (t.hi > t.lo)
                        vec_add(dx + (smp * (size_t)C + (size_t)c) * hw + t.lo + t.off, r + t.lo,
                                (size_t)(t.hi - t.lo));
                }
            }
}

/* The adjoint of im2col: dx (zeroed here) += every column entry at its input position. */
static void col2im(const nn_layer *L, float *cols, size_t n, size_t lo_s, size_t hi_s, float *dx) {
    int C = L->in.c, H = L->in.h, W = L->in.w, k = L->k, s = L->stride, p = L->pad, OH = L->outs.h, OW = L->outs.w;
    size_t hw = (size_t)H * (size_t)W, ohw = (size_t)OH * (size_t)OW, ncol = n * ohw;
    memset(dx + lo_s * (size_t)C * hw, 0, (hi_s - lo_s) * (size_t)C * hw * sizeof *dx);
    if (s == 1 && OH == H && OW == W) {
        col2im_same(L, cols, n, lo_s, hi_s, dx);
        return;
    }
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                const float *row = cols + ((size_t)(c * k + ki) * (size_t)k + (size_t)kj) * ncol;
                int wlo, whi;
                valid_range(W, OW, s, p, kj, &wlo, &whi);
                for (size_t smp = lo_s; smp < hi_s; smp++) {
                    float *xp = dx + (smp * (size_t)C + (size_t)c) * hw;
                    for (int oy = 0; oy < OH; oy++) {
                        int iy = oy * s - p + ki;
                        if (iy < 0 || iy >= H) continue;
                        const float *r = row + smp * ohw + (size_t)oy * (size_t)OW;
                        float *xr = xp + (size_t)iy * (size_t)W + kj - p;
                        if (s == 1)
                            vec_add(xr + wlo, r + wlo, (size_t)(whi - wlo));
                        else
                            for (int ox = wlo; ox < whi; ox++) xr[ox * s] += r[ox];
                    }
                }
            }
}

/* One layer's arguments for the per-group and per-chunk parts run by par_for_id. pk: the weights packed for
 * onx_sgemm, per group plen floats apart (the forward: W's OC/G x CKg blocks; the input gradient: their
 * transposes), NULL on OpenBLAS. */
typedef struct {
    const nn_layer *L;
    size_t n, plen;
    onx_kern kn;
    const float *w, *b, *x, *dy, *pk;
    float *y, *dx, *work, *part, *dw, *db;
    double *pstat;
    const nn_dy_src *dysrc;
} conv_task;

/* The columns [in_c*k*k][gn*oh*ow] of samples [s, s + gn): one sample's input itself (1x1) or im2col'd into cols. */
static const float *group_cols(const nn_layer *L, const float *x, size_t s, size_t gn, float *cols) {
    const float *xs = x + s * nn_size(L->in);
    if (direct(L)) return xs;
    im2col(L, xs, gn, 0, gn, cols);
    return cols;
}

/* The weights packed for onx_sgemm (dx: each group's OC/G x CKg block transposed), or NULL (no such kernel, or
 * out of memory: the caller runs OpenBLAS). */
static float *pack_w(const nn_layer *L, const float *w, int dx, onx_kern kn, size_t *plen) {
    int G = L->groups, OCg = L->out / G, CKg = L->in.c / G * L->k * L->k, m = dx ? CKg : OCg, k = dx ? OCg : CKg;
    if (kn == ONX_K_NONE) return NULL;
    *plen = onx_pack_a_len(kn, m, k);
    float *pk = malloc(sizeof(float) * (*plen * (size_t)G + (dx ? (size_t)m * (size_t)k : 0)));
    if (!pk) return NULL;
    for (int gi = 0; gi < G; gi++) {
        const float *wg = w + (size_t)gi * (size_t)OCg * (size_t)CKg, *a = wg;
        if (dx) {
            float *tr = pk + *plen * (size_t)G;
            for (int i = 0; i < OCg; i++)
                for (int j = 0; j < CKg; j++)
                    tr[(size_t)j * (size_t)OCg + (size_t)i] = wg[(size_t)i * (size_t)CKg + (size_t)j];
            a = tr;
        }
        onx_pack_a(kn, a, m, k, pk + (size_t)gi * *plen);
    }
    return pk;
}

/* y[gn samples] = bias + W * B for B the columns [CKg][ld] of each group: on onx_sgemm, whose tiles add the bias
 * and write each sample's block in place, or on OpenBLAS, whose [OC][ld] output is written in place for one sample
 * (its layout) or in tmp and moved sample by sample. */
static void forward_gemm(const conv_task *t, const float *B, size_t gn, float *ys, float *tmp, float *sw) {
    const nn_layer *L = t->L;
    int G = L->groups, OC = L->out, OCg = OC / G, CKg = L->in.c / G * L->k * L->k;
    size_t ohw = (size_t)L->outs.h * (size_t)L->outs.w, ld = gn * ohw;
    if (t->pk) {
        for (int gi = 0; gi < G; gi++) {
            onx_bsrc src = {B + (size_t)gi * (size_t)CKg * ld, (int64_t)ld};
            onx_cmap cm = {ys + (size_t)gi * (size_t)OCg * ohw, (int64_t)ohw, (int64_t)ohw, (int64_t)OC * (int64_t)ohw,
                           NULL};
            onx_sgemm(t->kn, OCg, (int64_t)ld, CKg, 1, NULL, t->pk + (size_t)gi * t->plen, onx_bblock_strided, &src,
                      &cm, t->b ? t->b + (size_t)gi * (size_t)OCg : NULL, ONX_ACT_NONE, 0.0f, 0.0f, sw);
        }
        return;
    }
    float *out = gn == 1 ? ys : tmp;
    for (int oc = 0; oc < OC; oc++) {
        float v = t->b ? t->b[oc] : 0.0f, *r = out + (size_t)oc * ld;
        size_t j = 0;
        for (; j + VEC_BLOCK <= ld; j += VEC_BLOCK)
            for (size_t k = 0; k < VEC_BLOCK; k++) r[j + k] = v;
        for (; j < ld; j++) r[j] = v;
    }
    for (int gi = 0; gi < G; gi++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OCg, (int)ld, CKg, 1.0f,
                    t->w + (size_t)gi * (size_t)OCg * (size_t)CKg, CKg, B + (size_t)gi * (size_t)CKg * ld, (int)ld,
                    1.0f, out + (size_t)gi * (size_t)OCg * ld, (int)ld);
    for (size_t s = 0; s < gn && out != ys; s++)
        for (int oc = 0; oc < OC; oc++)
            memcpy(ys + (s * (size_t)OC + (size_t)oc) * ohw, tmp + (size_t)oc * ld + s * ohw, ohw * sizeof *ys);
}

/* Groups [lo, hi) of group_of samples, then each output plane's statistics. */
static void forward_part(void *ctx, size_t lo, size_t hi, int tid) {
    const conv_task *t = ctx;
    const nn_layer *L = t->L;
    size_t OC = (size_t)L->out, ohw = (size_t)L->outs.h * (size_t)L->outs.w, g = group_of(L);
    float *cols = t->work + (size_t)tid * nn_conv_work(L), *tmp = cols + g * 2 * cols_len(L);
    for (size_t q = lo; q < hi; q++) {
        size_t s0 = q * g, gn = s0 + g < t->n ? g : t->n - s0;
        float *ys = t->y + s0 * OC * ohw;
        forward_gemm(t, group_cols(L, t->x, s0, gn, cols), gn, ys, tmp, tmp + (g + 1) * nn_size(L->outs));
        for (size_t i = 0; i < gn * OC && t->pstat; i++)
            nn_plane_stats(ys + i * ohw, ohw, t->pstat + 2 * (s0 * OC + i));
    }
}

void nn_conv_forward(const nn_layer *L, const float *w, const float *b, const float *x, size_t n, float *y,
                     double *pstat, float *work, par *p) {
    if (nn_wino_ok(L) && nn_wino_forward(L, w, b, x, n, y, pstat, work, p) == 0) return;
    size_t g = group_of(L), plen = 0;
    onx_kern kn = onx_sgemm_best();
    float *pk = pack_w(L, w, 0, kn, &plen);
    conv_task t = {L, n, plen, kn, w, b, x, NULL, pk, y, NULL, work, NULL, NULL, NULL, pstat, NULL};
    par_for_id(p, (n + g - 1) / g, forward_part, &t);
    free(pk);
}

/* The output gradient [OC][gn*oh*ow] of samples [s, s + gn): one sample's dy itself or its source's output in dyb,
 * or the samples' gradients side by side in dyb (each made in one, a scratch of one sample's outputs). */
static const float *group_dy(const conv_task *t, size_t s, size_t gn, float *dyb, float *one) {
    size_t OC = (size_t)t->L->out, ohw = (size_t)t->L->outs.h * (size_t)t->L->outs.w;
    if (gn == 1 && t->dy) return t->dy + s * OC * ohw;
    if (gn == 1) {
        t->dysrc->fn(t->dysrc->ctx, s, dyb);
        return dyb;
    }
    for (size_t q = 0; q < gn; q++) {
        const float *d = one;
        if (t->dy)
            d = t->dy + (s + q) * OC * ohw;
        else
            t->dysrc->fn(t->dysrc->ctx, s + q, one);
        for (size_t oc = 0; oc < OC; oc++) memcpy(dyb + oc * gn * ohw + q * ohw, d + oc * ohw, ohw * sizeof *dyb);
    }
    return dyb;
}

/* B of the weight gradient on onx_sgemm: the columns transposed, B[k][n] = cols[n][k] (k a pixel of the group's
 * samples, n a row of the columns), written into work 8 x 8 at a time. */
static const float *cols_t_block(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *work,
                                 int64_t *ldb) {
    const onx_bsrc *s = ctx;
    int64_t w = (nc + 15) / 16 * 16;
    for (int64_t j0 = 0; j0 < nc; j0 += 8)
        for (int64_t r0 = 0; r0 < kc; r0 += 8) {
            int64_t j1 = j0 + 8 < nc ? j0 + 8 : nc, r1 = r0 + 8 < kc ? r0 + 8 : kc;
            for (int64_t j = j0; j < j1; j++) {
                const float *src = s->b + (n0 + j) * s->ldb + k0;
                for (int64_t r = r0; r < r1; r++) work[r * w + j] = src[r];
            }
        }
    *ldb = w;
    return work;
}

/* A weight gradient of at most this many columns per group (a first layer's 3x3 kernels over 1 or 3 channels: 9
 * or 27) runs as nn_abt's products over dY and the columns where they lie: packing dY as onx_sgemm's A and the
 * columns transposed as its B cost more than the product. The shipped CNN's first layer (32 x 9 by 784 pixels a
 * sample) at batch 160 on one thread: its backward with the batch norm's 9.2 -> 6.3 ms on AVX-512, 9.3 -> 5.3 ms
 * capped at AVX2 (OpenBLAS there). Its 7x7 layer's 576 columns were slower so on AVX-512 (18.5 -> 20 ms). */
#define NN_ABT_MAX_CK 32

/* dW (OC/G x CKg per group, rows CKg apart; add: += ) of one group of samples: their output gradients dys
 * [OC][ld] times the columns B [G * CKg][ld] transposed. */
static void weight_gemm(const conv_task *t, const float *dys, const float *B, size_t ld, int add, float *dw,
                        float *sw) {
    const nn_layer *L = t->L;
    int G = L->groups, OCg = L->out / G, CKg = L->in.c / G * L->k * L->k;
    size_t nw = (size_t)OCg * (size_t)CKg;
    if (t->kn == ONX_K_NONE || CKg <= NN_ABT_MAX_CK) { /* without our tiles, nn_abt is OpenBLAS's SGEMM */
        for (int gi = 0; gi < G; gi++)
            nn_abt((size_t)OCg, (size_t)CKg, ld, dys + (size_t)gi * (size_t)OCg * ld, B + (size_t)gi * (size_t)CKg * ld,
                   ld, add, dw + (size_t)gi * nw);
        return;
    }
    float *pa = sw + onx_sgemm_work(), *tmp = pa + dy_pack_len(L);
    for (int gi = 0; gi < G; gi++) {
        float *out = add ? tmp : dw + (size_t)gi * nw;
        onx_bsrc src = {B + (size_t)gi * (size_t)CKg * ld, (int64_t)ld};
        onx_cmap cm = {out, CKg, CKg, 0, NULL};
        onx_pack_a(t->kn, dys + (size_t)gi * (size_t)OCg * ld, OCg, (int64_t)ld, pa);
        onx_sgemm(t->kn, OCg, CKg, (int64_t)ld, 1, NULL, pa, cols_t_block, &src, &cm, NULL, ONX_ACT_NONE, 0.0f, 0.0f,
                  sw);
        if (add) vec_add(dw + (size_t)gi * nw, tmp, nw);
    }
}

/* The columns' gradient dc [G * CKg][ld] of one group of samples: W^T times their output gradients dys [OC][ld],
 * on the transposed weights packed in t->pk, or on OpenBLAS. */
static void input_gemm(const conv_task *t, const float *dys, size_t ld, float *dc, float *sw) {
    const nn_layer *L = t->L;
    int G = L->groups, OCg = L->out / G, CKg = L->in.c / G * L->k * L->k;
    for (int gi = 0; gi < G; gi++) {
        const float *dg = dys + (size_t)gi * (size_t)OCg * ld;
        float *cg = dc + (size_t)gi * (size_t)CKg * ld;
        if (t->pk) {
            onx_bsrc src = {dg, (int64_t)ld};
            onx_cmap cm = {cg, (int64_t)ld, (int64_t)ld, 0, NULL};
            onx_sgemm(t->kn, CKg, (int64_t)ld, OCg, 1, NULL, t->pk + (size_t)gi * t->plen, onx_bblock_strided, &src,
                      &cm, NULL, ONX_ACT_NONE, 0.0f, 0.0f, sw);
        } else {
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKg, (int)ld, OCg, 1.0f,
                        t->w + (size_t)gi * (size_t)OCg * (size_t)CKg, CKg, dg, (int)ld, 0.0f, cg, (int)ld);
        }
    }
}

/* Chunks [lo, hi): each sums its samples' dW and db into its own partial (in group order) and writes their dx. */
static void backward_part(void *ctx, size_t lo, size_t hi, int tid) {
    const conv_task *t = ctx;
    const nn_layer *L = t->L;
    int OC = L->out, CKg = L->in.c / L->groups * L->k * L->k;
    size_t ohw = (size_t)L->outs.h * (size_t)L->outs.w, nw = (size_t)OC * (size_t)CKg, g = group_of(L);
    float *cols = t->work + (size_t)tid * nn_conv_work(L), *dcols = cols + g * cols_len(L);
    float *dyb = dcols + g * cols_len(L), *one = dyb + g * nn_size(L->outs), *sw = one + nn_size(L->outs);
    for (size_t c = lo; c < hi; c++) {
        float *dwp = t->part + c * (nw + (size_t)OC), *dbp = dwp + nw;
        size_t s0 = c * NN_CONV_CHUNK, s1 = s0 + NN_CONV_CHUNK < t->n ? s0 + NN_CONV_CHUNK : t->n;
        for (size_t s = s0; s < s1; s += g) {
            size_t gn = s + g < s1 ? g : s1 - s, ld = gn * ohw;
            const float *B = group_cols(L, t->x, s, gn, cols), *dys = group_dy(t, s, gn, dyb, one);
            weight_gemm(t, dys, B, ld, s != s0, dwp, sw);
            for (int oc = 0; oc < OC; oc++) {
                float v = (float)vec_sum(dys + (size_t)oc * ld, ld);
                dbp[oc] = s == s0 ? v : dbp[oc] + v;
            }
            if (t->dx == NULL) continue;
            float *dxs = t->dx + s * nn_size(L->in), *dc = direct(L) ? dxs : dcols;
            input_gemm(t, dys, ld, dc, sw);
            if (!direct(L)) col2im(L, dcols, gn, 0, gn, dxs);
        }
    }
}

/* dst[0, hi - lo) = the chunks' partials of entries [lo, hi), added in chunk order. */
static void add_chunks(const float *part, size_t per, size_t chunks, size_t lo, size_t hi, float *dst) {
    memcpy(dst, part + lo, (hi - lo) * sizeof *dst);
    for (size_t c = 1; c < chunks; c++) vec_add(dst, part + c * per + lo, hi - lo);
}

/* Entries [lo, hi) of dW then db, as one array. */
static void reduce_part(void *ctx, size_t lo, size_t hi, int tid) {
    const conv_task *t = ctx;
    size_t per = nn_conv_part(t->L, 1), nw = per - (size_t)t->L->out;
    size_t chunks = (t->n + NN_CONV_CHUNK - 1) / NN_CONV_CHUNK;
    (void)tid;
    if (lo < nw) add_chunks(t->part, per, chunks, lo, hi < nw ? hi : nw, t->dw + lo);
    if (hi > nw) add_chunks(t->part, per, chunks, lo > nw ? lo : nw, hi, t->db + (lo > nw ? lo : nw) - nw);
}

void nn_conv_backward(const nn_layer *L, const float *w, const float *x, const float *dy, const nn_dy_src *dysrc,
                      size_t n, float *dw, float *db, float *dx, float *work, float *part, par *p) {
    conv_task t = {L, n, 0, onx_sgemm_best(), w, NULL, x, dy, NULL, NULL, dx, work, part, dw, db, NULL, dysrc};
    if (!nn_wino_ok(L) || nn_wino_backward(L, w, x, dy, dysrc, n, dx, work, part, p) != 0) {
        float *pk = dx ? pack_w(L, w, 1, t.kn, &t.plen) : NULL;
        t.pk = pk;
        par_for_id(p, (n + NN_CONV_CHUNK - 1) / NN_CONV_CHUNK, backward_part, &t);
        free(pk);
    }
    par_for_id(p, nn_conv_part(L, 1), reduce_part, &t);
}
