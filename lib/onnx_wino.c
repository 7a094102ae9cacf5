/* onnx_wino.c - 3x3 stride-1 convolutions by Winograd F(2x2, 3x3) on the packed-weight SGEMM. */
#include "onnx_wino.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

/* Lavin and Gray's F(2x2, 3x3): a 2x2 output tile is A^T [(G g G^T) . (B^T d B)] A for the 4x4
 * input tile d over it, so the 16 entries of the transformed tiles meet the 16 of the
 * transformed weights in 16 GEMMs of m x c by c x tiles: 2.25 times fewer multiply-adds than
 * the direct convolution, and no column of padding computed. The input and output transforms
 * only add and subtract, the weights' only halve (done in double at load): the result stays
 * within a few float roundings of the direct sum. */

#define WINO_COLS 256 /* tiles per GEMM when several samples are at hand */
/* Fewer tiles per sample (a 7x7 output has 16) leave the GEMMs too narrow for the 16 transformed
 * weight matrices, 1.8 times the direct ones, to pay: they stream from memory per sample. On AVX-512
 * onnx_convpx.c takes those outputs at the FMA peak, and the 7x7 ones of 4 or more samples a run come back here
 * (onx_wino_p7_ok, onnx_k_conv.c). With AVX2, whose 6x16 tiles leave a 7x7 output's 49
 * columns a 1-column tail and its 16 tiles none, F(2x2) pays from 16 (resnet18's 7x7 stage at batch 1
 * 3.1 -> 2.4 ms a layer, at batch 8 3.0 -> 2.0, with the kernels capped at AVX2 on a Zen 5 core). */
#define WINO_MIN_TILES 32
#define WINO_MIN_TILES_AVX2 16

static onx_wgeo geo_of(const onx_win *w) {
    return onx_wino_geo(w, 2);
}

/* The transforms' instruction set: AVX-512 with its 256-bit forms (VL), which take rows of at most 8 tiles, or
 * AVX2 with FMA (8 tiles in the lanes); none elsewhere, where the convolutions stay im2col GEMMs. */
typedef enum { WINO_NONE, WINO_AVX2, WINO_AVX512 } wino_isa;

static wino_isa wino_cpu(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    onx_kern kn = onx_sgemm_best();
    if (kn == ONX_K_AVX512 && __builtin_cpu_supports("avx512vl")) return WINO_AVX512;
    return kn == ONX_K_AVX2 ? WINO_AVX2 : WINO_NONE;
#else
    return WINO_NONE;
#endif
}

/* A convolution onx_wino computes: a 3x3 kernel in 2-D, stride and dilation 1, one group of 8+ channels in and out. */
static int f2_conv(const onx_win *w, int64_t grp, int64_t c, int64_t m) {
    return w->nsp == 2 && grp == 1 && c >= 8 && m >= 8 && w->k[0] == 3 && w->k[1] == 3 && w->s[0] == 1 &&
           w->s[1] == 1 && w->d[0] == 1 && w->d[1] == 1;
}

int onx_wino_ok(const onx_win *w, int64_t grp, int64_t c, int64_t m) {
    wino_isa isa = wino_cpu();
    return isa != WINO_NONE && f2_conv(w, grp, c, m) && w->out[1] <= ONX_WINO_MAX_W &&
           (w->out[0] + 1) / 2 * ((w->out[1] + 1) / 2) >= (isa == WINO_AVX2 ? WINO_MIN_TILES_AVX2 : WINO_MIN_TILES);
}

size_t onx_wino_pack_len(onx_kern kn, int64_t m, int64_t c) {
    return 16 * onx_pack_a_len(kn, m, c);
}

/* The 4 combinations of 3 values that G applies: v0, (v0+v1+v2)/2, (v0-v1+v2)/2, v2. */
static double gcomb(int a, double v0, double v1, double v2) {
    return a == 0 ? v0 : a == 1 ? 0.5 * (v0 + v1 + v2) : a == 2 ? 0.5 * (v0 - v1 + v2) : v2;
}

void onx_wino_pack_with(onx_kern kn, const float *wt, int64_t m, int64_t c, int alpha, onx_wino_g g, float *tmp,
                        float *out) {
    size_t plen = onx_pack_a_len(kn, m, c);
    for (int xi = 0; xi < alpha * alpha; xi++) {
        int a = xi / alpha, b = xi % alpha;
        for (int64_t i = 0; i < m; i++)
            for (int64_t ch = 0; ch < c; ch++) {
                const float *k = wt + (i * c + ch) * 9;
                double r[3]; /* row a of G k */
                for (int j = 0; j < 3; j++) r[j] = g(a, k[j], k[3 + j], k[6 + j]);
                tmp[i * c + ch] = (float)g(b, r[0], r[1], r[2]);
            }
        onx_pack_a(kn, tmp, m, c, out + (size_t)xi * plen);
    }
}

void onx_wino_pack(onx_kern kn, const float *wt, int64_t m, int64_t c, float *tmp, float *out) {
    onx_wino_pack_with(kn, wt, m, c, 4, gcomb, tmp, out);
}

void onx_wino_gemms(onx_kern kn, int nxi, int64_t m, int64_t c, int64_t cols, const float *pk, const float *v,
                    float *yt, float *sw) {
    size_t plen = onx_pack_a_len(kn, m, c);
    for (int xi = 0; xi < nxi; xi++) {
        onx_bsrc src = {v + (size_t)xi * (size_t)(c * cols), cols};
        onx_cmap cm = {yt + (size_t)xi * (size_t)(m * cols), cols, cols, 0, NULL};
        onx_sgemm(kn, m, cols, c, 1, NULL, pk + (size_t)xi * plen, onx_bblock_strided, &src, &cm, NULL, ONX_ACT_NONE,
                  0.0f, 0.0f, sw);
    }
}

void onx_prefetch_plane(const float *p, int64_t n) {
    for (int64_t i = 0; i < n; i += 16) __builtin_prefetch(p + i, 0, 3);
}

int64_t onx_wino_per_pass(int64_t cols, int64_t T, int64_t n) {
    int64_t nb = cols / T;
    return nb < 1 ? 1 : nb > n ? n : nb;
}

onx_wgeo onx_wino_geo(const onx_win *w, int tile) {
    onx_wgeo g = {w->in[0], w->in[1], w->out[0], w->out[1], w->pb[0], w->pb[1], 0, 0, 0};
    g.tyc = (g.OH + tile - 1) / tile, g.txc = (g.OW + tile - 1) / tile, g.T = g.tyc * g.txc;
    return g;
}

int64_t onx_wino_plane_w(int64_t txc) {
    return (txc + 15) / 16 * 16 + 16;
}

static int64_t samples_per_pass(const onx_wgeo *g, int64_t n) {
    return onx_wino_per_pass(WINO_COLS, g->T, n);
}

/* Per channel, the padded input split into even and odd columns: plane rows of eo_w floats,
 * row r of the even plane holding padded columns 0, 2, 4, ... (input column 2u - pl at u). A
 * row of tiles then reads its four input columns per tile as whole vectors, 16 tiles in the
 * lanes at a time. */
static int64_t eo_w(const onx_wgeo *g) {
    return onx_wino_plane_w(g->txc);
}

static int64_t eo_floats(const onx_wgeo *g) {
    return 2 * (2 * g->tyc + 2) * eo_w(g);
}

size_t onx_wino_work(const onx_win *w, int64_t c, int64_t m, int64_t n) {
    onx_wgeo g = geo_of(w);
    int64_t cols = samples_per_pass(&g, n) * g.T;
    return (size_t)(16 * (c + m) * cols + eo_floats(&g)) + onx_sgemm_work();
}

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "onnx_simd.h"
#define T512 __attribute__((target("avx512f")))
#define T256 __attribute__((target("avx512f,avx512vl")))
#define T2 __attribute__((target("avx2,fma")))
/* Inlined into AVX2 and AVX-512 code alike (AVX-512F implies AVX2, not FMA). */
#define T2I static inline __attribute__((always_inline, target("avx2")))

/* The arithmetic of the transforms for the tiles in the lanes of a vector: 8 in 256-bit ones, shared by the
 * AVX-512VL forms (rows of at most 8 tiles) and the AVX2 ones, which differ in how they load and store; 16 in
 * 512-bit ones for the 7x7 planes (in_plane7, out_plane7). in_transform and out_transform keep the same sums
 * written out between their loads: through these (all 16 loads first) the shipped CNN's 28x28 layers measured up
 * to 10 % slower. */
#define T512I static inline __attribute__((always_inline, target("avx512f")))

/* NAME_R: d B for one row of the tiles' 4x4 input, its columns d0 .. d3. NAME_B: w[xi] = (B^T d B)[xi] from those
 * rows c[r]. NAME_A: output rows i = 0, 1 from the tiles' transformed values a[xi]: A^T M A, bias and activation;
 * lane t of ev[i] and od[i] holds output columns 2t and 2t + 1 of its tile. */
#define BT_AT(NAME_R, NAME_B, NAME_A, ATTR, VT, PF)                                                                    \
    ATTR void NAME_R(VT d0, VT d1, VT d2, VT d3, VT c[4]) {                                                            \
        c[0] = PF##sub_ps(d0, d2), c[1] = PF##add_ps(d1, d2), c[2] = PF##sub_ps(d2, d1), c[3] = PF##sub_ps(d1, d3);    \
    }                                                                                                                  \
    ATTR void NAME_B(VT c[4][4], VT w[16]) {                                                                           \
        for (int b = 0; b < 4; b++) {                                                                                  \
            w[0 + b] = PF##sub_ps(c[0][b], c[2][b]), w[4 + b] = PF##add_ps(c[1][b], c[2][b]);                          \
            w[8 + b] = PF##sub_ps(c[2][b], c[1][b]), w[12 + b] = PF##sub_ps(c[1][b], c[3][b]);                         \
        }                                                                                                              \
    }                                                                                                                  \
    ATTR void NAME_A(const VT a[16], float bias, onx_act act, float lo, float hi, VT ev[2], VT od[2]) {                \
        VT vb = PF##set1_ps(bias), vlo = PF##set1_ps(act == ONX_ACT_RELU ? 0.0f : lo),                                 \
           vhi = PF##set1_ps(act == ONX_ACT_RELU ? INFINITY : hi);                                                     \
        VT s[2][4];                                                                                                    \
        for (int j = 0; j < 4; j++) { /* A^T M */                                                                      \
            s[0][j] = PF##add_ps(PF##add_ps(a[0 + j], a[4 + j]), a[8 + j]);                                            \
            s[1][j] = PF##sub_ps(PF##sub_ps(a[4 + j], a[8 + j]), a[12 + j]);                                           \
        }                                                                                                              \
        for (int i = 0; i < 2; i++) { /* (A^T M) A, then bias and activation */                                        \
            ev[i] = PF##add_ps(PF##add_ps(PF##add_ps(s[i][0], s[i][1]), s[i][2]), vb);                                 \
            od[i] = PF##add_ps(PF##sub_ps(PF##sub_ps(s[i][1], s[i][2]), s[i][3]), vb);                                 \
            if (act != ONX_ACT_NONE) {                                                                                 \
                ev[i] = PF##min_ps(PF##max_ps(ev[i], vlo), vhi);                                                       \
                od[i] = PF##min_ps(PF##max_ps(od[i], vlo), vhi);                                                       \
            }                                                                                                          \
        }                                                                                                              \
    }
BT_AT(db_row8, bt_tiles8, out_tiles8, T2I, __m256, _mm256_)
BT_AT(db_row16, bt_tiles16, out_tiles16, T512I, __m512, _mm512_)

/* w[xi] = (B^T d B)[xi] for the 8 tiles from tx0 of tile row ty (the even/odd planes e and o, rows EW apart). */
T2I void in_tiles8(const float *e, const float *o, int64_t EW, int64_t ty, int64_t tx0, __m256 w[16]) {
    __m256 c[4][4];
    for (int r = 0; r < 4; r++) { /* padded row 2ty + r: tile columns 2tx .. 2tx + 3 */
        const float *er = e + (2 * ty + r) * EW + tx0, *orr = o + (2 * ty + r) * EW + tx0;
        db_row8(_mm256_loadu_ps(er), _mm256_loadu_ps(orr), _mm256_loadu_ps(er + 1), _mm256_loadu_ps(orr + 1), c[r]);
    }
    bt_tiles8(c, w);
}

/* w[4a + b] = (A dY A^T)[a][b] of 8 tiles from d[i][0] and d[i][1], the even and odd columns of their output rows
 * i = 0, 1. */
T2I void adj_tiles8(__m256 d[2][2], __m256 w[16]) {
    __m256 u[4][2];
    for (int j = 0; j < 2; j++) { /* A dY: rows d0, d0 + d1, d0 - d1, -d1 */
        u[0][j] = d[0][j], u[1][j] = _mm256_add_ps(d[0][j], d[1][j]);
        u[2][j] = _mm256_sub_ps(d[0][j], d[1][j]), u[3][j] = _mm256_sub_ps(_mm256_setzero_ps(), d[1][j]);
    }
    for (int a = 0; a < 4; a++) { /* (A dY) A^T */
        w[4 * a + 0] = u[a][0], w[4 * a + 1] = _mm256_add_ps(u[a][0], u[a][1]);
        w[4 * a + 2] = _mm256_sub_ps(u[a][0], u[a][1]), w[4 * a + 3] = _mm256_sub_ps(_mm256_setzero_ps(), u[a][1]);
    }
}
#else
#define T512
#define T256
#endif

/* The rows of the even and odd planes of one channel: row(g, xr, e, o, umax) fills columns u < umax (at least) of
 * the even and odd rows e and o from input row xr. Every channel fills the same positions (the rest stay as onx_wino
 * zeroed them once); u past umax reads no input column. */
typedef void (*split_row_fn)(const onx_wgeo *g, const float *xr, float *e, float *o, int64_t umax);

static void split_rows(const onx_wgeo *g, const float *x, float *eo, split_row_fn row) {
    int64_t PH = 2 * g->tyc + 2, EW = eo_w(g), umax = (g->W + g->pl) / 2 + 1;
    umax = umax > g->txc + 1 ? g->txc + 1 : umax;
    for (int64_t r = 0; r < PH; r++) {
        int64_t iy = r - g->pt;
        if (iy >= 0 && iy < g->H) row(g, x + iy * g->W, eo + r * EW, eo + (PH + r) * EW, umax);
    }
}

/* 32 input columns at a time, split into 16 even and 16 odd, where a column outside the input reads as the zero it
 * replaces. */
T512 static void split_row512(const onx_wgeo *g, const float *xr, float *e, float *o, int64_t umax) {
#if defined(__x86_64__) && defined(__GNUC__)
    const __m512i ev_idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od_idx = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int64_t u0 = 0; u0 < umax; u0 += 16) {
        int64_t j0 = 2 * u0 - g->pl; /* the input column of lane 0 */
        /* lanes t with 0 <= j0 + t < W, then 0 <= j0 + 16 + t < W */
        __m512 a = onx_load16r(xr + j0, -j0, g->W - j0), b = onx_load16r(xr + j0 + 16, -j0 - 16, g->W - j0 - 16);
        _mm512_storeu_ps(e + u0, _mm512_permutex2var_ps(a, ev_idx, b));
        _mm512_storeu_ps(o + u0, _mm512_permutex2var_ps(a, od_idx, b));
    }
#else
    (void)g, (void)xr, (void)e, (void)o, (void)umax;
#endif
}

/* V[xi * ldv + tile] = (B^T d B)[xi] for every tile of one channel (its even/odd planes eo). */
T512 static void in_transform(const onx_wgeo *g, const float *eo, float *v, int64_t ldv) {
#if defined(__x86_64__) && defined(__GNUC__)
    int64_t EW = eo_w(g);
    const float *e = eo, *o = eo + (2 * g->tyc + 2) * EW;
    for (int64_t ty = 0; ty < g->tyc; ty++)
        for (int64_t tx0 = 0; tx0 < g->txc; tx0 += 16) {
            int64_t nt = g->txc - tx0 < 16 ? g->txc - tx0 : 16;
            __mmask16 mk = (__mmask16)((1u << nt) - 1);
            __m512 c[4][4];
            for (int r = 0; r < 4; r++) { /* d B for padded row 2ty + r: tile columns 2tx .. 2tx + 3 */
                const float *er = e + (2 * ty + r) * EW + tx0, *orr = o + (2 * ty + r) * EW + tx0;
                __m512 e0 = _mm512_loadu_ps(er), e1 = _mm512_loadu_ps(er + 1), o0 = _mm512_loadu_ps(orr),
                       o1 = _mm512_loadu_ps(orr + 1);
                c[r][0] = _mm512_sub_ps(e0, e1), c[r][1] = _mm512_add_ps(o0, e1);
                c[r][2] = _mm512_sub_ps(e1, o0), c[r][3] = _mm512_sub_ps(o0, o1);
            }
            float *vt = v + ty * g->txc + tx0;
            for (int b = 0; b < 4; b++) { /* B^T (d B) */
                _mm512_mask_storeu_ps(vt + (0 + b) * ldv, mk, _mm512_sub_ps(c[0][b], c[2][b]));
                _mm512_mask_storeu_ps(vt + (4 + b) * ldv, mk, _mm512_add_ps(c[1][b], c[2][b]));
                _mm512_mask_storeu_ps(vt + (8 + b) * ldv, mk, _mm512_sub_ps(c[2][b], c[1][b]));
                _mm512_mask_storeu_ps(vt + (12 + b) * ldv, mk, _mm512_sub_ps(c[1][b], c[3][b]));
            }
        }
#else
    (void)g, (void)eo, (void)v, (void)ldv;
#endif
}

/* in_transform for rows of at most 8 tiles (14x14 outputs have 7) in 256-bit vectors: half the work of the
 * 512-bit ones, mostly empty there, where the core splits those in two (AMD Zen 4), and no more elsewhere. */
T256 static void in_transform8(const onx_wgeo *g, const float *eo, float *v, int64_t ldv) {
#if defined(__x86_64__) && defined(__GNUC__)
    int64_t EW = eo_w(g);
    const float *e = eo, *o = eo + (2 * g->tyc + 2) * EW;
    __mmask8 mk = (__mmask8)((1u << g->txc) - 1);
    for (int64_t ty = 0; ty < g->tyc; ty++) {
        __m256 w[16];
        in_tiles8(e, o, EW, ty, 0, w);
        float *vt = v + ty * g->txc;
        for (int xi = 0; xi < 16; xi++) _mm256_mask_storeu_ps(vt + xi * ldv, mk, w[xi]);
    }
#else
    (void)g, (void)eo, (void)v, (void)ldv;
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
/* For the 16 tiles of a row from tx0: mk, the tiles there are; m0 and m1, the output columns there are among the
 * first and the second 16 of their 32. Returns how many the second 16 hold. */
static int tile_masks(const onx_wgeo *g, int64_t tx0, __mmask16 *mk, __mmask16 *m0, __mmask16 *m1) {
    int64_t nt = g->txc - tx0 < 16 ? g->txc - tx0 : 16, rem = g->OW - 2 * tx0;
    int64_t w0 = rem < 16 ? rem : 16, w1 = rem - w0 < 16 ? rem - w0 : 16;
    *mk = (__mmask16)((1u << nt) - 1), *m0 = (__mmask16)((1u << w0) - 1), *m1 = (__mmask16)((1u << w1) - 1);
    return (int)w1;
}

#endif

/* y (OH x OW) of one output channel from its transformed tiles Y[xi * ldy + tile]: A^T M A,
 * bias and activation, a row of tiles at a time (lane tx gives output columns 2tx, 2tx + 1). */
T512 static void out_transform(const onx_wgeo *g, const float *yt, int64_t ldy, float bias, onx_act act, float lo,
                               float hi, float *y) {
#if defined(__x86_64__) && defined(__GNUC__)
    __m512 vb = _mm512_set1_ps(bias), vlo = _mm512_set1_ps(act == ONX_ACT_RELU ? 0.0f : lo),
           vhi = _mm512_set1_ps(act == ONX_ACT_RELU ? INFINITY : hi);
    const __m512i lo_idx = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i hi_idx = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    for (int64_t ty = 0; ty < g->tyc; ty++)
        for (int64_t tx0 = 0; tx0 < g->txc; tx0 += 16) {
            __mmask16 mk, m0, m1;
            int w1 = tile_masks(g, tx0, &mk, &m0, &m1);
            const float *t = yt + ty * g->txc + tx0;
            __m512 s[2][4];
            for (int j = 0; j < 4; j++) { /* A^T M */
                __m512 a0 = _mm512_maskz_loadu_ps(mk, t + (0 + j) * ldy),
                       a1 = _mm512_maskz_loadu_ps(mk, t + (4 + j) * ldy),
                       a2 = _mm512_maskz_loadu_ps(mk, t + (8 + j) * ldy),
                       a3 = _mm512_maskz_loadu_ps(mk, t + (12 + j) * ldy);
                s[0][j] = _mm512_add_ps(_mm512_add_ps(a0, a1), a2);
                s[1][j] = _mm512_sub_ps(_mm512_sub_ps(a1, a2), a3);
            }
            for (int i = 0; i < 2 && 2 * ty + i < g->OH; i++) { /* (A^T M) A, then bias and activation */
                __m512 ev = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s[i][0], s[i][1]), s[i][2]), vb);
                __m512 od = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s[i][1], s[i][2]), s[i][3]), vb);
                if (act != ONX_ACT_NONE) {
                    ev = _mm512_min_ps(_mm512_max_ps(ev, vlo), vhi);
                    od = _mm512_min_ps(_mm512_max_ps(od, vlo), vhi);
                }
                float *yr = y + (2 * ty + i) * g->OW + 2 * tx0;
                _mm512_mask_storeu_ps(yr, m0, _mm512_permutex2var_ps(ev, lo_idx, od));
                if (w1 > 0) _mm512_mask_storeu_ps(yr + 16, m1, _mm512_permutex2var_ps(ev, hi_idx, od));
            }
        }
#else
    (void)g, (void)yt, (void)ldy, (void)bias, (void)act, (void)lo, (void)hi, (void)y;
#endif
}

/* The adjoint of out_transform, for the weight gradient: Z[xi * ldz + tile] = (A dY A^T)[xi] for the 2x2 tiles
 * of one plane dy (OH x OW; a last half tile reads zeros), 16 tiles in the lanes at a time. */
T512 static void out_adjoint(const onx_wgeo *g, const float *dy, float *z, int64_t ldz) {
#if defined(__x86_64__) && defined(__GNUC__)
    const __m512i ev_idx = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i od_idx = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
    for (int64_t ty = 0; ty < g->tyc; ty++)
        for (int64_t tx0 = 0; tx0 < g->txc; tx0 += 16) {
            __mmask16 mk, m0, m1;
            tile_masks(g, tx0, &mk, &m0, &m1);
            __m512 d[2][2];
            for (int i = 0; i < 2; i++) {
                if (2 * ty + i >= g->OH) {
                    d[i][0] = d[i][1] = _mm512_setzero_ps();
                    continue;
                }
                const float *r = dy + (2 * ty + i) * g->OW + 2 * tx0;
                __m512 a = _mm512_maskz_loadu_ps(m0, r), b = _mm512_maskz_loadu_ps(m1, r + 16);
                d[i][0] = _mm512_permutex2var_ps(a, ev_idx, b), d[i][1] = _mm512_permutex2var_ps(a, od_idx, b);
            }
            __m512 u[4][2];
            for (int j = 0; j < 2; j++) { /* A dY: rows d0, d0 + d1, d0 - d1, -d1 */
                u[0][j] = d[0][j], u[1][j] = _mm512_add_ps(d[0][j], d[1][j]);
                u[2][j] = _mm512_sub_ps(d[0][j], d[1][j]), u[3][j] = _mm512_sub_ps(_mm512_setzero_ps(), d[1][j]);
            }
            float *zt = z + ty * g->txc + tx0;
            for (int a = 0; a < 4; a++) { /* (A dY) A^T */
                _mm512_mask_storeu_ps(zt + (4 * a + 0) * ldz, mk, u[a][0]);
                _mm512_mask_storeu_ps(zt + (4 * a + 1) * ldz, mk, _mm512_add_ps(u[a][0], u[a][1]));
                _mm512_mask_storeu_ps(zt + (4 * a + 2) * ldz, mk, _mm512_sub_ps(u[a][0], u[a][1]));
                _mm512_mask_storeu_ps(zt + (4 * a + 3) * ldz, mk, _mm512_sub_ps(_mm512_setzero_ps(), u[a][1]));
            }
        }
#else
    (void)g, (void)dy, (void)z, (void)ldz;
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
/* The two halves of a 512-bit vector as 256-bit ones, and back. */
T256 static __m256 hi256(__m512 a) {
    return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1));
}

T256 static __m512 join256(__m256 lo, __m256 hi) {
    return _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)), _mm256_castps_pd(hi), 1));
}
#endif

/* out_transform for rows of at most 8 tiles (as in_transform8): an output row, 16 columns at most, is one vector,
 * its even and odd columns interleaved from the two halves. */
T256 static void out_transform8(const onx_wgeo *g, const float *yt, int64_t ldy, float bias, onx_act act, float lo,
                                float hi, float *y) {
#if defined(__x86_64__) && defined(__GNUC__)
    const __m512i il = _mm512_set_epi32(15, 7, 14, 6, 13, 5, 12, 4, 11, 3, 10, 2, 9, 1, 8, 0);
    __mmask8 mk = (__mmask8)((1u << g->txc) - 1);
    __mmask16 mo = (__mmask16)((1u << g->OW) - 1);
    for (int64_t ty = 0; ty < g->tyc; ty++) {
        const float *t = yt + ty * g->txc;
        __m256 a[16], ev[2], od[2];
        for (int xi = 0; xi < 16; xi++) a[xi] = _mm256_maskz_loadu_ps(mk, t + xi * ldy);
        out_tiles8(a, bias, act, lo, hi, ev, od);
        for (int i = 0; i < 2 && 2 * ty + i < g->OH; i++)
            _mm512_mask_storeu_ps(y + (2 * ty + i) * g->OW, mo, _mm512_permutexvar_ps(il, join256(ev[i], od[i])));
    }
#else
    (void)g, (void)yt, (void)ldy, (void)bias, (void)act, (void)lo, (void)hi, (void)y;
#endif
}

/* out_adjoint for rows of at most 8 tiles (as in_transform8). */
T256 static void out_adjoint8(const onx_wgeo *g, const float *dy, float *z, int64_t ldz) {
#if defined(__x86_64__) && defined(__GNUC__)
    const __m512i de = _mm512_set_epi32(15, 13, 11, 9, 7, 5, 3, 1, 14, 12, 10, 8, 6, 4, 2, 0); /* evens, odds */
    __mmask8 mk = (__mmask8)((1u << g->txc) - 1);
    __mmask16 mo = (__mmask16)((1u << g->OW) - 1);
    for (int64_t ty = 0; ty < g->tyc; ty++) {
        __m256 d[2][2];
        for (int i = 0; i < 2; i++) {
            if (2 * ty + i >= g->OH) {
                d[i][0] = d[i][1] = _mm256_setzero_ps();
                continue;
            }
            __m512 a = _mm512_permutexvar_ps(de, _mm512_maskz_loadu_ps(mo, dy + (2 * ty + i) * g->OW));
            d[i][0] = _mm512_castps512_ps256(a), d[i][1] = hi256(a);
        }
        __m256 w[16];
        adj_tiles8(d, w);
        float *zt = z + ty * g->txc;
        for (int xi = 0; xi < 16; xi++) _mm256_mask_storeu_ps(zt + xi * ldz, mk, w[xi]);
    }
#else
    (void)g, (void)dy, (void)z, (void)ldz;
#endif
}

#if defined(__x86_64__) && defined(__GNUC__)
/* split_row512 with AVX2: 16 input columns at a time (masked loads read the zeros of the padding), split into 8
 * even and 8 odd by shuffles within 128-bit halves, then 64-bit lanes put in order. */
T2 static void split_row_avx2(const onx_wgeo *g, const float *xr, float *e, float *o, int64_t umax) {
    for (int64_t u0 = 0; u0 < umax; u0 += 8) {
        int64_t j0 = 2 * u0 - g->pl; /* the input column of lane 0 */
        __m256 a = onx_load8r(xr + j0, -j0, g->W - j0), b = onx_load8r(xr + j0 + 8, -j0 - 8, g->W - j0 - 8);
        _mm256_storeu_ps(
            e + u0, _mm256_castpd_ps(_mm256_permute4x64_pd(
                        _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), _MM_SHUFFLE(3, 1, 2, 0))));
        _mm256_storeu_ps(
            o + u0, _mm256_castpd_ps(_mm256_permute4x64_pd(
                        _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), _MM_SHUFFLE(3, 1, 2, 0))));
    }
}

/* in_transform with AVX2: 8 tiles in the lanes; a row of under 8 spills into the next row's first tiles, which are
 * written after it. */
T2 static void in_transform_avx2(const onx_wgeo *g, const float *eo, float *v, int64_t ldv) {
    int64_t EW = eo_w(g);
    const float *e = eo, *o = eo + (2 * g->tyc + 2) * EW;
    int64_t nt = g->txc < 8 ? g->txc : 8;
    for (int64_t ty = 0; ty < g->tyc; ty++)
        for (int64_t t0 = 0; t0 < g->txc; t0 += 8) {
            int64_t tx0 = onx_chunk8(g->txc, t0);
            int sp = g->txc < 8 && ty * g->txc + 8 <= g->T; /* one chunk a row; the spill stays in the sample */
            __m256 w[16];
            in_tiles8(e, o, EW, ty, tx0, w);
            float *vt = v + ty * g->txc + tx0;
            for (int xi = 0; xi < 16; xi++) onx_store8(vt + xi * ldv, nt, sp, w[xi]);
        }
}

/* out_transform with AVX2: lane tx of ev and od gives output columns 2tx and 2tx + 1, interleaved by unpacking
 * within 128-bit halves and swapping halves. */
T2 static void out_transform_avx2(const onx_wgeo *g, const float *yt, int64_t ldy, float bias, onx_act act, float lo,
                                  float hi, float *y) {
    int64_t nt = g->txc < 8 ? g->txc : 8;
    for (int64_t ty = 0; ty < g->tyc; ty++)
        for (int64_t t0 = 0; t0 < g->txc; t0 += 8) {
            int64_t tx0 = onx_chunk8(g->txc, t0), rem = g->OW - 2 * tx0, w0 = rem < 8 ? rem : 8,
                    w1 = rem - w0 < 8 ? rem - w0 : 8;
            const float *t = yt + ty * g->txc + tx0;
            __m256 a[16], ev[2], od[2];
            for (int xi = 0; xi < 16; xi++) a[xi] = onx_load8(t + xi * ldy, nt);
            out_tiles8(a, bias, act, lo, hi, ev, od);
            for (int i = 0; i < 2 && 2 * ty + i < g->OH; i++) {
                __m256 l = _mm256_unpacklo_ps(ev[i], od[i]), h = _mm256_unpackhi_ps(ev[i], od[i]);
                float *yr = y + (2 * ty + i) * g->OW + 2 * tx0;
                /* one chunk a row (with more, a row's last chunk comes after the next row's first): the next row
                 * is written after this one; the spill stays in the plane */
                int sp = g->txc < 8 && (2 * ty + i) * g->OW + 16 <= g->OH * g->OW;
                onx_store8(yr, w0, sp, _mm256_permute2f128_ps(l, h, 0x20));
                if (w1 > 0) onx_store8(yr + 8, w1, sp, _mm256_permute2f128_ps(l, h, 0x31));
            }
        }
}

/* out_adjoint with AVX2: an output row's 16 columns split into even and odd by shuffles within 128-bit halves,
 * then 64-bit lanes put in order. */
T2 static void out_adjoint_avx2(const onx_wgeo *g, const float *dy, float *z, int64_t ldz) {
    int64_t nt = g->txc < 8 ? g->txc : 8;
    for (int64_t ty = 0; ty < g->tyc; ty++)
        for (int64_t t0 = 0; t0 < g->txc; t0 += 8) {
            int64_t tx0 = onx_chunk8(g->txc, t0), rem = g->OW - 2 * tx0, w0 = rem < 8 ? rem : 8,
                    w1 = rem - w0 < 8 ? rem - w0 : 8;
            int sp = g->txc < 8 && ty * g->txc + 8 <= g->T; /* one chunk a row; the spill stays in the sample */
            __m256 d[2][2];
            for (int i = 0; i < 2; i++) {
                if (2 * ty + i >= g->OH) {
                    d[i][0] = d[i][1] = _mm256_setzero_ps();
                    continue;
                }
                const float *r = dy + (2 * ty + i) * g->OW + 2 * tx0;
                __m256 a = onx_load8(r, w0), b = w1 > 0 ? onx_load8(r + 8, w1) : _mm256_setzero_ps();
                d[i][0] = _mm256_castpd_ps(_mm256_permute4x64_pd(
                    _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), _MM_SHUFFLE(3, 1, 2, 0)));
                d[i][1] = _mm256_castpd_ps(_mm256_permute4x64_pd(
                    _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), _MM_SHUFFLE(3, 1, 2, 0)));
            }
            __m256 w[16];
            adj_tiles8(d, w);
            float *zt = z + ty * g->txc + tx0;
            for (int xi = 0; xi < 16; xi++) onx_store8(zt + xi * ldz, nt, sp, w[xi]);
        }
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
/* A 7x7 plane with padding 1 (resnet's last stage at 224x224) has 16 tiles: one vector of them, and its 49 values
 * fit in four registers. The 16 positions of the input tiles are gathered from those by two permutes each (zeros
 * for the padding), the 4 outputs of the tiles put back in the plane's order by two permutes and a blend per 16
 * floats: whole vectors in and out, where the row-at-a-time transforms above move 4 tiles at a time through masks
 * and took a third of such a layer. The arithmetic is theirs, in the same order: the same values. */
typedef struct {
    __m512i in_idx[16];             /* position r * 4 + c of tile t at lane t: its index in the plane */
    __mmask16 in_lo[16], in_hi[16]; /* lanes reading plane floats 0..31 and 32..48 (neither: padding) */
    __m512i out_idx[4];             /* plane floats 16k..16k+15: lane of the tile, + 16 for odd columns */
    __mmask16 out_odd_row[4];       /* the floats on odd rows */
} p7_tab;

static p7_tab p7;
static pthread_once_t p7_once = PTHREAD_ONCE_INIT;

T512 static void p7_build(void) {
    for (int r = 0; r < 4; r++)
        for (int c = 0; c < 4; c++) {
            int32_t idx[16];
            unsigned lo = 0, hi = 0;
            for (int t = 0; t < 16; t++) {
                int iy = 2 * (t / 4) + r - 1, ix = 2 * (t % 4) + c - 1, at = iy * 7 + ix;
                int in = iy >= 0 && iy < 7 && ix >= 0 && ix < 7;
                idx[t] = in ? at : 0;
                lo |= (unsigned)(in && at < 32) << t, hi |= (unsigned)(in && at >= 32) << t;
            }
            p7.in_idx[r * 4 + c] = _mm512_loadu_si512(idx);
            p7.in_lo[r * 4 + c] = (__mmask16)lo, p7.in_hi[r * 4 + c] = (__mmask16)hi;
        }
    for (int k = 0; k < 4; k++) {
        int32_t idx[16];
        unsigned odd = 0;
        for (int l = 0; l < 16; l++) {
            int o = 16 * k + l < 49 ? 16 * k + l : 0, row = o / 7, col = o % 7;
            idx[l] = row / 2 * 4 + col / 2 + 16 * (col % 2);
            odd |= (unsigned)(row % 2) << l;
        }
        p7.out_idx[k] = _mm512_loadu_si512(idx);
        p7.out_odd_row[k] = (__mmask16)odd;
    }
}

/* in_transform of one 7x7 channel x: V[xi * ldv + tile]. */
T512 static void in_plane7(const float *x, float *v, int64_t ldv) {
    __m512 p0 = _mm512_loadu_ps(x), p1 = _mm512_loadu_ps(x + 16), p2 = _mm512_loadu_ps(x + 32),
           p3 = _mm512_zextps128_ps512(_mm_load_ss(x + 48));
    __m512 d[16], c[4][4], w[16];
    for (int q = 0; q < 16; q++) /* the 32..48 part: permutes read index mod 32 */
        d[q] = _mm512_mask_blend_ps(p7.in_hi[q], _mm512_maskz_permutex2var_ps(p7.in_lo[q], p0, p7.in_idx[q], p1),
                                    _mm512_permutex2var_ps(p2, p7.in_idx[q], p3));
    for (int r = 0; r < 4; r++) db_row16(d[4 * r], d[4 * r + 1], d[4 * r + 2], d[4 * r + 3], c[r]);
    bt_tiles16(c, w);
    for (int xi = 0; xi < 16; xi++) _mm512_storeu_ps(v + xi * ldv, w[xi]);
}

/* out_transform of one 7x7 output channel. */
T512 static void out_plane7(const onx_wgeo *g, const float *yt, int64_t ldy, float bias, onx_act act, float lo,
                            float hi, float *y) {
    (void)g;
    __m512 a[16], ev[2], od[2];
    for (int xi = 0; xi < 16; xi++) a[xi] = _mm512_loadu_ps(yt + xi * ldy);
    out_tiles16(a, bias, act, lo, hi, ev, od);
    for (int k = 0; k < 4; k++) {
        __m512 o = _mm512_mask_blend_ps(p7.out_odd_row[k], _mm512_permutex2var_ps(ev[0], p7.out_idx[k], od[0]),
                                        _mm512_permutex2var_ps(ev[1], p7.out_idx[k], od[1]));
        if (k < 3)
            _mm512_storeu_ps(y + 16 * k, o);
        else
            _mm_store_ss(y + 48, _mm512_castps512_ps128(o));
    }
}
#endif

/* 1 when g's planes take in_plane7 and out_plane7. */
static int plane7(const onx_wgeo *g) {
    return wino_cpu() == WINO_AVX512 && g->H == 7 && g->W == 7 && g->OH == 7 && g->OW == 7 && g->pt == 1 && g->pl == 1;
}

int onx_wino_p7_ok(const onx_win *w, int64_t grp, int64_t c, int64_t m) {
    onx_wgeo g = geo_of(w);
    return f2_conv(w, grp, c, m) && plane7(&g);
}

/* The transforms of the CPU's instruction set (onx_wino_ok said it has one) for geometry g. */
typedef struct {
    split_row_fn split;
    void (*in)(const onx_wgeo *, const float *, float *, int64_t);
    void (*out)(const onx_wgeo *, const float *, int64_t, float, onx_act, float, float, float *);
    void (*adj)(const onx_wgeo *, const float *, float *, int64_t);
} wino_fns;

static wino_fns fns_of(const onx_wgeo *g) {
#if defined(__x86_64__) && defined(__GNUC__)
    if (wino_cpu() == WINO_AVX2)
        return (wino_fns){split_row_avx2, in_transform_avx2, out_transform_avx2, out_adjoint_avx2};
    if (plane7(g)) { /* its input transform is wino_in's own */
        pthread_once(&p7_once, p7_build);
        return (wino_fns){split_row512, in_transform8, out_plane7, out_adjoint8};
    }
#endif
    if (g->txc <= 8) return (wino_fns){split_row512, in_transform8, out_transform8, out_adjoint8};
    return (wino_fns){split_row512, in_transform, out_transform, out_adjoint};
}

void onx_wino_out_adj(const onx_win *w, int64_t m, const float *dy, int64_t ns, float *z) {
    onx_wgeo g = geo_of(w);
    int64_t cols = ns * g.T, P = g.OH * g.OW;
    wino_fns f = fns_of(&g);
    for (int64_t s = 0; s < ns; s++)
        for (int64_t i = 0; i < m; i++) f.adj(&g, dy + (s * m + i) * P, z + i * cols + s * g.T, m * cols);
}

static void wino_in(const onx_wgeo *g, int64_t c, const float *x, int64_t ns, float *v, float *eo) {
    int64_t HW = g->H * g->W, cols = ns * g->T;
    wino_fns f = fns_of(g);
#if defined(__x86_64__) && defined(__GNUC__)
    if (plane7(g)) { /* fns_of built the tables */
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t s = 0; s < ns; s++) in_plane7(x + (s * c + ch) * HW, v + ch * cols + s * g->T, c * cols);
        return;
    }
#endif
    for (int64_t s = 0; s < ns; s++)
        for (int64_t ch = 0; ch < c; ch++) {
            if (s + 1 < ns || ch + 1 < c) onx_prefetch_plane(x + (s * c + ch + 1) * HW, HW);
            split_rows(g, x + (s * c + ch) * HW, eo, f.split);
            f.in(g, eo, v + ch * cols + s * g->T, c * cols);
        }
}

int64_t onx_wino_tiles(const onx_win *w) {
    return geo_of(w).T;
}

size_t onx_wino_in_work(const onx_win *w) {
    onx_wgeo g = geo_of(w);
    return (size_t)eo_floats(&g);
}

void onx_wino_in(const onx_win *w, int64_t c, const float *x, int64_t ns, float *v, float *work) {
    onx_wgeo g = geo_of(w);
    memset(work, 0, sizeof(float) * (size_t)eo_floats(&g));
    wino_in(&g, c, x, ns, v, work);
}

void onx_wino(onx_kern kn, const onx_win *w, int64_t c, int64_t m, const float *pk, const float *x, int64_t n,
              const float *bias, const float *res, onx_act act, float lo, float hi, float *y, float *work) {
    onx_wgeo g = geo_of(w);
    int64_t nb = samples_per_pass(&g, n), P = g.OH * g.OW;
    float *eo = work; /* the same layout for every pass: eo's padding is zeroed once */
    memset(eo, 0, sizeof(float) * (size_t)eo_floats(&g));
    for (int64_t s0 = 0; s0 < n; s0 += nb) {
        int64_t ns = n - s0 < nb ? n - s0 : nb, cols = ns * g.T;
        float *v = eo + eo_floats(&g), *yt = v + 16 * c * nb * g.T, *sw = yt + 16 * m * nb * g.T;
        wino_in(&g, c, x + s0 * c * g.H * g.W, ns, v, eo);
        onx_wino_gemms(kn, 16, m, c, cols, pk, v, yt, sw);
        wino_fns f = fns_of(&g);
        for (int64_t s = 0; s < ns; s++)
            for (int64_t i = 0; i < m; i++) {
                int64_t at = ((s0 + s) * m + i) * P;
                f.out(&g, yt + i * cols + s * g.T, m * cols, bias ? bias[i] : 0.0f, res ? ONX_ACT_NONE : act, lo, hi,
                      y + at);
                if (res) onx_add_act(y + at, res + at, (size_t)P, act, lo, hi); /* the plane is in L1 */
            }
    }
}

const onx_wino_impl onx_wino_f2 = {onx_wino_pack_len, onx_wino_pack, onx_wino_work, onx_wino};
