/* knn_bench.c - time knn_search on raw float32 files; bench_knn.sh builds it.
 * usage: knn_bench GALLERY.f32 QUERIES.f32 DIM K THREADS METRIC REPS [OUT.i64]
 * Prints the best queries/s of REPS runs, the count of queries answered by
 * the exact fallback and 1 when the int8 pass ran (else 0); OUT gets the indices of the last run. Env: KNN_BQ,
 * KNN_BG (tile), KNN_BLAS_THREADS (OpenBLAS threads, default 1), KNN_INT8 (the
 * int8_pass option: -1 never, 0 auto, 1 always). */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "knn.h"

static float *read_f32(const char *path, size_t dim, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    float *x = malloc((size_t)len);
    if (x && fread(x, 1, (size_t)len, f) != (size_t)len) {
        free(x);
        x = NULL;
    }
    fclose(f);
    *n = (size_t)len / sizeof(float) / dim;
    return x;
}

/* KNN_CPU=1 times process CPU time instead of wall time: on a loaded
 * machine it shows the work done, not the share of the cores obtained. */
static double now(void) {
    struct timespec ts;
    clock_gettime(getenv("KNN_CPU") ? CLOCK_PROCESS_CPUTIME_ID : CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: knn_bench GALLERY.f32 QUERIES.f32 DIM K THREADS METRIC REPS [OUT.i64]\n");
        return 2;
    }
    size_t dim = (size_t)atol(argv[3]), k = (size_t)atol(argv[4]), ng, nq;
    int threads = atoi(argv[5]), reps = atoi(argv[7]);
    dist_metric m;
    if (dist_parse(argv[6], &m) != 0) {
        fprintf(stderr, "knn_bench: unknown metric %s\n", argv[6]);
        return 2;
    }
    float *g = read_f32(argv[1], dim, &ng), *q = read_f32(argv[2], dim, &nq);
    knn_hit *out = malloc(nq * k * sizeof *out);
    if (!g || !q || !out) {
        fprintf(stderr, "knn_bench: cannot read %s / %s\n", argv[1], argv[2]);
        return 1;
    }
    /* workers call SGEMM themselves: OpenBLAS runs single-threaded inside,
     * unless KNN_BLAS_THREADS asks for OpenBLAS's own threading instead */
    openblas_set_num_threads(getenv("KNN_BLAS_THREADS") ? atoi(getenv("KNN_BLAS_THREADS")) : 1);
    double best = 1e30;
    size_t fb = 0;
    int used = 0;
    for (int r = 0; r < reps; r++) {
        knn_opts o = {.threads = threads, .n_fallback = &fb, .int8_used = &used};
        if (getenv("KNN_BQ")) o.block_q = (size_t)atol(getenv("KNN_BQ"));
        if (getenv("KNN_BG")) o.block_g = (size_t)atol(getenv("KNN_BG"));
        if (getenv("KNN_INT8")) o.int8_pass = atoi(getenv("KNN_INT8"));
        tr_err err;
        double t0 = now();
        if (knn_search(m, q, nq, g, ng, dim, k, &o, out, &err) != TR_OK) {
            fprintf(stderr, "knn_bench: %s\n", err.msg);
            return 1;
        }
        double t = now() - t0;
        if (t < best) best = t;
    }
    printf("%.1f %zu %d\n", (double)nq / best, fb, used);
    if (argc > 8) {
        FILE *f = fopen(argv[8], "wb");
        for (size_t i = 0; f && i < nq * k; i++) fwrite(&out[i].index, sizeof out[i].index, 1, f);
        if (f) fclose(f);
    }
    free(g);
    free(q);
    free(out);
    return 0;
}
