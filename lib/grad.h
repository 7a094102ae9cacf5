/* grad.h - gradients of the losses, distance metrics and L2 normalisation. */
#ifndef GRAD_H
#define GRAD_H

#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "loss.h"
#include "mine.h"
#include "tr_err.h"

/* All gradients are in double. G is dL/dD for an n x n distance matrix D
 * (row-major, G[i*n+j] = dL/dD[i][j]); the diagonal is never used. */

/* Add scale * d(loss of each triplet)/dD to G for nt mined triplets (their
 * d_ap, d_an are read from the triplets). k is LOSS_TRIPLET (hinge: the
 * subgradient at the kink is 0) or LOSS_TRIPLET_SOFT. Returns scale * the
 * sum of the triplets' losses. */
double grd_triplets(loss_kind k, const mine_triplet *t, size_t nt, double margin, double scale, double *G, size_t n);

/* Statistics of grd_pairs over the n(n-1)/2 pairs i < j. */
typedef struct {
    size_t n_pairs, n_active; /* pairs, pairs with loss > 0 */
    size_t n_similar, n_dissimilar;
    double mean_d_sim, mean_d_dis; /* mean D over similar / dissimilar pairs */
} grd_pair_stats;

/* Contrastive loss over every pair i < j of a labelled batch (similar when
 * the labels are equal), mean-reduced over the pairs. Sets G (all of it)
 * to dL/dD and returns the loss in *loss. k is LOSS_CONTRASTIVE or
 * LOSS_CONTRASTIVE_SQUARED. st may be NULL. TR_EINVAL on another k or n < 2. */
int grd_pairs(loss_kind k, const double *D, const int64_t *labels, size_t n, double margin, double *G, double *loss,
              grd_pair_stats *st, tr_err *err);

/* dL/dE from dL/dD for D = metric(E, E): E is n x dim (row-major), D the
 * distances it gives (used by euclidean: at D = 0 the gradient is taken as
 * 0, the subgradient a zero distance allows), G = dL/dD. Overwrites dE
 * (n x dim). cosine: a zero row has distance 1 to everything, gradient 0.
 * work is caller scratch of n*n + n*dim + n doubles (NULL: allocated here, and
 * TR_ENOMEM if that fails). The heavy product runs on cblas_dgemm. */
int grd_dist_backward(dist_metric m, const double *E, size_t n, size_t dim, const double *D, const double *G,
                      double *dE, double *work, tr_err *err);

/* Backward of y = x / max(|x|, 1e-12) per row: x is n x dim, g holds dL/dy
 * on entry and dL/dx on return (the torch.nn.functional.normalize rule). */
void grd_l2norm_backward(const double *x, size_t n, size_t dim, double *g);

#endif
