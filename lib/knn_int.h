/* knn_int.h - what knn.c shares with its int8 first pass (knn_i8.c); not a public API. */
#ifndef KNN_INT_H
#define KNN_INT_H

#include <pthread.h>

#include "knn.h"

typedef struct {
    float v;
    int64_t i;
} kent; /* approximate heap entry */

typedef struct {
    double d;   /* final distance */
    double pre; /* before the square root (euclidean), else = d */
    int64_t i;
} kcand;

typedef struct knn_i8 knn_i8; /* the gallery packed for the int8 pass */

typedef struct {
    dist_metric m;
    const float *q, *g;
    size_t nq, ng, dim, k, kc, bq, bg;
    const int64_t *labels;
    int use_filter;
    int64_t filter;
    size_t n_elig;
    const float *gadd; /* L2: |g|^2 as float */
    const float *gmul; /* cosine: 1/|g| as float, 0 for zero rows */
    double gmax;       /* max |g|^2 over the gallery */
    double gmin;       /* min |g|^2 over its nonzero rows (0: none) */
    int direct_all;    /* norms too large for float GEMM */
    const knn_i8 *i8;  /* non-NULL: the int8 pass picks the float pass's candidates */
    knn_hit *out;
    /* shared work queue and status */
    pthread_mutex_t mu;
    size_t next_block;
    int rc;
    tr_err err;
    size_t n_fallback;
} knn_job;

static inline int knn_eligible(const knn_job *j, size_t row) {
    return !j->use_filter || j->labels[row] == j->filter;
}

/* Offer row `row` with float ordering value v to a query's bounded max-heap
 * h (*hn entries, at most j->kc); *thr is the heap's top once it is full. */
void knn_offer(const knn_job *j, float v, size_t row, kent *h, size_t *hn, float *thr);

/* knn_i8.c. knn_i8_ok: this CPU runs the int8 kernel and the job fits it. */
int knn_i8_ok(const knn_job *j);
/* Pack j's gallery (quantised rows, scales, error bounds); *out is owned by
 * the caller (knn_i8_free). TR_OK or TR_ENOMEM. */
int knn_i8_new(const knn_job *j, knn_i8 **out, tr_err *err);
void knn_i8_free(knn_i8 *p);
/* Per-worker scratch of the int8 pass for query blocks of up to j->bq. */
typedef struct knn_i8_scratch knn_i8_scratch;
int knn_i8_scratch_new(const knn_job *j, knn_i8_scratch **out);
void knn_i8_scratch_free(knn_i8_scratch *s);
/* Queries q0 .. q0+bq: fill each query's float heap (heaps + i*kc, hn[i])
 * with the rows the int8 pass could not rule out, as the float GEMM pass
 * would have. TR_OK or TR_ENOMEM. */
int knn_i8_block(const knn_job *j, const knn_i8 *p, knn_i8_scratch *s, size_t q0, size_t bq, kent *heaps, size_t *hn);

#endif
