/* onnx_sgemm.c - packed-weight SGEMM for Conv: AVX2 and AVX-512 register tiles, bias and activation in the tile. */
#include "onnx_sgemm.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#else
#define HAVE_X86 0
#endif

#define MAX_MR 8
#define MAX_NR 32

onx_kern onx_sgemm_best(void) {
#if HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return ONX_K_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return ONX_K_AVX2;
#endif
    return ONX_K_NONE;
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

size_t onx_sgemm_work(void) {
    return (size_t)ONX_KC * ONX_NC;
}

#if HAVE_X86
enum { T_ACC = 1, T_ACT = 2 };

/* A tile over kc: c = (T_ACC ? c : bias) + a * b, then clamped to [lo, hi] if T_ACT;
 * a: kc x mr packed, b: kc x nr packed, c: mr rows ldc floats apart. */
typedef void (*tile_fn)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, int flags, const float *bias,
                        float lo, float hi);

/* Each row of a tile is two vectors c<row>0, c<row>1; ROWS6/ROWS8 expand a step for every row.
 * LD, ST, BC (broadcast), FM (fma), MN, MX and VW (vector width) are defined per kernel. */
#define LOADC(i) c##i##0 = LD(c + i * ldc), c##i##1 = LD(c + i * ldc + VW);
#define INITB(i) c##i##0 = c##i##1 = BC(bias + i);
#define STEP(i) av = BC(a + i), c##i##0 = FM(av, b0, c##i##0), c##i##1 = FM(av, b1, c##i##1);
#define CLAMP(i) c##i##0 = MN(MX(c##i##0, vl), vh), c##i##1 = MN(MX(c##i##1, vl), vh);
#define STOREC(i) ST(c + i * ldc, c##i##0), ST(c + i * ldc + VW, c##i##1);
#define ROWS6(R) R(0) R(1) R(2) R(3) R(4) R(5)
#define ROWS8(R) R(0) R(1) R(2) R(3) R(4) R(5) R(6) R(7)

#define LD _mm256_loadu_ps
#define ST _mm256_storeu_ps
#define BC _mm256_broadcast_ss
#define FM _mm256_fmadd_ps
#define MN _mm256_min_ps
#define MX _mm256_max_ps
#define VW 8
__attribute__((target("avx2,fma"))) static void tile_avx2(int64_t kc, const float *a, const float *b, float *c,
                                                          int64_t ldc, int flags, const float *bias, float lo,
                                                          float hi) {
    __m256 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
    if (flags & T_ACC) {
        ROWS6(LOADC);
    } else {
        ROWS6(INITB);
    }
    for (int64_t k = 0; k < kc; k++, a += 6, b += 16) {
        __m256 b0 = LD(b), b1 = LD(b + 8), av;
        ROWS6(STEP);
    }
    if (flags & T_ACT) {
        __m256 vl = _mm256_set1_ps(lo), vh = _mm256_set1_ps(hi);
        ROWS6(CLAMP);
    }
    ROWS6(STOREC);
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
__attribute__((target("avx512f"))) static void tile_avx512(int64_t kc, const float *a, const float *b, float *c,
                                                           int64_t ldc, int flags, const float *bias, float lo,
                                                           float hi) {
    __m512 c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51, c60, c61, c70, c71;
    if (flags & T_ACC) {
        ROWS8(LOADC);
    } else {
        ROWS8(INITB);
    }
    for (int64_t k = 0; k < kc; k++, a += 8, b += 32) {
        __m512 b0 = LD(b), b1 = LD(b + 16), av;
        ROWS8(STEP);
    }
    if (flags & T_ACT) {
        __m512 vl = _mm512_set1_ps(lo), vh = _mm512_set1_ps(hi);
        ROWS8(CLAMP);
    }
    ROWS8(STOREC);
}

/* The last columns of a 32-wide panel, 16 or fewer: one vector per row (b keeps its stride). */
#define STEP1(i) c##i##0 = FM(BC(a + i), b0, c##i##0);
#define LOADC1(i) c##i##0 = LD(c + i * ldc);
#define INITB1(i) c##i##0 = BC(bias + i);
#define CLAMP1(i) c##i##0 = MN(MX(c##i##0, vl), vh);
#define STOREC1(i) ST(c + i * ldc, c##i##0);
__attribute__((target("avx512f"))) static void tile_avx512_n16(int64_t kc, const float *a, const float *b, float *c,
                                                               int64_t ldc, int flags, const float *bias, float lo,
                                                               float hi) {
    __m512 c00, c10, c20, c30, c40, c50, c60, c70;
    if (flags & T_ACC) {
        ROWS8(LOADC1);
    } else {
        ROWS8(INITB1);
    }
    for (int64_t k = 0; k < kc; k++, a += 8, b += 32) {
        __m512 b0 = LD(b);
        ROWS8(STEP1);
    }
    if (flags & T_ACT) {
        __m512 vl = _mm512_set1_ps(lo), vh = _mm512_set1_ps(hi);
        ROWS8(CLAMP1);
    }
    ROWS8(STOREC1);
}

/* A tile at rows [i0, i0 + mr), columns [n, n + nr) of C: in place when whole and inside one
 * segment, else through a local copy. */
static void tile_c(tile_fn tile, int MR, int NR, int64_t kc, const float *a, const float *b, const onx_cmap *cm,
                   int64_t i0, int64_t mr, int64_t n, int64_t nr, int flags, const float *bias, float lo, float hi) {
    if (mr == MR && nr == NR && n % cm->seg + NR <= cm->seg) {
        tile(kc, a, b, cm->c + n / cm->seg * cm->ld_seg + i0 * cm->ldc + n % cm->seg, cm->ldc, flags, bias, lo, hi);
        return;
    }
    if (NR == 32 && nr <= 16) tile = tile_avx512_n16, NR = 16;
    float t[MAX_MR * MAX_NR];
    int64_t off[MAX_NR];
    for (int64_t j = 0; j < nr; j++) off[j] = (n + j) / cm->seg * cm->ld_seg + (n + j) % cm->seg;
    if (flags & T_ACC)
        for (int64_t i = 0; i < mr; i++) {
            const float *row = cm->c + (i0 + i) * cm->ldc;
            for (int64_t j = 0; j < nr; j++) t[i * NR + j] = row[off[j]];
        }
    tile(kc, a, b, t, NR, flags, bias, lo, hi);
    for (int64_t i = 0; i < mr; i++) {
        float *row = cm->c + (i0 + i) * cm->ldc;
        for (int64_t j = 0; j < nr; j++) row[off[j]] = t[i * NR + j];
    }
}
#endif

void onx_bput(const onx_bdst *d, int64_t j, const float *src, int64_t stride, int64_t cnt) {
    while (cnt > 0) {
        int64_t q = j / d->nr, o = j % d->nr, c = d->nr - o < cnt ? d->nr - o : cnt;
        float *dst = d->bp + (q * d->kc + d->rr) * d->nr + o;
        if (!src)
            memset(dst, 0, sizeof(float) * (size_t)c);
        else if (stride == 1)
            memcpy(dst, src, sizeof(float) * (size_t)c);
        else
            for (int64_t t = 0; t < c; t++) dst[t] = src[t * stride];
        if (src) src += c * stride;
        j += c, cnt -= c;
    }
}

/* Rows [k0, k0 + kc) and columns [n0, n0 + nc) of B into panels of kc x nr, the last zero-padded. */
static void pack_b(onx_brow fill, const void *ctx, int64_t k0, int64_t kc, int64_t n0, int64_t nc, int64_t nr,
                   float *bp) {
    int64_t tail = (nc + nr - 1) / nr * nr - nc;
    for (int64_t r = 0; r < kc; r++) {
        onx_bdst d = {bp, kc, nr, r};
        fill(ctx, k0 + r, n0, n0 + nc, &d);
        if (tail) onx_bput(&d, nc, NULL, 1, tail);
    }
}

void onx_sgemm(onx_kern kn, int64_t m, int64_t n, int64_t k, const float *ap, onx_brow fill, const void *ctx,
               const onx_cmap *cm, const float *bias, onx_act act, float lo, float hi, float *work) {
#if HAVE_X86
    float *bp = work;
    int MR = onx_sgemm_mr(kn), NR = nr_of(kn);
    tile_fn tile = kn == ONX_K_AVX512 ? tile_avx512 : tile_avx2;
    if (act == ONX_ACT_RELU) lo = 0.0f, hi = INFINITY;
    int last_flags = act == ONX_ACT_NONE ? 0 : T_ACT;
    for (int64_t n0 = 0; n0 < n; n0 += ONX_NC) {
        int64_t nc = n - n0 < ONX_NC ? n - n0 : ONX_NC;
        for (int64_t k0 = 0; k0 < k; k0 += ONX_KC) {
            int64_t kc = k - k0 < ONX_KC ? k - k0 : ONX_KC;
            int flags = (k0 ? T_ACC : 0) | (k0 + kc == k ? last_flags : 0);
            pack_b(fill, ctx, k0, kc, n0, nc, NR, bp);
            /* a panel of B (kc x nr, in L1) meets every panel of A (in L2) */
            for (int64_t j = 0; j < nc; j += NR)
                for (int64_t i0 = 0; i0 < m; i0 += MR) {
                    int64_t mr = m - i0 < MR ? m - i0 : MR;
                    float bb[MAX_MR] = {0};
                    for (int64_t i = 0; bias && i < mr; i++) bb[i] = bias[i0 + i];
                    tile_c(tile, MR, NR, kc, ap + i0 * k + k0 * MR, bp + j * kc, cm, i0, mr, n0 + j,
                           nc - j < NR ? nc - j : NR, flags, bb, lo, hi);
                }
        }
    }
#else
    (void)kn, (void)m, (void)n, (void)k, (void)ap, (void)fill, (void)ctx, (void)cm, (void)bias, (void)act, (void)lo;
    (void)hi, (void)work;
    (void)pack_b;
#endif
}
