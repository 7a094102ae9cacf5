/* onnx_k_pool.c - MaxPool, AveragePool, GlobalAveragePool (NCHW, 1-D as 2-D). */
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "onnx_op.h"
#include "onnx_sgemm.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "onnx_simd.h"
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

typedef struct {
    onx_win w;
    int is_max, include_pad;
} pool_p;

static int infer_pool(onx_graph *g, onx_node *nd, tr_err *err) {
    static const char *const kmax[] = {"auto_pad", "ceil_mode",     "dilations", "kernel_shape",
                                       "pads",     "storage_order", "strides",   NULL};
    static const char *const kavg[] = {"auto_pad", "ceil_mode", "count_include_pad", "kernel_shape", "pads",
                                       "strides",  NULL};
    int is_max = nd->op->name[0] == 'M', rc;
    if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_attr_only(g, nd, is_max ? kmax : kavg, err)) ||
        (rc = onx_need(g, nd, 0, ONX_F32, 3, 4, err)))
        return rc;
    const onx_value *x = onx_in(g, nd, 0);
    int64_t so = 0, cip = 0;
    if ((rc = onx_attr_int(g, nd, "storage_order", &so, err)) < 0) return rc;
    /* storage_order lays out the indices output, which is never computed (the loader drops it unread) */
    if (so != 0 && so != 1) return onx_fail(g, nd, err, "storage_order %lld is not 0 or 1", (long long)so);
    if ((rc = onx_attr_int(g, nd, "count_include_pad", &cip, err)) < 0) return rc;
    pool_p *p = calloc(1, sizeof *p);
    if (!p) return tr_seterr(err, TR_ENOMEM, nd->name, "out of memory");
    nd->p = p;
    p->is_max = is_max;
    p->include_pad = cip != 0;
    if ((rc = onx_win_parse(g, nd, x, NULL, is_max, g->opset >= 10, &p->w, err))) return rc;
    if (x->dim[1].p) return onx_fail(g, nd, err, "the channel dimension depends on the batch size");
    onx_dim o[4];
    onx_win_dims(x, x->dim[1].c, &p->w, o);
    onx_set_out(g, nd, 0, ONX_F32, x->rank, o);
    return TR_OK;
}

#if HAVE_X86
/* Floats of the padded row max_row_avx512 and max_row_avx2 read: the left padding, the row, and padding up to the
 * second load of the last vector's last tap. */
static int64_t padded_len(const onx_win *w) {
    int64_t reach = ((w->out[1] + 15) / 16 * 16 - 1) * w->s[1] + w->k[1] + 16, row = w->pb[1] + w->in[1];
    return reach > row ? reach : row;
}

/* One output row of max windows, stride 1 or 2, 16 outputs a vector: pr is the combined input row with
 * -FLT_MAX in front (the left padding) and after it, so every window is whole; tap j of 16 windows is one strided
 * gather of pr (stride 2: the even lanes of two loads). The taps meet in the scalar loop's order and comparison, acc =
 * tap > acc ? tap : acc from -FLT_MAX (what _mm512_max_ps(tap, acc) computes, NaNs included). */
__attribute__((target("avx512f"))) static void max_row_avx512(const onx_win *w, const float *pr, float *y) {
    int64_t OW = w->out[1], s = w->s[1], k = w->k[1];
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    for (int64_t ox = 0; ox < OW; ox += 16) {
        const float *b = pr + ox * s;
        __m512 acc = _mm512_set1_ps(-FLT_MAX);
        for (int64_t j = 0; j < k; j++) {
            __m512 t = s == 1 ? _mm512_loadu_ps(b + j)
                              : _mm512_permutex2var_ps(_mm512_loadu_ps(b + j), ev, _mm512_loadu_ps(b + j + 16));
            acc = _mm512_max_ps(t, acc);
        }
        onx_store16(y + ox, OW - ox, acc);
    }
}

/* r = the elementwise max of input rows [ya, yb) of W floats (r = xr > r ? xr : r, as the scalar loop). */
__attribute__((target("avx512f"))) static void max_rows_avx512(const float *x, int64_t W, int64_t ya, int64_t yb,
                                                               float *r) {
    for (int64_t i = 0; i < W; i += 16) { /* whole vectors plainly, the tail masked (onx_load16) */
        __m512 acc = onx_load16(x + ya * W + i, W - i);
        for (int64_t iy = ya + 1; iy < yb; iy++) acc = _mm512_max_ps(onx_load16(x + iy * W + i, W - i), acc);
        onx_store16(r + i, W - i, acc);
    }
}

/* The same two passes in 8-float vectors, for AVX2 CPUs: stride 2's even lanes of two loads by a shuffle within
 * 128-bit halves, then a cross-half permute. Whole vectors load and store plainly, a row's last part through
 * onx_load8 and onx_store8 (vmaskmovps costs a dozen cycles a store on AMD cores). */

__attribute__((target("avx2"))) static void max_row_avx2(const onx_win *w, const float *pr, float *y) {
    int64_t OW = w->out[1], s = w->s[1], k = w->k[1];
    for (int64_t ox = 0; ox < OW; ox += 8) {
        const float *b = pr + ox * s;
        __m256 acc = _mm256_set1_ps(-FLT_MAX);
        for (int64_t j = 0; j < k; j++) {
            __m256 t = _mm256_loadu_ps(b + j);
            if (s == 2) {
                __m256 e = _mm256_shuffle_ps(t, _mm256_loadu_ps(b + j + 8), _MM_SHUFFLE(2, 0, 2, 0));
                t = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(e), _MM_SHUFFLE(3, 1, 2, 0)));
            }
            acc = _mm256_max_ps(t, acc);
        }
        onx_store8(y + ox, OW - ox, 0, acc);
    }
}

__attribute__((target("avx2"))) static void max_rows_avx2(const float *x, int64_t W, int64_t ya, int64_t yb, float *r) {
    for (int64_t i = 0; i < W; i += 8) {
        __m256 acc = onx_load8(x + ya * W + i, W - i);
        for (int64_t iy = ya + 1; iy < yb; iy++) acc = _mm256_max_ps(onx_load8(x + iy * W + i, W - i), acc);
        onx_store8(r + i, W - i, 0, acc);
    }
}
#endif

typedef enum { ROW_SCALAR, ROW_AVX2, ROW_AVX512 } row_isa;

/* The vector passes for max windows, undilated, stride 1 or 2 along the row, on this CPU (kn). */
static row_isa row_vec(const pool_p *p, onx_kern kn) {
    if (!HAVE_X86 || !p->is_max || p->w.d[1] != 1 || (p->w.s[1] != 1 && p->w.s[1] != 2)) return ROW_SCALAR;
    return kn == ONX_K_AVX512 ? ROW_AVX512 : kn == ONX_K_AVX2 ? ROW_AVX2 : ROW_SCALAR;
}

/* Undilated windows: combine the window's rows into one row (vectorisable),
 * then slide along it. row is W floats of scratch; with vec (row_vec), pool_scratch's padded row. */
static void pool_rows(const pool_p *p, const float *x, float *y, float *row, row_isa vec) {
    const onx_win *w = &p->w;
    int64_t H = w->in[0], W = w->in[1], OH = w->out[0], OW = w->out[1];
    for (int64_t oy = 0; oy < OH; oy++) {
        int64_t y0 = oy * w->s[0] - w->pb[0], ya = y0 < 0 ? 0 : y0, yb = y0 + w->k[0] < H ? y0 + w->k[0] : H;
        if (yb <= ya) { /* only padding: ceil_mode never makes these, explicit pads can */
            for (int64_t ox = 0; ox < OW; ox++) y[oy * OW + ox] = p->is_max ? -FLT_MAX : 0.0f;
            continue;
        }
#if HAVE_X86
        if (vec == ROW_AVX512) {
            max_rows_avx512(x, W, ya, yb, row + w->pb[1]);
            max_row_avx512(w, row, y + oy * OW);
            continue;
        }
        if (vec == ROW_AVX2) {
            max_rows_avx2(x, W, ya, yb, row + w->pb[1]);
            max_row_avx2(w, row, y + oy * OW);
            continue;
        }
#endif
        memcpy(row, x + ya * W, sizeof *row * (size_t)W);
        for (int64_t iy = ya + 1; iy < yb; iy++) {
            const float *xr = x + iy * W;
            if (p->is_max)
                for (int64_t i = 0; i < W; i++) row[i] = xr[i] > row[i] ? xr[i] : row[i];
            else
                for (int64_t i = 0; i < W; i++) row[i] += xr[i];
        }
        for (int64_t ox = 0; ox < OW; ox++) {
            int64_t x0 = ox * w->s[1] - w->pb[1], xa = x0 < 0 ? 0 : x0, xb = x0 + w->k[1] < W ? x0 + w->k[1] : W;
            float acc = p->is_max ? -FLT_MAX : 0.0f;
            if (p->is_max)
                for (int64_t ix = xa; ix < xb; ix++) acc = row[ix] > acc ? row[ix] : acc;
            else
                for (int64_t ix = xa; ix < xb; ix++) acc += row[ix];
            if (!p->is_max) {
                int64_t cnt = xb > xa ? (yb - ya) * (xb - xa) : 0;
                if (p->include_pad) { /* the window clipped to the padded input (PyTorch, ONNX Runtime) */
                    int64_t ye = y0 + w->k[0] < H + w->pe[0] ? y0 + w->k[0] : H + w->pe[0];
                    int64_t xe = x0 + w->k[1] < W + w->pe[1] ? x0 + w->k[1] : W + w->pe[1];
                    cnt = (ye - y0) * (xe - x0);
                }
                acc = cnt ? acc / (float)cnt : 0.0f;
            }
            y[oy * OW + ox] = acc;
        }
    }
}

/* 2x2 windows at stride 2 that all lie inside the input (the common CNN pool). */
static int is_2x2(const onx_win *w) {
    return w->k[0] == 2 && w->k[1] == 2 && w->s[0] == 2 && w->s[1] == 2 && w->d[0] == 1 && w->d[1] == 1 &&
           w->pb[0] == 0 && w->pb[1] == 0 && 2 * w->out[0] <= w->in[0] && 2 * w->out[1] <= w->in[1];
}

#if HAVE_X86
/* Max of 2x2 windows, 16 outputs a vector: the two rows' maximum, then even against odd columns
 * (the same comparisons as the scalar loop, so NaNs come out alike). */
__attribute__((target("avx512f"))) static void max_2x2_avx512(const onx_win *w, const float *x, float *y) {
    int64_t W = w->in[1], OH = w->out[0], OW = w->out[1];
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int64_t oy = 0; oy < OH; oy++, y += OW) {
        const float *r0 = x + 2 * oy * W, *r1 = r0 + W;
        for (int64_t ox = 0; ox < OW; ox += 16) {
            int64_t n = OW - ox < 16 ? OW - ox : 16, lo = 2 * n < 16 ? 2 * n : 16, hi = 2 * n - lo;
            __m512 a0 = onx_load16(r0 + 2 * ox, lo), a1 = onx_load16(r0 + 2 * ox + 16, hi);
            __m512 b0 = onx_load16(r1 + 2 * ox, lo), b1 = onx_load16(r1 + 2 * ox + 16, hi);
            __m512 a = _mm512_max_ps(_mm512_permutex2var_ps(a0, ev, a1), _mm512_permutex2var_ps(a0, od, a1));
            __m512 b = _mm512_max_ps(_mm512_permutex2var_ps(b0, ev, b1), _mm512_permutex2var_ps(b0, od, b1));
            onx_store16(y + ox, n, _mm512_max_ps(a, b));
        }
    }
}
#endif

/* avx512: the CPU runs max_2x2_avx512 */
static void pool_2x2(int is_max, int avx512, const onx_win *w, const float *x, float *y) {
    int64_t W = w->in[1], OH = w->out[0], OW = w->out[1];
#if HAVE_X86
    if (is_max && avx512) {
        max_2x2_avx512(w, x, y);
        return;
    }
#else
    (void)avx512;
#endif
    for (int64_t oy = 0; oy < OH; oy++, y += OW) {
        const float *r0 = x + 2 * oy * W, *r1 = r0 + W;
        if (is_max)
            for (int64_t ox = 0; ox < OW; ox++) {
                float a = r0[2 * ox] > r0[2 * ox + 1] ? r0[2 * ox] : r0[2 * ox + 1];
                float b = r1[2 * ox] > r1[2 * ox + 1] ? r1[2 * ox] : r1[2 * ox + 1];
                y[ox] = a > b ? a : b;
            }
        else
            for (int64_t ox = 0; ox < OW; ox++)
                y[ox] = 0.25f * (r0[2 * ox] + r0[2 * ox + 1] + r1[2 * ox] + r1[2 * ox + 1]);
    }
}

/* Dilated max pooling: every tap checked. */
static void pool_dilated(const onx_win *w, const float *x, float *y) {
    int64_t H = w->in[0], W = w->in[1], OH = w->out[0], OW = w->out[1];
    for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ox = 0; ox < OW; ox++) {
            int64_t y0 = oy * w->s[0] - w->pb[0], x0 = ox * w->s[1] - w->pb[1];
            float acc = -FLT_MAX;
            for (int64_t i = 0; i < w->k[0]; i++) {
                int64_t iy = y0 + i * w->d[0];
                if (iy < 0 || iy >= H) continue;
                for (int64_t j = 0; j < w->k[1]; j++) {
                    int64_t ix = x0 + j * w->d[1];
                    if (ix >= 0 && ix < W) acc = x[iy * W + ix] > acc ? x[iy * W + ix] : acc;
                }
            }
            y[oy * OW + ox] = acc;
        }
}

static size_t pool_scratch(const onx_node *nd, const onx_t *in, const onx_t *out) {
    (void)in, (void)out;
    const onx_win *w = &((const pool_p *)nd->p)->w;
#if HAVE_X86
    if (padded_len(w) > w->in[1]) return (size_t)padded_len(w);
#endif
    return (size_t)w->in[1];
}

static void run_pool(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    const pool_p *p = nd->p;
    const onx_win *w = &p->w;
    int64_t HW = w->in[0] * w->in[1], OHW = w->out[0] * w->out[1], planes = in[0].d[0] * in[0].d[1];
    const float *x = in[0].p;
    float *y = out[0].p;
    onx_kern kn = onx_sgemm_best();
    int avx512 = kn == ONX_K_AVX512;
    row_isa vec = !is_2x2(w) && w->d[0] == 1 ? row_vec(p, kn) : ROW_SCALAR;
    if (vec != ROW_SCALAR) { /* the padding around the row, set once: pool_rows writes only the row */
        int64_t len = (int64_t)pool_scratch(nd, in, out);
        for (int64_t i = 0; i < len; i++) tmp[i] = -FLT_MAX;
    }
    for (int64_t pl = 0; pl < planes; pl++, x += HW, y += OHW) {
        if (is_2x2(w))
            pool_2x2(p->is_max, avx512, w, x, y);
        else if (w->d[0] == 1 && w->d[1] == 1)
            pool_rows(p, x, y, tmp, vec);
        else
            pool_dilated(w, x, y);
    }
    onx_act_apply(nd->act, nd->act_lo, nd->act_hi, out[0].p, out[0].n);
}

static int infer_gap(onx_graph *g, onx_node *nd, tr_err *err) {
    int rc;
    if ((rc = onx_arity(g, nd, 1, 1, 1, err)) || (rc = onx_need(g, nd, 0, ONX_F32, 3, ONX_MAX_RANK, err))) return rc;
    const onx_value *x = onx_in(g, nd, 0);
    onx_dim o[ONX_MAX_RANK];
    for (int i = 0; i < x->rank; i++) o[i] = i < 2 ? x->dim[i] : onx_d(1);
    for (int i = 1; i < x->rank; i++)
        if (x->dim[i].p) return onx_fail(g, nd, err, "dimension %d depends on the batch size", i);
    onx_set_out(g, nd, 0, ONX_F32, x->rank, o);
    return TR_OK;
}

static void run_gap(const onx_node *nd, const onx_t *in, onx_t *out, float *tmp) {
    (void)nd, (void)tmp;
    size_t planes = out[0].n, hw = planes ? in[0].n / planes : 0;
    const float *x = in[0].p;
    float *y = out[0].p;
    for (size_t pl = 0; pl < planes; pl++, x += hw) {
        float acc = 0.0f;
        for (size_t i = 0; i < hw; i++) acc += x[i];
        y[pl] = hw ? acc / (float)hw : 0.0f;
    }
}

const onx_op onx_ops_pool[] = {
    {"MaxPool", 1, infer_pool, run_pool, pool_scratch, NULL, 1},
    {"AveragePool", 7, infer_pool, run_pool, pool_scratch, NULL, 1},
    {"GlobalAveragePool", 1, infer_gap, run_gap, NULL, NULL, 0},
    {NULL, 0, NULL, NULL, NULL, NULL, 0},
};
