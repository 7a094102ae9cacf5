/* pca.h - principal component analysis of rows (the 2-D map of a gallery). */
#ifndef PCA_H
#define PCA_H

#include <stddef.h>

#include "tr_err.h"

#define PCA_MAX_DIM 2048 /* the dim x dim covariance is held in doubles */

/* Project the n rows of x (n x dim floats, leading dimension ld >= dim) on
 * their first k principal axes (1 <= k <= 8): out[i*k + j] is the centred
 * row i dotted with axis j, axes ordered by decreasing variance. The
 * covariance is accumulated in double and decomposed by LAPACK (dsyevr);
 * each axis is oriented so that its largest-magnitude loading is positive
 * (the first such on ties), which makes the result deterministic. var
 * (k, may be NULL) receives each axis's variance (eigenvalue, divisor
 * n - 1). Axes beyond dim, or when n < 2, project to 0 with variance 0.
 * TR_ELIMIT when dim > PCA_MAX_DIM, TR_ENOMEM, TR_EINTERNAL (LAPACK). */
int pca_project(const float *x, size_t n, size_t dim, size_t ld, int k, double *out, double *var, tr_err *err);

/* The deterministic sample of at most m of n rows the gallery map uses:
 * every row when n <= m, else rows floor(i * n / m) for i = 0..m-1
 * (evenly spaced, first row included). Writes the count to *count and the
 * rows, increasing, to idx (room for min(n, m)). */
void pca_sample(size_t n, size_t m, size_t *idx, size_t *count);

#endif
