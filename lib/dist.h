/* dist.h - distance metrics between embeddings, row-wise and all-pairs. */
#ifndef DIST_H
#define DIST_H

#include <stddef.h>

#include "tr_err.h"

/* All metrics are distances (smaller = closer):
 *   sqeuclidean  sum (a-b)^2                 (default, FaceNet)
 *   euclidean    sqrt(sum (a-b)^2), no eps
 *   cosine       1 - a.b / (|a||b|); a zero vector has cos 0 -> distance 1
 *   dot          -(a.b)
 * Sums are accumulated in double. */
typedef enum { DIST_SQEUCLIDEAN, DIST_EUCLIDEAN, DIST_COSINE, DIST_DOT, DIST_COUNT } dist_metric;

/* "sqeuclidean" ... -> 0 and *out; unknown name -> -1. */
int dist_parse(const char *s, dist_metric *out);
const char *dist_name(dist_metric m);

/* Distance between two dim-vectors. */
double dist_one(dist_metric m, const float *a, const float *b, size_t dim);

/* out[r] = dist_one(DIST_SQEUCLIDEAN, a, b[r], dim) for four rows at once, bit for bit. */
void dist_sqeuclidean4(const float *a, const float *const b[4], size_t dim, double out[4]);
/* out[i] = d(a[i], b[i]) for i < n; a and b are row-major n x dim. */
void dist_rows(dist_metric m, const float *a, const float *b, size_t n, size_t dim, double *out);

/* out[i*nb + j] = d(a[i], b[j]); row-major na x nb. Uses GEMM for large
 * inputs (clamped at 0 for the Euclidean metrics), direct double sums for
 * small ones. TR_ENOMEM on allocation failure. */
int dist_matrix(dist_metric m, const float *a, size_t na, const float *b, size_t nb, size_t dim, double *out,
                tr_err *err);

#endif
