/* par.h - a small fork-join pool for the training loops: per-sample GEMMs, im2col, batch norm, pooling, activations. */
#ifndef PAR_H
#define PAR_H

#include <stddef.h>

#include "tr_err.h"

typedef struct par par;

/* A pool of n_threads (the caller counts as one; 1 starts no thread).
 * Waiting workers sleep on a condition variable, so they take no CPU from
 * OpenBLAS between regions. TR_ENOMEM / TR_EINVAL when a thread cannot start. */
int par_new(int n_threads, par **out, tr_err *err);
void par_free(par *p); /* NULL is a no-op */
int par_threads(const par *p);

/* fn(ctx, lo, hi) over [0, n) in contiguous pieces (up to 8 per thread)
 * that the threads, the caller among them, take in turn; returns when
 * every piece is done. Which thread runs a piece, and how [0, n) is cut,
 * varies: fn's result must not depend on it. p NULL or n small: one call
 * on the caller's thread. Not reentrant. */
void par_for(par *p, size_t n, void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx);
/* par_for, fn also told its thread's index tid in [0, par_threads(p)) (the caller is 0), e.g. for per-thread
 * scratch. */
void par_for_id(par *p, size_t n, void (*fn)(void *ctx, size_t lo, size_t hi, int tid), void *ctx);

#endif
