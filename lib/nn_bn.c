/* nn_bn.c - batch normalisation over channels (torch.nn.BatchNorm2d/1d): batch statistics in training, running ones
 * in eval; fused with a following relu and 2x2 max pool. */
#include <math.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "nn_layers.h"
#include "onnx_sgemm.h"
#include "vec.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "onnx_simd.h"
/* The fused passes over whole planes also come in AVX-512, 16 lanes to SSE's 4, taken where the SGEMM takes its
 * AVX-512 kernel (onx_sgemm_best, the one place that reads the CPU's features for it). */
#define BN_AVX512 1
#define T512 __attribute__((target("avx512f")))
static int bn_avx512(void) {
    return onx_sgemm_best() == ONX_K_AVX512;
}
#endif

#define BN_EPS 1e-5
#define BN_MOMENTUM 0.1
#define BN_CBLOCK 64 /* channels whose sums one pass over the samples gathers */

/* Sums in VEC_BLOCK float lanes (vec_lane_sums), gathered in double. */
static double sum_plane(const float *restrict p, size_t n, float m) {
    float acc[VEC_BLOCK] = {0};
    size_t i = vec_lane_sums(acc, p, n, m, 0);
    double s = 0;
    for (size_t k = 0; k < VEC_BLOCK; k++) s += acc[k];
    for (; i < n; i++) s += p[i] - m;
    return s;
}

static double sqdev_plane(const float *restrict p, size_t n, float m) {
    float acc[VEC_BLOCK] = {0};
    size_t i = vec_lane_sums(acc, p, n, m, 1);
    double s = 0;
    for (size_t k = 0; k < VEC_BLOCK; k++) s += acc[k];
    for (; i < n; i++) s += (double)(p[i] - m) * (p[i] - m);
    return s;
}

/* sum(a) and sum(a * xhat) over n floats, xhat = (x - m) * inv. */
static void dot_plane(const float *restrict a, const float *restrict x, size_t n, float m, float inv, double *sa,
                      double *sab) {
    float s8[VEC_BLOCK] = {0}, t8[VEC_BLOCK] = {0};
    size_t i = 0;
    for (; i + VEC_BLOCK <= n; i += VEC_BLOCK)
        for (size_t k = 0; k < VEC_BLOCK; k++) {
            s8[k] += a[i + k];
            t8[k] += a[i + k] * ((x[i + k] - m) * inv);
        }
    double s = 0, t = 0;
    for (size_t k = 0; k < VEC_BLOCK; k++) {
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

void nn_plane_stats(const float *x, size_t hw, double *out) {
    double mean = sum_plane(x, hw, 0.0f) / (double)hw;
    out[0] = mean;
    out[1] = sqdev_plane(x, hw, (float)mean);
}

/* One layer's arguments, for the per-channel and per-sample parts run by par_for. */
typedef struct {
    const nn_layer *L;
    const float *gamma, *beta, *x, *dy, *yp;
    float *state, *y, *stat, *dgamma, *dbeta, *dx;
    const float *cstat; /* backward's statistics */
    const double *pstat;
    int32_t *argo;
    float *xarg, *coef;
    const float *cxarg;
    size_t plane; /* the fused backward: values per plane of y, dy and cxarg */
    size_t n;
    int train;
    int relu; /* apply_part: the fused batch norm and relu */
} bn_task;

/* Channels [c0, c1): mean and 1/std (batch statistics from the planes' means and squared deviations, combined as
 * Chan et al.; or the running ones), running statistics updated in training. */
static void stats_part(void *ctx, size_t c0, size_t c1) {
    const bn_task *t = ctx;
    size_t C = (size_t)t->L->in.c, hw = (size_t)t->L->in.h * (size_t)t->L->in.w, n = t->n, M = n * hw;
    float *rmean = t->state, *rvar = t->state + C;
    for (size_t c = c0; c < c1; c++) {
        double mean = 0, var = 0;
        if (t->train) {
            /* sum of the planes' squared deviations, plus hw times that of their means from the mean, the means
             * shifted by the first one */
            double q = 0, sd = 0, sd2 = 0, shift = 0, ps[2];
            for (size_t smp = 0; smp < n; smp++) {
                const double *st = t->pstat ? t->pstat + 2 * (smp * C + c) : ps;
                if (!t->pstat) nn_plane_stats(t->x + (smp * C + c) * hw, hw, ps);
                if (smp == 0) shift = st[0];
                q += st[1];
                sd += st[0] - shift;
                sd2 += (st[0] - shift) * (st[0] - shift);
            }
            mean = shift + sd / (double)n;
            q += (double)hw * (sd2 - sd * sd / (double)n);
            var = q > 0 ? q / (double)M : 0;
            rmean[c] = (float)((1 - BN_MOMENTUM) * rmean[c] + BN_MOMENTUM * mean);
            rvar[c] = (float)((1 - BN_MOMENTUM) * rvar[c] + BN_MOMENTUM * var * (double)M / (double)(M - 1));
        } else {
            mean = rmean[c];
            var = rvar[c];
        }
        t->stat[c] = (float)mean;
        t->stat[C + c] = (float)(1.0 / sqrt(var + BN_EPS));
    }
}

#ifdef BN_AVX512
/* Whole vectors by plain loads and stores, the tail masked (onx_load16). */
T512 static void affine_relu512(float *out, const float *x, size_t n, float a, float b) {
    __m512 va = _mm512_set1_ps(a), vb = _mm512_set1_ps(b), z = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16)
        onx_store16(out + i, (int64_t)(n - i),
                    _mm512_max_ps(_mm512_fmadd_ps(va, onx_load16(x + i, (int64_t)(n - i)), vb), z));
}

/* g = d where y > 0, else 0, for masked_sums and nn_bn_relu_dx (below): a tail lane reads y as 0, so g is 0 there. */
static inline __attribute__((always_inline, target("avx512f"))) __m512 relu_grad16(const float *y, const float *d,
                                                                                   int64_t left) {
    __mmask16 pos = _mm512_cmp_ps_mask(onx_load16(y, left), _mm512_setzero_ps(), _CMP_GT_OQ);
    return _mm512_maskz_mov_ps(pos, onx_load16(d, left));
}

T512 static void masked_sums512(const float *y, const float *d, const float *xa, size_t n, float m, float inv,
                                double *sb, double *sg) {
    __m512 vs = _mm512_setzero_ps(), vg = _mm512_setzero_ps(), vm = _mm512_set1_ps(m), vi = _mm512_set1_ps(inv);
    for (size_t j = 0; j < n; j += 16) {
        int64_t left = (int64_t)(n - j);
        __m512 g = relu_grad16(y + j, d + j, left);
        vs = _mm512_add_ps(vs, g);
        vg = _mm512_fmadd_ps(g, _mm512_mul_ps(_mm512_sub_ps(onx_load16(xa + j, left), vm), vi), vg);
    }
    *sb += _mm512_reduce_add_ps(vs);
    *sg += _mm512_reduce_add_ps(vg);
}

T512 static void relu_dx512(float *o, const float *x, const float *y, const float *d, size_t n, float k, float bx,
                            float c0v) {
    __m512 vk = _mm512_set1_ps(k), vb = _mm512_set1_ps(bx), vc = _mm512_set1_ps(c0v);
    for (size_t j = 0; j < n; j += 16) {
        int64_t left = (int64_t)(n - j);
        __m512 g = relu_grad16(y + j, d + j, left);
        onx_store16(o + j, left, _mm512_fmadd_ps(vk, g, _mm512_fmadd_ps(vb, onx_load16(x + j, left), vc)));
    }
}
#endif

/* out = relu(a x + b) over n floats (restrict: gcc -O2 vectorises the blocks). */
static void affine_relu(float *restrict out, const float *restrict x, size_t n, float a, float b) {
#ifdef BN_AVX512
    if (bn_avx512()) {
        affine_relu512(out, x, n, a, b);
        return;
    }
#endif
    size_t i = 0;
    for (; i + VEC_BLOCK <= n; i += VEC_BLOCK)
        for (size_t k = 0; k < VEC_BLOCK; k++) {
            float v = a * x[i + k] + b;
            out[i + k] = v > 0.0f ? v : 0.0f;
        }
    for (; i < n; i++) {
        float v = a * x[i] + b;
        out[i] = v > 0.0f ? v : 0.0f;
    }
}

/* y = gamma * (x - m) * inv + beta, as one multiply-add (relu: then the relu), over samples [lo, hi). */
static void apply_part(void *ctx, size_t lo, size_t hi) {
    const bn_task *t = ctx;
    size_t C = (size_t)t->L->in.c, hw = (size_t)t->L->in.h * (size_t)t->L->in.w;
    for (size_t smp = lo; smp < hi; smp++)
        for (size_t c = 0; c < C; c++) {
            float a = t->gamma[c] * t->stat[C + c], b = t->beta[c] - a * t->stat[c];
            (t->relu ? affine_relu : vec_affine)(t->y + (smp * C + c) * hw, t->x + (smp * C + c) * hw, hw, a, b);
        }
}

int nn_bn_forward(const nn_layer *L, const float *gamma, const float *beta, float *state, const float *x, size_t n,
                  int train, const double *pstat, float *y, float *stat, par *p) {
    size_t M = n * (size_t)L->in.h * (size_t)L->in.w;
    if (train && M < 2) return TR_EINVAL;
    bn_task t = {.L = L,
                 .gamma = gamma,
                 .beta = beta,
                 .x = x,
                 .state = state,
                 .y = y,
                 .stat = stat,
                 .pstat = pstat,
                 .n = n,
                 .train = train};
    par_for(p, (size_t)L->in.c, stats_part, &t);
    if (y) par_for(p, n, apply_part, &t);
    return TR_OK;
}

void nn_bn_relu_forward(const nn_layer *L, const float *gamma, const float *beta, const float *x, size_t n,
                        const float *stat, float *y, par *p) {
    bn_task t = {.L = L, .gamma = gamma, .beta = beta, .x = x, .y = y, .stat = (float *)stat, .n = n, .relu = 1};
    par_for(p, n, apply_part, &t);
}

/* The fused batch norm, relu and 2x2 max pool over samples [lo, hi): each plane through relu(a x + b), pooled. */
static void relu_max2_part(void *ctx, size_t lo, size_t hi) {
    const bn_task *t = ctx;
    int H = t->L->in.h, W = t->L->in.w, OH = H / 2, OW = W / 2;
    size_t C = (size_t)t->L->in.c, hw = (size_t)H * (size_t)W, ohw = (size_t)OH * (size_t)OW;
    float plane[NN_FUSE_MAX_HW];
    for (size_t smp = lo; smp < hi; smp++)
        for (size_t c = 0; c < C; c++) {
            float a = t->gamma[c] * t->stat[C + c], b = t->beta[c] - a * t->stat[c];
            float *yp = t->y + (smp * C + c) * ohw;
            int32_t *ap = t->argo ? t->argo + (smp * C + c) * ohw : NULL;
            const float *xp = t->x + (smp * C + c) * hw;
            affine_relu(plane, xp, hw, a, b);
            for (int oy = 0; oy < OH; oy++)
                nn_max2_row(plane + 2 * oy * W, plane + 2 * oy * W + W, W, OW, 2 * oy * W, yp + (size_t)oy * (size_t)OW,
                            ap ? ap + (size_t)oy * (size_t)OW : NULL);
            if (ap && t->xarg) {
                float *xa = t->xarg + (smp * C + c) * ohw;
                for (size_t j = 0; j < ohw; j++) xa[j] = xp[ap[j]];
            }
        }
}

void nn_bn_relu_max2_forward(const nn_layer *L, const float *gamma, const float *beta, const float *x, size_t n,
                             const float *stat, float *y, int32_t *arg, float *xarg, par *p) {
    bn_task t = {
        .L = L, .gamma = gamma, .beta = beta, .x = x, .y = y, .stat = (float *)stat, .argo = arg, .xarg = xarg, .n = n};
    par_for(p, n, relu_max2_part, &t);
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
    bn_task t = {.L = L,
                 .gamma = gamma,
                 .x = x,
                 .dy = dy,
                 .dgamma = dgamma,
                 .dbeta = dbeta,
                 .dx = dx,
                 .cstat = stat,
                 .n = n,
                 .train = train};
    par_for(p, (size_t)L->in.c, backward_part, &t);
}

/* sb += sum(g), sg += sum(g * (xa - m) * inv) over n entries, g = d where y > 0, else 0 (branch-free: the signs
 * are random). */
static void masked_sums(const float *y, const float *d, const float *xa, size_t n, float m, float inv, double *sb,
                        double *sg) {
#ifdef BN_AVX512
    if (bn_avx512()) {
        masked_sums512(y, d, xa, n, m, inv, sb, sg);
        return;
    }
#endif
    size_t j = 0;
    float s0 = 0, g0 = 0;
#if defined(__SSE2__)
    __m128 vs = _mm_setzero_ps(), vg = _mm_setzero_ps(), vm = _mm_set1_ps(m), vi = _mm_set1_ps(inv),
           z = _mm_setzero_ps();
    for (; j + 4 <= n; j += 4) {
        __m128 g = _mm_and_ps(_mm_cmpgt_ps(_mm_loadu_ps(y + j), z), _mm_loadu_ps(d + j));
        vs = _mm_add_ps(vs, g);
        vg = _mm_add_ps(vg, _mm_mul_ps(g, _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(xa + j), vm), vi)));
    }
    float a[4], b[4];
    _mm_storeu_ps(a, vs);
    _mm_storeu_ps(b, vg);
    s0 = (a[0] + a[1]) + (a[2] + a[3]);
    g0 = (b[0] + b[1]) + (b[2] + b[3]);
#endif
    for (; j < n; j++) {
        float g = y[j] > 0.0f ? d[j] : 0.0f;
        s0 += g;
        g0 += g * ((xa[j] - m) * inv);
    }
    *sb += s0;
    *sg += g0;
}

/* The fused backwards over channels [c0, c1): the batch norm's output gradient g is dy where the output y is
 * positive (the relu passed it), zero elsewhere; with a pool, only at each pooled output's argmax, the batch norm
 * input there in cxarg. Its sums give dgamma, dbeta and the coefficients of dx = k g + bx x + c0. */
static void relu_backward_part(void *ctx, size_t c0, size_t c1) {
    const bn_task *t = ctx;
    size_t C = (size_t)t->L->in.c, ohw = t->plane, n = t->n, M = n * (size_t)t->L->in.h * (size_t)t->L->in.w;
    const float *stat = t->cstat;
    /* samples outer, a block of channels inner: the planes are read in memory order; each channel's sums still
     * run over the samples in order */
    for (size_t cb = c0; cb < c1; cb += BN_CBLOCK) {
        size_t ce = cb + BN_CBLOCK < c1 ? cb + BN_CBLOCK : c1;
        double sg[BN_CBLOCK] = {0}, sb[BN_CBLOCK] = {0};
        for (size_t smp = 0; smp < n; smp++)
            for (size_t c = cb; c < ce; c++) {
                size_t o = (smp * C + c) * ohw;
                masked_sums(t->yp + o, t->dy + o, t->cxarg + o, ohw, stat[c], stat[C + c], &sb[c - cb], &sg[c - cb]);
            }
        for (size_t c = cb; c < ce; c++) {
            float m = stat[c], inv = stat[C + c];
            t->dgamma[c] = (float)sg[c - cb];
            t->dbeta[c] = (float)sb[c - cb];
            float k = t->gamma[c] * inv, mb = t->train ? (float)(sb[c - cb] / (double)M) : 0.0f,
                  mg = t->train ? (float)(sg[c - cb] / (double)M) : 0.0f;
            t->coef[c] = k;
            t->coef[C + c] = -k * mg * inv;
            t->coef[2 * C + c] = k * (mg * inv * m - mb);
        }
    }
}

/* The fused backwards' sums: planes of y, dy and xa (the batch norm's input where y came from) plane floats each. */
static void relu_backward(const nn_layer *L, size_t plane, const float *gamma, const float *stat, int train,
                          const float *xa, const float *y, const float *dy, size_t n, float *dgamma, float *dbeta,
                          float *coef, par *p) {
    bn_task t = {.L = L,
                 .plane = plane,
                 .gamma = gamma,
                 .dy = dy,
                 .yp = y,
                 .dgamma = dgamma,
                 .dbeta = dbeta,
                 .cstat = stat,
                 .cxarg = xa,
                 .coef = coef,
                 .n = n,
                 .train = train};
    par_for(p, (size_t)L->in.c, relu_backward_part, &t);
}

void nn_bn_relu_max2_backward(const nn_layer *L, const float *gamma, const float *stat, int train, const float *y,
                              const float *xarg, const float *dy, size_t n, float *dgamma, float *dbeta, float *coef,
                              par *p) {
    relu_backward(L, (size_t)(L->in.h / 2) * (size_t)(L->in.w / 2), gamma, stat, train, xarg, y, dy, n, dgamma, dbeta,
                  coef, p);
}

void nn_bn_relu_backward(const nn_layer *L, const float *gamma, const float *stat, int train, const float *x,
                         const float *y, const float *dy, size_t n, float *dgamma, float *dbeta, float *coef, par *p) {
    relu_backward(L, (size_t)L->in.h * (size_t)L->in.w, gamma, stat, train, x, y, dy, n, dgamma, dbeta, coef, p);
}

void nn_bn_relu_dx(const nn_layer *L, const float *coef, const float *x, const float *y, const float *dy, float *dx) {
    size_t C = (size_t)L->in.c, hw = (size_t)L->in.h * (size_t)L->in.w;
    for (size_t c = 0; c < C; c++) {
        float k = coef[c], bx = coef[C + c], c0v = coef[2 * C + c];
        const float *restrict xp = x + c * hw, *restrict yp = y + c * hw, *restrict d = dy + c * hw;
        float *restrict o = dx + c * hw;
        size_t j = 0;
#ifdef BN_AVX512
        if (bn_avx512()) {
            relu_dx512(o, xp, yp, d, hw, k, bx, c0v);
            continue;
        }
#endif
#if defined(__SSE2__)
        /* branch-free (the signs are random), as gcc does not make the select so */
        __m128 vk = _mm_set1_ps(k), vb = _mm_set1_ps(bx), vc = _mm_set1_ps(c0v), z = _mm_setzero_ps();
        for (; j + 4 <= hw; j += 4) {
            __m128 g = _mm_and_ps(_mm_cmpgt_ps(_mm_loadu_ps(yp + j), z), _mm_loadu_ps(d + j));
            _mm_storeu_ps(o + j, _mm_add_ps(_mm_add_ps(_mm_mul_ps(vk, g), _mm_mul_ps(vb, _mm_loadu_ps(xp + j))), vc));
        }
#endif
        for (; j < hw; j++) o[j] = k * (yp[j] > 0.0f ? d[j] : 0.0f) + bx * xp[j] + c0v;
    }
}

void nn_bn_relu_max2_dx(const nn_layer *L, const float *coef, const float *x, const float *y, const int32_t *arg,
                        const float *xarg, const float *dy, float *dx) {
    size_t C = (size_t)L->in.c, hw = (size_t)L->in.h * (size_t)L->in.w;
    size_t ohw = (size_t)(L->in.h / 2) * (size_t)(L->in.w / 2);
    for (size_t c = 0; c < C; c++) {
        float k = coef[c], bx = coef[C + c], c0v = coef[2 * C + c];
        const float *yp = y + c * ohw, *d = dy + c * ohw, *xa = xarg + c * ohw;
        const int32_t *ap = arg + c * ohw;
        float *dxp = dx + c * hw;
        vec_affine(dxp, x + c * hw, hw, bx, c0v);
        size_t j = 0; /* k * 0 + v is v: the entries the relu stopped keep their value */
#if defined(__SSE2__)
        /* branch-free: the signs are random */
        __m128 vk = _mm_set1_ps(k), vb = _mm_set1_ps(bx), vc = _mm_set1_ps(c0v), z = _mm_setzero_ps();
        for (; j + 4 <= ohw; j += 4) {
            __m128 g = _mm_and_ps(_mm_cmpgt_ps(_mm_loadu_ps(yp + j), z), _mm_loadu_ps(d + j));
            float v[4];
            _mm_storeu_ps(v, _mm_add_ps(_mm_add_ps(_mm_mul_ps(vk, g), _mm_mul_ps(vb, _mm_loadu_ps(xa + j))), vc));
            for (int q = 0; q < 4; q++) dxp[ap[j + (size_t)q]] = v[q];
        }
#endif
        for (; j < ohw; j++) {
            float g = yp[j] > 0.0f ? d[j] : 0.0f;
            dxp[ap[j]] = k * g + bx * xa[j] + c0v;
        }
    }
}
