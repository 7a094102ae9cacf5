/* onnx_k_conv.c - Conv: packed weights over phase planes, row copies or Winograd; window geometry. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_convpx.h"
#include "onnx_dw.h"
#include "onnx_load.h"
#include "onnx_op.h"
#include "onnx_sgemm.h"
#include "onnx_wino.h"
#include "onnx_wino4.h"

int onx_win_parse(onx_graph *g, const onx_node *nd, const onx_value *x, const int64_t *kshape, int dil_ok, int ceil_ok,
                  onx_win *w, tr_err *err) {
    int nsp = x->rank - 2, n, rc;
    int64_t k[4], s[2] = {1, 1}, d[2] = {1, 1}, p[4] = {0, 0, 0, 0}, ceil_mode = 0;
    char pad[16] = "NOTSET";
    if (nsp < 1 || nsp > 2)
        return onx_fail(g, nd, err, "input has rank %d; 1-D and 2-D (rank 3 or 4) are supported", x->rank);
    for (int i = 1; i < x->rank; i++)
        if (x->dim[i].p) return onx_fail(g, nd, err, "dimension %d of the input depends on the batch size", i);
    if ((rc = onx_attr_ints(g, nd, "kernel_shape", k, 4, &n, err)) < 0) return rc;
    if (rc == 0 && !kshape) return onx_fail(g, nd, err, "attribute \"kernel_shape\" is required");
    if (rc == 1 && n != nsp) return onx_fail(g, nd, err, "kernel_shape has %d values for %d spatial dims", n, nsp);
    if (rc == 1 && kshape)
        for (int i = 0; i < nsp; i++)
            if (k[i] != kshape[i]) return onx_fail(g, nd, err, "kernel_shape does not match the weight's shape");
    if (rc == 0) memcpy(k, kshape, sizeof(int64_t) * (size_t)nsp);
    if ((rc = onx_attr_ints(g, nd, "strides", s, 2, &n, err)) < 0) return rc;
    if (rc == 1 && n != nsp) return onx_fail(g, nd, err, "strides has %d values for %d spatial dims", n, nsp);
    if (dil_ok) {
        if ((rc = onx_attr_ints(g, nd, "dilations", d, 2, &n, err)) < 0) return rc;
        if (rc == 1 && n != nsp) return onx_fail(g, nd, err, "dilations has %d values for %d spatial dims", n, nsp);
    }
    if ((rc = onx_attr_ints(g, nd, "pads", p, 4, &n, err)) < 0) return rc;
    if (rc == 1 && n != 2 * nsp) return onx_fail(g, nd, err, "pads has %d values for %d spatial dims", n, nsp);
    if ((rc = onx_attr_str(g, nd, "auto_pad", pad, sizeof pad, err)) < 0) return rc;
    if (ceil_ok && (rc = onx_attr_int(g, nd, "ceil_mode", &ceil_mode, err)) < 0) return rc;
    int same = !strcmp(pad, "SAME_UPPER") || !strcmp(pad, "SAME_LOWER");
    if (!same && strcmp(pad, "NOTSET") && strcmp(pad, "VALID"))
        return onx_fail(g, nd, err, "auto_pad \"%s\" is not NOTSET, SAME_UPPER, SAME_LOWER or VALID", pad);
    memset(w, 0, sizeof *w);
    w->nsp = nsp;
    for (int i = 0; i < 2; i++) w->k[i] = w->s[i] = w->d[i] = w->in[i] = w->out[i] = 1;
    for (int i = 0; i < nsp; i++) {
        int j = i + 2 - nsp;
        int64_t in = x->dim[2 + i].c;
        if (k[i] < 1 || s[i] < 1 || d[i] < 1 || k[i] > 4096 || s[i] > 4096 || d[i] > 4096)
            return onx_fail(g, nd, err, "kernel, stride and dilation must be 1 to 4096");
        int64_t pb = p[i], pe = p[i + nsp], ext = (k[i] - 1) * d[i] + 1;
        if (pb < 0 || pe < 0 || pb > 4096 || pe > 4096) return onx_fail(g, nd, err, "pads must be 0 to 4096");
        if (same) {
            int64_t out = (in + s[i] - 1) / s[i], tot = (out - 1) * s[i] + ext - in;
            tot = tot < 0 ? 0 : tot;
            pb = !strcmp(pad, "SAME_UPPER") ? tot / 2 : tot - tot / 2;
            pe = tot - pb;
        } else if (!strcmp(pad, "VALID")) {
            pb = pe = 0;
        }
        int64_t span = in + pb + pe - ext;
        if (span < 0)
            return onx_fail(g, nd, err, "kernel extent %lld exceeds the padded input %lld", (long long)ext,
                            (long long)(in + pb + pe));
        int64_t out = ceil_mode ? (span + s[i] - 1) / s[i] + 1 : span / s[i] + 1;
        if (ceil_mode && (out - 1) * s[i] >= in + pb) out--; /* a window must start inside the input */
        w->k[j] = k[i], w->s[j] = s[i], w->d[j] = d[i], w->pb[j] = pb, w->pe[j] = pe, w->in[j] = in, w->out[j] = out;
    }
    return TR_OK;
}

void onx_win_dims(const onx_value *x, int64_t c, const onx_win *w, onx_dim *o) {
    o[0] = x->dim[0];
    o[1] = onx_d(c);
    for (int i = 0; i < w->nsp; i++) o[2 + i] = onx_d(w->out[i + 2 - w->nsp]);
}

/* fast: onx_conv_prepare chose this CPU's kernels: depthwise (onx_dw) or, for the rest,
 * weights packed per group into pk (plen floats each) for onx_sgemm with kernel kn. Without
 * it (folding at load, a CPU without AVX2) the OpenBLAS path runs. wino: the Winograd variant that runs
 * the layer instead (its transformed weights in pk), NULL for none; px: onx_px runs it (a small output).
 * big: the Winograd variant that runs the runs of big_n samples or more instead (NULL: none), its weights after
 * the others in pk (plen floats in): F(2x2) for an onx_px layer on 7x7 with AVX-512 (onx_wino_p7_ok), F(4x4) for
 * an F(2x2) layer with AVX2 (onx_wino4_min_n). */
typedef struct {
    onx_win w;
    int64_t c, m, grp, big_n;
    int fast, grid, rows, px;
    const onx_wino_impl *wino, *big;
    onx_kern kn;
    size_t plen;
    float pk[];
} conv_p;

static int infer_conv(onx_graph *g, onx_node *nd, tr_err *err) {
    static const char *const known[] = {"auto_pad", "dilations", "group", "kernel_shape", "pads", "strides", NULL};
    int rc;
    if ((rc = onx_arity(g, nd, 2, 3, 1, err)) || (rc = onx_attr_only(g, nd, known, err)) ||
        (rc = onx_need(g, nd, 0, ONX_F32, 3, 4, err)))
        return rc;
    const onx_value *x = onx_in(g, nd, 0), *wt = onx_in(g, nd, 1), *b = onx_in(g, nd, 2);
    if ((rc = onx_need(g, nd, 1, ONX_F32, x->rank, x->rank, err))) return rc;
    if (!wt->is_const) return onx_fail(g, nd, err, "weight \"%s\" must be a constant", wt->name);
    int64_t grp = 1, c = x->dim[1].c, m = wt->dim[0].c, ks[2];
    if ((rc = onx_attr_int(g, nd, "group", &grp, err)) < 0) return rc;
    if (x->dim[1].p) return onx_fail(g, nd, err, "the channel dimension depends on the batch size");
    if (grp < 1 || c % grp)
        return onx_fail(g, nd, err, "group %lld does not divide %lld input channels", (long long)grp, (long long)c);
    if (wt->dim[1].c != c / grp)
        return onx_fail(g, nd, err, "weight \"%s\" has %lld input channels per group; the input gives %lld", wt->name,
                        (long long)wt->dim[1].c, (long long)(c / grp));
    if (m < 1 || m % grp)
        return onx_fail(g, nd, err, "group %lld does not divide %lld output channels", (long long)grp, (long long)m);
    if (b && (b->dtype != ONX_F32 || !b->is_const || b->rank != 1 || b->dim[0].c != m))
        return onx_fail(g, nd, err, "bias \"%s\" must be a constant float [%lld]", b->name, (long long)m);
    for (int i = 2; i < x->rank; i++) ks[i - 2] = wt->dim[i].c;
    conv_p *p = calloc(1, sizeof *p);
    if (!p) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    nd->p = p;
    if ((rc = onx_win_parse(g, nd, x, ks, 1, 0, &p->w, err))) return rc;
    p->c = c, p->m = m, p->grp = grp;
    onx_dim o[4];
    onx_win_dims(x, m, &p->w, o);
    onx_set_out(g, nd, 0, ONX_F32, x->rank, o);
    return TR_OK;
}

static int is_pointwise(const onx_win *w) {
    return w->k[0] == 1 && w->k[1] == 1 && w->s[0] == 1 && w->s[1] == 1 && w->pb[0] == 0 && w->pb[1] == 0 &&
           w->pe[0] == 0 && w->pe[1] == 0;
}

static int is_depthwise(const conv_p *p) {
    return p->grp == p->c && p->m == p->c && p->grp > 1;
}

/* Short runs (an output row of a small image) without a call per run: fixed-size memcpy inlines. */
static inline void copy_run(float *d, const float *src, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) memcpy(d + i, src + i, 8 * sizeof(float));
    for (; i < n; i++) d[i] = src[i];
}

static inline void zero_run(float *d, int64_t n) {
    for (int64_t i = 0; i < n; i++) d[i] = 0.0f;
}

/* The grid path, for every convolution of one group but the plain 1x1: the padded input is split
 * into s0 x s1 phase planes (phase (a, b) holds padded rows r*s0 + a, columns u*s1 + b), and the
 * GEMM runs over the output's grid (OH rows of PW2 columns, the last PW2 - OW of each discarded).
 * Then B's row for tap (i, j) and channel c is a phase plane of c shifted by a fixed amount: no
 * im2col, and strides need no gathering. K is tap-major (the weights are packed so). */
typedef struct {
    int64_t PH2, PW2, plane, xl, q; /* phase plane rows, columns and floats; floats of xp; grid columns */
} grid_geo;

static grid_geo grid_of(const conv_p *p) {
    const onx_win *w = &p->w;
    grid_geo g;
    int64_t PH = w->in[0] + w->pb[0] + w->pe[0], PW = w->in[1] + w->pb[1] + w->pe[1];
    g.PH2 = (PH + w->s[0] - 1) / w->s[0], g.PW2 = (PW + w->s[1] - 1) / w->s[1], g.plane = g.PH2 * g.PW2;
    g.xl = (w->s[0] * w->s[1] * p->c * g.plane + (w->k[1] - 1) * w->d[1] / w->s[1] + 16 + 15) / 16 * 16;
    g.q = w->out[0] * g.PW2;
    return g;
}

static int grid_ok(const conv_p *p) {
    return p->grp == 1 && p->w.k[0] * p->w.k[1] <= ONX_MAX_TAPS && !is_pointwise(&p->w);
}

/* Output rows at least this wide run a GEMM each, written in place (the grid's discarded columns never
 * computed, no copy out of it: a 224x224 stem's 3.2 MB); narrower ones one GEMM over the grid. */
#define GRID_ROW_MIN 64

/* Floats of the grid output: none for rows that run in place. */
static int64_t grid_out_floats(const conv_p *p, const grid_geo *g) {
    return p->w.out[1] >= GRID_ROW_MIN ? 0 : (p->m * g->q + 15) / 16 * 16;
}

/* Scratch: the phase planes (then slack for the last tap's overreach), the grid output, a line
 * for splitting a row's columns. */
static size_t grid_floats(const conv_p *p) {
    grid_geo g = grid_of(p);
    return (size_t)(g.xl + grid_out_floats(p, &g) + p->w.s[1] * g.PW2 + 16);
}

/* Phase planes of channel x (H x W): xp + ((a * s1 + b) * C) * plane for phase (a, b). */
static void grid_split(const conv_p *p, const grid_geo *g, const float *x, float *xp, float *line) {
    const onx_win *w = &p->w;
    int64_t H = w->in[0], W = w->in[1], s0 = w->s[0], s1 = w->s[1], pb = w->pb[1], PW2 = g->PW2;
    int64_t len = s1 * PW2, copy = W < len - pb ? W : len - pb; /* a padded row: column u is input u - pb */
    for (int64_t a = 0; a < s0; a++)
        for (int64_t r = 0; r < g->PH2; r++) {
            int64_t iy = r * s0 + a - w->pb[0];
            float *dst = xp + a * s1 * p->c * g->plane + r * PW2; /* phase (a, 0) */
            if (iy < 0 || iy >= H) {
                for (int64_t b = 0; b < s1; b++) zero_run(dst + b * p->c * g->plane, PW2);
                continue;
            }
            float *row = s1 == 1 ? dst : line;
            zero_run(row, pb);
            memcpy(row + pb, x + iy * W, sizeof(float) * (size_t)copy);
            zero_run(row + pb + copy, len - pb - copy);
            if (s1 == 2)
                onx_deinterleave2(line, PW2, dst, dst + p->c * g->plane);
            else if (s1 > 2)
                for (int64_t b = 0; b < s1; b++)
                    for (int64_t u = 0; u < PW2; u++) dst[b * p->c * g->plane + u] = line[u * s1 + b];
        }
}

static void run_grid(const onx_node *nd, const float *x, const float *b, int64_t N, float *y, float *tmp) {
    const conv_p *p = nd->p;
    const onx_win *w = &p->w;
    grid_geo g = grid_of(p);
    int64_t H = w->in[0], W = w->in[1], OH = w->out[0], OW = w->out[1], kk = w->k[0] * w->k[1], toff[ONX_MAX_TAPS];
    float *xp = tmp, *yg = xp + g.xl, *line = yg + grid_out_floats(p, &g), *work = tmp + grid_floats(p);
    for (int64_t t = 0; t < kk; t++) {
        int64_t ry = t / w->k[1] * w->d[0], rx = t % w->k[1] * w->d[1];
        toff[t] = (ry % w->s[0] * w->s[1] + rx % w->s[1]) * p->c * g.plane + ry / w->s[0] * g.PW2 + rx / w->s[1];
    }
    int64_t used = w->s[0] * w->s[1] * p->c * g.plane;
    memset(xp + used, 0, sizeof(float) * (size_t)(g.xl - used));
    for (int64_t n = 0; n < N; n++) {
        for (int64_t c = 0; c < p->c; c++) grid_split(p, &g, x + (n * p->c + c) * H * W, xp + c * g.plane, line);
        if (OW >= GRID_ROW_MIN) { /* a GEMM per output row, straight into y (yg: no floats) */
            for (int64_t oy = 0; oy < OH; oy++) {
                onx_bsrc src = {xp + oy * g.PW2, g.plane};
                onx_cmap cm = {y + n * p->m * OH * OW + oy * OW, OH * OW, OW, 0, NULL};
                onx_sgemm(p->kn, p->m, OW, p->c, (int)kk, toff, p->pk, onx_bblock_strided, &src, &cm, b, nd->act,
                          nd->act_lo, nd->act_hi, work);
            }
            continue;
        }
        onx_bsrc src = {xp, g.plane};
        onx_cmap cm = {yg, g.q, g.q, 0, NULL};
        onx_sgemm(p->kn, p->m, g.q, p->c, (int)kk, toff, p->pk, onx_bblock_strided, &src, &cm, b, nd->act, nd->act_lo,
                  nd->act_hi, work);
        for (int64_t m = 0; m < p->m; m++)
            for (int64_t oy = 0; oy < OH; oy++)
                memcpy(y + ((n * p->m + m) * OH + oy) * OW, yg + m * g.q + oy * g.PW2, sizeof(float) * (size_t)OW);
    }
}

/* The row path, for stride-1 convolutions whose output rows are as wide as the input's (same
 * padding across): one copy of the input per kernel column j, its rows padded down and the
 * columns that tap j wraps into from the next or previous row zeroed. B's row for tap (i, j)
 * and channel c is copy j of c shifted by i * d0 rows and j - pb1 columns, so the GEMM runs
 * over the output's own pixels (the grid path computes and discards pb1 + pe1 columns per row)
 * and writes the output in place. Worth its kw copies when rows are short. */
#define ROWS_MAX_W 32
#define ROWS_SLACK 64 /* zeros around a copy: the widest tap reads this far outside a channel */

static int rows_ok(const conv_p *p) {
    const onx_win *w = &p->w;
    return p->grp == 1 && w->s[0] == 1 && w->s[1] == 1 && w->d[1] == 1 && w->out[1] == w->in[1] &&
           w->in[1] <= ROWS_MAX_W && w->k[0] * w->k[1] <= ONX_MAX_TAPS && w->k[1] < ROWS_SLACK && !is_pointwise(w);
}

/* Floats of one copy: the padded planes of every channel between two slacks. */
static int64_t rows_copy(const conv_p *p) {
    const onx_win *w = &p->w;
    return p->c * (w->in[0] + w->pb[0] + w->pe[0]) * w->in[1] + 2 * ROWS_SLACK;
}

static void rows_split(const conv_p *p, const float *x, float *xr) {
    const onx_win *w = &p->w;
    int64_t H = w->in[0], W = w->in[1], PH = H + w->pb[0] + w->pe[0], cs = rows_copy(p);
    for (int64_t j = 0; j < w->k[1]; j++) {
        int64_t d = j - w->pb[1], z0 = d < 0 ? W + d : 0, z1 = d < 0 ? W : d; /* columns to zero */
        z0 = z0 < 0 ? 0 : z0, z1 = z1 > W ? W : z1;
        float *cp = xr + j * cs;
        zero_run(cp, ROWS_SLACK);
        zero_run(cp + cs - ROWS_SLACK, ROWS_SLACK);
        for (int64_t c = 0; c < p->c; c++)
            for (int64_t r = 0; r < PH; r++) {
                float *dst = cp + ROWS_SLACK + (c * PH + r) * W;
                int64_t iy = r - w->pb[0];
                if (iy < 0 || iy >= H) {
                    zero_run(dst, W);
                    continue;
                }
                copy_run(dst, x + (c * H + iy) * W, W);
                zero_run(dst + z0, z1 - z0);
            }
    }
}

static void run_rows(const onx_node *nd, const float *x, const float *b, int64_t N, float *y, float *tmp) {
    const conv_p *p = nd->p;
    const onx_win *w = &p->w;
    int64_t W = w->in[1], P = w->out[0] * w->out[1], plane = (w->in[0] + w->pb[0] + w->pe[0]) * W;
    int64_t kk = w->k[0] * w->k[1], cs = rows_copy(p), toff[ONX_MAX_TAPS];
    float *xr = tmp, *work = tmp + w->k[1] * cs;
    for (int64_t t = 0; t < kk; t++) {
        int64_t i = t / w->k[1], j = t % w->k[1];
        toff[t] = j * cs + i * w->d[0] * W + j - w->pb[1];
    }
    for (int64_t n = 0; n < N; n++) {
        rows_split(p, x + n * p->c * w->in[0] * W, xr);
        onx_bsrc src = {xr + ROWS_SLACK, plane};
        onx_cmap cm = {y + n * p->m * P, P, P, 0, NULL};
        onx_sgemm(p->kn, p->m, P, p->c, (int)kk, toff, p->pk, onx_bblock_strided, &src, &cm, b, nd->act, nd->act_lo,
                  nd->act_hi, work);
    }
}

/* Samples a run needs before a 7x7 layer that onx_px takes runs by F(2x2) instead (onx_wino_p7_ok): its transformed
 * weights, 16/9 of the direct ones, then stream from memory for enough samples. resnet18's 512 -> 512 layers, per
 * image: 1.2 -> 0.95 ms at 8 samples a run; a 512 -> 512 layer alone at 2 samples gained too, but at 1 lost 15-20 %,
 * as did those layers in resnet18 at batch 1 (+0.6-1 ms an image). */
#define P7_MIN_N 4

/* Samples per GEMM: small images batch several samples' columns side by
 * side so that one SGEMM sees a wide matrix (at most CONV_COLS floats of scratch). */
#define CONV_COLS ((int64_t)1 << 20)

static int64_t conv_batch(const conv_p *p, int64_t n) {
    int64_t P = p->w.out[0] * p->w.out[1], K = p->c * p->w.k[0] * p->w.k[1];
    if (p->grp != 1 || n < 2 || P >= 1024) return 1;
    int64_t nb = CONV_COLS / ((K + p->m) * P);
    return nb < 1 ? 1 : nb > n ? n : nb;
}

/* Output rows per im2col band: about CONV_BAND floats of columns. */
#define CONV_BAND ((int64_t)1 << 17)

static int64_t conv_band(const conv_p *p) {
    int64_t K = p->c / p->grp * p->w.k[0] * p->w.k[1], rows = CONV_BAND / (K * p->w.out[1]);
    return rows < 1 ? 1 : rows > p->w.out[0] ? p->w.out[0] : rows;
}

static size_t conv_scratch(const onx_node *nd, const onx_t *in, const onx_t *out) {
    (void)out;
    const conv_p *p = nd->p;
    int64_t n = in[0].d[0];
    size_t big = p->fast && p->big && n >= p->big_n ? p->big->work(&p->w, p->c, p->m, n) : 0, own = 0;
    if (p->fast && p->wino) own = p->wino->work(&p->w, p->c, p->m, n);
    if (p->fast && p->px) own = onx_px_work(&p->w, p->c, n);
    if (p->fast && (p->wino || p->px)) return own > big ? own : big;
    if (p->fast && p->rows) return (size_t)(p->w.k[1] * rows_copy(p)) + onx_sgemm_work();
    if (p->fast && p->grid) return grid_floats(p) + onx_sgemm_work();
    if (p->fast) return is_depthwise(p) ? onx_dw_work(&p->w) : onx_sgemm_work();
    if (is_depthwise(p)) return 0;
    int64_t P = p->w.out[0] * p->w.out[1], K = p->c / p->grp * p->w.k[0] * p->w.k[1], nb = conv_batch(p, in[0].d[0]);
    if (nb > 1) return (size_t)(nb * (K + p->m) * P);
    return is_pointwise(&p->w) ? 0 : (size_t)(K * conv_band(p) * p->w.out[1]);
}

/* In-bounds output columns [lo, hi) of kernel column j: ix = ox*s1 + off in [0, W). */
static void col_span(const onx_win *w, int64_t j, int64_t *off, int64_t *lo, int64_t *hi) {
    int64_t W = w->in[1], OW = w->out[1], s1 = w->s[1];
    *off = j * w->d[1] - w->pb[1];
    *lo = *off >= 0 ? 0 : (-*off + s1 - 1) / s1;
    *hi = W - 1 - *off < 0 ? 0 : (W - 1 - *off) / s1 + 1;
    *hi = *hi > OW ? OW : *hi;
    *lo = *lo > *hi ? *hi : *lo;
}

/* col[(c*kh + i)*kw + j][(oy - oy0)*ow + ox] = x[c][oy*s0 - pb0 + i*d0][ox*s1 - pb1 + j*d1], 0
 * outside, for output rows [oy0, oy1); col rows ldc floats apart. */
static void im2col(const float *x, int64_t cin, const onx_win *w, int64_t oy0, int64_t oy1, float *col, int64_t ldc) {
    int64_t H = w->in[0], W = w->in[1], OW = w->out[1], s1 = w->s[1];
    for (int64_t j = 0; j < w->k[1]; j++) {
        int64_t off, lo, hi;
        col_span(w, j, &off, &lo, &hi);
        for (int64_t c = 0; c < cin; c++)
            for (int64_t i = 0; i < w->k[0]; i++) {
                float *dst = col + ((c * w->k[0] + i) * w->k[1] + j) * ldc;
                for (int64_t oy = oy0; oy < oy1; oy++, dst += OW) {
                    int64_t iy = oy * w->s[0] - w->pb[0] + i * w->d[0];
                    if (iy < 0 || iy >= H) {
                        memset(dst, 0, sizeof(float) * (size_t)OW);
                        continue;
                    }
                    const float *src = x + (c * H + iy) * W + off;
                    for (int64_t ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
                    if (s1 == 1)
                        memcpy(dst + lo, src + lo, sizeof(float) * (size_t)(hi - lo));
                    else
                        for (int64_t ox = lo; ox < hi; ox++) dst[ox] = src[ox * s1];
                    for (int64_t ox = hi; ox < OW; ox++) dst[ox] = 0.0f;
                }
            }
    }
}

/* y[c][0..P) += bias[c], then the fused activation; blocks of 16 vectorise. */
static void bias_act(const onx_node *nd, const float *b, int64_t m, int64_t P, float *y) {
    if (b)
        for (int64_t c = 0; c < m; c++) {
            float bv = b[c], *yc = y + c * P;
            int64_t i = 0;
            for (; i + 16 <= P; i += 16)
                for (int k = 0; k < 16; k++) yc[i + k] += bv;
            for (; i < P; i++) yc[i] += bv;
        }
    onx_act_apply(nd->act, nd->act_lo, nd->act_hi, y, (size_t)(m * P));
}

/* One channel of a depthwise conv: y (OH x OW) += taps of w over x (H x W). */
static void dw_channel(const float *x, const float *wk, const onx_win *w, float *y) {
    int64_t H = w->in[0], W = w->in[1], OH = w->out[0], OW = w->out[1], s1 = w->s[1];
    for (int64_t oy = 0; oy < OH; oy++) {
        float *yr = y + oy * OW;
        for (int64_t i = 0; i < w->k[0]; i++) {
            int64_t iy = oy * w->s[0] - w->pb[0] + i * w->d[0];
            if (iy < 0 || iy >= H) continue;
            const float *xr = x + iy * W;
            for (int64_t j = 0; j < w->k[1]; j++) {
                float wv = wk[i * w->k[1] + j];
                int64_t off = j * w->d[1] - w->pb[1]; /* ix = ox*s1 + off */
                int64_t lo = off >= 0 ? 0 : (-off + s1 - 1) / s1, hi = (W - 1 - off) / s1 + 1;
                if (W - 1 - off < 0) continue;
                if (hi > OW) hi = OW;
                if (s1 == 1)
                    for (int64_t ox = lo; ox < hi; ox++) yr[ox] += wv * xr[ox + off];
                else
                    for (int64_t ox = lo; ox < hi; ox++) yr[ox] += wv * xr[ox * s1 + off];
            }
        }
    }
}

/* nb samples through one GEMM: their columns side by side, then the
 * result scattered back to [n][m][P]. */
static void conv_batched(const onx_node *nd, const float *x, const float *wt, const float *b, int64_t nb, float *y,
                         float *tmp) {
    const conv_p *p = nd->p;
    int64_t P = p->w.out[0] * p->w.out[1], HW = p->w.in[0] * p->w.in[1], K = p->c * p->w.k[0] * p->w.k[1];
    float *col = tmp, *res = tmp + K * nb * P;
    for (int64_t s = 0; s < nb; s++) {
        const float *xs = x + s * p->c * HW;
        if (is_pointwise(&p->w))
            for (int64_t r = 0; r < K; r++) memcpy(col + r * nb * P + s * P, xs + r * HW, sizeof(float) * (size_t)P);
        else
            im2col(xs, p->c, &p->w, 0, p->w.out[0], col + s * P, nb * P);
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)p->m, (int)(nb * P), (int)K, 1.0f, wt, (int)K, col,
                (int)(nb * P), 0.0f, res, (int)(nb * P));
    for (int64_t s = 0; s < nb; s++) {
        float *ys = y + s * p->m * P;
        for (int64_t c = 0; c < p->m; c++) memcpy(ys + c * P, res + c * nb * P + s * P, sizeof(float) * (size_t)P);
        bias_act(nd, b, p->m, P, ys);
    }
}

/* B of one group's GEMM: row r = (channel, kernel row i, kernel column j), column n = (sample,
 * output pixel); x is the group's first channel in sample 0, ldx floats per sample. */
typedef struct {
    const float *x;
    int64_t ldx, P;
    const onx_win *w;
} conv_src;

/* Row r of B, columns [n0, n0 + nc), into dst. */
static void fill_row(const conv_src *s, int64_t r, int64_t n0, int64_t nc, float *dst) {
    const onx_win *w = s->w;
    int64_t kk = w->k[0] * w->k[1], c = r / kk, i = r % kk / w->k[1], j = r % w->k[1];
    int64_t H = w->in[0], W = w->in[1], OW = w->out[1], s1 = w->s[1], off, lo, hi;
    if (is_pointwise(w)) { /* the input rows themselves */
        for (int64_t n = n0; n < n0 + nc;) {
            int64_t p = n % s->P, cnt = s->P - p < n0 + nc - n ? s->P - p : n0 + nc - n;
            memcpy(dst + (n - n0), s->x + n / s->P * s->ldx + c * H * W + p, sizeof(float) * (size_t)cnt);
            n += cnt;
        }
        return;
    }
    col_span(w, j, &off, &lo, &hi);
    int64_t smp = n0 / s->P, oy = n0 % s->P / OW, ox0 = n0 % s->P % OW, OH = w->out[0];
    for (int64_t n = n0; n < n0 + nc;) { /* one output row (or the part of it in the block) at a time */
        int64_t ox1 = OW - ox0 < n0 + nc - n ? OW : ox0 + (n0 + nc - n);
        int64_t iy = oy * w->s[0] - w->pb[0] + i * w->d[0];
        float *d = dst + (n - n0); /* output column ox0 */
        if (iy < 0 || iy >= H) {
            zero_run(d, ox1 - ox0);
        } else {
            const float *src = s->x + smp * s->ldx + (c * H + iy) * W + off;
            int64_t a = lo < ox0 ? ox0 : lo > ox1 ? ox1 : lo, b = hi > ox1 ? ox1 : hi < a ? a : hi;
            zero_run(d, a - ox0);
            if (s1 == 1)
                copy_run(d + (a - ox0), src + a, b - a);
            else
                for (int64_t ox = a; ox < b; ox++) d[ox - ox0] = src[ox * s1];
            zero_run(d + (b - ox0), ox1 - b);
        }
        n += ox1 - ox0;
        ox0 = 0;
        if (++oy == OH) oy = 0, smp++;
    }
}

/* A block of B: a 1x1 convolution reads its input in place when the block is inside one sample;
 * else im2col rows into work. */
static const float *conv_block(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *work,
                               int64_t *ldb) {
    const conv_src *s = ctx;
    int64_t HW = s->w->in[0] * s->w->in[1];
    if (is_pointwise(s->w) && HW <= 4096 && n0 / s->P == (n0 + nc - 1) / s->P) { /* long rows: TLB misses */
        *ldb = HW;
        return s->x + n0 / s->P * s->ldx + k0 * HW + n0 % s->P;
    }
    *ldb = (nc + 15) / 16 * 16;
    for (int64_t r = 0; r < kc; r++) fill_row(s, k0 + r, n0, nc, work + r * *ldb);
    return work;
}

/* The prepared path: depthwise channel by channel, else one GEMM per group over all N samples'
 * pixels, bias and activation applied in the GEMM's tiles. */
static void run_fast(const onx_node *nd, const float *x, const float *wt, const float *b, const float *res, int64_t N,
                     float *y, float *tmp) {
    const conv_p *p = nd->p;
    int64_t cg = p->c / p->grp, mg = p->m / p->grp, P = p->w.out[0] * p->w.out[1];
    int64_t HW = p->w.in[0] * p->w.in[1], kk = p->w.k[0] * p->w.k[1];
    if (p->big && N >= p->big_n) {
        p->big->run(p->kn, &p->w, p->c, p->m, p->pk + p->plen, x, N, b, res, nd->act, nd->act_lo, nd->act_hi, y, tmp);
        return;
    }
    if (p->wino) {
        p->wino->run(p->kn, &p->w, p->c, p->m, p->pk, x, N, b, res, nd->act, nd->act_lo, nd->act_hi, y, tmp);
        return;
    }
    if (p->px) {
        onx_px(&p->w, p->c, p->m, p->pk, x, N, b, res, nd->act, nd->act_lo, nd->act_hi, y, tmp);
        return;
    }
    if (p->rows) {
        run_rows(nd, x, b, N, y, tmp);
        return;
    }
    if (p->grid) {
        run_grid(nd, x, b, N, y, tmp);
        return;
    }
    if (is_depthwise(p)) { /* 16 channels at a time on small planes (AVX-512), then one at a time */
        int64_t c16 = onx_dw16_ok(&p->w) ? p->c / 16 * 16 : 0;
        for (int64_t n = 0; n < N; n++) {
            if (c16)
                onx_dw16(x + n * p->c * HW, HW, wt, b, c16, &p->w, y + n * p->m * P, P, nd->act, nd->act_lo, nd->act_hi,
                         tmp);
            for (int64_t c = c16; c < p->c; c++)
                onx_dw(x + (n * p->c + c) * HW, wt + c * kk, b ? b[c] : 0.0f, &p->w, y + (n * p->m + c) * P, nd->act,
                       nd->act_lo, nd->act_hi, tmp);
        }
        return;
    }
    for (int64_t gi = 0; gi < p->grp; gi++) {
        conv_src src = {x + gi * cg * HW, p->c * HW, P, &p->w};
        onx_cmap cm = {y + gi * mg * P, P, P, p->m * P, res ? res + gi * mg * P : NULL};
        onx_sgemm(p->kn, mg, N * P, cg * kk, 1, NULL, p->pk + (size_t)gi * p->plen, conv_block, &src, &cm,
                  b ? b + gi * mg : NULL, nd->act, nd->act_lo, nd->act_hi, tmp);
    }
}

/* The Winograd variant for the layer, NULL for none. */
static const onx_wino_impl *wino_of(const conv_p *p) {
    return onx_wino4_ok(&p->w, p->grp, p->c, p->m)  ? &onx_wino_f4
           : onx_wino_ok(&p->w, p->grp, p->c, p->m) ? &onx_wino_f2
                                                    : NULL;
}

/* The kernel a convolution runs on a CPU whose best SGEMM is kn: chosen once at load (onx_conv_prepare), and asked
 * before that by the residual fusion (onx_conv_takes_residual). */
typedef enum { PATH_REF, PATH_DW, PATH_WINO, PATH_PX, PATH_ROWS, PATH_GRID, PATH_GEMM } conv_path;

static conv_path path_of(const conv_p *p, onx_kern kn) {
    if (kn == ONX_K_NONE) return PATH_REF;
    if (is_depthwise(p)) return onx_dw_ok(&p->w) ? PATH_DW : PATH_REF;
    if (wino_of(p)) return PATH_WINO;
    if (onx_px_ok(kn, &p->w, p->grp, p->c, p->m)) return PATH_PX;
    if (rows_ok(p)) return PATH_ROWS;
    return grid_ok(p) ? PATH_GRID : PATH_GEMM;
}

int onx_conv_takes_residual(const onx_node *nd) {
    conv_path t = path_of(nd->p, onx_sgemm_best());
    return t == PATH_WINO || t == PATH_PX || t == PATH_GEMM;
}

/* A Winograd variant's transformed weights (pack: its onx_wino_impl's) into out. */
static int pack_wino(void (*pack)(onx_kern, const float *, int64_t, int64_t, float *, float *), onx_kern kn,
                     const float *wt, const conv_p *q, float *out, const onx_node *nd, tr_err *err) {
    float *tw = malloc(sizeof(float) * (size_t)(q->m * q->c));
    if (!tw) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory packing the weights");
    pack(kn, wt, q->m, q->c, tw, out);
    free(tw);
    return TR_OK;
}

int onx_conv_prepare(onx_graph *g, onx_node *nd, tr_err *err) {
    conv_p *p = nd->p;
    onx_kern kn = onx_sgemm_best();
    conv_path path = path_of(p, kn);
    if (path == PATH_REF || path == PATH_DW) {
        p->fast = path == PATH_DW;
        return TR_OK;
    }
    int64_t mg = p->m / p->grp, K = p->c / p->grp * p->w.k[0] * p->w.k[1];
    const onx_wino_impl *wino = path == PATH_WINO ? wino_of(p) : NULL;
    size_t plen = wino              ? wino->pack_len(kn, p->m, p->c)
                  : path == PATH_PX ? onx_px_pack_len(p->m, K)
                                    : onx_pack_a_len(kn, mg, K);
    int64_t f4n = wino == &onx_wino_f2 ? onx_wino4_min_n(&p->w, p->grp, p->c, p->m) : 0;
    const onx_wino_impl *big = path == PATH_PX && onx_wino_p7_ok(&p->w, p->grp, p->c, p->m) ? &onx_wino_f2
                               : f4n > 1                                                    ? &onx_wino_f4
                                                                                            : NULL;
    conv_p *q = realloc(p, sizeof *p + sizeof(float) * (plen * (size_t)(wino ? 1 : p->grp) +
                                                        (big ? big->pack_len(kn, p->m, p->c) : 0)));
    if (!q) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory packing the weights");
    nd->p = q;
    const float *wt = g->v[nd->in[1]].data;
    q->wino = wino;
    q->px = path == PATH_PX;
    q->big = big;
    q->big_n = big == &onx_wino_f2 ? P7_MIN_N : f4n;
    q->rows = path == PATH_ROWS;
    q->grid = path == PATH_GRID;
    if (big && pack_wino(big->pack, kn, wt, q, q->pk + plen, nd, err)) return err->code;
    if (wino) {
        if (pack_wino(wino->pack, kn, wt, q, q->pk, nd, err)) return err->code;
    } else if (q->px) {
        onx_px_pack(wt, q->m, K, q->pk);
    } else if (q->grid || q->rows) { /* K tap-major: column t * c + ch of row m is weight [m][ch][t] */
        int64_t kk = q->w.k[0] * q->w.k[1], C = q->c;
        float *tw = malloc(sizeof(float) * (size_t)(q->m * K));
        if (!tw) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory packing the weights");
        for (int64_t m = 0; m < q->m; m++)
            for (int64_t ch = 0; ch < C; ch++)
                for (int64_t t = 0; t < kk; t++) tw[m * K + t * C + ch] = wt[(m * C + ch) * kk + t];
        onx_pack_a(kn, tw, q->m, K, q->pk);
        free(tw);
    } else {
        for (int64_t gi = 0; gi < q->grp; gi++) onx_pack_a(kn, wt + gi * mg * K, mg, K, q->pk + (size_t)gi * plen);
    }
    q->plen = plen;
    q->kn = kn;
    q->fast = 1;
    return TR_OK;
}

int onx_conv_packed(const onx_node *nd) {
    const conv_p *p = nd->p;
    return p->fast && !is_depthwise(p); /* run_fast reads p->pk, never the weight input */
}

static void run_conv(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    const conv_p *p = nd->p;
    const float *x = in[0].p, *wt = in[1].p, *b = nd->n_in > 2 && in[2].p ? in[2].p : NULL;
    const float *res = nd->n_in > 3 ? in[3].p : NULL; /* a fused residual Add: only on the paths that take one */
    float *y = out[0].p;
    int64_t N = in[0].d[0], cg = p->c / p->grp, mg = p->m / p->grp, P = p->w.out[0] * p->w.out[1];
    int64_t HW = p->w.in[0] * p->w.in[1], K = cg * p->w.k[0] * p->w.k[1], nb = conv_batch(p, N);
    if (p->fast) {
        run_fast(nd, x, wt, b, res, N, y, tmp);
        return;
    }
    for (int64_t n = 0; n < N;) {
        const float *xn = x + n * p->c * HW;
        float *yn = y + n * p->m * P;
        if (nb > 1) {
            int64_t cnt = N - n < nb ? N - n : nb;
            conv_batched(nd, xn, wt, b, cnt, yn, tmp);
            n += cnt;
            continue;
        }
        if (is_depthwise(p)) {
            memset(yn, 0, sizeof(float) * (size_t)(p->m * P));
            for (int64_t c = 0; c < p->c; c++) dw_channel(xn + c * HW, wt + c * K, &p->w, yn + c * P);
        } else {
            for (int64_t gi = 0; gi < p->grp; gi++) {
                const float *xg = xn + gi * cg * HW, *wg = wt + gi * mg * K;
                float *yg = yn + gi * mg * P;
                if (is_pointwise(&p->w)) {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mg, (int)P, (int)K, 1.0f, wg, (int)K,
                                xg, (int)P, 0.0f, yg, (int)P);
                    continue;
                }
                /* bands of output rows whose columns stay in cache between im2col and the GEMM */
                int64_t OH = p->w.out[0], OW = p->w.out[1], band = conv_band(p);
                for (int64_t oy = 0; oy < OH; oy += band) {
                    int64_t rows = OH - oy < band ? OH - oy : band;
                    im2col(xg, cg, &p->w, oy, oy + rows, tmp, rows * OW);
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)mg, (int)(rows * OW), (int)K, 1.0f, wg,
                                (int)K, tmp, (int)(rows * OW), 0.0f, yg + oy * OW, (int)P);
                }
            }
        }
        bias_act(nd, b, p->m, P, yn);
        n++;
    }
}

static double conv_macs(const onx_node *nd, const onx_t *in, const onx_t *out) {
    const conv_p *p = nd->p;
    (void)in;
    return (double)out[0].n * (double)(p->c / p->grp) * (double)(p->w.k[0] * p->w.k[1]);
}

const onx_op onx_ops_conv[] = {
    {"Conv", 1, infer_conv, run_conv, conv_scratch, conv_macs, 1},
    {NULL, 0, NULL, NULL, NULL, NULL, 0},
};
