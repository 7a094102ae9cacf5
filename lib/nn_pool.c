/* nn_pool.c - max pooling, average pooling (count_include_pad, as torch's default) and global average pooling. */
#include <float.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

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
                if (arg) arg[oy * OW + ox] = best;
            } else
                y[oy * OW + ox] = sum * inv;
        }
}

/* Max pooling 2x2, stride 2, no padding: the common case, branch-free (ties: the first in row-major order). */
void nn_max2_row(const float *restrict r0, const float *restrict r1, int W, int OW, int base, float *restrict y,
                 int32_t *restrict arg) {
    int ox = 0;
#if defined(__SSE2__)
    /* four outputs at a time: even and odd columns of both rows, compare-and-select as the scalar code */
    const __m128i one = _mm_set1_epi32(1), vw = _mm_set1_epi32(W), vw1 = _mm_set1_epi32(W + 1);
    for (; ox + 4 <= OW && 2 * ox + 8 <= W; ox += 4) {
        __m128 a0 = _mm_loadu_ps(r0 + 2 * ox), b0 = _mm_loadu_ps(r0 + 2 * ox + 4);
        __m128 a1 = _mm_loadu_ps(r1 + 2 * ox), b1 = _mm_loadu_ps(r1 + 2 * ox + 4);
        __m128 m = _mm_shuffle_ps(a0, b0, _MM_SHUFFLE(2, 0, 2, 0)), v = _mm_shuffle_ps(a0, b0, _MM_SHUFFLE(3, 1, 3, 1));
        __m128i off = _mm_setzero_si128(), gt = _mm_castps_si128(_mm_cmpgt_ps(v, m));
        off = _mm_or_si128(_mm_and_si128(gt, one), _mm_andnot_si128(gt, off));
        m = _mm_max_ps(v, m);
        v = _mm_shuffle_ps(a1, b1, _MM_SHUFFLE(2, 0, 2, 0));
        gt = _mm_castps_si128(_mm_cmpgt_ps(v, m));
        off = _mm_or_si128(_mm_and_si128(gt, vw), _mm_andnot_si128(gt, off));
        m = _mm_max_ps(v, m);
        v = _mm_shuffle_ps(a1, b1, _MM_SHUFFLE(3, 1, 3, 1));
        gt = _mm_castps_si128(_mm_cmpgt_ps(v, m));
        off = _mm_or_si128(_mm_and_si128(gt, vw1), _mm_andnot_si128(gt, off));
        m = _mm_max_ps(v, m);
        _mm_storeu_ps(y + ox, m);
        if (arg) {
            __m128i b = _mm_add_epi32(_mm_set1_epi32(base + 2 * ox), _mm_set_epi32(6, 4, 2, 0));
            _mm_storeu_si128((__m128i *)(arg + ox), _mm_add_epi32(b, off));
        }
    }
#endif
    for (; ox < OW; ox++) { /* the same selects with integer masks: branches here mispredict on random data */
        int i0 = base + 2 * ox, off = 0, gt;
        float m = r0[2 * ox], b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
        gt = -(b > m);
        off = (gt & 1) | (~gt & off);
        m = b > m ? b : m;
        gt = -(c > m);
        off = (gt & W) | (~gt & off);
        m = c > m ? c : m;
        gt = -(d > m);
        off = (gt & (W + 1)) | (~gt & off);
        m = d > m ? d : m;
        y[ox] = m;
        if (arg) arg[ox] = i0 + off;
    }
}

static void max2_plane(const float *x, int W, int OH, int OW, float *y, int32_t *arg) {
    for (int oy = 0; oy < OH; oy++)
        nn_max2_row(x + 2 * oy * W, x + 2 * oy * W + W, W, OW, 2 * oy * W, y + oy * OW, arg ? arg + oy * OW : NULL);
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
    if (L->kind == NN_MAXPOOL && L->k == 2 && L->stride == 2 && L->pad == 0) {
        for (size_t q = 0; q < planes; q++)
            max2_plane(x + q * hw, L->in.w, L->outs.h, L->outs.w, y + q * ohw, arg ? arg + q * ohw : NULL);
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
