/* eval.c - retrieval metrics: Recall@1, Recall@5 and MAP@R over exact kNN. */
#include "eval.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "knn.h"

#define EVL_BUDGET ((size_t)64 << 20) /* bytes of knn hits per call */
#define EVL_KNN_BLOCK_Q 128           /* knn query tile for large k */

void evl_opts_default(evl_opts *o) {
    o->threads = 1;
    o->exclude_self = 0;
    o->map_at_r = 1;
    o->block = 0;
    o->map_exact = 0;
}

double evl_ap_at_r(const int64_t *ranked, size_t r, int64_t y) {
    size_t hits = 0;
    double s = 0.0;
    for (size_t i = 0; i < r; i++)
        if (ranked[i] == y) s += (double)++hits / (double)(i + 1);
    return r ? s / (double)r : 0.0;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Gallery rows labelled y, from the sorted label copy s[0..n). */
static size_t count_label(const int64_t *s, size_t n, int64_t y) {
    size_t lo = 0, hi = n;
    while (lo < hi) { /* first >= y */
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid] < y)
            lo = mid + 1;
        else
            hi = mid;
    }
    size_t a = lo;
    hi = n;
    while (lo < hi) { /* first > y */
        size_t mid = lo + (hi - lo) / 2;
        if (s[mid] <= y)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo - a;
}

/* Sort key of one gallery row: knn's (distance, index) order. */
typedef struct {
    double d;
    size_t i;
} evl_key;

static void d_swap(double *a, double *b) {
    double t = *a;
    *a = *b;
    *b = t;
}

/* A finite distance's bits as an unsigned key in the same order; -0 as +0, which compare equal. */
static uint64_t d_bits(double d) {
    uint64_t u;
    if (d == 0) d = 0.0;
    memcpy(&u, &d, sizeof u);
    return u >> 63 ? ~u : u | (UINT64_C(1) << 63);
}

/* The k-th smallest (0-based) of v[0..n), reordering v: quickselect with a median-of-three pivot and a three-way
 * partition (runs of equal distances cost one step). */
static double quick_kth(double *v, size_t n, size_t k) {
    size_t lo = 0, hi = n; /* the answer's position is in [lo, hi) */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2, last = hi - 1;
        if (v[mid] < v[lo]) d_swap(&v[mid], &v[lo]);
        if (v[last] < v[lo]) d_swap(&v[last], &v[lo]);
        if (v[last] < v[mid]) d_swap(&v[last], &v[mid]);
        double p = v[mid];
        size_t lt = lo, t = lo, gt = hi; /* [lo, lt) < p, [lt, t) == p, [gt, hi) > p */
        while (t < gt) {
            if (v[t] < p)
                d_swap(&v[lt++], &v[t++]);
            else if (v[t] > p)
                d_swap(&v[t], &v[--gt]);
            else
                t++;
        }
        if (k < lt)
            hi = lt;
        else if (k >= gt)
            lo = gt;
        else
            return p;
    }
    return v[lo];
}

#define SEL_BUCKETS 4096

/* The k-th smallest (0-based) of v[0..n), overwriting v: the keys' range in SEL_BUCKETS buckets, counted (no
 * branch to mispredict, where a quickselect over 60,000 distances stalled on every other comparison), then a
 * quickselect among the values of the bucket that holds rank k. cnt: SEL_BUCKETS counters. */
static double select_kth(double *v, size_t n, size_t k, size_t *cnt) {
    uint64_t lo = UINT64_MAX, hi = 0;
    for (size_t e = 0; e < n; e++) {
        uint64_t u = d_bits(v[e]);
        lo = u < lo ? u : lo, hi = u > hi ? u : hi;
    }
    int sh = 0;
    while (((hi - lo) >> sh) >= SEL_BUCKETS) sh++;
    memset(cnt, 0, SEL_BUCKETS * sizeof *cnt);
    for (size_t e = 0; e < n; e++) cnt[(d_bits(v[e]) - lo) >> sh]++;
    size_t b = 0, before = 0;
    while (before + cnt[b] <= k) before += cnt[b++];
    size_t m = 0;
    for (size_t e = 0; e < n; e++)
        if (((d_bits(v[e]) - lo) >> sh) == b) v[m++] = v[e];
    return quick_kth(v, m, k - before);
}

/* Stable sort of a[0..n) by distance, 8 bits a pass from the lowest (passes where every key has the same byte are
 * skipped); tmp: n keys. Keys that arrive in index order leave in (distance, index) order. */
static void radix_sort(evl_key *a, evl_key *tmp, size_t n) {
    size_t cnt[8][256] = {{0}};
    for (size_t e = 0; e < n; e++) {
        uint64_t u = d_bits(a[e].d);
        for (int p = 0; p < 8; p++) cnt[p][(u >> (8 * p)) & 255]++;
    }
    for (int p = 0; p < 8; p++) {
        size_t sum = 0, *c = cnt[p];
        int one = 0;
        for (int b = 0; b < 256; b++) one |= c[b] == n;
        if (one) continue;
        for (int b = 0; b < 256; b++) {
            size_t t = c[b];
            c[b] = sum, sum += t;
        }
        for (size_t e = 0; e < n; e++) tmp[c[(d_bits(a[e].d) >> (8 * p)) & 255]++] = a[e];
        memcpy(a, tmp, n * sizeof *a);
    }
}

/* One worker's share of a MAP@R block: distance rows of queries q0..q0+n
 * into D (its own rows of the block buffer), then AP@R per query. */
typedef struct {
    dist_metric m;
    const float *q, *g;
    const int64_t *ql, *gl;
    size_t ng, dim, self, q0, n;
    const size_t *rq;
    double *D, *ap; /* ap indexed by query */
    double *vals;   /* ng: a row's distances, reordered by the selection */
    evl_key *keys;  /* rmax: the R nearest */
    evl_key *tmp;   /* rmax: the sort's scratch */
    size_t *eq;     /* ng: rows at the R-th distance */
    size_t cnt[SEL_BUCKETS];
    int64_t *ranked; /* rmax */
    int rc;
    tr_err err;
} map_job;

static void *map_worker(void *arg) {
    map_job *j = arg;
    if (j->n == 0) return NULL;
    j->rc = dist_matrix(j->m, j->q + j->q0 * j->dim, j->n, j->g, j->ng, j->dim, j->D, &j->err);
    if (j->rc != TR_OK) return NULL;
    for (size_t i = 0; i < j->n; i++) {
        size_t qi = j->q0 + i, r = j->rq[qi], n = 0, nl = 0, ne = 0;
        if (r == 0) continue;
        const double *row = j->D + i * j->ng;
        for (size_t c = 0; c < j->ng; c++)
            if (!(j->self && c == qi)) j->vals[n++] = row[c];
        /* the R nearest by (distance, index): every row below the R-th distance t, then rows at t in index order */
        double t = select_kth(j->vals, n, r - 1, j->cnt);
        for (size_t c = 0; c < j->ng; c++) {
            if (j->self && c == qi) continue;
            if (row[c] < t)
                j->keys[nl++] = (evl_key){row[c], c};
            else if (row[c] == t)
                j->eq[ne++] = c;
        }
        radix_sort(j->keys, j->tmp, nl);
        for (size_t e = 0; nl < r && e < ne; e++) j->keys[nl++] = (evl_key){t, j->eq[e]};
        for (size_t c = 0; c < r; c++) j->ranked[c] = j->gl[j->keys[c].i];
        j->ap[qi] = evl_ap_at_r(j->ranked, r, j->ql[qi]);
    }
    return NULL;
}

/* Sum of AP@R over the queries with R > 0, ranks from all-pairs distance
 * blocks (dist_matrix) instead of a k = R search: a selection of the R
 * smallest (distance, index) keys per query, then a sort of those. Each
 * block's queries are split over the threads; the sum runs in query order
 * so the result does not depend on the thread count. */
static int map_matrix(dist_metric m, const float *q, const int64_t *ql, size_t nq, const float *g, const int64_t *gl,
                      size_t ng, size_t dim, const size_t *rq, size_t rmax, size_t self, int threads, double *smap,
                      tr_err *err) {
    size_t nt = threads > 1 ? (size_t)threads : 1, bq = EVL_BUDGET / (ng * sizeof(double));
    double *D = NULL, *ap = NULL;
    map_job *jobs = NULL;
    pthread_t *tids = NULL;
    int rc = TR_OK;
    if (bq < nt) bq = nt;
    if (bq > nq) bq = nq;
    D = malloc(bq * ng * sizeof *D); /* <= max(EVL_BUDGET, threads * ng doubles) */
    ap = calloc(nq, sizeof *ap);
    jobs = calloc(nt, sizeof *jobs);
    tids = calloc(nt, sizeof *tids);
    if (D == NULL || ap == NULL || jobs == NULL || tids == NULL) goto nomem;
    for (size_t t = 0; t < nt; t++) {
        jobs[t].keys = malloc((rmax ? rmax : 1) * sizeof *jobs[t].keys);
        jobs[t].tmp = malloc((rmax ? rmax : 1) * sizeof *jobs[t].tmp);
        jobs[t].vals = malloc(ng * sizeof *jobs[t].vals);
        jobs[t].eq = malloc(ng * sizeof *jobs[t].eq);
        jobs[t].ranked = malloc((rmax ? rmax : 1) * sizeof *jobs[t].ranked);
        if (!jobs[t].keys || !jobs[t].tmp || !jobs[t].vals || !jobs[t].eq || !jobs[t].ranked) goto nomem;
    }
    for (size_t q0 = 0; q0 < nq && rc == TR_OK; q0 += bq) {
        size_t bn = nq - q0 < bq ? nq - q0 : bq, per = (bn + nt - 1) / nt, started = 0;
        for (size_t t = 0; t < nt; t++) {
            map_job *j = &jobs[t];
            size_t lo = t * per < bn ? t * per : bn, hi = lo + per < bn ? lo + per : bn;
            j->m = m, j->q = q, j->g = g, j->ql = ql, j->gl = gl, j->ng = ng, j->dim = dim, j->self = self;
            j->rq = rq, j->ap = ap, j->q0 = q0 + lo, j->n = hi - lo, j->D = D + lo * ng, j->rc = TR_OK;
        }
        for (; started + 1 < nt; started++)
            if (pthread_create(&tids[started], NULL, map_worker, &jobs[started + 1]) != 0) break;
        /* threads that did not start: run their share here */
        for (size_t t = started + 1; t < nt; t++) map_worker(&jobs[t]);
        map_worker(&jobs[0]);
        for (size_t t = 0; t < started; t++) pthread_join(tids[t], NULL);
        for (size_t t = 0; t < nt && rc == TR_OK; t++)
            if (jobs[t].rc != TR_OK) {
                rc = jobs[t].rc;
                if (err) *err = jobs[t].err;
            }
    }
    *smap = 0.0;
    for (size_t i = 0; i < nq; i++) *smap += ap[i];
    goto done;
nomem:
    rc = tr_seterr(err, TR_ENOMEM, "", "evaluation: out of memory for MAP@R (%zu gallery rows)", ng);
done:
    if (jobs != NULL)
        for (size_t t = 0; t < nt; t++) {
            free(jobs[t].keys);
            free(jobs[t].tmp);
            free(jobs[t].vals);
            free(jobs[t].eq);
            free(jobs[t].ranked);
        }
    free(jobs);
    free(tids);
    free(D);
    free(ap);
    return rc;
}

int evl_retrieval(dist_metric m, const float *q, const int64_t *ql, size_t nq, const float *g, const int64_t *gl,
                  size_t ng, size_t dim, const evl_opts *opts, evl_result *out, tr_err *err) {
    evl_opts o0;
    int64_t *sorted = NULL, *ranked = NULL;
    size_t *rq = NULL;
    knn_hit *hits = NULL;
    int rc = TR_OK;
    if (opts == NULL) {
        evl_opts_default(&o0);
        opts = &o0;
    }
    memset(out, 0, sizeof *out);
    if (nq == 0 || ng == 0 || dim == 0)
        return tr_seterr(err, TR_EINVAL,
                         nq == 0   ? "queries"
                         : ng == 0 ? "gallery"
                                   : "dim",
                         "evaluation needs queries (%zu), a gallery (%zu) and dim >= 1 (%zu)", nq, ng, dim);
    if (opts->exclude_self && nq != ng)
        return tr_seterr(err, TR_EINVAL, "exclude_self",
                         "leave-one-out needs the queries to be the gallery (%zu queries, %zu gallery rows)", nq, ng);
    const size_t self = opts->exclude_self ? 1 : 0;
    const size_t avail = ng - self; /* neighbours a query can have */

    sorted = malloc(ng * sizeof *sorted);
    rq = malloc(nq * sizeof *rq);
    if (sorted == NULL || rq == NULL) goto nomem;
    memcpy(sorted, gl, ng * sizeof *sorted);
    qsort(sorted, ng, sizeof *sorted, cmp_i64);
    size_t rmax = 0;
    for (size_t i = 0; i < nq; i++) {
        size_t r = count_label(sorted, ng, ql[i]);
        rq[i] = r >= self ? r - self : 0;
        if (rq[i] > rmax) rmax = rq[i];
    }
    if (avail == 0) {
        out->n_skipped = nq;
        out->map_at_r = opts->map_at_r ? 0.0 : NAN;
        goto done;
    }
    const int via_knn = opts->map_at_r && opts->map_exact;
    size_t kmax = via_knn && rmax > 5 ? rmax : 5;
    if (kmax > avail) kmax = avail;
    size_t per_q = (kmax + self) * sizeof(knn_hit);
    size_t block = opts->block ? opts->block : EVL_BUDGET / per_q;
    if (block == 0) block = 1;
    if (block > nq) block = nq;
    hits = malloc(block * per_q);
    ranked = malloc((kmax + 1) * sizeof *ranked);
    if (hits == NULL || ranked == NULL) goto nomem;

    double s1 = 0, s5 = 0, smap = 0, sr = 0;
    size_t scored = 0;
    for (size_t q0 = 0; q0 < nq; q0 += block) {
        size_t bn = nq - q0 < block ? nq - q0 : block;
        /* k for this block: enough for its largest R */
        size_t k = 5;
        if (via_knn)
            for (size_t i = 0; i < bn; i++)
                if (rq[q0 + i] > k) k = rq[q0 + i];
        if (k > avail) k = avail;
        size_t kk = k + self;
        knn_opts ko;
        memset(&ko, 0, sizeof ko);
        ko.threads = opts->threads;
        /* big k: keep the GEMM tile wide rather than let the heap budget
         * shrink it to a few queries */
        if (kk > 64) ko.block_q = EVL_KNN_BLOCK_Q;
        rc = knn_search(m, q + q0 * dim, bn, g, ng, dim, kk, &ko, hits, err);
        if (rc != TR_OK) {
            if (err && strncmp(err->field, "queries[", 8) == 0) {
                /* renumber the culprit from the block to the whole set */
                size_t bi = (size_t)strtoull(err->field + 8, NULL, 10);
                tr_seterr(err, rc, "", "query %zu has a value that is not finite", q0 + bi);
                snprintf(err->field, sizeof err->field, "queries[%zu]", q0 + bi);
            }
            goto fail;
        }
        for (size_t i = 0; i < bn; i++) {
            size_t qi = q0 + i, n = 0;
            const knn_hit *h = hits + i * kk;
            for (size_t j = 0; j < kk && n < k; j++) {
                if (h[j].index < 0) break;
                if (self && (size_t)h[j].index == qi) continue;
                ranked[n++] = gl[h[j].index];
            }
            size_t r = rq[qi];
            if (r == 0) {
                out->n_skipped++;
                continue;
            }
            int64_t y = ql[qi];
            int hit1 = n > 0 && ranked[0] == y, hit5 = 0;
            for (size_t j = 0; j < n && j < 5; j++) hit5 |= ranked[j] == y;
            s1 += hit1;
            s5 += hit5;
            sr += (double)r;
            if (via_knn) smap += evl_ap_at_r(ranked, r <= n ? r : n, y) * (double)(r <= n ? r : n) / (double)r;
            scored++;
        }
    }
    if (opts->map_at_r && !via_knn) {
        free(hits);
        hits = NULL;
        if ((rc = map_matrix(m, q, ql, nq, g, gl, ng, dim, rq, rmax, self, opts->threads, &smap, err)) != TR_OK)
            goto fail;
    }
    out->n_queries = scored;
    if (scored > 0) {
        out->recall_at_1 = s1 / (double)scored;
        out->recall_at_5 = s5 / (double)scored;
        out->mean_r = sr / (double)scored;
        out->map_at_r = opts->map_at_r ? smap / (double)scored : NAN;
    } else {
        out->map_at_r = opts->map_at_r ? 0.0 : NAN;
    }
done:
    free(sorted);
    free(rq);
    free(hits);
    free(ranked);
    return TR_OK;
nomem:
    rc = tr_seterr(err, TR_ENOMEM, "", "evaluation: out of memory (%zu queries, %zu gallery rows)", nq, ng);
fail:
    free(sorted);
    free(rq);
    free(hits);
    free(ranked);
    memset(out, 0, sizeof *out);
    return rc;
}
