/* onnx_wino4.c - 3x3 stride-1 convolutions by Winograd F(4x4, 3x3) on the packed-weight SGEMM. */
#include "onnx_wino4.h"

#include <string.h>

/* Lavin and Gray's F(4x4, 3x3) with the points 0, 1, -1, 2, -2: a 4x4 output tile is A^T [(G g G^T) .
 * (B^T d B)] A for the 6x6 input tile d over it, so the 36 entries of the transformed tiles meet the 36 of the
 * transformed weights in 36 GEMMs of m x c by c x tiles: 4 times fewer multiply-adds than the direct convolution
 * (F(2x2, 3x3): 2.25), and 2.25 transformed input values per output pixel instead of 4. The transforms scale by
 * at most 8 (the weights' by 1/24, done in double at load): the rounding error stays within a few times F(2x2)'s,
 * well inside the 1e-4 + 1e-3 relative of the golden tests, which check it on every torchvision model. */

#define WINO4_COLS 256 /* tiles per GEMM when several samples are at hand */
/* Fewer tiles per sample (a 14x14 output has 16) leave the GEMMs too narrow for the 36 transformed weight
 * matrices, 4 times the direct ones, to pay: F(2x2, 3x3) takes those. */
#define WINO4_MIN_TILES 32
/* The transforms' cost per channel grows with the tile (36 values against 16) while the products saved grow with
 * channels in times out: with 32 and 32 (the shipped CNN's 28x28 layer) F(4x4) ran no faster than F(2x2) on
 * AVX-512; with AVX2, whose GEMMs run at half the width, it did: the shipped CNN 3-5 % more images/s at batch 1 and
 * 6-9 % at batch 64 (kernels capped at AVX2 on a Zen 5 core). */
#define WINO4_MIN_CH 64
#define WINO4_MIN_CH_AVX2 32
/* With AVX2 and 128+ channels in and out, F(4x4) pays from 16 tiles a run: a 14x14 output (resnet18's 256 -> 256
 * layers: 2.9 -> 2.4 ms an image at batch 1 and 8, Zen 3) and runs of 4 samples of a 7x7 one (its 512 -> 512 layers
 * at 4 samples a run: 2.8-3.4 -> 2.2-2.5 ms an image; at 2 samples F(2x2) stays faster, at 1 twice as fast). With 64
 * channels (the shipped CNN's 14x14 layers) F(4x4) lost at batch 256. */
#define WINO4_WIDE_CH 128
#define WINO4_WIDE_TILES 16

static onx_wgeo geo_of(const onx_win *w) {
    return onx_wino_geo(w, 4);
}

/* The transforms run in AVX-512 vectors (16 tiles) or AVX2 ones (8 tiles, with FMA); off x86-64, where
 * onx_sgemm_best is ONX_K_NONE, never. */
int64_t onx_wino4_min_n(const onx_win *w, int64_t grp, int64_t c, int64_t m) {
    onx_kern kn = onx_sgemm_best();
    int64_t min_ch = kn == ONX_K_AVX512 ? WINO4_MIN_CH : WINO4_MIN_CH_AVX2;
    if (kn == ONX_K_NONE || w->nsp != 2 || grp != 1 || c < min_ch || m < min_ch || w->k[0] != 3 || w->k[1] != 3 ||
        w->s[0] != 1 || w->s[1] != 1 || w->d[0] != 1 || w->d[1] != 1)
        return 0;
    int64_t t = (w->out[0] + 3) / 4 * ((w->out[1] + 3) / 4);
    if (t >= WINO4_MIN_TILES) return 1;
    if (kn != ONX_K_AVX2 || c < WINO4_WIDE_CH || m < WINO4_WIDE_CH) return 0;
    return (WINO4_WIDE_TILES + t - 1) / t;
}

int onx_wino4_ok(const onx_win *w, int64_t grp, int64_t c, int64_t m) {
    return onx_wino4_min_n(w, grp, c, m) == 1;
}

size_t onx_wino4_pack_len(onx_kern kn, int64_t m, int64_t c) {
    return 36 * onx_pack_a_len(kn, m, c);
}

/* Row a of G applied to 3 values. */
static double gcomb(int a, double v0, double v1, double v2) {
    switch (a) {
    case 0:
        return v0 / 4;
    case 1:
        return -(v0 + v1 + v2) / 6;
    case 2:
        return -(v0 - v1 + v2) / 6;
    case 3:
        return v0 / 24 + v1 / 12 + v2 / 6;
    case 4:
        return v0 / 24 - v1 / 12 + v2 / 6;
    default:
        return v2;
    }
}

void onx_wino4_pack(onx_kern kn, const float *wt, int64_t m, int64_t c, float *tmp, float *out) {
    onx_wino_pack_with(kn, wt, m, c, 6, gcomb, tmp, out);
}

static int64_t samples_per_pass(const onx_wgeo *g, int64_t n) {
    return onx_wino_per_pass(WINO4_COLS, g->T, n);
}

/* Per channel, the padded input split by column phase: 4 planes of ph_rows rows of ph_w floats, row r of plane p
 * holding padded columns p, 4 + p, 8 + p, ... (input column 4u + p - pl at u). Tile tx reads its six input columns
 * as planes 0-3 at u = tx and planes 0-1 at tx + 1: whole vectors, 16 tiles in the lanes at a time. */
static int64_t ph_w(const onx_wgeo *g) {
    return onx_wino_plane_w(g->txc);
}

static int64_t ph_rows(const onx_wgeo *g) {
    return 4 * g->tyc + 2;
}

static int64_t ph_floats(const onx_wgeo *g) {
    return 4 * ph_rows(g) * ph_w(g);
}

size_t onx_wino4_work(const onx_win *w, int64_t c, int64_t m, int64_t n) {
    onx_wgeo g = geo_of(w);
    int64_t cols = samples_per_pass(&g, n) * g.T;
    return (size_t)(36 * (c + m) * cols + ph_floats(&g)) + onx_sgemm_work();
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "onnx_simd.h"
#define T512 __attribute__((target("avx512f")))
#define T512I static inline __attribute__((always_inline, target("avx512f")))
#define T2 __attribute__((target("avx2,fma")))
#define T2I static inline __attribute__((always_inline, target("avx2,fma")))

/* One padded row's phase rows (plane p's at q + p * pstride) from input row xr: 64 input columns at a time, split
 * into even and odd, then each of those into even and odd again; a column outside the input reads as the zero it
 * replaces. Columns u < umax are written (and up to 15 past it). */
T512 static void split_row(const onx_wgeo *g, const float *xr, float *q, int64_t pstride, int64_t umax) {
    const __m512i ev = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int64_t u0 = 0; u0 < umax; u0 += 16) {
        int64_t j0 = 4 * u0 - g->pl; /* the input column of lane 0 */
        __m512 a[4];
        for (int h = 0; h < 4; h++) {
            int64_t jb = j0 + 16 * h;
            a[h] = onx_load16r(xr + jb, -jb, g->W - jb);
        }
        __m512 e01 = _mm512_permutex2var_ps(a[0], ev, a[1]), o01 = _mm512_permutex2var_ps(a[0], od, a[1]);
        __m512 e23 = _mm512_permutex2var_ps(a[2], ev, a[3]), o23 = _mm512_permutex2var_ps(a[2], od, a[3]);
        _mm512_storeu_ps(q + u0, _mm512_permutex2var_ps(e01, ev, e23));
        _mm512_storeu_ps(q + pstride + u0, _mm512_permutex2var_ps(o01, ev, o23));
        _mm512_storeu_ps(q + 2 * pstride + u0, _mm512_permutex2var_ps(e01, od, e23));
        _mm512_storeu_ps(q + 3 * pstride + u0, _mm512_permutex2var_ps(o01, od, o23));
    }
}

/* NAME_B: t[0..5 st] = B^T (d0 .. d5); NAME_A: o[0..3 st] = A^T (m0 .. m5); in vectors VT whose intrinsics start with
 * PF, under ATTR: one definition for the AVX-512 transforms (16 tiles a vector) and the AVX2 ones (8). */
#define BT_AT6(NAME_B, NAME_A, ATTR, VT, PF)                                                                           \
    ATTR void NAME_B(VT d0, VT d1, VT d2, VT d3, VT d4, VT d5, VT *t, int st) {                                        \
        const VT k2 = PF##set1_ps(2.0f), k4 = PF##set1_ps(4.0f), k5 = PF##set1_ps(5.0f);                               \
        VT s12 = PF##add_ps(d1, d2), d12 = PF##sub_ps(d1, d2), s34 = PF##add_ps(d3, d4);                               \
        VT d43 = PF##sub_ps(d4, d3), d31 = PF##sub_ps(d3, d1), d42 = PF##sub_ps(d4, d2);                               \
        t[0] = PF##fmadd_ps(k4, d0, PF##fnmadd_ps(k5, d2, d4));                                                        \
        t[st] = PF##fnmadd_ps(k4, s12, s34);                                                                           \
        t[2 * st] = PF##fmadd_ps(k4, d12, d43);                                                                        \
        t[3 * st] = PF##fmadd_ps(k2, d31, d42);                                                                        \
        t[4 * st] = PF##fnmadd_ps(k2, d31, d42);                                                                       \
        t[5 * st] = PF##fmadd_ps(k4, d1, PF##fnmadd_ps(k5, d3, d5));                                                   \
    }                                                                                                                  \
    ATTR void NAME_A(VT m0, VT m1, VT m2, VT m3, VT m4, VT m5, VT *o, int st) {                                        \
        const VT k2 = PF##set1_ps(2.0f), k4 = PF##set1_ps(4.0f), k8 = PF##set1_ps(8.0f);                               \
        VT s12 = PF##add_ps(m1, m2), d12 = PF##sub_ps(m1, m2), s34 = PF##add_ps(m3, m4), d34 = PF##sub_ps(m3, m4);     \
        o[0] = PF##add_ps(PF##add_ps(m0, s12), s34);                                                                   \
        o[st] = PF##fmadd_ps(k2, d34, d12);                                                                            \
        o[2 * st] = PF##fmadd_ps(k4, s34, s12);                                                                        \
        o[3 * st] = PF##add_ps(PF##fmadd_ps(k8, d34, d12), m5);                                                        \
    }
BT_AT6(bt6, at6, T512I, __m512, _mm512_)
BT_AT6(bt6_8, at6_8, T2I, __m256, _mm256_)

/* The first n lanes of v at p (sp: the AVX2 stores' spill rule, onx_store8; none here). */
T512I void store16(float *p, int64_t n, int sp, __m512 v) {
    (void)sp;
    onx_store16(p, n, v);
}

/* NAME: B^T d B for a vector of tiles (n of its lanes kept) whose six input rows start at q, pw floats apart, the
 * column phases ps apart: entry xi at vt + xi * ldv, stored by STORE(p, n, sp, v); in vectors VT whose intrinsics
 * start with PF, BT the width's B^T, under ATTR. One definition for in_transform and in_transform_avx2. */
#define IN_TILES6(NAME, ATTR, VT, PF, BT, STORE)                                                                       \
    ATTR void NAME(const float *q, int64_t pw, int64_t ps, float *vt, int64_t ldv, int64_t n, int sp) {                \
        VT t[36]; /* t[6i + j]: row i of d B */                                                                        \
        for (int i = 0; i < 6; i++) {                                                                                  \
            const float *qi = q + i * pw;                                                                              \
            BT(PF##loadu_ps(qi), PF##loadu_ps(qi + ps), PF##loadu_ps(qi + 2 * ps), PF##loadu_ps(qi + 3 * ps),          \
               PF##loadu_ps(qi + 1), PF##loadu_ps(qi + ps + 1), t + 6 * i, 1);                                         \
        }                                                                                                              \
        for (int j = 0; j < 6; j++) {                                                                                  \
            VT r[6];                                                                                                   \
            BT(t[j], t[6 + j], t[12 + j], t[18 + j], t[24 + j], t[30 + j], r, 1);                                      \
            for (int a = 0; a < 6; a++) STORE(vt + (6 * a + j) * ldv, n, sp, r[a]);                                    \
        }                                                                                                              \
    }
IN_TILES6(in_tiles6, T512I, __m512, _mm512_, bt6, store16)
IN_TILES6(in_tiles6_8, T2I, __m256, _mm256_, bt6_8, onx_store8)

/* V[xi * ldv + tile] = (B^T d B)[xi] for every tile of one channel (its phase planes ph). */
T512 static void in_transform(const onx_wgeo *g, const float *ph, float *v, int64_t ldv) {
    int64_t PW = ph_w(g), ps = ph_rows(g) * PW;
    for (int64_t ty = 0; ty < g->tyc; ty++)
        for (int64_t tx0 = 0; tx0 < g->txc; tx0 += 16)
            in_tiles6(ph + 4 * ty * PW + tx0, PW, ps, v + ty * g->txc + tx0, ldv, g->txc - tx0, 0);
}

/* y (OH x OW) of one output channel from its transformed tiles Y[xi * ldy + tile]: A^T M A, bias and activation,
 * a row of 16 tiles at a time (lane tx of the four column vectors gives output columns 4tx .. 4tx + 3). */
T512 static void out_transform(const onx_wgeo *g, const float *yt, int64_t ldy, float bias, onx_act act, float lo,
                               float hi, float *y) {
    const __m512 vb = _mm512_set1_ps(bias), vlo = _mm512_set1_ps(act == ONX_ACT_RELU ? 0.0f : lo),
                 vhi = _mm512_set1_ps(act == ONX_ACT_RELU ? __builtin_inff() : hi);
    const __m512i il = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i ih = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for (int64_t ty = 0; ty < g->tyc; ty++)
        for (int64_t tx0 = 0; tx0 < g->txc; tx0 += 16) {
            __mmask16 mk = onx_lanes16(0, g->txc - tx0);
            const float *t = yt + ty * g->txc + tx0;
            __m512 s[24]; /* s[6i + b]: row i of A^T M */
            for (int b = 0; b < 6; b++)
                at6(_mm512_maskz_loadu_ps(mk, t + b * ldy), _mm512_maskz_loadu_ps(mk, t + (6 + b) * ldy),
                    _mm512_maskz_loadu_ps(mk, t + (12 + b) * ldy), _mm512_maskz_loadu_ps(mk, t + (18 + b) * ldy),
                    _mm512_maskz_loadu_ps(mk, t + (24 + b) * ldy), _mm512_maskz_loadu_ps(mk, t + (30 + b) * ldy), s + b,
                    6);
            int64_t rem = g->OW - 4 * tx0;
            for (int i = 0; i < 4 && 4 * ty + i < g->OH; i++) {
                __m512 o[4];
                at6(s[6 * i], s[6 * i + 1], s[6 * i + 2], s[6 * i + 3], s[6 * i + 4], s[6 * i + 5], o, 1);
                for (int j = 0; j < 4; j++) {
                    o[j] = _mm512_add_ps(o[j], vb);
                    if (act != ONX_ACT_NONE) o[j] = _mm512_min_ps(_mm512_max_ps(o[j], vlo), vhi);
                }
                /* columns 4tx + j: interleave (o0, o2) and (o1, o3), then those two */
                __m512 l02 = _mm512_permutex2var_ps(o[0], il, o[2]), h02 = _mm512_permutex2var_ps(o[0], ih, o[2]);
                __m512 l13 = _mm512_permutex2var_ps(o[1], il, o[3]), h13 = _mm512_permutex2var_ps(o[1], ih, o[3]);
                __m512 r[4] = {_mm512_permutex2var_ps(l02, il, l13), _mm512_permutex2var_ps(l02, ih, l13),
                               _mm512_permutex2var_ps(h02, il, h13), _mm512_permutex2var_ps(h02, ih, h13)};
                float *yr = y + (4 * ty + i) * g->OW + 4 * tx0;
                for (int h = 0; h < 4 && 16 * h < rem; h++)
                    _mm512_mask_storeu_ps(yr + 16 * h, onx_lanes16(0, rem - 16 * h), r[h]);
            }
        }
}

/* The same transforms with AVX2: 8 tiles in the lanes. */

/* split_row with AVX2: 32 input columns at a time, 8 rows of 4 (the 4 phases) transposed to 4 rows of 8. */
T2 static void split_row_avx2(const onx_wgeo *g, const float *xr, float *q, int64_t pstride, int64_t umax) {
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7); /* rows 0 2 4 6 | 1 3 5 7 -> 0 .. 7 */
    for (int64_t u0 = 0; u0 < umax; u0 += 8) {
        int64_t j0 = 4 * u0 - g->pl; /* the input column of lane 0 */
        __m256 a[4];                 /* a[h]: rows 2h and 2h + 1 of 4 columns, one a 128-bit half */
        for (int h = 0; h < 4; h++) {
            int64_t jb = j0 + 8 * h;
            a[h] = onx_load8r(xr + jb, -jb, g->W - jb);
        }
        __m256 l01 = _mm256_unpacklo_ps(a[0], a[1]), h01 = _mm256_unpackhi_ps(a[0], a[1]);
        __m256 l23 = _mm256_unpacklo_ps(a[2], a[3]), h23 = _mm256_unpackhi_ps(a[2], a[3]);
        __m256 p[4] = {_mm256_shuffle_ps(l01, l23, 0x44), _mm256_shuffle_ps(l01, l23, 0xee),
                       _mm256_shuffle_ps(h01, h23, 0x44), _mm256_shuffle_ps(h01, h23, 0xee)};
        for (int k = 0; k < 4; k++) _mm256_storeu_ps(q + k * pstride + u0, _mm256_permutevar8x32_ps(p[k], order));
    }
}

/* in_transform with AVX2; a row of under 8 tiles spills into the next row's first tiles, written after it. */
T2 static void in_transform_avx2(const onx_wgeo *g, const float *ph, float *v, int64_t ldv) {
    int64_t PW = ph_w(g), ps = ph_rows(g) * PW, nt = g->txc < 8 ? g->txc : 8;
    for (int64_t ty = 0; ty < g->tyc; ty++)
        for (int64_t t0 = 0; t0 < g->txc; t0 += 8) {
            int64_t tx0 = onx_chunk8(g->txc, t0);
            int sp = g->txc < 8 && ty * g->txc + 8 <= g->T; /* one chunk a row; the spill stays in the sample */
            in_tiles6_8(ph + 4 * ty * PW + tx0, PW, ps, v + ty * g->txc + tx0, ldv, nt, sp);
        }
}

/* out_transform with AVX2: lane tx of the four column vectors gives output columns 4tx .. 4tx + 3, put in order by
 * a 4 x 8 transpose. */
T2 static void out_transform_avx2(const onx_wgeo *g, const float *yt, int64_t ldy, float bias, onx_act act, float lo,
                                  float hi, float *y) {
    const __m256 vb = _mm256_set1_ps(bias), vlo = _mm256_set1_ps(act == ONX_ACT_RELU ? 0.0f : lo),
                 vhi = _mm256_set1_ps(act == ONX_ACT_RELU ? __builtin_inff() : hi);
    int64_t nt = g->txc < 8 ? g->txc : 8, plane = g->OH * g->OW;
    for (int64_t ty = 0; ty < g->tyc; ty++)
        for (int64_t t0 = 0; t0 < g->txc; t0 += 8) {
            int64_t tx0 = onx_chunk8(g->txc, t0), rem = g->OW - 4 * tx0;
            const float *t = yt + ty * g->txc + tx0;
            __m256 s[24]; /* s[6i + b]: row i of A^T M */
            for (int b = 0; b < 6; b++)
                at6_8(onx_load8(t + b * ldy, nt), onx_load8(t + (6 + b) * ldy, nt), onx_load8(t + (12 + b) * ldy, nt),
                      onx_load8(t + (18 + b) * ldy, nt), onx_load8(t + (24 + b) * ldy, nt),
                      onx_load8(t + (30 + b) * ldy, nt), s + b, 6);
            for (int i = 0; i < 4 && 4 * ty + i < g->OH; i++) {
                __m256 o[4];
                at6_8(s[6 * i], s[6 * i + 1], s[6 * i + 2], s[6 * i + 3], s[6 * i + 4], s[6 * i + 5], o, 1);
                for (int j = 0; j < 4; j++) {
                    o[j] = _mm256_add_ps(o[j], vb);
                    if (act != ONX_ACT_NONE) o[j] = _mm256_min_ps(_mm256_max_ps(o[j], vlo), vhi);
                }
                __m256 l01 = _mm256_unpacklo_ps(o[0], o[1]), h01 = _mm256_unpackhi_ps(o[0], o[1]);
                __m256 l23 = _mm256_unpacklo_ps(o[2], o[3]), h23 = _mm256_unpackhi_ps(o[2], o[3]);
                __m256 a04 = _mm256_shuffle_ps(l01, l23, 0x44), a15 = _mm256_shuffle_ps(l01, l23, 0xee);
                __m256 a26 = _mm256_shuffle_ps(h01, h23, 0x44), a37 = _mm256_shuffle_ps(h01, h23, 0xee);
                __m256 r[4] = {_mm256_permute2f128_ps(a04, a15, 0x20), _mm256_permute2f128_ps(a26, a37, 0x20),
                               _mm256_permute2f128_ps(a04, a15, 0x31), _mm256_permute2f128_ps(a26, a37, 0x31)};
                int64_t at = (4 * ty + i) * g->OW + 4 * tx0;
                /* one chunk a row (with more, a row's last chunk comes after the next row's first): a spill lands
                 * in the next row, written after this one, inside the plane */
                for (int h = 0; h < 4 && 8 * h < rem; h++)
                    onx_store8(y + at + 8 * h, rem - 8 * h, g->txc < 8 && at + 8 * h + 8 <= plane, r[h]);
            }
        }
}

/* The transforms of the CPU's instruction set. */
typedef struct {
    void (*split)(const onx_wgeo *, const float *, float *, int64_t, int64_t);
    void (*in)(const onx_wgeo *, const float *, float *, int64_t);
    void (*out)(const onx_wgeo *, const float *, int64_t, float, onx_act, float, float, float *);
} wino4_fns;

static wino4_fns fns(void) {
    if (onx_sgemm_best() == ONX_K_AVX512) return (wino4_fns){split_row, in_transform, out_transform};
    return (wino4_fns){split_row_avx2, in_transform_avx2, out_transform_avx2};
}

static void wino4_in(const onx_wgeo *g, int64_t c, const float *x, int64_t ns, float *v, float *ph) {
    int64_t HW = g->H * g->W, cols = ns * g->T, PW = ph_w(g), PH = ph_rows(g);
    int64_t umax = (g->W + g->pl) / 4 + 1;
    umax = umax > g->txc + 1 ? g->txc + 1 : umax;
    wino4_fns f = fns();
    for (int64_t s = 0; s < ns; s++)
        for (int64_t ch = 0; ch < c; ch++) {
            const float *xc = x + (s * c + ch) * HW;
            if (s + 1 < ns || ch + 1 < c) onx_prefetch_plane(xc + HW, HW);
            for (int64_t r = 0; r < PH; r++) {
                int64_t iy = r - g->pt;
                if (iy >= 0 && iy < g->H) f.split(g, xc + iy * g->W, ph + r * PW, PH * PW, umax);
            }
            f.in(g, ph, v + ch * cols + s * g->T, c * cols);
        }
}

void onx_wino4(onx_kern kn, const onx_win *w, int64_t c, int64_t m, const float *pk, const float *x, int64_t n,
               const float *bias, const float *res, onx_act act, float lo, float hi, float *y, float *work) {
    onx_wgeo g = geo_of(w);
    int64_t nb = samples_per_pass(&g, n), P = g.OH * g.OW;
    float *ph = work; /* the same layout for every pass: the planes' padding is zeroed once */
    memset(ph, 0, sizeof(float) * (size_t)ph_floats(&g));
    for (int64_t s0 = 0; s0 < n; s0 += nb) {
        int64_t ns = n - s0 < nb ? n - s0 : nb, cols = ns * g.T;
        float *v = ph + ph_floats(&g), *yt = v + 36 * c * nb * g.T, *sw = yt + 36 * m * nb * g.T;
        wino4_in(&g, c, x + s0 * c * g.H * g.W, ns, v, ph);
        onx_wino_gemms(kn, 36, m, c, cols, pk, v, yt, sw);
        wino4_fns f = fns();
        for (int64_t s = 0; s < ns; s++)
            for (int64_t i = 0; i < m; i++) {
                int64_t at = ((s0 + s) * m + i) * P;
                f.out(&g, yt + i * cols + s * g.T, m * cols, bias ? bias[i] : 0.0f, res ? ONX_ACT_NONE : act, lo, hi,
                      y + at);
                if (res) onx_add_act(y + at, res + at, (size_t)P, act, lo, hi); /* the plane is in L1 */
            }
    }
}
#else
void onx_wino4(onx_kern kn, const onx_win *w, int64_t c, int64_t m, const float *pk, const float *x, int64_t n,
               const float *bias, const float *res, onx_act act, float lo, float hi, float *y, float *work) {
    /* onx_wino4_ok is 0 off x86-64: never called */
    (void)kn, (void)w, (void)c, (void)m, (void)pk, (void)x, (void)n, (void)bias, (void)res, (void)act, (void)lo,
        (void)hi, (void)y, (void)work;
}
#endif

const onx_wino_impl onx_wino_f4 = {onx_wino4_pack_len, onx_wino4_pack, onx_wino4_work, onx_wino4};
