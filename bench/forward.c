/* forward.c - time mdl_forward on a model file; bench_forward.sh builds and runs it.
 * usage: forward MODEL THREADS MIN_SECONDS REPS [--workers] BATCH...
 * Prints "BATCH VECTORS_PER_S" per batch: the best of REPS timed runs of at least MIN_SECONDS.
 * Default: one caller, OpenBLAS with THREADS threads. --workers: THREADS callers at once, each
 * with its own scratch and OpenBLAS on one thread (how tripletd's request handlers use cores). */
#include <cblas.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    const mdl_model *m;
    const float *x;
    float *y;
    size_t n, calls;
    double min_s, secs;
    mdl_ws ws;
    int rc;
} run;

/* Warm up, then call mdl_forward on the same batch for at least min_s seconds. */
static void *timed(void *arg) {
    run *r = arg;
    tr_err err;
    for (int w = 0; w < 3; w++) r->rc |= mdl_forward(r->m, r->x, r->n, r->y, 0, &r->ws, &err);
    double t0 = now(), t;
    r->calls = 0;
    do {
        r->rc |= mdl_forward(r->m, r->x, r->n, r->y, 0, &r->ws, &err);
        r->calls++;
    } while ((t = now() - t0) < r->min_s);
    r->secs = t;
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: forward MODEL THREADS MIN_SECONDS REPS [--workers] BATCH...\n");
        return 2;
    }
    int threads = atoi(argv[2]), reps = atoi(argv[4]), first = 5, workers = 1;
    if (strcmp(argv[5], "--workers") == 0) {
        workers = threads;
        first = 6;
    }
    if (threads < 1 || workers > 64) return 2;
    double min_s = atof(argv[3]);
    mdl_model *m = NULL;
    tr_err err;
    if (mdl_load(argv[1], &m, &err) != TR_OK) {
        fprintf(stderr, "forward: %s: %s\n", argv[1], err.msg);
        return 1;
    }
    openblas_set_num_threads(workers > 1 ? 1 : threads);
    size_t in = (size_t)mdl_input_dim(m), od = (size_t)mdl_output_dim(m), maxb = 0;
    for (int a = first; a < argc; a++) maxb = (size_t)atol(argv[a]) > maxb ? (size_t)atol(argv[a]) : maxb;
    float *x = malloc(maxb * in * sizeof *x), *y = malloc((size_t)workers * maxb * od * sizeof *y);
    run r[64];
    memset(r, 0, sizeof r);
    if (!x || !y) return 1;
    srand(1);
    for (size_t i = 0; i < maxb * in; i++) x[i] = (float)rand() / (float)RAND_MAX; /* pixel-like 0..1 */
    int rc = 0;
    for (int a = first; a < argc && rc == 0; a++) {
        size_t n = (size_t)atol(argv[a]);
        double best = 0;
        for (int rep = 0; rep < reps && rc == 0; rep++) {
            pthread_t th[64];
            for (int w = 0; w < workers; w++) {
                r[w].m = m, r[w].x = x, r[w].y = y + (size_t)w * maxb * od, r[w].n = n, r[w].min_s = min_s;
                if (workers > 1) rc |= pthread_create(&th[w], NULL, timed, &r[w]);
            }
            if (workers == 1) timed(&r[0]);
            double vps = 0;
            for (int w = 0; w < workers; w++) {
                if (workers > 1) pthread_join(th[w], NULL);
                rc |= r[w].rc;
                vps += (double)(r[w].calls * n) / r[w].secs;
            }
            best = vps > best ? vps : best;
        }
        printf("%zu %.1f\n", n, best);
    }
    if (rc) fprintf(stderr, "forward: failed\n");
    for (int w = 0; w < workers; w++) mdl_ws_free(&r[w].ws);
    free(x);
    free(y);
    mdl_free(m);
    return rc ? 1 : 0;
}
