/* nn_conv.c - 2-D convolution (groups, stride, padding) as batched im2col + sgemm, and its gradients. */
#include <cblas.h>
#include <string.h>

#include "nn_layers.h"
#include "vec.h"

size_t nn_conv_cols(const nn_layer *L, size_t n) {
    return (size_t)L->in.c * (size_t)L->k * (size_t)L->k * n * (size_t)L->outs.h * (size_t)L->outs.w;
}

/* Output positions o in [lo, hi) read input o*s - p + kk inside 0..len-1. */
static void valid_range(int len, int out, int s, int p, int kk, int *lo, int *hi) {
    int a = p - kk, l = a > 0 ? (a + s - 1) / s : 0, h = (len - 1 + p - kk) / s + 1;
    if (len - 1 + p - kk < 0) h = 0;
    *lo = l < out ? l : out;
    *hi = h < out ? h : out;
    if (*hi < *lo) *hi = *lo;
}

/* im2col for stride 1 with the output as large as the input ("same" padding): each (row, sample) is one shifted
 * copy of the input plane, then the columns that wrapped around are zeroed. */
static void im2col_same(const nn_layer *L, const float *x, size_t n, size_t lo_s, size_t hi_s, float *cols) {
    int C = L->in.c, H = L->in.h, W = L->in.w, k = L->k, p = L->pad;
    size_t hw = (size_t)H * (size_t)W, ncol = n * hw;
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                float *row = cols + ((size_t)(c * k + ki) * (size_t)k + (size_t)kj) * ncol;
                long off = (long)(ki - p) * W + (kj - p), lo = off < 0 ? -off : 0;
                long hi = (long)hw - off < (long)hw ? (long)hw - off : (long)hw;
                int dx = kj - p, xlo = dx < 0 ? -dx : 0, xhi = dx > 0 ? W - dx : W;
                for (size_t smp = lo_s; smp < hi_s; smp++) {
                    float *r = row + smp * hw;
                    const float *xp = x + (smp * (size_t)C + (size_t)c) * hw;
                    memset(r, 0, (size_t)lo * sizeof *r);
                    memcpy(r + lo, xp + lo + off, (size_t)(hi - lo) * sizeof *r);
                    memset(r + hi, 0, (size_t)((long)hw - hi) * sizeof *r);
                    if (dx != 0)
                        for (int oy = 0; oy < H; oy++) {
                            for (int ox = 0; ox < xlo; ox++) r[oy * W + ox] = 0;
                            for (int ox = xhi; ox < W; ox++) r[oy * W + ox] = 0;
                        }
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

/* The adjoint of im2col: dx (zeroed here) += every column entry at its input position. */
/* col2im for stride 1 and "same" padding, the adjoint of im2col_same: the wrapped columns of each row are zeroed in
 * cols (the caller's scratch), then each (row, sample) is one shifted add into the input plane. */
static void col2im_same(const nn_layer *L, float *cols, size_t n, size_t lo_s, size_t hi_s, float *dx) {
    int C = L->in.c, H = L->in.h, W = L->in.w, k = L->k, p = L->pad;
    size_t hw = (size_t)H * (size_t)W, ncol = n * hw;
    for (int c = 0; c < C; c++)
        for (int ki = 0; ki < k; ki++)
            for (int kj = 0; kj < k; kj++) {
                float *row = cols + ((size_t)(c * k + ki) * (size_t)k + (size_t)kj) * ncol;
                long off = (long)(ki - p) * W + (kj - p), lo = off < 0 ? -off : 0;
                long hi = (long)hw - off < (long)hw ? (long)hw - off : (long)hw;
                int sx = kj - p, xlo = sx < 0 ? -sx : 0, xhi = sx > 0 ? W - sx : W;
                for (size_t smp = lo_s; smp < hi_s; smp++) {
                    float *r = row + smp * hw;
                    if (sx != 0)
                        for (int oy = 0; oy < H; oy++) {
                            for (int ox = 0; ox < xlo; ox++) r[oy * W + ox] = 0;
                            for (int ox = xhi; ox < W; ox++) r[oy * W + ox] = 0;
                        }
                    if (hi > lo) vec_add(dx + (smp * (size_t)C + (size_t)c) * hw + lo + off, r + lo, (size_t)(hi - lo));
                }
            }
}

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

/* The per-sample parts of a convolution, run over sample ranges by par_for. */
typedef struct {
    const nn_layer *L;
    size_t n;
    const float *x, *b, *src;
    float *cols, *dst; /* backward: cols is dL/dcols, scratch that col2im may change */
} conv_task;

static void im2col_part(void *ctx, size_t lo, size_t hi) {
    conv_task *t = ctx;
    im2col(t->L, t->x, t->n, lo, hi, t->cols);
}

static void col2im_part(void *ctx, size_t lo, size_t hi) {
    conv_task *t = ctx;
    col2im(t->L, t->cols, t->n, lo, hi, t->dst);
}

/* [OC][n*ohw] (src) -> [n][OC][ohw] (dst), adding the bias when there is one. */
static void unfold_part(void *ctx, size_t lo, size_t hi) {
    conv_task *t = ctx;
    size_t OC = (size_t)t->L->out, ohw = (size_t)t->L->outs.h * (size_t)t->L->outs.w, ncol = t->n * ohw;
    for (size_t smp = lo; smp < hi; smp++)
        for (size_t oc = 0; oc < OC; oc++)
            vec_affine(t->dst + (smp * OC + oc) * ohw, t->src + oc * ncol + smp * ohw, ohw, 1.0f, t->b ? t->b[oc] : 0);
}

/* [n][OC][ohw] (src) -> [OC][n*ohw] (dst). */
static void fold_part(void *ctx, size_t lo, size_t hi) {
    conv_task *t = ctx;
    size_t OC = (size_t)t->L->out, ohw = (size_t)t->L->outs.h * (size_t)t->L->outs.w, ncol = t->n * ohw;
    for (size_t smp = lo; smp < hi; smp++)
        for (size_t oc = 0; oc < OC; oc++)
            memcpy(t->dst + oc * ncol + smp * ohw, t->src + (smp * OC + oc) * ohw, ohw * sizeof(float));
}

void nn_conv_forward(const nn_layer *L, const float *w, const float *b, const float *x, size_t n, float *y, float *cols,
                     float *tmp, par *p) {
    int G = L->groups, OC = L->out, OCg = OC / G, CKg = L->in.c / G * L->k * L->k;
    size_t ohw = (size_t)L->outs.h * (size_t)L->outs.w, ncol = n * ohw;
    conv_task t = {L, n, x, b, tmp, cols, y};
    par_for(p, n, im2col_part, &t);
    for (int g = 0; g < G; g++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OCg, (int)ncol, CKg, 1.0f,
                    w + (size_t)g * (size_t)OCg * (size_t)CKg, CKg, cols + (size_t)g * (size_t)CKg * ncol, (int)ncol,
                    0.0f, tmp + (size_t)g * (size_t)OCg * ncol, (int)ncol);
    par_for(p, n, unfold_part, &t);
}

void nn_conv_backward(const nn_layer *L, const float *w, const float *cols, const float *dy, size_t n, float *dw,
                      float *db, float *dx, float *tmp, par *p) {
    int G = L->groups, OC = L->out, OCg = OC / G, CKg = L->in.c / G * L->k * L->k;
    size_t ohw = (size_t)L->outs.h * (size_t)L->outs.w, ncol = n * ohw;
    float *dyt = tmp, *dcols = tmp + (size_t)OC * ncol;
    conv_task t = {L, n, NULL, NULL, dy, NULL, dyt};
    par_for(p, n, fold_part, &t);
    for (int oc = 0; oc < OC; oc++) db[oc] = (float)vec_sum(dyt + (size_t)oc * ncol, ncol);
    for (int g = 0; g < G; g++) {
        const float *dyg = dyt + (size_t)g * (size_t)OCg * ncol, *colg = cols + (size_t)g * (size_t)CKg * ncol;
        const float *wg = w + (size_t)g * (size_t)OCg * (size_t)CKg;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OCg, CKg, (int)ncol, 1.0f, dyg, (int)ncol, colg, (int)ncol,
                    0.0f, dw + (size_t)g * (size_t)OCg * (size_t)CKg, CKg);
        if (dx)
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, CKg, (int)ncol, OCg, 1.0f, wg, CKg, dyg, (int)ncol,
                        0.0f, dcols + (size_t)g * (size_t)CKg * ncol, (int)ncol);
    }
    if (dx) {
        t.cols = dcols;
        t.dst = dx;
        par_for(p, n, col2im_part, &t);
    }
}
