/* par.c - a fork-join pool of sleeping workers: one generation counter, one task cut in pieces that the threads
 * take in turn, one completion count. */
#include "par.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#define PAR_MAX 64
#define PAR_PIECES 8 /* pieces per thread: a thread the system holds back delays the others by one piece at most */

struct par {
    int n; /* threads, the caller included */
    int started;
    pthread_t th[PAR_MAX];
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned long gen; /* bumped per task */
    int pending;       /* workers still on the task */
    int quit;
    size_t total, pieces;
    atomic_size_t next; /* the next piece to take */
    void (*fn)(void *, size_t, size_t);
    void (*fn_id)(void *, size_t, size_t, int);
    void *ctx;
};

typedef struct {
    par *p;
    int id;
} par_arg;

/* Pieces of [0, total) until none is left, on thread id. */
static void run(par *p, int id) {
    for (;;) {
        size_t k = atomic_fetch_add(&p->next, 1);
        if (k >= p->pieces) break;
        size_t lo = p->total * k / p->pieces, hi = p->total * (k + 1) / p->pieces;
        if (p->fn_id)
            p->fn_id(p->ctx, lo, hi, id);
        else
            p->fn(p->ctx, lo, hi);
    }
}

static void *worker(void *arg) {
    par_arg a = *(par_arg *)arg;
    par *p = a.p;
    unsigned long seen = 0;
    free(arg);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->quit) pthread_cond_wait(&p->go, &p->mu);
        if (p->quit) break;
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        run(p, a.id);
        pthread_mutex_lock(&p->mu);
        if (--p->pending == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int par_new(int n_threads, par **out, tr_err *err) {
    *out = NULL;
    if (n_threads < 1 || n_threads > PAR_MAX)
        return tr_seterr(err, TR_EINVAL, "threads", "threads %d is not in 1..%d", n_threads, PAR_MAX);
    par *p = calloc(1, sizeof *p);
    if (p == NULL) return tr_seterr(err, TR_ENOMEM, "threads", "out of memory");
    p->n = n_threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->go, NULL);
    pthread_cond_init(&p->done, NULL);
    for (int i = 1; i < n_threads; i++) {
        par_arg *a = malloc(sizeof *a);
        if (a == NULL) goto fail;
        *a = (par_arg){p, i};
        if (pthread_create(&p->th[i], NULL, worker, a) != 0) {
            free(a);
            goto fail;
        }
        p->started = i;
    }
    *out = p;
    return TR_OK;
fail:
    par_free(p);
    return tr_seterr(err, TR_ENOMEM, "threads", "cannot start %d worker threads", n_threads - 1);
}

void par_free(par *p) {
    if (p == NULL) return;
    pthread_mutex_lock(&p->mu);
    p->quit = 1;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    for (int i = 1; i <= p->started; i++) pthread_join(p->th[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->go);
    pthread_cond_destroy(&p->done);
    free(p);
}

int par_threads(const par *p) {
    return p ? p->n : 1;
}

/* fn or fn_id over [0, n) on every thread. */
static void par_run(par *p, size_t n, void (*fn)(void *, size_t, size_t), void (*fn_id)(void *, size_t, size_t, int),
                    void *ctx) {
    pthread_mutex_lock(&p->mu);
    p->total = n;
    p->pieces = n < (size_t)(PAR_PIECES * p->n) ? n : (size_t)(PAR_PIECES * p->n);
    atomic_store(&p->next, 0);
    p->fn = fn;
    p->fn_id = fn_id;
    p->ctx = ctx;
    p->pending = p->n - 1;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    run(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->pending > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void par_for(par *p, size_t n, void (*fn)(void *ctx, size_t lo, size_t hi), void *ctx) {
    if (p == NULL || p->n == 1 || n < 2) {
        if (n) fn(ctx, 0, n);
        return;
    }
    par_run(p, n, fn, NULL, ctx);
}

void par_for_id(par *p, size_t n, void (*fn)(void *ctx, size_t lo, size_t hi, int tid), void *ctx) {
    if (p == NULL || p->n == 1 || n < 2) {
        if (n) fn(ctx, 0, n, 0);
        return;
    }
    par_run(p, n, NULL, fn, ctx);
}
