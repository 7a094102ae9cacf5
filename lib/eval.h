/* eval.h - retrieval metrics: Recall@1, Recall@5 and MAP@R over exact kNN. */
#ifndef EVAL_H
#define EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "tr_err.h"

/* Metrics of queries against a labelled gallery. For a query with label y,
 * R = number of gallery rows labelled y (its own row excluded in the
 * leave-one-out mode). Queries with R = 0 cannot be scored and are only
 * counted (n_skipped); the means are over the other n_queries.
 *   Recall@k: the query counts when any of its k nearest has label y.
 *   MAP@R (Musgrave et al. 2020, "A Metric Learning Reality Check"):
 *     AP@R = (1/R) sum_{i=1..R} P(i) rel(i) over the R nearest, where
 *     rel(i) = 1 when the i-th nearest has label y and P(i) is the
 *     precision of the first i; MAP@R is its mean over queries.
 * Neighbours are ordered by (distance, gallery index) as knn_search does.
 * Recall@k always comes from knn_search (exact). MAP@R by default ranks
 * with dist_matrix's distances (SGEMM with double recompute of cancelling
 * pairs): only pairs whose distances differ by float rounding can swap,
 * which moves MAP@R by at most ~1/R per such swap; map_exact gives the
 * knn_search ranking at the cost of a k = R search. */
typedef struct {
    double recall_at_1;
    double recall_at_5;
    double map_at_r;  /* NaN when not computed (opts.map_at_r == 0) */
    double mean_r;    /* mean R over the scored queries */
    size_t n_queries; /* scored */
    size_t n_skipped; /* R = 0 */
} evl_result;

typedef struct {
    int threads;      /* worker threads for knn_search and MAP@R (<= 0: 1);
                         each calls SGEMM itself: keep OpenBLAS at one
                         thread (openblas_set_num_threads(1)) */
    int exclude_self; /* queries ARE the gallery (same rows, nq == ng):
                         leave-one-out, a query is not its own neighbour */
    int map_at_r;     /* 1 (default): MAP@R too; 0: Recall@1/@5 only */
    int map_exact;    /* MAP@R ranks from knn_search with k = R (exact, but
                         slow for large R); 0 (default): from dist_matrix
                         blocks and a selection of the R smallest (see
                         below) */
    size_t block;     /* queries per knn call (0: from a 64 MiB budget) */
} evl_opts;

void evl_opts_default(evl_opts *o);

/* Score nq queries q (nq x dim, labels ql) against ng gallery rows g
 * (ng x dim, labels gl) under metric m with knn_search. opts may be NULL.
 * TR_EINVAL for empty inputs, exclude_self with nq != ng, or non-finite
 * values (from knn_search); TR_ENOMEM. */
int evl_retrieval(dist_metric m, const float *q, const int64_t *ql, size_t nq, const float *g, const int64_t *gl,
                  size_t ng, size_t dim, const evl_opts *opts, evl_result *out, tr_err *err);

/* AP@R of one ranked list: labels of the nearest neighbours in order
 * (at least r of them), the query label y and R = r >= 1. */
double evl_ap_at_r(const int64_t *ranked, size_t r, int64_t y);

#endif
