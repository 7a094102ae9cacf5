/* mine.c - batch-hard, semi-hard and batch-all triplet mining over a distance matrix. */
#include "mine.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const mine_names[MINE_COUNT] = {"batch-hard", "semi-hard", "batch-all"};

int mine_parse(const char *s, mine_strategy *out) {
    if (s == NULL) return -1;
    for (int i = 0; i < MINE_COUNT; i++)
        if (strcmp(s, mine_names[i]) == 0) {
            *out = (mine_strategy)i;
            return 0;
        }
    return -1;
}

const char *mine_name(mine_strategy s) {
    return (unsigned)s < MINE_COUNT ? mine_names[s] : "unknown";
}

void mine_result_free(mine_result *r) {
    if (r == NULL) return;
    free(r->t);
    free(r->no_positive);
    free(r->no_negative);
    memset(r, 0, sizeof *r);
}

/* Semi-hard switches from a scan per positive to semi_hard_many when the
 * anchor has more positives than this. */
#define MINE_SORT_MIN_POS 16

typedef struct {
    double d;
    int32_t j;
} mine_neg;

typedef struct {
    mine_result *r;
    loss_kind k;
    double margin, sum;
    size_t max_list;
} mine_acc;

/* Count one mined triplet and list it while there is room. */
static void take(mine_acc *c, size_t a, size_t p, size_t n, double d_ap, double d_an) {
    mine_result *r = c->r;
    double l = loss_triplet_one(c->k, d_ap, d_an, c->margin);
    loss_category cat = loss_category_of(d_ap, d_an, c->margin);
    r->n_total++;
    r->counts[cat]++;
    if (l > 0) r->n_positive++;
    c->sum += l;
    if (r->n_listed < c->max_list) {
        mine_triplet *t = &r->t[r->n_listed++];
        t->a = (int32_t)a;
        t->p = (int32_t)p;
        t->n = (int32_t)n;
        t->d_ap = d_ap;
        t->d_an = d_an;
        t->loss = l;
        t->cat = cat;
    }
}

/* Batch-all for one anchor-positive pair once the list is full: the same
 * arithmetic as take() (loss_triplet_one, loss_category_of) in a tight loop
 * over the anchor's negatives. */
static void take_all_unlisted(mine_acc *c, double d_ap, const mine_neg *neg, size_t nneg) {
    mine_result *r = c->r;
    size_t hard = 0, easy = 0, pos = 0;
    double sum = 0;
    if (c->k == LOSS_TRIPLET) {
        /* four independent lanes so the loop pipelines; counts are exact */
        double s4[4] = {0, 0, 0, 0};
        size_t h4[4] = {0, 0, 0, 0}, e4[4] = {0, 0, 0, 0}, p4[4] = {0, 0, 0, 0};
        size_t q = 0;
        for (; q + 4 <= nneg; q += 4)
            for (int u = 0; u < 4; u++) {
                double d_an = neg[q + u].d, x = d_ap - d_an + c->margin;
                int is_hard = d_an <= d_ap;
                h4[u] += (size_t)is_hard;
                e4[u] += (size_t)(!is_hard & (x <= 0));
                p4[u] += (size_t)(x > 0);
                s4[u] += x > 0 ? x : 0;
            }
        for (; q < nneg; q++) {
            double d_an = neg[q].d, x = d_ap - d_an + c->margin;
            int is_hard = d_an <= d_ap;
            h4[0] += (size_t)is_hard;
            e4[0] += (size_t)(!is_hard & (x <= 0));
            p4[0] += (size_t)(x > 0);
            s4[0] += x > 0 ? x : 0;
        }
        hard = h4[0] + h4[1] + h4[2] + h4[3];
        easy = e4[0] + e4[1] + e4[2] + e4[3];
        pos = p4[0] + p4[1] + p4[2] + p4[3];
        sum = (s4[0] + s4[1]) + (s4[2] + s4[3]);
    } else {
        for (size_t q = 0; q < nneg; q++) {
            double d_an = neg[q].d, l = loss_triplet_one(c->k, d_ap, d_an, c->margin);
            loss_category cat = loss_category_of(d_ap, d_an, c->margin);
            hard += cat == LOSS_CAT_HARD;
            easy += cat == LOSS_CAT_EASY;
            pos += l > 0;
            sum += l;
        }
    }
    r->n_total += nneg;
    r->counts[LOSS_CAT_HARD] += hard;
    r->counts[LOSS_CAT_EASY] += easy;
    r->counts[LOSS_CAT_SEMI_HARD] += nneg - hard - easy;
    r->n_positive += pos;
    c->sum += sum;
}

/* Ascending in-place sort of doubles: quicksort (Hoare partition, which
 * stays O(n log n) on the many ties distance matrices have) with insertion
 * sort below 16 elements, recursing into the smaller side only. */
static void sort_doubles(double *v, size_t n) {
    while (n > 16) {
        double x = v[0], y = v[n / 2], z = v[n - 1];
        double piv = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        size_t i = 0, j = n - 1;
        for (;;) {
            while (v[i] < piv) i++;
            while (v[j] > piv) j--;
            if (i >= j) break;
            double t = v[i];
            v[i] = v[j];
            v[j] = t;
            i++;
            j--;
        }
        size_t left = j + 1; /* [0, left) <= piv <= [left, n) */
        if (left < n - left) {
            sort_doubles(v, left);
            v += left;
            n -= left;
        } else {
            sort_doubles(v + left, n - left);
            n = left;
        }
    }
    for (size_t i = 1; i < n; i++) {
        double t = v[i];
        size_t j = i;
        for (; j > 0 && v[j - 1] > t; j--) v[j] = v[j - 1];
        v[j] = t;
    }
}

/* One anchor's negative distances sorted ascending, with compensated
 * (Neumaier) prefix sums hi + lo and prefix sums of magnitudes. Arrays of
 * m + 1 entries except sd. */
typedef struct {
    double *sd, *hi, *lo, *mag;
    size_t m;
} mine_sorted;

static void sorted_prepare(mine_sorted *ms, const mine_neg *neg, size_t m) {
    double s = 0, comp = 0, mag = 0;
    ms->m = m;
    for (size_t q = 0; q < m; q++) ms->sd[q] = neg[q].d;
    sort_doubles(ms->sd, m);
    ms->hi[0] = ms->lo[0] = ms->mag[0] = 0;
    for (size_t q = 0; q < m; q++) {
        double y = ms->sd[q], t = s + y;
        comp += fabs(s) >= fabs(y) ? (s - t) + y : (y - t) + s;
        s = t;
        mag += fabs(y);
        ms->hi[q + 1] = s;
        ms->lo[q + 1] = comp;
        ms->mag[q + 1] = mag;
    }
}

/* Branch-free binary searches over ascending sd[0..m): the number of
 * leading entries with d <= d_ap (hard), and with d_ap - d + margin > 0
 * (hinge loss > 0; the expression is monotone in d, so this is a prefix). */
static size_t prefix_hard(const double *sd, size_t m, double d_ap) {
    if (m == 0) return 0;
    const double *b = sd;
    for (size_t len = m; len > 1;) {
        size_t h = len / 2;
        b = b[h] <= d_ap ? b + h : b;
        len -= h;
    }
    return (size_t)(b - sd) + (b[0] <= d_ap);
}

static size_t prefix_positive(const double *sd, size_t m, double d_ap, double margin) {
    if (m == 0) return 0;
    const double *b = sd;
    for (size_t len = m; len > 1;) {
        size_t h = len / 2;
        b = d_ap - b[h] + margin > 0 ? b + h : b;
        len -= h;
    }
    return (size_t)(b - sd) + (d_ap - b[0] + margin > 0);
}

/* Batch-all hinge for one anchor-positive pair from the sorted negatives,
 * in O(log m). Counts use the very expressions of loss_triplet_one and
 * loss_category_of, which are monotone in D_an, so they are exact. The
 * loss sum t(D_ap + margin) - S_t is used when its rounding bound is below
 * 1e-13 of the result; otherwise (huge distances, tiny losses) the t
 * losses are summed one by one. */
static void take_all_sorted(mine_acc *c, double d_ap, const mine_sorted *ms) {
    mine_result *r = c->r;
    const double *sd = ms->sd, margin = c->margin;
    size_t m = ms->m, h, t;
    h = prefix_hard(sd, m, d_ap);
    t = prefix_positive(sd, m, d_ap, margin);
    size_t easy = m - (h > t ? h : t);
    double sum = 0;
    if (t > 0) {
        double base = d_ap + margin;
        sum = (double)t * base - (ms->hi[t] + ms->lo[t]);
        double bound = 8 * DBL_EPSILON * ((double)t * fabs(base) + ms->mag[t]);
        if (!(sum > 0 && bound <= 1e-13 * sum)) {
            sum = 0;
            for (size_t q = 0; q < t; q++) sum += d_ap - sd[q] + margin;
        }
    }
    r->n_total += m;
    r->counts[LOSS_CAT_HARD] += h;
    r->counts[LOSS_CAT_EASY] += easy;
    r->counts[LOSS_CAT_SEMI_HARD] += m - h - easy;
    r->n_positive += t;
    c->sum += sum;
}

static int cmp_neg(const void *x, const void *y) {
    const mine_neg *a = x, *b = y;
    if (a->d != b->d) return a->d < b->d ? -1 : 1;
    return (a->j > b->j) - (a->j < b->j);
}

static int neg_less(const mine_neg *a, const mine_neg *b) {
    return a->d < b->d || (a->d == b->d && a->j < b->j);
}

/* Semi-hard for an anchor with many positives, in O((P + N) log P) instead
 * of O(P N). pos[0..np) holds (D_ap, position) sorted by (D_ap, position).
 * A negative with distance d is "farther" for exactly the positives of rank
 * < t = #{D_ap < d}, so it goes to bucket t-1, and the answer for rank r is
 * the smallest (d, index) over buckets >= r: a suffix minimum. Ranks left
 * without a candidate get far, the largest-D negative. choice[] is filled by
 * position. */
static void semi_hard_many(const mine_neg *pos, size_t np, const mine_neg *neg, size_t nneg, const mine_neg *far,
                           mine_neg *bucket, mine_neg *choice) {
    for (size_t r = 0; r < np; r++) bucket[r].d = HUGE_VAL, bucket[r].j = INT32_MAX;
    for (size_t q = 0; q < nneg; q++) {
        /* t = first rank with D_ap >= d; branch-free (np >= 1), as the
         * comparisons are unpredictable */
        const mine_neg *base = pos;
        double d = neg[q].d;
        for (size_t len = np; len > 1;) {
            size_t half = len / 2;
            base = base[half].d < d ? base + half : base;
            len -= half;
        }
        size_t t = (size_t)(base - pos) + (base->d < d);
        if (t > 0 && neg_less(&neg[q], &bucket[t - 1])) bucket[t - 1] = neg[q];
    }
    for (size_t r = np; r-- > 0;) {
        if (r + 1 < np && neg_less(&bucket[r + 1], &bucket[r])) bucket[r] = bucket[r + 1];
        choice[pos[r].j] = bucket[r].j == INT32_MAX ? *far : bucket[r];
    }
}

/* The same choice by one scan in index order (strict comparisons keep the
 * smaller index on ties). */
static const mine_neg *semi_hard_scan(const mine_neg *neg, size_t nneg, double d_ap, const mine_neg *far) {
    const mine_neg *above = NULL;
    for (size_t q = 0; q < nneg; q++)
        if (neg[q].d > d_ap && (above == NULL || neg[q].d < above->d)) above = &neg[q];
    return above ? above : far;
}

/* Mine the triplets of anchor a (npos_a >= 1 positives, some negatives) from
 * its distance row; neg has room for 4n entries (negatives, positives,
 * semi-hard buckets and choices). */
static void mine_anchor(mine_acc *c, mine_strategy s, const double *row, const int64_t *labels, size_t n, size_t a,
                        size_t npos_a, mine_neg *neg, mine_sorted *ms) {
    int64_t la = labels[a];
    if (s == MINE_BATCH_HARD) {
        size_t hp = SIZE_MAX, hn = SIZE_MAX;
        for (size_t j = 0; j < n; j++) {
            if (labels[j] == la) {
                if (j != a && (hp == SIZE_MAX || row[j] > row[hp])) hp = j;
            } else if (hn == SIZE_MAX || row[j] < row[hn]) {
                hn = j;
            }
        }
        take(c, a, hp, hn, row[hp], row[hn]);
        return;
    }
    size_t m = 0, np = 0;
    mine_neg *pos = neg + n, *bucket = neg + 2 * n, *choice = neg + 3 * n;
    for (size_t j = 0; j < n; j++)
        if (labels[j] != la) {
            neg[m].d = row[j];
            neg[m].j = (int32_t)j;
            m++;
        } else if (j != a) {
            pos[np].d = row[j];
            pos[np].j = (int32_t)np; /* position, for semi_hard_many */
            np++;
        }
    if (s == MINE_SEMI_HARD) {
        const mine_neg *far = &neg[0];
        for (size_t q = 1; q < m; q++)
            if (neg[q].d > far->d) far = &neg[q];
        if (np > MINE_SORT_MIN_POS) {
            qsort(pos, np, sizeof *pos, cmp_neg);
            semi_hard_many(pos, np, neg, m, far, bucket, choice);
        } else {
            for (size_t q = 0; q < np; q++) choice[q] = *semi_hard_scan(neg, m, pos[q].d, far);
        }
    }
    int have_sorted = 0;
    size_t rank = 0;
    for (size_t p = 0; p < n; p++) {
        if (p == a || labels[p] != la) continue;
        double d_ap = row[p];
        if (s == MINE_SEMI_HARD) {
            const mine_neg *q = &choice[rank++];
            take(c, a, p, (size_t)q->j, d_ap, q->d);
        } else if (c->r->n_listed < c->max_list) {
            for (size_t q = 0; q < m; q++) take(c, a, p, (size_t)neg[q].j, d_ap, neg[q].d);
        } else if (c->k == LOSS_TRIPLET && npos_a >= MINE_SORT_MIN_POS) {
            if (!have_sorted) sorted_prepare(ms, neg, m);
            have_sorted = 1;
            take_all_sorted(c, d_ap, ms);
        } else {
            take_all_unlisted(c, d_ap, neg, m);
        }
    }
}

int mine_run(mine_strategy s, const double *D, const int64_t *labels, size_t n, loss_kind k, double margin,
             size_t max_list, mine_result *out, tr_err *err) {
    int rc = TR_OK;
    size_t cells, total = 0, bytes;
    size_t *npos = NULL, *nneg = NULL;
    mine_neg *neg = NULL;
    double *sortbuf = NULL;
    mine_sorted ms = {0};
    mine_result *r = out;
    mine_acc c = {out, k, margin, 0.0, 0};
    memset(r, 0, sizeof *r);
    if ((unsigned)s >= MINE_COUNT) return tr_seterr(err, TR_EINVAL, "strategy", "unknown mining strategy %d", (int)s);
    if (k != LOSS_TRIPLET && k != LOSS_TRIPLET_SOFT)
        return tr_seterr(err, TR_EINVAL, "loss", "mining needs a triplet loss (triplet or triplet-soft), not \"%s\"",
                         loss_name(k));
    if (!isfinite(margin)) return tr_seterr(err, TR_EINVAL, "margin", "margin must be a finite number");
    if (n > (size_t)INT32_MAX || !tr_size_mul(n, n, &cells))
        return tr_seterr(err, TR_ELIMIT, "n", "batch of %zu items is too large to mine (n*n overflows)", n);
    for (size_t i = 0; i < cells; i++)
        if (!isfinite(D[i])) {
            char field[64];
            snprintf(field, sizeof field, "D[%zu][%zu]", i / n, i % n);
            return tr_seterr(err, TR_EINVAL, field, "distance %s is not a finite number", field);
        }
    if (n == 0) return TR_OK;
    npos = calloc(n, sizeof *npos);
    nneg = calloc(n, sizeof *nneg);
    /* negatives, positives, semi-hard buckets and choices: 4n entries;
     * batch-all's sorted negatives and prefix sums: 4n + 3 doubles */
    neg = tr_size_mul(n, 4 * sizeof *neg, &bytes) ? malloc(bytes) : NULL;
    sortbuf = tr_size_mul(n, 4 * sizeof(double), &bytes) && tr_size_add(bytes, 3 * sizeof(double), &bytes)
                  ? malloc(bytes)
                  : NULL;
    if (npos == NULL || nneg == NULL || neg == NULL || sortbuf == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "", "mining %zu items: out of memory", n);
        goto fail;
    }
    for (size_t a = 0; a < n; a++)
        for (size_t j = 0; j < n; j++) {
            if (labels[j] != labels[a])
                nneg[a]++;
            else if (j != a)
                npos[a]++;
        }
    for (size_t a = 0; a < n; a++) {
        r->n_no_positive += npos[a] == 0;
        r->n_no_negative += nneg[a] == 0;
        if (npos[a] == 0 || nneg[a] == 0) continue;
        size_t add = 1; /* batch-hard: one triplet per anchor */
        if (s == MINE_SEMI_HARD) add = npos[a];
        if (s == MINE_BATCH_ALL && !tr_size_mul(npos[a], nneg[a], &add)) add = SIZE_MAX;
        if (!tr_size_add(total, add, &total)) {
            rc = tr_seterr(err, TR_ELIMIT, "n", "batch of %zu items has too many triplets to count", n);
            goto fail;
        }
    }
    c.max_list = max_list < total ? max_list : total;
    if ((c.max_list && (!tr_size_mul(c.max_list, sizeof *r->t, &bytes) || (r->t = malloc(bytes)) == NULL)) ||
        (r->n_no_positive && (r->no_positive = malloc(r->n_no_positive * sizeof(int32_t))) == NULL) ||
        (r->n_no_negative && (r->no_negative = malloc(r->n_no_negative * sizeof(int32_t))) == NULL)) {
        rc = tr_seterr(err, TR_ENOMEM, "", "mining %zu items: cannot list %zu triplets", n, c.max_list);
        goto fail;
    }
    r->n_no_positive = r->n_no_negative = 0;
    for (size_t a = 0; a < n; a++) {
        if (npos[a] == 0) r->no_positive[r->n_no_positive++] = (int32_t)a;
        if (nneg[a] == 0) r->no_negative[r->n_no_negative++] = (int32_t)a;
    }

    ms.sd = sortbuf;
    ms.hi = sortbuf + n;
    ms.lo = sortbuf + 2 * n + 1;
    ms.mag = sortbuf + 3 * n + 2;
    for (size_t a = 0; a < n; a++)
        if (npos[a] && nneg[a]) mine_anchor(&c, s, D + a * n, labels, n, a, npos[a], neg, &ms);
    r->mean_loss = r->n_total ? c.sum / (double)r->n_total : 0;
    /* every loss is >= 0, so the sum over positive ones is the whole sum */
    r->mean_pos_loss = r->n_positive ? c.sum / (double)r->n_positive : 0;
fail:
    free(npos);
    free(nneg);
    free(neg);
    free(sortbuf);
    if (rc != TR_OK) mine_result_free(r);
    return rc;
}
