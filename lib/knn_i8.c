/* knn_i8.c - int8 first pass of exact kNN: AVX-512 VNNI scores with a rigorous error bound pick the candidates. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "knn_int.h"

/* Why the candidates are a superset of the answer.
 *
 * Each gallery row g is stored as g~ = s_g * G (G int8 in [-127, 127], s_g a
 * float) and each query q as q~ = s_q * Q the same way; VNNI computes the
 * integer dot D = Q.G exactly. With e_g = |g - g~| and e_q = |q - q~|
 * (measured in double when packing),
 *   |q.g - s_q s_g D| = |(q - q~).g + q~.(g - g~)| <= e_q |g| + |q~| e_g
 * (Cauchy-Schwarz). The ordering value v of knn.c (L2: |g|^2 - 2 q.g, dot:
 * -q.g, cosine: -q.g / |g|) is thus approximated by v' within beta, the
 * bound over the gallery's largest |g| and e_g plus a margin for the float
 * rounding and underflow of v' and for the double rounding of the final
 * distances. With T
 * the k-th smallest v' seen so far, a row whose v' >= T + 2 beta is worse
 * than k rows already seen (v >= v' - beta >= T + beta >= v'_s + beta >= v_s,
 * strictly with the margin), so it can be neither in the answer nor tied with
 * it. The rows below the threshold go through the float pass of knn.c
 * (heap, double rescoring, certification) exactly as if the float GEMM had
 * scored them; the int8 pass only spares it the rows it has ruled out. On
 * Fashion-MNIST embeddings 2-4 % of the gallery survive. */

#if defined(__GNUC__) && defined(__x86_64__)
#define I8_HAVE 1
#include <immintrin.h>

#include "onnx_simd.h"
#define I8_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#else
#define I8_HAVE 0
#endif

#define I8_R 4           /* queries per register block */
#define I8_ROWS 64       /* gallery rows per register block: 4 groups of 16 */
#define I8_TILE 16       /* register blocks per gallery tile: 1024 rows, 128 KiB at dim 128 */
#define I8_MAX_DIM 1024  /* |D| < 2^24 stays exact in float */
#define I8_SLACK 1e-6    /* relative margin, far above float and double rounding */
#define I8_TINY 0x1p-100 /* absolute margin, far above float underflow in v' (|D| < 2^24) */

struct knn_i8 {
    size_t ngp, dp4; /* rows padded to I8_ROWS; dim / 4 rounded up */
    uint8_t *pack;   /* ngp / 64 blocks of dp4 steps x 4 groups x 64 bytes: 16 rows x 4 dims, G + 128 */
    float *gm, *ga;  /* v' = s_q * gm * D + ga; ga = +inf on padding and filtered rows */
    float *ge;       /* the row's part of beta per unit |q~|: e_g (L2: 2 e_g, cosine: e_g / |g|), rounded up */
    double gn;       /* max |g| (cosine: 1) */
    double gt;       /* max |g~| (cosine: max |g~| / |g|) */
    double gsq;      /* max |g|^2 */
};

typedef struct {
    float thr;   /* candidates need w < thr: T + 2 b0 once k rows are seen */
    float kth;   /* T, the k-th smallest upper bound u so far (+inf before k rows) */
    float b0;    /* the row-independent part of beta, rounded up */
    float qt;    /* |q~|, rounded up */
    float sq;    /* s_q */
    int32_t off; /* 128 * sum(Q): D = VNNI sum - off */
    size_t kn;   /* entries in the k-heap */
    size_t cn;   /* candidates of this tile: v' in cv, rows in ci */
    float *cv;
    uint32_t *ci;
} i8query;

#define I8_CAP (I8_TILE * I8_ROWS + 16) /* a tile's rows + one full vector store */

struct knn_i8_scratch {
    size_t bqp;   /* query slots, a multiple of I8_R */
    int32_t *q4;  /* bqp x dp4 packed int8 queries, 4 dims per int32 */
    i8query *qs;  /* bqp */
    float *kheap; /* bqp x k max-heaps of v' */
    float *cv;    /* I8_R x I8_CAP: the candidates of one query quad in one tile */
    uint32_t *ci;
    size_t k;
};

#if I8_HAVE
static int cpu_ok(void) {
    static int ok = -1;
    if (ok < 0) {
        __builtin_cpu_init();
        ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    }
    return ok;
}
#else
static int cpu_ok(void) {
    return 0;
}
#endif

int knn_int8_available(void) {
    return cpu_ok();
}

int knn_i8_ok(const knn_job *j) {
    return cpu_ok() && j->dim <= I8_MAX_DIM && j->ng <= UINT32_MAX - I8_ROWS;
}

void knn_i8_free(knn_i8 *p) {
    if (p == NULL) return;
    free(p->pack);
    free(p->gm);
    free(p->ga);
    free(p->ge);
    free(p);
}

/* Quantise v[0..dim) to out (int8, zero-padded to 4 * dp4) with the float
 * scale returned (0 for a zero row). *err2 = |v - s Q|^2, *qt2 = |s Q|^2,
 * *n2 = |v|^2, in double: the products are exact and the error of the sums
 * is far inside I8_SLACK. Any rounding of v / s is valid: the error is
 * measured, not assumed. */
#if I8_HAVE
I8_TARGET static float quantise(const float *v, size_t dim, size_t dp4, int8_t *out, double *err2, double *qt2,
                                double *n2) {
    __m512 mx = _mm512_setzero_ps();
    __m512d na = _mm512_setzero_pd(), nb = na;
    for (size_t e = 0; e < dim; e += 16) {
        __mmask16 k = dim - e >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (dim - e)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(k, v + e);
        mx = _mm512_max_ps(mx, _mm512_abs_ps(x));
        __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(x)),
                hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)));
        na = _mm512_fmadd_pd(lo, lo, na);
        nb = _mm512_fmadd_pd(hi, hi, nb);
    }
    *n2 = _mm512_reduce_add_pd(_mm512_add_pd(na, nb));
    float m = _mm512_reduce_max_ps(mx);
    memset(out, 0, 4 * dp4);
    *err2 = *qt2 = 0;
    if (m == 0) return 0;
    float s = m / 127.0f;
    __m512 inv = _mm512_set1_ps(127.0f / m), lim = _mm512_set1_ps(127.0f);
    __m512d ds = _mm512_set1_pd(s), r2 = _mm512_setzero_pd(), t2 = r2;
    for (size_t e = 0; e < dim; e += 16) {
        __mmask16 k = dim - e >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (dim - e)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(k, v + e);
        __m512 r = _mm512_roundscale_ps(_mm512_mul_ps(x, inv), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        r = _mm512_max_ps(_mm512_min_ps(r, lim), _mm512_sub_ps(_mm512_setzero_ps(), lim));
        _mm_mask_storeu_epi8(out + e, k, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(r)));
        for (int h = 0; h < 2; h++) {
            __m256 xh =
                h ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(x), 1)) : _mm512_castps512_ps256(x);
            __m256 rh =
                h ? _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(r), 1)) : _mm512_castps512_ps256(r);
            __m512d t = _mm512_mul_pd(_mm512_cvtps_pd(rh), ds), d = _mm512_sub_pd(_mm512_cvtps_pd(xh), t);
            r2 = _mm512_fmadd_pd(d, d, r2);
            t2 = _mm512_fmadd_pd(t, t, t2);
        }
    }
    *err2 = _mm512_reduce_add_pd(r2);
    *qt2 = _mm512_reduce_add_pd(t2);
    return s;
}
#else
static float quantise(const float *v, size_t dim, size_t dp4, int8_t *out, double *err2, double *qt2, double *n2) {
    (void)v, (void)dim, (void)dp4, (void)out, (void)err2, (void)qt2, (void)n2;
    return 0; /* never called: knn_i8_ok() is 0 */
}
#endif

int knn_i8_new(const knn_job *j, knn_i8 **out, tr_err *err) {
    knn_i8 *p = calloc(1, sizeof *p);
    int8_t *row = NULL;
    if (p == NULL) goto nomem;
    p->dp4 = (j->dim + 3) / 4;
    p->ngp = (j->ng + I8_ROWS - 1) / I8_ROWS * I8_ROWS;
    size_t bytes = p->ngp * p->dp4 * 4; /* <= ng * dim * 4 + padding: the float gallery exists */
    row = malloc(p->dp4 * 4);
    p->gm = malloc(p->ngp * sizeof *p->gm);
    p->ga = malloc(p->ngp * sizeof *p->ga);
    p->ge = malloc(p->ngp * sizeof *p->ge);
    if (row == NULL || p->gm == NULL || p->ga == NULL || p->ge == NULL ||
        posix_memalign((void **)&p->pack, 64, bytes ? bytes : 64))
        goto nomem;
    memset(p->pack, 0, bytes);
    int cos = j->m == DIST_COSINE, l2 = j->m == DIST_SQEUCLIDEAN || j->m == DIST_EUCLIDEAN;
    p->gn = cos ? 1 : 0;
    for (size_t r = 0; r < p->ngp; r++) {
        p->gm[r] = p->ge[r] = 0;
        p->ga[r] = INFINITY;
        if (r >= j->ng || !knn_eligible(j, r)) continue;
        const float *g = j->g + r * j->dim;
        double e2, t2, n2;
        float s = quantise(g, j->dim, p->dp4, row, &e2, &t2, &n2);
        double e1 = sqrt(e2), t1 = sqrt(t2), n1 = sqrt(n2);
        if (n2 > p->gsq) p->gsq = n2;
        if (cos) {
            if (n2 > 0) {
                p->gm[r] = (float)(-(double)s / n1);
                p->ge[r] = nextafterf((float)(e1 / n1), INFINITY);
                if (t1 / n1 > p->gt) p->gt = t1 / n1;
            }
            p->ga[r] = 0;
        } else {
            p->gm[r] = l2 ? -2.0f * s : -s;
            p->ga[r] = l2 ? j->gadd[r] : 0.0f;
            p->ge[r] = nextafterf((float)(l2 ? 2 * e1 : e1), INFINITY);
            if (n1 > p->gn) p->gn = n1;
            if (t1 > p->gt) p->gt = t1;
        }
        uint8_t *dst = p->pack + (r / I8_ROWS) * p->dp4 * 256 + (r / 16 % 4) * 64 + (r % 16) * 4;
        for (size_t t = 0; t < p->dp4; t++) { /* G + 128 as a byte is G ^ 0x80 */
            uint32_t w;
            memcpy(&w, row + 4 * t, 4);
            w ^= 0x80808080u;
            memcpy(dst + t * 256, &w, 4);
        }
    }
    free(row);
    *out = p;
    return TR_OK;
nomem:
    free(row);
    knn_i8_free(p);
    return tr_seterr(err, TR_ENOMEM, "", "knn: cannot allocate the int8 gallery of %zu rows", j->ng);
}

void knn_i8_scratch_free(knn_i8_scratch *s) {
    if (s == NULL) return;
    free(s->q4);
    free(s->qs);
    free(s->kheap);
    free(s->cv);
    free(s->ci);
    free(s);
}

int knn_i8_scratch_new(const knn_job *j, knn_i8_scratch **out) {
    knn_i8_scratch *s = calloc(1, sizeof *s);
    if (s == NULL) return TR_ENOMEM;
    s->bqp = (j->bq + I8_R - 1) / I8_R * I8_R;
    s->k = j->k < j->n_elig ? j->k : j->n_elig; /* T needs k rows, or all there are */
    /* bq * kc entries were checked to fit when the job was sized */
    s->q4 = malloc(s->bqp * ((j->dim + 3) / 4) * sizeof *s->q4);
    s->qs = calloc(s->bqp, sizeof *s->qs);
    s->kheap = malloc(s->bqp * (s->k ? s->k : 1) * sizeof *s->kheap);
    s->cv = malloc(I8_R * I8_CAP * sizeof *s->cv);
    s->ci = malloc(I8_R * I8_CAP * sizeof *s->ci);
    if (s->q4 == NULL || s->qs == NULL || s->kheap == NULL || s->cv == NULL || s->ci == NULL) {
        knn_i8_scratch_free(s);
        return TR_ENOMEM;
    }
    *out = s;
    return TR_OK;
}

/* The row-independent part of beta for one query (see the top comment):
 * e_q times the largest |g| plus the margin, rounded up. */
static float beta0(const knn_job *j, const knn_i8 *p, double eq, double qt, double qn2) {
    double b, sl;
    switch (j->m) {
    case DIST_COSINE: /* v is d - 1 scaled by |q| */
        b = eq;
        sl = qt * p->gt + sqrt(qn2);
        break;
    case DIST_DOT:
        b = eq * p->gn;
        sl = qt * p->gt + sqrt(qn2) * p->gn;
        break;
    default:
        b = 2 * eq * p->gn;
        sl = p->gsq + 2 * qt * p->gt + qn2;
        break;
    }
    return nextafterf((float)(b * (1 + I8_SLACK) + I8_SLACK * sl + I8_TINY), INFINITY);
}

/* a + b rounded up (for thresholds that must not fall below the real sum) */
static float add_up(float a, float b) {
    float s = a + b;
    if (!(s < INFINITY)) return s;
    uint32_t w; /* the next float up, without a libm call on this path */
    memcpy(&w, &s, sizeof w);
    w = (w & 0x7fffffffu) == 0 ? 1u : w >> 31 ? w - 1 : w + 1;
    memcpy(&s, &w, sizeof s);
    return s;
}

/* Bounded max-heap of k floats. */
static void fheap_push(float *h, size_t *n, float v) {
    size_t c = (*n)++;
    while (c > 0 && h[(c - 1) / 2] < v) {
        h[c] = h[(c - 1) / 2];
        c = (c - 1) / 2;
    }
    h[c] = v;
}

static void fheap_replace_top(float *h, size_t n, float v) {
    size_t c = 0;
    for (;;) {
        size_t l = 2 * c + 1, big = c;
        float bv = v;
        if (l < n && h[l] > bv) big = l, bv = h[l];
        if (l + 1 < n && h[l + 1] > bv) big = l + 1, bv = h[l + 1];
        if (big == c) break;
        h[c] = h[big];
        c = big;
    }
    h[c] = v;
}

/* Rows of one 16-row group whose upper bound u is below T (mask bits):
 * they enter the k-heap. */
static void kupdate(i8query *qq, float *kh, size_t k, const float *v, unsigned mask) {
    for (; mask; mask &= mask - 1) {
        float x = v[__builtin_ctz(mask)];
        if (!(x < qq->kth)) continue;
        if (qq->kn < k)
            fheap_push(kh, &qq->kn, x);
        else
            fheap_replace_top(kh, k, x);
        if (qq->kn == k) {
            qq->kth = kh[0];
            qq->thr = add_up(kh[0], 2 * qq->b0);
        }
    }
}

#if I8_HAVE
/* The threshold test of one 16-row group for one query. With beta split
 * into the query's b0 and the row's |q~| ge, w = v' - |q~| ge and
 * u = v' + |q~| ge: v lies in [w - b0, u + b0]. T is the k-th smallest u,
 * and a row is a candidate when w < T + 2 b0 (the top comment's argument
 * with a bound per row). Candidates are appended with a vector compress and
 * no branch; rows with u < T go through the k-heap. */
#define I8_TEST(acc, c)                                                                                                \
    do {                                                                                                               \
        size_t b0_ = base + (c)*16;                                                                                    \
        __m512 v_ = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc, off)),                                    \
                                    _mm512_mul_ps(_mm512_loadu_ps(p->gm + b0_), sq), _mm512_loadu_ps(p->ga + b0_));    \
        __m512 e_ = _mm512_loadu_ps(p->ge + b0_);                                                                      \
        __m512 w_ = _mm512_fnmadd_ps(qt, e_, v_);                                                                      \
        __mmask16 m_ = _mm512_cmp_ps_mask(w_, thr, _CMP_LT_OQ);                                                        \
        __m512i i_ = _mm512_add_epi32(iota, _mm512_set1_epi32((int)b0_));                                              \
        _mm512_storeu_ps(qq->cv + qq->cn, _mm512_maskz_compress_ps(m_, w_));                                           \
        _mm512_storeu_si512(qq->ci + qq->cn, _mm512_maskz_compress_epi32(m_, i_));                                     \
        qq->cn += (size_t)__builtin_popcount(m_);                                                                      \
        __m512 u_ = _mm512_fmadd_ps(qt, e_, v_);                                                                       \
        __mmask16 m2_ = _mm512_cmp_ps_mask(u_, kth, _CMP_LT_OQ);                                                       \
        if (m2_) {                                                                                                     \
            float t_[16];                                                                                              \
            _mm512_storeu_ps(t_, u_);                                                                                  \
            kupdate(qq, kh, s->k, t_, m2_);                                                                            \
            thr = _mm512_set1_ps(qq->thr);                                                                             \
            kth = _mm512_set1_ps(qq->kth);                                                                             \
        }                                                                                                              \
    } while (0)

/* The tests of one block, apart from the scoring loop: the heap updates
 * call functions, and calls clobber every vector register, so the
 * accumulators come through memory (acc[r * 4 + c]). */
I8_TARGET __attribute__((noinline)) static void i8_tests(const knn_i8 *p, knn_i8_scratch *s, size_t qr, size_t base,
                                                         const __m512i *acc) {
    const __m512i iota = _mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    for (size_t r = 0; r < I8_R; r++) {
        i8query *qq = &s->qs[qr + r];
        float *kh = s->kheap + (qr + r) * s->k;
        __m512i off = _mm512_set1_epi32(qq->off);
        __m512 sq = _mm512_set1_ps(qq->sq), thr = _mm512_set1_ps(qq->thr), kth = _mm512_set1_ps(qq->kth),
               qt = _mm512_set1_ps(qq->qt);
        I8_TEST(_mm512_load_si512(acc + 4 * r), 0);
        I8_TEST(_mm512_load_si512(acc + 4 * r + 1), 1);
        I8_TEST(_mm512_load_si512(acc + 4 * r + 2), 2);
        I8_TEST(_mm512_load_si512(acc + 4 * r + 3), 3);
    }
}

/* Scores of I8_R queries against I8_ROWS rows (one packed block), then the
 * threshold tests: 16 accumulators, each a 16-row group for one query. */
I8_TARGET static void i8_block(const knn_i8 *p, knn_i8_scratch *s, size_t qr, size_t blk) {
    size_t dp4 = p->dp4;
    const int32_t *q = s->q4 + qr * dp4;
    const uint8_t *pb = p->pack + blk * dp4 * 256;
    __m512i a00 = _mm512_setzero_si512(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00,
            a20 = a00, a21 = a00, a22 = a00, a23 = a00, a30 = a00, a31 = a00, a32 = a00, a33 = a00;
    for (size_t t = 0; t < dp4; t++, pb += 256) {
        __m512i g0 = _mm512_load_si512(pb), g1 = _mm512_load_si512(pb + 64), g2 = _mm512_load_si512(pb + 128),
                g3 = _mm512_load_si512(pb + 192);
        __m512i b = _mm512_set1_epi32(q[t]);
        a00 = _mm512_dpbusd_epi32(a00, g0, b), a01 = _mm512_dpbusd_epi32(a01, g1, b);
        a02 = _mm512_dpbusd_epi32(a02, g2, b), a03 = _mm512_dpbusd_epi32(a03, g3, b);
        b = _mm512_set1_epi32(q[dp4 + t]);
        a10 = _mm512_dpbusd_epi32(a10, g0, b), a11 = _mm512_dpbusd_epi32(a11, g1, b);
        a12 = _mm512_dpbusd_epi32(a12, g2, b), a13 = _mm512_dpbusd_epi32(a13, g3, b);
        b = _mm512_set1_epi32(q[2 * dp4 + t]);
        a20 = _mm512_dpbusd_epi32(a20, g0, b), a21 = _mm512_dpbusd_epi32(a21, g1, b);
        a22 = _mm512_dpbusd_epi32(a22, g2, b), a23 = _mm512_dpbusd_epi32(a23, g3, b);
        b = _mm512_set1_epi32(q[3 * dp4 + t]);
        a30 = _mm512_dpbusd_epi32(a30, g0, b), a31 = _mm512_dpbusd_epi32(a31, g1, b);
        a32 = _mm512_dpbusd_epi32(a32, g2, b), a33 = _mm512_dpbusd_epi32(a33, g3, b);
    }
    __m512i acc[16] = {a00, a01, a02, a03, a10, a11, a12, a13, a20, a21, a22, a23, a30, a31, a32, a33};
    i8_tests(p, s, qr, blk * I8_ROWS, acc);
}

/* Four float dot products of q with rows r[0..3], any summation order
 * (knn.c's bound allows it): four independent chains hide the latency. */
I8_TARGET static void dot4(const float *q, const float *const *r, size_t n, float *out) {
    __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
    for (size_t e = 0; e < n; e += 16) { /* the rows come from memory: whole vectors by plain loads (onx_load16) */
        int64_t left = (int64_t)(n - e);
        __m512 x = onx_load16(q + e, left);
        s0 = _mm512_fmadd_ps(x, onx_load16(r[0] + e, left), s0);
        s1 = _mm512_fmadd_ps(x, onx_load16(r[1] + e, left), s1);
        s2 = _mm512_fmadd_ps(x, onx_load16(r[2] + e, left), s2);
        s3 = _mm512_fmadd_ps(x, onx_load16(r[3] + e, left), s3);
    }
    out[0] = _mm512_reduce_add_ps(s0);
    out[1] = _mm512_reduce_add_ps(s1);
    out[2] = _mm512_reduce_add_ps(s2);
    out[3] = _mm512_reduce_add_ps(s3);
}
#else
static void i8_block(const knn_i8 *p, knn_i8_scratch *s, size_t qr, size_t blk) {
    (void)p, (void)s, (void)qr, (void)blk; /* never called: knn_i8_ok() is 0 */
}
static void dot4(const float *q, const float *const *r, size_t n, float *out) {
    (void)q, (void)r, (void)n, (void)out; /* never called: knn_i8_ok() is 0 */
}
#endif

/* Score one query's candidates of this tile as the float GEMM pass would and
 * offer them to its float heap; the tile's rows are still in cache. A
 * candidate whose lower bound w - b0 is above the full float heap's top F
 * is skipped: its v > F >= the final top, so the float pass would have
 * dropped it and knn.c's certification covers it as it covers the rows the
 * heap dropped. */
static void flush(const knn_job *j, i8query *qq, const float *q, kent *h, size_t *hn) {
    int l2 = j->m == DIST_SQEUCLIDEAN || j->m == DIST_EUCLIDEAN;
    float alpha = l2 ? -2.0f : -1.0f, thr = *hn == j->kc ? h[0].v : INFINITY;
    float skip = *hn == j->kc ? add_up(thr, qq->b0) : INFINITY, c[4];
    const float *r[4];
    size_t rows[4], nb = 0;
    for (size_t e = 0; e <= qq->cn; e++) {
        if (e < qq->cn) { /* gather four, score them together */
            float x = qq->cv[e];
            if (!(x < qq->thr) || x > skip) continue;
            rows[nb] = qq->ci[e];
            r[nb] = j->g + rows[nb] * j->dim;
            if (++nb < 4) continue;
        }
        if (nb == 0) break;
        for (size_t f = nb; f < 4; f++) r[f] = r[0];
        dot4(q, r, j->dim, c);
        for (size_t f = 0; f < nb; f++) {
            float x = alpha * c[f];
            float v = l2 ? x + j->gadd[rows[f]] : j->m == DIST_COSINE ? x * j->gmul[rows[f]] : x;
            knn_offer(j, v, rows[f], h, hn, &thr);
        }
        if (*hn == j->kc) skip = add_up(thr, qq->b0);
        nb = 0;
    }
    qq->cn = 0;
}

int knn_i8_block(const knn_job *j, const knn_i8 *p, knn_i8_scratch *s, size_t q0, size_t bq, kent *heaps, size_t *hn) {
    size_t nqp = (bq + I8_R - 1) / I8_R * I8_R, dp4 = p->dp4;
    for (size_t i = 0; i < nqp; i++) {
        i8query *qq = &s->qs[i];
        int8_t *q8 = (int8_t *)(void *)(s->q4 + i * dp4);
        qq->kn = qq->cn = 0;
        qq->cv = s->cv + (i % I8_R) * I8_CAP;
        qq->ci = s->ci + (i % I8_R) * I8_CAP;
        qq->kth = INFINITY;
        if (i >= bq) { /* padding: never a candidate */
            memset(q8, 0, dp4 * 4);
            qq->thr = qq->kth = -INFINITY, qq->sq = 0, qq->off = 0, qq->b0 = 0, qq->qt = 0;
            continue;
        }
        const float *q = j->q + (q0 + i) * j->dim;
        double e2, t2, n2;
        qq->sq = quantise(q, j->dim, dp4, q8, &e2, &t2, &n2);
        int32_t sum = 0;
        for (size_t e = 0; e < j->dim; e++) sum += q8[e];
        qq->off = 128 * sum;
        qq->b0 = beta0(j, p, sqrt(e2), sqrt(t2), n2);
        qq->qt = nextafterf((float)sqrt(t2), INFINITY);
        qq->thr = INFINITY;
    }
    size_t nblk = p->ngp / I8_ROWS;
    for (size_t b0 = 0; b0 < nblk; b0 += I8_TILE) {
        size_t b1 = b0 + I8_TILE < nblk ? b0 + I8_TILE : nblk;
        for (size_t qr = 0; qr < nqp; qr += I8_R) {
            for (size_t b = b0; b < b1; b++) i8_block(p, s, qr, b);
            for (size_t i = qr; i < qr + I8_R && i < bq; i++)
                flush(j, &s->qs[i], j->q + (q0 + i) * j->dim, heaps + i * j->kc, &hn[i]);
        }
    }
    return TR_OK;
}
