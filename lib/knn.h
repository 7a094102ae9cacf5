/* knn.h - exact k-nearest-neighbour search over a gallery of embeddings. */
#ifndef KNN_H
#define KNN_H

#include <stddef.h>
#include <stdint.h>

#include "dist.h"
#include "tr_err.h"

typedef struct {
    int64_t index; /* gallery row, or -1 when fewer than k rows qualified */
    double dist;   /* distance in the metric's own units */
} knn_hit;

typedef struct {
    int threads;           /* worker threads (<= 0: 1) */
    const int64_t *labels; /* gallery labels [ng] or NULL */
    int use_filter;        /* only rows with labels[i] == filter_label */
    int64_t filter_label;
    const float *g_sqnorm;   /* precomputed |g_i|^2 [ng] or NULL (the
                                float rounding of the exact value) */
    size_t block_q, block_g; /* tile of queries x gallery rows (0: defaults
                                1024 x 512); small values for tests */
    size_t *n_fallback;      /* out, may be NULL: queries answered by the
                                exact double scan (see knn.c) */
    int int8_pass;           /* 0: an int8 first pass picks the candidates
                                when the CPU has AVX-512 VNNI and the batch
                                is big enough (knn_i8.c); 1: whenever the CPU
                                can; -1: never */
    int *int8_used;          /* out, may be NULL: 1 when the int8 pass ran */
} knn_opts;

/* For each of nq queries (row-major nq x dim) find the k nearest of the ng
 * gallery rows (ng x dim) under metric m. out is nq*k hits, each query's
 * sorted by (dist, index) ascending: ties go to the smaller index. Rows
 * short of k are padded with index -1, dist +inf. Blocked GEMM with memory
 * bounded by the block size, not by nq*ng. opts may be NULL; zero-initialise
 * it. Results equal a double-precision brute force exactly (knn.c explains
 * how). threads > 1 runs that many workers over query blocks, each calling
 * SGEMM with OpenBLAS at one thread (openblas_set_num_threads(1)); when
 * OpenBLAS is threaded itself, one worker runs and OpenBLAS threads its GEMMs.
 * Errors: TR_EINVAL for k == 0, dim == 0, a non-finite query ("queries[i]")
 * or gallery row, filter without labels ("filter_label"); TR_ENOMEM. */
int knn_search(dist_metric m, const float *q, size_t nq, const float *g, size_t ng, size_t dim, size_t k,
               const knn_opts *opts, knn_hit *out, tr_err *err);

/* 1 when this CPU runs knn_search's int8 first pass (x86-64 with AVX-512
 * VNNI), else 0. */
int knn_int8_available(void);

/* Majority label among one query's hits (hits[0..k), sorted as knn_search
 * leaves them; index -1 entries are ignored): the label with the most hits,
 * a tie going to the label whose nearest hit comes first. *found = 0 when
 * there is no hit or labels is NULL. TR_OK or TR_ENOMEM. */
int knn_vote(const knn_hit *hits, size_t k, const int64_t *labels, int64_t *label, int *found, tr_err *err);

#endif
