/* loss.c - triplet, contrastive and hard-negative InfoNCE losses, categories, reductions. */
#include "loss.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const loss_names[LOSS_COUNT] = {"triplet", "triplet-soft", "contrastive", "contrastive-squared",
                                                   "infonce"};
static const char *const red_names[LOSS_RED_COUNT] = {"mean", "mean-nonzero", "sum"};
static const char *const cat_names[LOSS_CAT_COUNT] = {"easy", "semi-hard", "hard"};

static int find_name(const char *s, const char *const *names, int n) {
    if (s == NULL) return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(s, names[i]) == 0) return i;
    return -1;
}

int loss_parse(const char *s, loss_kind *out) {
    int i = find_name(s, loss_names, LOSS_COUNT);
    if (i < 0) return -1;
    *out = (loss_kind)i;
    return 0;
}

const char *loss_name(loss_kind k) {
    return (unsigned)k < LOSS_COUNT ? loss_names[k] : "unknown";
}

int loss_reduction_parse(const char *s, loss_reduction *out) {
    int i = find_name(s, red_names, LOSS_RED_COUNT);
    if (i < 0) return -1;
    *out = (loss_reduction)i;
    return 0;
}

const char *loss_reduction_name(loss_reduction r) {
    return (unsigned)r < LOSS_RED_COUNT ? red_names[r] : "unknown";
}

const char *loss_category_name(loss_category c) {
    return (unsigned)c < LOSS_CAT_COUNT ? cat_names[c] : "unknown";
}

/* Hard takes precedence (it matters only for margin <= 0); "easy" is
 * tested with the hinge's own expression so that easy <=> hinge loss 0
 * holds exactly in floating point. */
loss_category loss_category_of(double d_ap, double d_an, double margin) {
    if (d_an <= d_ap) return LOSS_CAT_HARD;
    if (d_ap - d_an + margin <= 0) return LOSS_CAT_EASY;
    return LOSS_CAT_SEMI_HARD;
}

/* log(1 + exp(x)) without overflow for large x or loss of digits for very
 * negative x. */
static double softplus(double x) {
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

double loss_triplet_one(loss_kind k, double d_ap, double d_an, double margin) {
    if (k == LOSS_TRIPLET_SOFT) return softplus(d_ap - d_an);
    double x = d_ap - d_an + margin;
    return x > 0 ? x : 0;
}

static int check_finite(const double *v, size_t n, const char *name, tr_err *err) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(v[i])) {
            char field[64];
            snprintf(field, sizeof field, "%s[%zu]", name, i);
            return tr_seterr(err, TR_EINVAL, field, "%s is not a finite number", field);
        }
    return TR_OK;
}

static int check_margin(double margin, tr_err *err) {
    if (!isfinite(margin)) return tr_seterr(err, TR_EINVAL, "margin", "margin must be a finite number");
    return TR_OK;
}

int loss_triplet(loss_kind k, const double *d_ap, const double *d_an, const double *d_pn, size_t n, double margin,
                 double *losses, loss_category *cats, tr_err *err) {
    int rc;
    if (k != LOSS_TRIPLET && k != LOSS_TRIPLET_SOFT)
        return tr_seterr(err, TR_EINVAL, "loss", "loss \"%s\" is not a triplet loss (use triplet or triplet-soft)",
                         loss_name(k));
    if ((rc = check_margin(margin, err)) != TR_OK || (rc = check_finite(d_ap, n, "d_ap", err)) != TR_OK ||
        (rc = check_finite(d_an, n, "d_an", err)) != TR_OK ||
        (d_pn && (rc = check_finite(d_pn, n, "d_pn", err)) != TR_OK))
        return rc;
    for (size_t i = 0; i < n; i++) {
        double an = d_an[i];
        if (d_pn && d_pn[i] < an) an = d_pn[i];
        losses[i] = loss_triplet_one(k, d_ap[i], an, margin);
        if (cats) cats[i] = loss_category_of(d_ap[i], an, margin);
    }
    return TR_OK;
}

int loss_pair(loss_kind k, const double *d, const int *labels, size_t n, double margin, double *losses, tr_err *err) {
    int rc;
    if (k != LOSS_CONTRASTIVE && k != LOSS_CONTRASTIVE_SQUARED)
        return tr_seterr(err, TR_EINVAL, "loss",
                         "loss \"%s\" is not a pair loss (use contrastive or contrastive-squared)", loss_name(k));
    if ((rc = check_margin(margin, err)) != TR_OK || (rc = check_finite(d, n, "d", err)) != TR_OK) return rc;
    for (size_t i = 0; i < n; i++)
        if (labels[i] != 0 && labels[i] != 1) {
            char field[64];
            snprintf(field, sizeof field, "labels[%zu]", i);
            return tr_seterr(err, TR_EINVAL, field, "%s is %d; a pair label must be 1 (similar) or 0 (dissimilar)",
                             field, labels[i]);
        }
    for (size_t i = 0; i < n; i++) {
        double x = labels[i] ? d[i] : margin - d[i];
        if (!labels[i] && x < 0) x = 0;
        losses[i] = k == LOSS_CONTRASTIVE_SQUARED ? x * x : x;
    }
    return TR_OK;
}

/* Rows of anchors per DGEMM block: a block of similarities is
 * INFONCE_BLOCK x 2n doubles, so memory stays linear in n. */
#define INFONCE_BLOCK 64

/* One anchor's loss from its similarity row s (length m = 2n, cosines not
 * yet divided by the temperature), the anchor's own index i and its
 * positive's index p. Everything is done in the log domain relative to the
 * row's maximum, so temperatures down to 1e-4 neither overflow nor lose the
 * result; the value is the reference formula's. */
static double infonce_row(const double *s, size_t m, size_t i, size_t p, double temp, double tau_plus, double beta,
                          int hard) {
    double N = (double)(m - 2);
    double sp = s[p] / temp;
    double smax = -HUGE_VAL, smin = HUGE_VAL;
    for (size_t j = 0; j < m; j++) {
        if (j == i || j == p) continue;
        if (s[j] > smax) smax = s[j];
        if (s[j] < smin) smin = s[j];
    }
    smax /= temp;
    smin /= temp;
    double log_ng;
    if (!hard) {
        double acc = 0; /* sum exp(s_j - smax) >= 1 */
        for (size_t j = 0; j < m; j++)
            if (j != i && j != p) acc += exp(s[j] / temp - smax);
        log_ng = smax + log(acc);
    } else {
        /* R = sum(imp*neg) / mean(imp) = N * sum e^{(1+b)s} / sum e^{bs};
         * each sum is scaled by its own largest term. */
        double b1 = 1.0 + beta;
        double m1 = b1 >= 0 ? b1 * smax : b1 * smin, m2 = beta >= 0 ? beta * smax : beta * smin;
        double acc1 = 0, acc2 = 0;
        for (size_t j = 0; j < m; j++) {
            if (j == i || j == p) continue;
            double x = s[j] / temp;
            acc1 += exp(b1 * x - m1);
            acc2 += beta == 0 ? 1.0 : exp(beta * x - m2);
        }
        double log_r = log(N) + m1 + log(acc1) - m2 - log(acc2);
        /* Ng = (R - tau_plus*N*pos) / (1 - tau_plus), evaluated scaled by
         * e^-M with M the larger of log R and s_p. */
        double big = log_r > sp ? log_r : sp;
        double ng_scaled = (exp(log_r - big) - tau_plus * N * exp(sp - big)) / (1.0 - tau_plus);
        double log_floor = log(N) - 1.0 / temp; /* clamp: Ng >= N e^{-1/T} */
        log_ng = ng_scaled > 0 ? big + log(ng_scaled) : -HUGE_VAL;
        if (log_ng < log_floor) log_ng = log_floor;
    }
    /* -log(pos / (pos + Ng)) = log(1 + Ng/pos) = softplus(log Ng - s_p) */
    return softplus(log_ng - sp);
}

int loss_infonce(const float *a, const float *b, size_t n, size_t dim, double temperature, double tau_plus, double beta,
                 int hard_estimator, double *losses, tr_err *err) {
    int rc = TR_OK;
    double *x = NULL, *sim = NULL;
    size_t m, xcells, scells;
    if (n < 2)
        return tr_seterr(err, TR_EINVAL, "n",
                         "InfoNCE needs at least 2 pairs (got %zu): the negatives are the other pairs", n);
    if (!(temperature > 0) || !isfinite(temperature))
        return tr_seterr(err, TR_EINVAL, "temperature", "temperature must be a finite number > 0 (got %g)",
                         temperature);
    if (!(tau_plus >= 0 && tau_plus < 1))
        return tr_seterr(err, TR_EINVAL, "tau_plus", "tau_plus must be in [0, 1) (got %g)", tau_plus);
    if (!isfinite(beta)) return tr_seterr(err, TR_EINVAL, "beta", "beta must be a finite number");
    if (!tr_size_mul(n, 2, &m) || !tr_size_mul(m, dim, &xcells) || !tr_size_mul(xcells, sizeof(double), &xcells) ||
        !tr_size_mul(m, INFONCE_BLOCK * sizeof(double), &scells) || m > (size_t)INT32_MAX || dim > (size_t)INT32_MAX)
        return tr_seterr(err, TR_ELIMIT, "n", "InfoNCE batch %zu x %zu is too large", n, dim);
    x = malloc(xcells ? xcells : 1);
    sim = malloc(scells);
    if (x == NULL || sim == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "", "InfoNCE: cannot allocate %zu + %zu bytes", xcells, scells);
        goto fail;
    }
    /* out = cat(a, b), each row v / max(||v||, 1e-12) as F.normalize does */
    for (size_t r = 0; r < m; r++) {
        const float *v = r < n ? a + r * dim : b + (r - n) * dim;
        double *xr = x + r * dim, nn = 0;
        for (size_t k = 0; k < dim; k++) {
            if (!isfinite(v[k])) {
                char field[64];
                snprintf(field, sizeof field, "%s[%zu][%zu]", r < n ? "a" : "b", r < n ? r : r - n, k);
                rc = tr_seterr(err, TR_EINVAL, field, "%s is not a finite number", field);
                goto fail;
            }
            xr[k] = v[k];
            nn += xr[k] * xr[k];
        }
        double norm = sqrt(nn);
        if (norm < 1e-12) norm = 1e-12;
        for (size_t k = 0; k < dim; k++) xr[k] /= norm;
    }
    for (size_t r0 = 0; r0 < m; r0 += INFONCE_BLOCK) {
        size_t rows = m - r0 < INFONCE_BLOCK ? m - r0 : INFONCE_BLOCK;
        if (dim > 0)
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)m, (int)dim, 1.0, x + r0 * dim,
                        (int)dim, x, (int)dim, 0.0, sim, (int)m);
        else
            memset(sim, 0, rows * m * sizeof *sim);
        for (size_t r = 0; r < rows; r++) {
            size_t i = r0 + r, p = i < n ? i + n : i - n;
            losses[i] = infonce_row(sim + r * m, m, i, p, temperature, tau_plus, beta, hard_estimator);
        }
    }
fail:
    free(x);
    free(sim);
    return rc;
}

double loss_reduce(const double *losses, size_t n, loss_reduction r) {
    double sum = 0, pos = 0;
    size_t nz = 0;
    for (size_t i = 0; i < n; i++) {
        sum += losses[i];
        if (losses[i] > 0) {
            pos += losses[i];
            nz++;
        }
    }
    switch (r) {
    case LOSS_RED_MEAN:
        return n ? sum / (double)n : 0;
    case LOSS_RED_MEAN_NONZERO:
        return nz ? pos / (double)nz : 0;
    case LOSS_RED_SUM:
        return sum;
    default:
        return NAN;
    }
}
