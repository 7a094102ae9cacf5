/* knn.c - exact k-nearest-neighbour search: float GEMM filter, double rescoring. */
#include "knn.h"
#include "knn_int.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How the answer stays exact although the GEMM runs in float.
 *
 * Pass 1 (per query block x gallery block): C = alpha * Q G^T by SGEMM, then
 * a per-row value v that orders rows like the distance does:
 *   L2:     v = |g|^2 - 2 q.g      d = |q|^2 + v
 *   cosine: v = -q.g / |g|         d = 1 + v / |q|
 *   dot:    v = -q.g               d = v
 * A bounded max-heap per query keeps the kc = min(k + k/8 + 4, eligible) smallest
 * v (more than k: the slack absorbs float error).
 * Pass 2 (per query): every candidate is rescored in double with dist_one()
 * and sorted by (distance, index). A row left out of the heap had v >= T, the
 * heap's largest v, so its true distance is at least d(T) - E, E a rigorous
 * bound on the float error (|fl(q.g) - q.g| <= gamma_dim |q||g|, Higham,
 * whatever the summation order, times 3 for the rounding of the norms and of
 * v; plus dim + 8 times 2^-146 for products and sums that fall below float's
 * normal range, which the relative bound does not cover). When the k-th rescored distance is strictly below d(T) - E no
 * excluded row can displace or tie it and the answer is exactly the double brute-force one. When that check fails
 * (designed ties, many duplicates, a zero query under cosine) the query is answered by an exact double scan of the
 * whole gallery. Memory is O(block_q * block_g + block_q * kc) per thread whatever nq * ng is. */

#define KNN_BLOCK_Q 1024
#define KNN_BLOCK_G 512
#define KNN_HEAP_BYTES ((size_t)4 << 20) /* per thread, caps block_q for big k */
#define KNN_MAX_NORM2 1e30               /* beyond this float products may overflow */
#define KNN_U (1.0 / 16777216.0)         /* float unit roundoff 2^-24 */
#define KNN_I8_MIN_Q 32                  /* auto: batches from which packing the gallery pays */
#define KNN_I8_MAX_K 1024                /* auto: beyond, the candidates are most of the gallery */

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define KNN_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define KNN_CLONES
#endif

typedef float f4 __attribute__((vector_size(16)));
typedef double d4 __attribute__((vector_size(32)));

/* |v|^2 in double (every product exact), eight lanes of partial sums. */
KNN_CLONES static double sum_sq(const float *v, size_t dim) {
    d4 a = {0, 0, 0, 0}, b = {0, 0, 0, 0};
    size_t e = 0;
    for (; e + 8 <= dim; e += 8) {
        f4 x, y;
        memcpy(&x, v + e, sizeof x);
        memcpy(&y, v + e + 4, sizeof y);
        d4 dx = __builtin_convertvector(x, d4), dy = __builtin_convertvector(y, d4);
        a += dx * dx;
        b += dy * dy;
    }
    a += b;
    double s = (a[0] + a[1]) + (a[2] + a[3]);
    for (; e < dim; e++) s += (double)v[e] * v[e];
    return s;
}

static int kent_less(const kent *a, const kent *b) {
    return a->v < b->v || (a->v == b->v && a->i < b->i);
}

/* Max-heap of approximate entries, largest (v, i) at h[0]. */
static void kheap_push(kent *h, size_t *n, kent e) {
    size_t c = (*n)++;
    while (c > 0) {
        size_t p = (c - 1) / 2;
        if (!kent_less(&h[p], &e)) break;
        h[c] = h[p];
        c = p;
    }
    h[c] = e;
}

static void kheap_replace_top(kent *h, size_t n, kent e) {
    size_t c = 0;
    for (;;) {
        size_t l = 2 * c + 1, big = c;
        const kent *bv = &e;
        if (l < n && kent_less(bv, &h[l])) big = l, bv = &h[l];
        if (l + 1 < n && kent_less(bv, &h[l + 1])) big = l + 1, bv = &h[l + 1];
        if (big == c) break;
        h[c] = h[big];
        c = big;
    }
    h[c] = e;
}

static int kcand_cmp(const void *pa, const void *pb) {
    const kcand *a = pa, *b = pb;
    if (a->d < b->d) return -1;
    if (a->d > b->d) return 1;
    return (a->i > b->i) - (a->i < b->i);
}

static int kcand_less(const kcand *a, const kcand *b) {
    return a->d < b->d || (a->d == b->d && a->i < b->i);
}

/* Offer one row of the tile to a query's heap, turning c[e] into the
 * ordering value on the fly: mode 0 v = c + aux (L2), 1 v = c * aux
 * (cosine), 2 v = c (dot). Eight rows at a time are rejected with one vector
 * compare against the heap's top; only rows below it take the scalar path. */
typedef float f8 __attribute__((vector_size(32)));
typedef int i8 __attribute__((vector_size(32)));

static inline __attribute__((always_inline)) void offer(const knn_job *j, float v, size_t row, kent *h, size_t *hn,
                                                        float *thr) {
    if (!(v < *thr) || !knn_eligible(j, row)) return;
    kent ke = {v, (int64_t)row};
    if (*hn < j->kc)
        kheap_push(h, hn, ke);
    else
        kheap_replace_top(h, *hn, ke);
    if (*hn == j->kc) *thr = h[0].v;
}

void knn_offer(const knn_job *j, float v, size_t row, kent *h, size_t *hn, float *thr) {
    offer(j, v, row, h, hn, thr);
}

/* Macros, not functions: 32-byte vectors cannot cross a non-AVX call ABI. */
#define LOAD8(dst, p)                                                                                                  \
    do {                                                                                                               \
        memcpy(&(dst), (p), sizeof(dst));                                                                              \
    } while (0)
#define VALUE8(out, e)                                                                                                 \
    do {                                                                                                               \
        f8 x_;                                                                                                         \
        LOAD8(out, c + (e));                                                                                           \
        if (mode != 2) {                                                                                               \
            LOAD8(x_, aux + (e));                                                                                      \
            out = mode == 0 ? out + x_ : out * x_;                                                                     \
        }                                                                                                              \
    } while (0)

static inline __attribute__((always_inline)) void scan_mode(const knn_job *j, const float *c, const float *aux,
                                                            int mode, size_t n, size_t base, kent *h, size_t *hn) {
    float thr = *hn == j->kc ? h[0].v : INFINITY;
    f8 t8 = {thr, thr, thr, thr, thr, thr, thr, thr};
    size_t e = 0, stop;
    /* 32 rows per test while the heap rejects nearly everything, then 8 */
    for (int step = 32; step >= 8; step -= 24) {
        for (; e + (size_t)step <= n; e += (size_t)step) {
            f8 v0, v1, v2, v3;
            VALUE8(v0, e);
            i8 mk = v0 < t8;
            if (step == 32) {
                VALUE8(v1, e + 8);
                VALUE8(v2, e + 16);
                VALUE8(v3, e + 24);
                mk |= (v1 < t8) | (v2 < t8) | (v3 < t8);
            }
            long long w[4];
            memcpy(w, &mk, sizeof w);
            if ((w[0] | w[1] | w[2] | w[3]) == 0) continue;
            for (stop = e + (size_t)step; e < stop; e++) {
                float v = mode == 0 ? c[e] + aux[e] : mode == 1 ? c[e] * aux[e] : c[e];
                offer(j, v, base + e, h, hn, &thr);
            }
            e -= (size_t)step;
            t8 = (f8){thr, thr, thr, thr, thr, thr, thr, thr};
        }
    }
    for (; e < n; e++) {
        float v = mode == 0 ? c[e] + aux[e] : mode == 1 ? c[e] * aux[e] : c[e];
        offer(j, v, base + e, h, hn, &thr);
    }
}

KNN_CLONES static void scan_l2(const knn_job *j, const float *c, const float *a, size_t n, size_t base, kent *h,
                               size_t *hn) {
    scan_mode(j, c, a, 0, n, base, h, hn);
}
KNN_CLONES static void scan_cos(const knn_job *j, const float *c, const float *a, size_t n, size_t base, kent *h,
                                size_t *hn) {
    scan_mode(j, c, a, 1, n, base, h, hn);
}
KNN_CLONES static void scan_dot(const knn_job *j, const float *c, const float *a, size_t n, size_t base, kent *h,
                                size_t *hn) {
    scan_mode(j, c, a, 2, n, base, h, hn);
}

static void scan_row(const knn_job *j, const float *c, size_t g0, size_t n, kent *h, size_t *hn) {
    if (j->m == DIST_SQEUCLIDEAN || j->m == DIST_EUCLIDEAN)
        scan_l2(j, c, j->gadd + g0, n, g0, h, hn);
    else if (j->m == DIST_COSINE)
        scan_cos(j, c, j->gmul + g0, n, g0, h, hn);
    else
        scan_dot(j, c, NULL, n, g0, h, hn);
}

static void exact_one(const knn_job *j, const float *q, size_t row, kcand *c) {
    const float *g = j->g + row * j->dim;
    c->i = (int64_t)row;
    if (j->m == DIST_EUCLIDEAN) {
        c->pre = dist_one(DIST_SQEUCLIDEAN, q, g, j->dim);
        c->d = sqrt(c->pre);
    } else {
        c->d = c->pre = dist_one(j->m, q, g, j->dim);
    }
}

/* Push e into the max-heap h of n (at most k) candidates ordered by (d, i). */
static void heap_push(kcand *h, size_t *n, size_t k, const kcand *e) {
    size_t c;
    if (*n < k) {
        c = (*n)++;
        while (c > 0) {
            size_t p = (c - 1) / 2;
            if (!kcand_less(&h[p], e)) break;
            h[c] = h[p];
            c = p;
        }
    } else if (kcand_less(e, &h[0])) {
        c = 0;
        for (;;) {
            size_t l = 2 * c + 1, big = c;
            const kcand *bv = e;
            if (l < *n && kcand_less(bv, &h[l])) big = l, bv = &h[l];
            if (l + 1 < *n && kcand_less(bv, &h[l + 1])) big = l + 1, bv = &h[l + 1];
            if (big == c) break;
            h[c] = h[big];
            c = big;
        }
    } else {
        return;
    }
    h[c] = *e;
}

/* The exact double scan: rows [r0, r1) of the gallery into one query's max-heap h of *n (at most k) candidates
 * ordered by (d, i). The Euclidean metrics take four rows a call (dist_sqeuclidean4, the same sums as
 * exact_one's), pushed in row order as one at a time would be, so scanning a gallery range by range gives the
 * same heap as one pass. */
static void scan_exact(const knn_job *j, const float *q, size_t r0, size_t r1, kcand *h, size_t *n) {
    size_t k = j->k, rows[4], nr = 0;
    int l2 = j->m == DIST_SQEUCLIDEAN || j->m == DIST_EUCLIDEAN;
    for (size_t row = r0; row < r1; row++) {
        if (!knn_eligible(j, row)) continue;
        kcand e;
        if (!l2) {
            exact_one(j, q, row, &e);
            heap_push(h, n, k, &e);
            continue;
        }
        rows[nr++] = row;
        if (nr < 4) continue;
        const float *g[4];
        double pre[4];
        for (int r = 0; r < 4; r++) g[r] = j->g + rows[r] * j->dim;
        dist_sqeuclidean4(q, g, j->dim, pre);
        for (int r = 0; r < 4; r++) {
            e.i = (int64_t)rows[r], e.pre = pre[r];
            e.d = j->m == DIST_EUCLIDEAN ? sqrt(pre[r]) : pre[r];
            heap_push(h, n, k, &e);
        }
        nr = 0;
    }
    for (size_t r = 0; r < nr; r++) { /* the range's last rows, fewer than four */
        kcand e;
        exact_one(j, q, rows[r], &e);
        heap_push(h, n, k, &e);
    }
}

/* Query qi's answer: its n candidates, sorted. */
static void emit(const knn_job *j, size_t qi, const kcand *cand, size_t n) {
    knn_hit *out = j->out + qi * j->k;
    for (size_t e = 0; e < j->k; e++) {
        out[e].index = e < n ? cand[e].i : -1;
        out[e].dist = e < n ? cand[e].d : INFINITY;
    }
}

/* Gallery bytes per tile of the exact scans: a tile stays in cache while every query of a group meets it. */
#define EXACT_TILE_BYTES ((size_t)256 << 10)
/* Bytes of candidate heaps per group of queries scanned together. */
#define EXACT_HEAP_BYTES ((size_t)4 << 20)

/* Queries per group of exact scans (at least 1). */
static size_t exact_group(const knn_job *j) {
    size_t g = EXACT_HEAP_BYTES / ((j->k ? j->k : 1) * sizeof(kcand));
    return g < 1 ? 1 : g > j->bq ? j->bq : g;
}

/* The exact scans of the queries qs[0..nq) of a block (the ones the float pass could not certify), a group of
 * queries at a time over gallery tiles: one query at a time streamed the whole gallery from memory per query (an
 * untrained network's embeddings, in a narrow cone, fail the certification for most queries). heaps: room for
 * exact_group(j) heaps of k. */
static void exact_many(const knn_job *j, const size_t *qs, size_t nq, kcand *heaps, size_t *hn) {
    size_t grp = exact_group(j), tile = EXACT_TILE_BYTES / (j->dim * sizeof(float));
    if (tile < 16) tile = 16;
    for (size_t a = 0; a < nq; a += grp) {
        size_t na = nq - a < grp ? nq - a : grp;
        memset(hn, 0, na * sizeof *hn);
        for (size_t r0 = 0; r0 < j->ng; r0 += tile) {
            size_t r1 = j->ng - r0 < tile ? j->ng : r0 + tile;
            for (size_t u = 0; u < na; u++) scan_exact(j, j->q + qs[a + u] * j->dim, r0, r1, heaps + u * j->k, &hn[u]);
        }
        for (size_t u = 0; u < na; u++) {
            qsort(heaps + u * j->k, hn[u], sizeof *heaps, kcand_cmp);
            emit(j, qs[a + u], heaps + u * j->k, hn[u]);
        }
    }
}

/* Rescore one query's heap in double, certify it (see the top comment) and
 * write its answer; when the float pass cannot prove the order, return 1 and
 * leave the query to the exact scan (exact_many). cand has room for kc. */
static int finish_query(const knn_job *j, size_t qi, const kent *h, size_t hn, kcand *cand) {
    const float *q = j->q + qi * j->dim;
    size_t n, k = j->k;
    if (j->direct_all) return 1;
    double qn = sum_sq(q, j->dim);
    if (!(qn < KNN_MAX_NORM2)) return 1;
    for (size_t e = 0; e < hn; e++) /* the rows left the cache long ago: fetch them all at once */
        for (size_t o = 0; o < j->dim; o += 16) __builtin_prefetch(j->g + (size_t)h[e].i * j->dim + o);
    for (size_t e = 0; e < hn; e++) exact_one(j, q, (size_t)h[e].i, &cand[e]);
    qsort(cand, hn, sizeof *cand, kcand_cmp);
    n = hn < k ? hn : k;
    if (hn == j->kc && j->n_elig > j->kc && n > 0) {
        /* some eligible rows were left out: certify */
        double tv = h[0].v, td, bound, c = 3.0 * ((double)j->dim + 8.0) * KNN_U;
        double uf = ((double)j->dim + 8.0) * 0x1p-146; /* underflow, absolute, in v's units */
        switch (j->m) {
        case DIST_COSINE:
            if (qn == 0) return 1;
            td = 1.0 + tv / sqrt(qn);
            bound = c + (j->gmin > 0 ? uf / sqrt(qn * j->gmin) : 0); /* v = c / |g|, d = 1 + v / |q| */
            break;
        case DIST_DOT:
            td = tv;
            bound = c * sqrt(qn * j->gmax) + uf;
            break;
        default:
            td = qn + tv;
            bound = c * (qn + j->gmax) + 3 * uf;
            break;
        }
        double worst = 0;
        for (size_t e = 0; e < n; e++)
            if (e == 0 || cand[e].pre > worst) worst = cand[e].pre;
        if (!(worst < td - bound)) return 1;
    }
    emit(j, qi, cand, n);
    return 0;
}

/* Worker scratch: the GEMM tile, the heaps of one query block, candidates. */
typedef struct {
    float *tile;
    kent *heaps;
    size_t *hn;
    kcand *cand;
    size_t *fall; /* the block's queries left to the exact scan */
    kcand *xheap; /* exact_group(j) heaps of k */
    size_t *xn;   /* their sizes */
    knn_i8_scratch *i8;
} knn_scratch;

static void scratch_free(knn_scratch *s) {
    knn_i8_scratch_free(s->i8);
    free(s->tile);
    free(s->heaps);
    free(s->hn);
    free(s->cand);
    free(s->fall);
    free(s->xheap);
    free(s->xn);
}

static int scratch_alloc(const knn_job *j, knn_scratch *s) {
    size_t nc = j->kc ? j->kc : 1; /* finish_query rescores at most kc; exact_many has its own heaps */
    memset(s, 0, sizeof *s);
    /* sizes were checked for overflow in knn_search */
    if (j->i8 == NULL) s->tile = malloc(j->bq * j->bg * sizeof *s->tile);
    s->heaps = malloc(j->bq * (j->kc ? j->kc : 1) * sizeof *s->heaps);
    s->hn = malloc(j->bq * sizeof *s->hn);
    s->cand = malloc(nc * sizeof *s->cand);
    s->fall = malloc(j->bq * sizeof *s->fall);
    s->xheap = malloc(exact_group(j) * (j->k ? j->k : 1) * sizeof *s->xheap);
    s->xn = malloc(exact_group(j) * sizeof *s->xn);
    if ((!j->i8 && !s->tile) || !s->heaps || !s->hn || !s->cand || !s->fall || !s->xheap || !s->xn ||
        (j->i8 && knn_i8_scratch_new(j, &s->i8) != TR_OK)) {
        scratch_free(s);
        return TR_ENOMEM;
    }
    return TR_OK;
}

/* One query block; *fell counts the queries the exact scan answered. */
static int run_block(const knn_job *j, knn_scratch *s, size_t q0, size_t *fell) {
    size_t bq = j->nq - q0 < j->bq ? j->nq - q0 : j->bq;
    const float *qb = j->q + q0 * j->dim;
    float alpha = (j->m == DIST_SQEUCLIDEAN || j->m == DIST_EUCLIDEAN) ? -2.0f : -1.0f;
    memset(s->hn, 0, bq * sizeof *s->hn);
    if (j->i8 && j->kc > 0) {
        int rc = knn_i8_block(j, j->i8, s->i8, q0, bq, s->heaps, s->hn);
        if (rc != TR_OK) return rc;
    }
    for (size_t g0 = 0; !j->i8 && !j->direct_all && j->kc > 0 && g0 < j->ng; g0 += j->bg) {
        size_t bg = j->ng - g0 < j->bg ? j->ng - g0 : j->bg;
        const float *gb = j->g + g0 * j->dim;
        if (bq == 1)
            cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)bg, (int)j->dim, alpha, gb, (int)j->dim, qb, 1, 0.0f, s->tile,
                        1);
        else
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)bq, (int)bg, (int)j->dim, alpha, qb, (int)j->dim,
                        gb, (int)j->dim, 0.0f, s->tile, (int)bg);
        for (size_t i = 0; i < bq; i++) {
            scan_row(j, s->tile + i * bg, g0, bg, s->heaps + i * j->kc, &s->hn[i]);
        }
    }
    size_t nf = 0;
    for (size_t i = 0; i < bq; i++)
        if (finish_query(j, q0 + i, s->heaps + i * j->kc, s->hn[i], s->cand)) s->fall[nf++] = q0 + i;
    exact_many(j, s->fall, nf, s->xheap, s->xn);
    *fell += nf;
    return TR_OK;
}

static void *worker(void *arg) {
    knn_job *j = arg;
    knn_scratch s;
    size_t fell = 0;
    if (scratch_alloc(j, &s) != TR_OK) {
        pthread_mutex_lock(&j->mu);
        if (j->rc == TR_OK)
            j->rc = tr_seterr(&j->err, TR_ENOMEM, "", "knn: cannot allocate a %zu x %zu search tile", j->bq, j->bg);
        pthread_mutex_unlock(&j->mu);
        return NULL;
    }
    for (;;) {
        pthread_mutex_lock(&j->mu);
        size_t b = j->next_block++;
        int stop = j->rc != TR_OK;
        pthread_mutex_unlock(&j->mu);
        if (stop || b * j->bq >= j->nq) break;
        if (run_block(j, &s, b * j->bq, &fell) != TR_OK) {
            pthread_mutex_lock(&j->mu);
            if (j->rc == TR_OK) j->rc = tr_seterr(&j->err, TR_ENOMEM, "", "knn: cannot grow a candidate list");
            pthread_mutex_unlock(&j->mu);
            break;
        }
    }
    pthread_mutex_lock(&j->mu);
    j->n_fallback += fell;
    pthread_mutex_unlock(&j->mu);
    scratch_free(&s);
    return NULL;
}

int knn_search(dist_metric m, const float *q, size_t nq, const float *g, size_t ng, size_t dim, size_t k,
               const knn_opts *opts, knn_hit *out, tr_err *err) {
    knn_opts o0;
    knn_job j;
    float *gbuf = NULL;
    knn_i8 *pk = NULL;
    pthread_t *tids = NULL;
    int rc = TR_OK, threads, mu_ok = 0;
    size_t nthr = 0, tmp;
    memset(&o0, 0, sizeof o0);
    if (opts == NULL) opts = &o0;
    if (opts->n_fallback) *opts->n_fallback = 0;
    if (opts->int8_used) *opts->int8_used = 0;
    if ((unsigned)m >= DIST_COUNT) return tr_seterr(err, TR_EINVAL, "metric", "unknown metric %d", (int)m);
    if (k == 0) return tr_seterr(err, TR_EINVAL, "k", "k must be at least 1");
    if (dim == 0 || dim > INT_MAX) return tr_seterr(err, TR_EINVAL, "dim", "dimension %zu is out of range", dim);
    if (opts->use_filter && opts->labels == NULL)
        return tr_seterr(err, TR_EINVAL, "filter_label", "the gallery has no labels to filter on");
    if (!tr_size_mul(nq, k, &tmp) || tmp > SIZE_MAX / sizeof *out)
        return tr_seterr(err, TR_ELIMIT, "k", "%zu queries x k = %zu results are too many", nq, k);
    if (nq == 0) return TR_OK;

    memset(&j, 0, sizeof j);
    j.m = m, j.q = q, j.g = g, j.nq = nq, j.ng = ng, j.dim = dim, j.k = k, j.out = out;
    j.labels = opts->labels, j.use_filter = opts->use_filter, j.filter = opts->filter_label;
    for (size_t i = 0; i < nq; i++) {
        double s = sum_sq(q + i * dim, dim);
        if (!isfinite(s)) {
            char f[64];
            snprintf(f, sizeof f, "queries[%zu]", i);
            return tr_seterr(err, TR_EINVAL, f, "query %zu has a value that is not finite", i);
        }
    }
    for (size_t r = 0; r < ng; r++) j.n_elig += (size_t)knn_eligible(&j, r);
    j.kc = (k < SIZE_MAX / 4 ? k + k / 8 : SIZE_MAX / 2) + 4;
    if (j.kc > j.n_elig) j.kc = j.n_elig;

    /* gallery norms: |g|^2 (L2) or 1/|g| (cosine) as floats, and their max */
    if (ng > 0) {
        const float *sq = opts->g_sqnorm;
        int need_buf = sq == NULL || m == DIST_COSINE;
        if (need_buf) {
            gbuf = malloc(ng * sizeof *gbuf); /* ng * dim floats exist, so ng * 4 fits */
            if (gbuf == NULL) {
                rc = tr_seterr(err, TR_ENOMEM, "", "knn: cannot allocate %zu gallery norms", ng);
                goto fail;
            }
        }
        for (size_t r = 0; r < ng; r++) {
            double s = sq ? (double)sq[r] : sum_sq(g + r * dim, dim);
            if (isnan(s)) {
                char f[64];
                snprintf(f, sizeof f, "gallery[%zu]", r);
                rc = tr_seterr(err, TR_EINVAL, f, "gallery row %zu has a value that is not finite", r);
                goto fail;
            }
            if (s > j.gmax) j.gmax = s;
            if (s > 0 && (j.gmin == 0 || s < j.gmin)) j.gmin = s;
            if (m == DIST_COSINE)
                gbuf[r] = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
            else if (need_buf)
                gbuf[r] = (float)s;
        }
        if (m == DIST_COSINE)
            j.gmul = gbuf;
        else
            j.gadd = sq ? sq : gbuf;
        j.direct_all = !(j.gmax < KNN_MAX_NORM2);
    }

    j.bg = opts->block_g ? opts->block_g : KNN_BLOCK_G;
    if (j.bg > ng) j.bg = ng ? ng : 1;
    if (j.bg > INT_MAX) j.bg = INT_MAX;
    threads = opts->threads > 0 ? opts->threads : 1;
    /* Workers each run their own SGEMM; if OpenBLAS is itself threaded, two
     * levels of threads would fight over the cores, so let OpenBLAS thread
     * one worker's GEMMs instead (measured equal within noise, bench_knn). */
    if (threads > 1 && openblas_get_num_threads() > 1) threads = 1;
    j.bq = opts->block_q ? opts->block_q : KNN_BLOCK_Q;
    if (j.kc > 0 && j.bq > KNN_HEAP_BYTES / (j.kc * sizeof(kent)) && !opts->block_q)
        j.bq = KNN_HEAP_BYTES / (j.kc * sizeof(kent));
    if (j.bq == 0) j.bq = 1;
    /* give every thread a block when there are few queries */
    if (!opts->block_q && threads > 1 && (nq + (size_t)threads - 1) / (size_t)threads < j.bq)
        j.bq = (nq + (size_t)threads - 1) / (size_t)threads;
    if (j.bq > nq) j.bq = nq;
    if (!tr_size_mul(j.bq, j.bg, &tmp) || tmp > SIZE_MAX / sizeof(float) || !tr_size_mul(j.bq, j.kc + 1, &tmp) ||
        tmp > SIZE_MAX / sizeof(kent) || (j.kc > k ? j.kc : k) > SIZE_MAX / sizeof(kcand)) {
        rc = tr_seterr(err, TR_ELIMIT, "", "knn: block %zu x %zu is too large", j.bq, j.bg);
        goto fail;
    }

    if (opts->int8_pass >= 0 && !j.direct_all && j.kc > 0 && knn_i8_ok(&j) &&
        (opts->int8_pass > 0 || (nq >= KNN_I8_MIN_Q && k <= KNN_I8_MAX_K))) {
        if ((rc = knn_i8_new(&j, &pk, err)) != TR_OK) goto fail;
        j.i8 = pk;
    }
    if (pthread_mutex_init(&j.mu, NULL) != 0) {
        rc = tr_seterr(err, TR_ENOMEM, "", "knn: cannot create a mutex");
        goto fail;
    }
    mu_ok = 1;
    size_t nblocks = (nq + j.bq - 1) / j.bq;
    nthr = (size_t)threads < nblocks ? (size_t)threads : nblocks;
    if (nthr > 1) {
        tids = calloc(nthr - 1, sizeof *tids);
        if (tids == NULL) nthr = 1;
    }
    size_t started = 0;
    for (; started + 1 < nthr; started++)
        if (pthread_create(&tids[started], NULL, worker, &j) != 0) break;
    worker(&j);
    for (size_t t = 0; t < started; t++) pthread_join(tids[t], NULL);
    if (j.rc != TR_OK) {
        if (err) *err = j.err;
        rc = j.rc;
        goto fail;
    }
    if (opts->n_fallback) *opts->n_fallback = j.n_fallback;
    if (opts->int8_used) *opts->int8_used = j.i8 != NULL;
fail:
    if (mu_ok) pthread_mutex_destroy(&j.mu);
    free(tids);
    free(gbuf);
    knn_i8_free(pk);
    return rc;
}

typedef struct {
    int64_t label;
    size_t pos;
} vote_ent;

static int vote_cmp(const void *pa, const void *pb) {
    const vote_ent *a = pa, *b = pb;
    if (a->label != b->label) return a->label < b->label ? -1 : 1;
    return (a->pos > b->pos) - (a->pos < b->pos);
}

int knn_vote(const knn_hit *hits, size_t k, const int64_t *labels, int64_t *label, int *found, tr_err *err) {
    vote_ent *v = NULL;
    size_t n = 0, best_count = 0, best_pos = 0;
    *found = 0;
    if (labels == NULL || k == 0) return TR_OK;
    v = malloc(k * sizeof *v); /* k hits exist, so k * 16 bytes fit */
    if (v == NULL) return tr_seterr(err, TR_ENOMEM, "", "knn vote: cannot allocate %zu entries", k);
    for (size_t e = 0; e < k; e++)
        if (hits[e].index >= 0) v[n].label = labels[hits[e].index], v[n].pos = e, n++;
    qsort(v, n, sizeof *v, vote_cmp);
    for (size_t a = 0, b; a < n; a = b) {
        for (b = a; b < n && v[b].label == v[a].label; b++) {
        }
        /* v[a].pos is the group's nearest hit */
        if (b - a > best_count || (b - a == best_count && v[a].pos < best_pos)) {
            best_count = b - a, best_pos = v[a].pos;
            *label = v[a].label;
            *found = 1;
        }
    }
    free(v);
    return TR_OK;
}
