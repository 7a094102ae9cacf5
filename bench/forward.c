/* forward.c - time mdl_forward on a model file; bench_forward.sh builds and runs it.
 * usage: forward MODEL THREADS MIN_SECONDS REPS BATCH...
 * Prints "BATCH VECTORS_PER_S" per batch: the best of REPS timed runs of at least MIN_SECONDS. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "model.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 6) {
        fprintf(stderr, "usage: forward MODEL THREADS MIN_SECONDS REPS BATCH...\n");
        return 2;
    }
    int threads = atoi(argv[2]), reps = atoi(argv[4]);
    double min_s = atof(argv[3]);
    mdl_model *m = NULL;
    tr_err err;
    if (mdl_load(argv[1], &m, &err) != TR_OK) {
        fprintf(stderr, "forward: %s: %s\n", argv[1], err.msg);
        return 1;
    }
    openblas_set_num_threads(threads);
    size_t in = (size_t)mdl_input_dim(m), od = (size_t)mdl_output_dim(m), maxb = 0;
    for (int a = 5; a < argc; a++) maxb = (size_t)atol(argv[a]) > maxb ? (size_t)atol(argv[a]) : maxb;
    float *x = malloc(maxb * in * sizeof *x), *y = malloc(maxb * od * sizeof *y);
    if (!x || !y) return 1;
    srand(1);
    for (size_t i = 0; i < maxb * in; i++) x[i] = (float)rand() / (float)RAND_MAX; /* pixel-like 0..1 */
    tr_scratch ws = {0};
    int rc = 0;
    for (int a = 5; a < argc && rc == 0; a++) {
        size_t n = (size_t)atol(argv[a]);
        double best = 0;
        for (int w = 0; w < 3; w++) rc |= mdl_forward(m, x, n, y, 0, &ws, &err); /* warm the scratch and caches */
        for (int r = 0; r < reps && rc == 0; r++) {
            size_t calls = 0;
            double t0 = now(), t;
            do {
                rc |= mdl_forward(m, x, n, y, 0, &ws, &err);
                calls++;
            } while ((t = now() - t0) < min_s);
            double vps = (double)(calls * n) / t;
            best = vps > best ? vps : best;
        }
        printf("%zu %.1f\n", n, best);
    }
    if (rc) fprintf(stderr, "forward: %s\n", err.msg);
    tr_scratch_free(&ws);
    free(x);
    free(y);
    mdl_free(m);
    return rc ? 1 : 0;
}
