/* mine.h - in-batch triplet mining over a labelled batch. */
#ifndef MINE_H
#define MINE_H

#include <stddef.h>
#include <stdint.h>

#include "loss.h"
#include "tr_err.h"

typedef enum { MINE_BATCH_HARD, MINE_SEMI_HARD, MINE_BATCH_ALL, MINE_COUNT } mine_strategy;

/* "batch-hard", "semi-hard", "batch-all". */
int mine_parse(const char *s, mine_strategy *out);
const char *mine_name(mine_strategy s);

typedef struct {
    int32_t a, p, n;
    double d_ap, d_an, loss;
    loss_category cat;
} mine_triplet;

typedef struct {
    mine_triplet *t; /* listed triplets (at most max_list of them) */
    size_t n_listed;
    size_t n_total;                /* triplets mined (batch-all: all valid triplets) */
    size_t counts[LOSS_CAT_COUNT]; /* over all n_total triplets */
    size_t n_positive;             /* triplets with loss > 0 */
    double mean_loss;              /* mean over n_total */
    double mean_pos_loss;          /* mean over the triplets with loss > 0 (0 if none) */
    int32_t *no_positive;
    size_t n_no_positive; /* anchors without a positive */
    int32_t *no_negative;
    size_t n_no_negative; /* anchors without a negative */
} mine_result;

/* Mine from a precomputed n x n distance matrix D (row-major, D[i*n+j]) and
 * labels. Loss is k (LOSS_TRIPLET or LOSS_TRIPLET_SOFT) with margin.
 *  batch-hard: per anchor, hardest positive = max D over other same-label
 *    items, hardest negative = min D over other labels; ties -> smaller index.
 *  semi-hard: per anchor-positive pair (a != p, same label), the negative
 *    with the smallest D_an such that D_an > D_ap; when none exists, the
 *    negative with the largest D_an (TensorFlow's triplet_semihard_loss);
 *    ties -> smaller index.
 *  batch-all: every (a, p, n) with label[a]==label[p], a != p,
 *    label[n] != label[a]; in (a, p, n) lexicographic order.
 * Lists at most max_list triplets (all are counted). Fills *out; free it
 * with mine_result_free. TR_EINVAL on a bad k, TR_ELIMIT if n*n overflows. */
int mine_run(mine_strategy s, const double *D, const int64_t *labels, size_t n, loss_kind k, double margin,
             size_t max_list, mine_result *out, tr_err *err);
void mine_result_free(mine_result *r); /* NULL is a no-op */

#endif
