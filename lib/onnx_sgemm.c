/* onnx_sgemm.c - packed-weight SGEMM for Conv: AVX2 and AVX-512 register tiles, bias and activation in the tile. */
#include "onnx_sgemm.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>

#include "onnx_simd.h"
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#define MAX_MR 8
#define MAX_NR 32

static onx_kern kern_cap = ONX_K_AVX512;

void onx_sgemm_cap(onx_kern max) {
    kern_cap = max;
}

onx_kern onx_sgemm_best(void) {
    onx_kern kn = ONX_K_NONE;
#if HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        kn = ONX_K_AVX512;
    else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        kn = ONX_K_AVX2;
#endif
    return kn < kern_cap ? kn : kern_cap;
}

int onx_sgemm_mr(onx_kern kn) {
    return kn == ONX_K_AVX512 ? 8 : 6;
}

static int nr_of(onx_kern kn) {
    return kn == ONX_K_AVX512 ? 32 : 16;
}

size_t onx_pack_a_len(onx_kern kn, int64_t m, int64_t k) {
    int64_t mr = onx_sgemm_mr(kn);
    return (size_t)((m + mr - 1) / mr * mr * k);
}

void onx_pack_a(onx_kern kn, const float *a, int64_t m, int64_t k, float *out) {
    int64_t mr = onx_sgemm_mr(kn);
    for (int64_t i0 = 0; i0 < m; i0 += mr)
        for (int64_t kk = 0; kk < k; kk++)
            for (int64_t i = 0; i < mr; i++) *out++ = i0 + i < m ? a[(i0 + i) * k + kk] : 0.0f;
}

const float *onx_bblock_strided(const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, float *work,
                                int64_t *ldb) {
    (void)kc, (void)nc, (void)work;
    const onx_bsrc *s = ctx;
    *ldb = s->ldb;
    return s->b + k0 * s->ldb + n0;
}

/* Rows whose narrow tiles keep their sums in work across depth blocks (more: through C). */
#define CKEEP_ROWS 2048
#define CTILE_MAX 28

size_t onx_sgemm_work(void) {
    /* B block, edge panel, narrow tiles' sums */
    return (size_t)ONX_KC * ONX_NC + (size_t)(ONX_KC + ONX_MAX_TAPS) * MAX_NR + (size_t)CKEEP_ROWS * CTILE_MAX;
}

#if HAVE_X86
enum { T_ACC = 1, T_ACT = 2 };

/* The operands of a tile: for each tap t < ntap, kc steps of A from a + t * ast (mr floats a
 * step) and of B from b + toff[t] (rows ldb floats apart). */
typedef struct {
    const float *a, *b;
    int64_t kc, ast, ldb;
    int ntap;
    const int64_t *toff;
} tile_in;

/* c = (T_ACC ? c : bias) + A * B over the taps, then clamped to [lo, hi] if T_ACT; c: mr rows
 * ldc floats apart. */
typedef void (*tile_fn)(const tile_in *in, float *c, int64_t ldc, int flags, const float *bias, float lo, float hi);

#define TAPS_BEGIN(MR)                                                                                                 \
    for (int t = 0; t < in->ntap; t++) {                                                                               \
        const float *a = in->a + t * in->ast, *b = in->b + in->toff[t];                                                \
        for (int64_t k = 0; k < in->kc; k++, a += MR, b += in->ldb) {
#define TAPS_END                                                                                                       \
    }                                                                                                                  \
    }

/* Each row of a tile is W vectors: c<row>0, c<row>1 (W 2) or c<row>0 (W 1); ROWS6/ROWS8 expand a
 * step for every row. LD, ST, BC (broadcast), FM (fma), MN, MX and VW (vector width) are defined
 * per kernel. */
#define LOADB2(VT) VT b0 = LD(b), b1 = LD(b + VW), av
#define LOADC2(i) c##i##0 = LD(c + i * ldc), c##i##1 = LD(c + i * ldc + VW);
#define INITB2(i) c##i##0 = c##i##1 = BC(bias + i);
#define STEP2(i) av = BC(a + i), c##i##0 = FM(av, b0, c##i##0), c##i##1 = FM(av, b1, c##i##1);
#define CLAMP2(i) c##i##0 = MN(MX(c##i##0, vl), vh), c##i##1 = MN(MX(c##i##1, vl), vh);
#define STOREC2(i) ST(c + i * ldc, c##i##0), ST(c + i * ldc + VW, c##i##1);
#define LOADB1(VT) VT b0 = LD(b)
#define LOADC1(i) c##i##0 = LD(c + i * ldc);
#define INITB1(i) c##i##0 = BC(bias + i);
#define STEP1(i) c##i##0 = FM(BC(a + i), b0, c##i##0);
#define CLAMP1(i) c##i##0 = MN(MX(c##i##0, vl), vh);
#define STOREC1(i) ST(c + i * ldc, c##i##0);
#define ROWS1(R) R(0)
#define ROWS2(R) R(0) R(1)
#define ROWS3(R) R(0) R(1) R(2)
#define ROWS4(R) R(0) R(1) R(2) R(3)
#define ROWS5(R) R(0) R(1) R(2) R(3) R(4)
#define ROWS6(R) R(0) R(1) R(2) R(3) R(4) R(5)
#define ROWS8(R) R(0) R(1) R(2) R(3) R(4) R(5) R(6) R(7)
/* The body of a tile of MR rows (ROWS: ROWS6 or ROWS8) of W vectors (VT: __m256 or __m512, SET1
 * its broadcast of a constant), with the accumulators declared before. */
#define TILE_BODY(VT, SET1, ROWS, MR, W)                                                                               \
    if (flags & T_ACC) {                                                                                               \
        ROWS(LOADC##W);                                                                                                \
    } else {                                                                                                           \
        ROWS(INITB##W);                                                                                                \
    }                                                                                                                  \
    TAPS_BEGIN(MR)                                                                                                     \
    LOADB##W(VT);                                                                                                      \
    ROWS(STEP##W);                                                                                                     \
    TAPS_END                                                                                                           \
    if (flags & T_ACT) {                                                                                               \
        VT vl = SET1(lo), vh = SET1(hi);                                                                               \
        ROWS(CLAMP##W);                                                                                                \
    }                                                                                                                  \
    ROWS(STOREC##W);

#define LD _mm256_loadu_ps
#define ST _mm256_storeu_ps
#define BC _mm256_broadcast_ss
#define FM _mm256_fmadd_ps
#define MN _mm256_min_ps
#define MX _mm256_max_ps
#define VW 8
__attribute__((target("avx2,fma"))) static void tile_avx2(const tile_in *in, float *c, int64_t ldc, int flags,
                                                          const float *bias, float lo, float hi) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    TILE_BODY(__m256, _mm256_set1_ps, ROWS6, 6, 2)
}

/* The AVX2 kernel's tiles of fewer rows (a last panel of 6-row A panels: 32 rows are 5 panels and 2 rows) and of 8
 * columns (a last block's 8 or fewer): only the rows and vectors that exist are computed and stored. */
#define TILE_AVX2(R, W)                                                                                                \
    __attribute__((target("avx2,fma"))) static void tile_avx2_##R##x##W(                                               \
        const tile_in *in, float *c, int64_t ldc, int flags, const float *bias, float lo, float hi) {                  \
        __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;                                             \
        (void)c01, (void)c11, (void)c21, (void)c31, (void)c41, (void)c51;                                              \
        (void)c10, (void)c20, (void)c30, (void)c40, (void)c50;                                                         \
        TILE_BODY(__m256, _mm256_set1_ps, ROWS##R, 6, W)                                                               \
    }
TILE_AVX2(1, 2)
TILE_AVX2(2, 2)
TILE_AVX2(3, 2)
TILE_AVX2(4, 2)
TILE_AVX2(5, 2)
TILE_AVX2(1, 1)
TILE_AVX2(2, 1)
TILE_AVX2(3, 1)
TILE_AVX2(4, 1)
TILE_AVX2(5, 1)
TILE_AVX2(6, 1)
/* [rows - 1][vectors - 1] */
static const tile_fn avx2_tiles[6][2] = {{tile_avx2_1x1, tile_avx2_1x2}, {tile_avx2_2x1, tile_avx2_2x2},
                                         {tile_avx2_3x1, tile_avx2_3x2}, {tile_avx2_4x1, tile_avx2_4x2},
                                         {tile_avx2_5x1, tile_avx2_5x2}, {tile_avx2_6x1, tile_avx2}};

/* 8 or fewer columns with the 8-row A panels of the AVX-512 kernel: one 8-float vector per row. */
__attribute__((target("avx2,fma"))) static void tile_avx512_n8(const tile_in *in, float *c, int64_t ldc, int flags,
                                                               const float *bias, float lo, float hi) {
    __m256 c00, c10, c20, c30, c40, c50, c60, c70;
    TILE_BODY(__m256, _mm256_set1_ps, ROWS8, 8, 1)
}
#undef LD
#undef ST
#undef BC
#undef FM
#undef MN
#undef MX
#undef VW

#define LD _mm512_loadu_ps
#define ST _mm512_storeu_ps
#define BC(p) _mm512_set1_ps(*(p))
#define FM _mm512_fmadd_ps
#define MN _mm512_min_ps
#define MX _mm512_max_ps
#define VW 16
__attribute__((target("avx512f"))) static void tile_avx512(const tile_in *in, float *c, int64_t ldc, int flags,
                                                           const float *bias, float lo, float hi) {
    __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
    TILE_BODY(__m512, _mm512_set1_ps, ROWS8, 8, 2)
}

/* The last 16 or fewer columns of a block: one vector per row. */
__attribute__((target("avx512f"))) static void tile_avx512_n16(const tile_in *in, float *c, int64_t ldc, int flags,
                                                               const float *bias, float lo, float hi) {
    __m512 c00, c10, c20, c30, c40, c50, c60, c70;
    TILE_BODY(__m512, _mm512_set1_ps, ROWS8, 8, 1)
}

/* Narrow column blocks (the last nr < 32 columns: a 7x7 or 14x14 output, Winograd's tile counts):
 * 16 rows (two 8-row A panels, pst floats apart) x R columns, one 16-row vector per column, B's
 * values broadcast. Each output sums the same products in the same order as the 8x32 tile, so
 * results are bit for bit the same; t holds the tile column-major (16 floats a column). */
static inline __attribute__((always_inline, target("avx512f"))) void
ctile(const tile_in *in, int64_t pst, float *t, int flags, const float *bias, float lo, float hi, const int R) {
    __m512 acc[28];
#pragma GCC unroll 28
    for (int j = 0; j < R; j++) acc[j] = flags & T_ACC ? _mm512_loadu_ps(t + 16 * j) : _mm512_loadu_ps(bias);
    for (int tp = 0; tp < in->ntap; tp++) {
        const float *a = in->a + tp * in->ast, *b = in->b + in->toff[tp];
        for (int64_t k = 0; k < in->kc; k++, a += 8, b += in->ldb) {
            __m512 va =
                _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castpd256_pd512(_mm256_castps_pd(_mm256_loadu_ps(a))),
                                                    _mm256_castps_pd(_mm256_loadu_ps(a + pst)), 1));
#pragma GCC unroll 28
            for (int j = 0; j < R; j++) acc[j] = _mm512_fmadd_ps(va, _mm512_set1_ps(b[j]), acc[j]);
        }
    }
    __m512 vl = _mm512_set1_ps(lo), vh = _mm512_set1_ps(hi);
#pragma GCC unroll 28
    for (int j = 0; j < R; j++) {
        if (flags & T_ACT) acc[j] = _mm512_min_ps(_mm512_max_ps(acc[j], vl), vh);
        _mm512_storeu_ps(t + 16 * j, acc[j]);
    }
}

typedef void (*ctile_fn)(const tile_in *in, int64_t pst, float *t, int flags, const float *bias, float lo, float hi);
#define CTILE(R)                                                                                                       \
    __attribute__((target("avx512f"))) static void ctile##R(const tile_in *in, int64_t pst, float *t, int flags,       \
                                                            const float *bias, float lo, float hi) {                   \
        ctile(in, pst, t, flags, bias, lo, hi, R);                                                                     \
    }
CTILE(1)
CTILE(2)
CTILE(3)
CTILE(4)
CTILE(5)
CTILE(6)
CTILE(7)
CTILE(8)
CTILE(9)
CTILE(10)
CTILE(11)
CTILE(12)
CTILE(13)
CTILE(14)
CTILE(15)
CTILE(16)
CTILE(17)
CTILE(18)
CTILE(19)
CTILE(20)
CTILE(21)
CTILE(22)
CTILE(23)
CTILE(24)
CTILE(25)
CTILE(26)
CTILE(27)
CTILE(28)
/* [columns - 1]: exactly the columns there are, so B is read in place (no zero-padded copy) */
static const ctile_fn ctiles[CTILE_MAX] = {ctile1,  ctile2,  ctile3,  ctile4,  ctile5,  ctile6,  ctile7,
                                           ctile8,  ctile9,  ctile10, ctile11, ctile12, ctile13, ctile14,
                                           ctile15, ctile16, ctile17, ctile18, ctile19, ctile20, ctile21,
                                           ctile22, ctile23, ctile24, ctile25, ctile26, ctile27, ctile28};

/* A narrow tile t (16 rows x nr columns, column-major) to rows [0, mr) of c (ldc floats apart), 16 columns at a
 * time transposed in registers. */
__attribute__((target("avx512f"))) static void ct_store(const float *t, int64_t nr, int64_t mr, float *c, int64_t ldc) {
    for (int64_t j0 = 0; j0 < nr; j0 += 16) {
        int64_t w = nr - j0 < 16 ? nr - j0 : 16;
        __m512 r[16];
        for (int64_t i = 0; i < 16; i++) r[i] = i < w ? _mm512_loadu_ps(t + 16 * (j0 + i)) : _mm512_setzero_ps();
        onx_tr16(r);
        __mmask16 mk = (__mmask16)((1u << w) - 1);
        for (int64_t i = 0; i < mr; i++) _mm512_mask_storeu_ps(c + i * ldc + j0, mk, r[i]);
    }
}

/* Between C (rows [i0, i0 + mr), columns [n, n + nr), across its segments) and a local tile t whose
 * element (i, j) is t[i * si + j * sj]: into C when to_c, else out of it. */
static void ccopy(const onx_cmap *cm, int64_t i0, int64_t mr, int64_t n, int64_t nr, float *t, int64_t si, int64_t sj,
                  int to_c) {
    int64_t off[MAX_NR];
    for (int64_t j = 0, sg = n / cm->seg, p = n % cm->seg; j < nr; j++, p++) {
        if (p == cm->seg) sg++, p = 0;
        off[j] = sg * cm->ld_seg + p;
    }
    for (int64_t i = 0; i < mr; i++) {
        float *row = cm->c + (i0 + i) * cm->ldc;
        if (to_c)
            for (int64_t j = 0; j < nr; j++) row[off[j]] = t[i * si + j * sj];
        else
            for (int64_t j = 0; j < nr; j++) t[i * si + j * sj] = row[off[j]];
    }
}

/* The columns of C from n on inside one segment, at most nr of them: their count into *len, the offset of row 0's
 * first from cm->c returned. */
static inline int64_t seg_run(const onx_cmap *cm, int64_t n, int64_t nr, int64_t *len) {
    int64_t p = n % cm->seg;
    *len = cm->seg - p < nr ? cm->seg - p : nr;
    return n / cm->seg * cm->ld_seg + p;
}

/* ccopy for a row-major t (sj 1), the tiles that straddle C's segments (a 7x7 or 14x14 output's samples side by
 * side in a GEMM's columns: half the tiles of a 7x7 layer at batch 8): each of C's contiguous runs row by row, in
 * masked vectors (AVX-512) or whole 8-float vectors and the rest one by one (AVX2, whose masked stores cost a dozen
 * cycles on AMD cores). */
__attribute__((target("avx512f"))) static void crun512(const onx_cmap *cm, int64_t i0, int64_t mr, int64_t n,
                                                       int64_t nr, float *t, int64_t si, int to_c) {
    for (int64_t j = 0, len; j < nr; j += len) {
        float *c = cm->c + seg_run(cm, n + j, nr - j, &len) + i0 * cm->ldc;
        for (int64_t u = 0; u < len; u += 16) {
            __mmask16 mk = (__mmask16)((1u << (len - u < 16 ? len - u : 16)) - 1);
            for (int64_t i = 0; i < mr; i++) {
                float *cv = c + i * cm->ldc + u, *tv = t + i * si + j + u;
                if (to_c)
                    _mm512_mask_storeu_ps(cv, mk, _mm512_maskz_loadu_ps(mk, tv));
                else
                    _mm512_mask_storeu_ps(tv, mk, _mm512_maskz_loadu_ps(mk, cv));
            }
        }
    }
}

__attribute__((target("avx2"))) static void crun256(const onx_cmap *cm, int64_t i0, int64_t mr, int64_t n, int64_t nr,
                                                    float *t, int64_t si, int to_c) {
    for (int64_t j = 0, len; j < nr; j += len) {
        float *c = cm->c + seg_run(cm, n + j, nr - j, &len) + i0 * cm->ldc;
        for (int64_t i = 0; i < mr; i++) {
            float *cv = c + i * cm->ldc, *tv = t + i * si + j, *dst = to_c ? cv : tv;
            const float *src = to_c ? tv : cv;
            int64_t u = 0;
            for (; u + 8 <= len; u += 8) _mm256_storeu_ps(dst + u, _mm256_loadu_ps(src + u));
            for (; u < len; u++) dst[u] = src[u];
        }
    }
}

/* C += res over rows [0, m), columns [n0, n0 + nc), then the activation (act: lo and hi as the tiles have them). */
static void add_res(const onx_cmap *cm, int64_t m, int64_t n0, int64_t nc, onx_act act, float lo, float hi) {
    for (int64_t j = 0, len; j < nc; j += len) {
        int64_t off = seg_run(cm, n0 + j, nc - j, &len);
        for (int64_t i = 0; i < m; i++)
            onx_add_act(cm->c + off + i * cm->ldc, cm->res + off + i * cm->ldc, (size_t)len, act, lo, hi);
    }
}

/* The first column panel of a block meets each A panel's depth block straight from memory (a
 * late layer's weights: megabytes per image at batch 1); the hardware prefetcher restarts at
 * every panel, so the panel PF_AHEAD ahead is fetched by hand (resnet18's 7x7 stage at batch 1:
 * 53 -> 64 G multiply-adds/s). */
#define PF_AHEAD 2
static void prefetch_panel(const float *a, int64_t kc, int ntap, int64_t ast, int MR) {
    for (int t = 0; t < ntap; t++)
        for (int64_t q = 0; q < kc * MR; q += 16) _mm_prefetch((const char *)(a + t * ast + q), _MM_HINT_T0);
}

/* A tile at rows [i0, i0 + mr), columns [n, n + nr) of C: in place when whole and inside one
 * segment, else through a local copy. */
static void tile_c(tile_fn tile, int MR, int NR, const tile_in *in, const onx_cmap *cm, int64_t i0, int64_t mr,
                   int64_t n, int64_t nr, int flags, const float *bias, float lo, float hi) {
    void (*crun)(const onx_cmap *, int64_t, int64_t, int64_t, int64_t, float *, int64_t, int) =
        tile == tile_avx2 ? crun256 : crun512;       /* the AVX2 tiles reach here only as tile_avx2 */
    if (tile == tile_avx2 && (mr < MR || nr <= 8)) { /* AVX2: the tile of exactly the rows and vectors needed */
        NR = nr <= 8 ? 8 : 16;
        tile = avx2_tiles[mr - 1][NR / 8 - 1], MR = (int)mr;
    }
    if (mr == MR && nr == NR && n % cm->seg + NR <= cm->seg) {
        tile(in, cm->c + n / cm->seg * cm->ld_seg + i0 * cm->ldc + n % cm->seg, cm->ldc, flags, bias, lo, hi);
        return;
    }
    if (NR == 32 && nr <= 8)
        tile = tile_avx512_n8, NR = 8;
    else if (NR == 32 && nr <= 16)
        tile = tile_avx512_n16, NR = 16;
    else if (NR == 32 && nr <= 24) { /* 16 + at most 8 */
        tile_c(tile_avx512_n16, MR, 16, in, cm, i0, mr, n, 16, flags, bias, lo, hi);
        tile_in rest = *in;
        rest.b += 16;
        tile_c(tile_avx512_n8, MR, 8, &rest, cm, i0, mr, n + 16, nr - 16, flags, bias, lo, hi);
        return;
    }
    float t[MAX_MR * MAX_NR];
    if (flags & T_ACC) crun(cm, i0, mr, n, nr, t, NR, 0);
    tile(in, t, NR, flags, bias, lo, hi);
    crun(cm, i0, mr, n, nr, t, NR, 1);
}
#endif

void onx_sgemm(onx_kern kn, int64_t m, int64_t n, int64_t kg, int ntap, const int64_t *toff, const float *ap,
               onx_bblock block, const void *ctx, const onx_cmap *cm, const float *bias, onx_act act, float lo,
               float hi, float *work) {
#if HAVE_X86
    float *edge = work + (size_t)ONX_KC * ONX_NC, *ckeep = edge + (size_t)(ONX_KC + ONX_MAX_TAPS) * MAX_NR;
    int64_t k = kg * ntap, eoff[ONX_MAX_TAPS], zero = 0;
    int MR = onx_sgemm_mr(kn), NR = nr_of(kn);
    tile_fn tile = kn == ONX_K_AVX512 ? tile_avx512 : tile_avx2;
    onx_act act0 = act;
    if (act == ONX_ACT_RELU) lo = 0.0f, hi = INFINITY;
    int last_flags = act == ONX_ACT_NONE || cm->res ? 0 : T_ACT;
    if (!toff) toff = &zero;
    for (int64_t n0 = 0, nc; n0 < n; n0 += nc) {
        nc = n - n0 < ONX_NC ? n - n0 : ONX_NC;
        if (cm->seg >= ONX_NC && cm->seg - n0 % cm->seg < nc) nc = cm->seg - n0 % cm->seg;
        /* depth blocks of equal size: no short last block reloading C for a few steps */
        int64_t kb = (kg * ntap + ONX_KC - 1) / ONX_KC, kstep = (kg + kb - 1) / kb;
        for (int64_t k0 = 0, kc; k0 < kg; k0 += kc) {
            kc = kg - k0 < kstep ? kg - k0 : kstep;
            int flags = (k0 ? T_ACC : 0) | (k0 + kc == kg ? last_flags : 0);
            tile_in in = {NULL, NULL, kc, kg * MR, 0, ntap, toff};
            const float *bb = block(ctx, k0, kc, n0, nc, work, &in.ldb);
            /* a panel of B (in L1) meets every panel of A (in L2) */
            for (int64_t j = 0; j < nc; j += NR) {
                int64_t nr = nc - j < NR ? nc - j : NR;
                tile_in ij = in;
                ij.b = bb + j;
                /* narrow columns: 16 rows a tile, B broadcast, all but a last 8 rows or fewer */
                int ct = kn == ONX_K_AVX512 && nr <= CTILE_MAX, rest = !ct || (m % 16 && m % 16 <= MR);
                if (nr < NR && rest) { /* the last columns, zero-padded: tiles read whole vectors */
                    for (int t = 0; t < ntap; t++)
                        for (int64_t r = 0; r < kc; r++) {
                            float *e = edge + (t * kc + r) * NR;
                            memcpy(e, bb + j + toff[t] + r * in.ldb, sizeof(float) * (size_t)nr);
                            memset(e + nr, 0, sizeof(float) * (size_t)(NR - nr));
                        }
                    for (int t = 0; t < ntap; t++) eoff[t] = t * kc * NR;
                    ij.b = edge, ij.ldb = NR, ij.toff = eoff;
                }
                int64_t i0 = 0;
                if (ct)
                    for (; i0 + MR < m; i0 += 2 * MR) {
                        int64_t mr = m - i0 < 2 * MR ? m - i0 : 2 * MR;
                        for (int64_t q = 2 * PF_AHEAD; j == 0 && q < 2 * PF_AHEAD + 2 && i0 + q * MR < m; q++)
                            prefetch_panel(ap + (i0 + q * MR) * k + k0 * MR, kc, ntap, kg * MR, MR);
                        float bv[2 * MAX_MR] = {0}, tl[16 * CTILE_MAX];
                        for (int64_t i = 0; bias && i < mr; i++) bv[i] = bias[i0 + i];
                        ij.a = ap + i0 * k + k0 * MR;
                        /* the sums stay in work between depth blocks when there is room */
                        int keep = m <= CKEEP_ROWS, last = k0 + kc == kg;
                        float *t = keep ? ckeep + i0 * CTILE_MAX : tl;
                        if (!keep && (flags & T_ACC)) ccopy(cm, i0, mr, n0 + j, nr, t, 1, 16, 0);
                        ctiles[nr - 1](&ij, k * MR, t, flags, bv, lo, hi);
                        int64_t cn = n0 + j, cp = cn % cm->seg;
                        if ((!keep || last) && cp + nr <= cm->seg) /* inside one segment */
                            ct_store(t, nr, mr, cm->c + cn / cm->seg * cm->ld_seg + i0 * cm->ldc + cp, cm->ldc);
                        else if (!keep || last)
                            ccopy(cm, i0, mr, cn, nr, t, 1, 16, 1);
                    }
                for (; i0 < m; i0 += MR) {
                    int64_t mr = m - i0 < MR ? m - i0 : MR;
                    if (j == 0 && i0 + PF_AHEAD * MR < m)
                        prefetch_panel(ap + (i0 + PF_AHEAD * MR) * k + k0 * MR, kc, ntap, kg * MR, MR);
                    float bv[MAX_MR] = {0};
                    for (int64_t i = 0; bias && i < mr; i++) bv[i] = bias[i0 + i];
                    ij.a = ap + i0 * k + k0 * MR;
                    tile_c(tile, MR, NR, &ij, cm, i0, mr, n0 + j, nr, flags, bv, lo, hi);
                }
            }
        }
        if (cm->res) add_res(cm, m, n0, nc, act0, lo, hi);
    }
#else
    (void)kn, (void)m, (void)n, (void)kg, (void)ntap, (void)toff, (void)ap, (void)block, (void)ctx, (void)cm;
    (void)bias, (void)act, (void)lo, (void)hi, (void)work;
#endif
}
