/* onnx_forward.c - the C side of bench_onnx.sh: images/s through onx_forward per batch size, per
 * second of wall time and per second of the process's CPU time (what other load disturbs least). */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "onnx.h"

static double now(clockid_t c) {
    struct timespec t;
    clock_gettime(c, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: onnx_forward MODEL MIN_SECONDS REPS BATCH...\n");
        return 2;
    }
    double min_s = atof(argv[2]);
    int reps = atoi(argv[3]);
    onx_graph *g = NULL;
    tr_err err;
    if (onx_open(argv[1], &g, &err) != TR_OK) {
        fprintf(stderr, "onnx_forward: %s: %s\n", argv[1], err.msg);
        return 1;
    }
    size_t in = onx_input_dim(g), od = onx_output_dim(g), maxb = 0;
    for (int a = 4; a < argc; a++) maxb = (size_t)atol(argv[a]) > maxb ? (size_t)atol(argv[a]) : maxb;
    float *x = malloc(maxb * in * sizeof *x), *y = malloc(maxb * od * sizeof *y);
    if (!x || !y) return 1;
    srand(1);
    for (size_t i = 0; i < maxb * in; i++) x[i] = (float)rand() / (float)RAND_MAX;
    onx_ws *ws = NULL;
    int rc = 0;
    for (int a = 4; a < argc && rc == 0; a++) {
        size_t n = (size_t)atol(argv[a]);
        double best = 0, best_cpu = 0;
        rc = onx_forward(g, x, n, y, &ws, &err); /* warm: plan, arena */
        for (int rep = 0; rep < reps && rc == 0; rep++) {
            double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID), t;
            long calls = 0;
            do {
                rc |= onx_forward(g, x, n, y, &ws, &err);
                calls++;
            } while ((t = now(CLOCK_MONOTONIC) - t0) < min_s);
            double c = now(CLOCK_PROCESS_CPUTIME_ID) - c0, imgs = (double)calls * (double)n;
            best = imgs / t > best ? imgs / t : best;
            best_cpu = imgs / c > best_cpu ? imgs / c : best_cpu;
        }
        printf("%zu %.1f %.1f\n", n, best, best_cpu);
    }
    if (rc) fprintf(stderr, "onnx_forward: %s\n", err.msg);
    onx_ws_free(ws);
    free(x);
    free(y);
    onx_free(g);
    return rc ? 1 : 0;
}
