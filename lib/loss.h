/* loss.h - triplet, pair (contrastive) and InfoNCE losses, categories, reductions. */
#ifndef LOSS_H
#define LOSS_H

#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "tr_err.h"

typedef enum {
    LOSS_TRIPLET,             /* max(0, D_ap - D_an + margin) */
    LOSS_TRIPLET_SOFT,        /* log(1 + exp(D_ap - D_an)), computed stably */
    LOSS_CONTRASTIVE,         /* similar: D; dissimilar: max(0, margin - D) */
    LOSS_CONTRASTIVE_SQUARED, /* similar: D^2; dissimilar: max(0, margin - D)^2 */
    LOSS_INFONCE,             /* hard-negative InfoNCE, Robinson et al. 2021 */
    LOSS_COUNT
} loss_kind;

typedef enum { LOSS_RED_MEAN, LOSS_RED_MEAN_NONZERO, LOSS_RED_SUM, LOSS_RED_COUNT } loss_reduction;

/* hard: D_an <= D_ap; semi-hard: D_ap < D_an < D_ap + margin;
 * easy: D_an >= D_ap + margin (easy iff the hinge loss is 0). */
typedef enum { LOSS_CAT_EASY, LOSS_CAT_SEMI_HARD, LOSS_CAT_HARD, LOSS_CAT_COUNT } loss_category;

/* Names: "triplet", "triplet-soft", "contrastive", "contrastive-squared",
 * "infonce"; "mean", "mean-nonzero", "sum"; "easy", "semi-hard", "hard". */
int loss_parse(const char *s, loss_kind *out);
const char *loss_name(loss_kind k);
int loss_reduction_parse(const char *s, loss_reduction *out);
const char *loss_reduction_name(loss_reduction r);
const char *loss_category_name(loss_category c);

loss_category loss_category_of(double d_ap, double d_an, double margin);

/* One triplet's loss for LOSS_TRIPLET / LOSS_TRIPLET_SOFT (D_an already
 * swapped if the caller wants swap). */
double loss_triplet_one(loss_kind k, double d_ap, double d_an, double margin);

/* Per-triplet losses and categories. d_pn may be NULL; when given (swap),
 * D_an is replaced by min(D_an, D_pn) for both loss and category.
 * cats may be NULL. TR_EINVAL if k is not a triplet loss. */
int loss_triplet(loss_kind k, const double *d_ap, const double *d_an, const double *d_pn, size_t n, double margin,
                 double *losses, loss_category *cats, tr_err *err);

/* Per-pair losses; labels[i] 1 = similar, 0 = dissimilar. TR_EINVAL if k is
 * not a contrastive loss or a label is not 0/1. */
int loss_pair(loss_kind k, const double *d, const int *labels, size_t n, double margin, double *losses, tr_err *err);

/* Hard-negative InfoNCE (Robinson et al. 2021, the authors' HCL code):
 * a[i], b[i] (n x dim) are positive pairs; both are L2-normalised first; the
 * 2n items are each an anchor whose positive is its pair and whose 2n-2
 * negatives are all the other items. s = cos/temperature, pos = exp(s_ip),
 * neg_j = exp(s_ij). hard estimator: imp = neg^beta,
 * Ng = (-tau_plus*N*pos + sum(imp*neg)/mean(imp)) / (1 - tau_plus),
 * clamped below at N*exp(-1/temperature), N = 2n-2; easy estimator:
 * Ng = sum(neg). loss_i = -log(pos / (pos + Ng)). losses has 2n entries
 * (a's anchors first, then b's). Needs n >= 2, temperature > 0,
 * 0 <= tau_plus < 1. Computed in double with log-sum-exp where it matters. */
int loss_infonce(const float *a, const float *b, size_t n, size_t dim, double temperature, double tau_plus, double beta,
                 int hard_estimator, double *losses, tr_err *err);

/* Reduce: mean (0 for n = 0), mean over entries > 0 (0 if none), sum. */
double loss_reduce(const double *losses, size_t n, loss_reduction r);

#endif
