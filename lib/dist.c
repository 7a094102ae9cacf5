/* dist.c - distance metrics: exact double sums per pair, SGEMM for big all-pairs. */
#include "dist.h"

#include <cblas.h>
#include <immintrin.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* dist_matrix uses SGEMM when na*nb*dim reaches this many multiply-adds
 * (about 1 ms of direct double sums); below it every entry is exact-order
 * double. See proto/scoring.md, "Precision". */
#define DIST_GEMM_MIN_MACS ((size_t)1 << 20)
/* A GEMM entry this close to zero relative to its operands' norms lost too
 * many bits to cancellation and is recomputed directly in double. */
#define DIST_RECOMPUTE_FRAC (1.0 / 16.0)
/* Above this squared norm a float dot product may overflow: use doubles. */
#define DIST_GEMM_MAX_NORM2 1e36

static const char *const dist_names[DIST_COUNT] = {"sqeuclidean", "euclidean", "cosine", "dot"};

int dist_parse(const char *s, dist_metric *out) {
    if (s == NULL) return -1;
    for (int i = 0; i < DIST_COUNT; i++)
        if (strcmp(s, dist_names[i]) == 0) {
            *out = (dist_metric)i;
            return 0;
        }
    return -1;
}

const char *dist_name(dist_metric m) {
    return (unsigned)m < DIST_COUNT ? dist_names[m] : "unknown";
}

/* The kernels keep four double partial sums so the loop pipelines; every
 * product of two floats is exact in double, only the additions round. */
static double sum_sqdiff(const float *a, const float *b, size_t dim) {
    double s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= dim; i += 4)
        for (int u = 0; u < 4; u++) {
            double d = (double)a[i + u] - b[i + u];
            s[u] += d * d;
        }
    for (; i < dim; i++) {
        double d = (double)a[i] - b[i];
        s[0] += d * d;
    }
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* sum_sqdiff of a against four rows at once, bit for bit the same: each row's
 * four partial sums are the lanes of one vector (a subtraction, a product and
 * an addition each rounded, no fused multiply-add), so the four rows' chains
 * of additions run side by side where one row's would wait on its own. */
__attribute__((target("avx2"))) static void sum_sqdiff4_avx2(const float *a, const float *const b[4], size_t dim,
                                                             double out[4]) {
    /* four named sums and rows: an array of them went through the stack every step (GCC 12) */
    __m256d s0 = _mm256_setzero_pd(), s1 = s0, s2 = s0, s3 = s0;
    const float *b0 = b[0], *b1 = b[1], *b2 = b[2], *b3 = b[3];
    size_t i = 0;
#define SQD4(S, B)                                                                                                     \
    do {                                                                                                               \
        __m256d d = _mm256_sub_pd(x, _mm256_cvtps_pd(_mm_loadu_ps(B + i)));                                            \
        S = _mm256_add_pd(S, _mm256_mul_pd(d, d));                                                                     \
    } while (0)
    for (; i + 4 <= dim; i += 4) {
        __m256d x = _mm256_cvtps_pd(_mm_loadu_ps(a + i));
        SQD4(s0, b0);
        SQD4(s1, b1);
        SQD4(s2, b2);
        SQD4(s3, b3);
    }
#undef SQD4
    __m256d s[4] = {s0, s1, s2, s3};
    for (int r = 0; r < 4; r++) {
        double l[4];
        _mm256_storeu_pd(l, s[r]);
        for (size_t t = i; t < dim; t++) {
            double d = (double)a[t] - b[r][t];
            l[0] += d * d;
        }
        out[r] = (l[0] + l[1]) + (l[2] + l[3]);
    }
}

static void sum_sqdiff4(const float *a, const float *const b[4], size_t dim, double out[4]) {
    if (__builtin_cpu_supports("avx2")) {
        sum_sqdiff4_avx2(a, b, dim, out);
        return;
    }
    for (int r = 0; r < 4; r++) out[r] = sum_sqdiff(a, b[r], dim);
}

void dist_sqeuclidean4(const float *a, const float *const b[4], size_t dim, double out[4]) {
    sum_sqdiff4(a, b, dim, out);
}

static double sum_dot(const float *a, const float *b, size_t dim) {
    double s[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= dim; i += 4)
        for (int u = 0; u < 4; u++) s[u] += (double)a[i + u] * b[i + u];
    for (; i < dim; i++) s[0] += (double)a[i] * b[i];
    return (s[0] + s[1]) + (s[2] + s[3]);
}

/* a.b, a.a and b.b in one pass (four lanes each). */
static void sum_dot3(const float *a, const float *b, size_t dim, double *ab, double *aa, double *bb) {
    double d[4] = {0, 0, 0, 0}, x2[4] = {0, 0, 0, 0}, y2[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= dim; i += 4)
        for (int u = 0; u < 4; u++) {
            double x = a[i + u], y = b[i + u];
            d[u] += x * y;
            x2[u] += x * x;
            y2[u] += y * y;
        }
    for (; i < dim; i++) {
        double x = a[i], y = b[i];
        d[0] += x * y;
        x2[0] += x * x;
        y2[0] += y * y;
    }
    *ab = (d[0] + d[1]) + (d[2] + d[3]);
    *aa = (x2[0] + x2[1]) + (x2[2] + x2[3]);
    *bb = (y2[0] + y2[1]) + (y2[2] + y2[3]);
}

/* 1 - cos from a dot product and two squared norms; zero vector -> 1. */
static double cosine_from(double dot, double na2, double nb2) {
    if (na2 == 0.0 || nb2 == 0.0) return 1.0;
    double c = dot / (sqrt(na2) * sqrt(nb2));
    if (c > 1.0) c = 1.0;
    if (c < -1.0) c = -1.0;
    return 1.0 - c;
}

double dist_one(dist_metric m, const float *a, const float *b, size_t dim) {
    switch (m) {
    case DIST_SQEUCLIDEAN:
        return sum_sqdiff(a, b, dim);
    case DIST_EUCLIDEAN:
        return sqrt(sum_sqdiff(a, b, dim));
    case DIST_COSINE: {
        double ab, aa, bb;
        sum_dot3(a, b, dim, &ab, &aa, &bb);
        return cosine_from(ab, aa, bb);
    }
    case DIST_DOT:
        return -sum_dot(a, b, dim);
    default:
        return NAN;
    }
}

void dist_rows(dist_metric m, const float *a, const float *b, size_t n, size_t dim, double *out) {
    for (size_t i = 0; i < n; i++) out[i] = dist_one(m, a + i * dim, b + i * dim, dim);
}

static void dist_matrix_direct(dist_metric m, const float *a, size_t na, const float *b, size_t nb, size_t dim,
                               double *out) {
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++) out[i * nb + j] = dist_one(m, a + i * dim, b + j * dim, dim);
}

/* The Euclidean entries dist_matrix_gemm marked (< 0), exact in double, over
 * tiles of DIST_TILE_BYTES of b's rows so each tile stays in cache while
 * every row of a meets it (an untrained network's embeddings, in a narrow
 * cone, mark nearly every entry), four entries of a row at a time. */
#define DIST_TILE_BYTES ((size_t)256 << 10)
static void recompute_marked(dist_metric m, const float *a, size_t na, const float *b, size_t nb, size_t dim,
                             double *out) {
    size_t tile = DIST_TILE_BYTES / (dim * sizeof(float));
    if (tile < 16) tile = 16;
    for (size_t j0 = 0; j0 < nb; j0 += tile) {
        size_t j1 = nb - j0 < tile ? nb : j0 + tile;
        for (size_t i = 0; i < na; i++) {
            double *row = out + i * nb;
            size_t js[4], g = 0;
            for (size_t j = j0; j < j1; j++) {
                if (row[j] < 0) js[g++] = j;
                if (g == 4 || (g > 0 && j + 1 == j1)) {
                    const float *rows[4];
                    double v[4];
                    for (size_t u = 0; u < 4; u++) rows[u] = b + js[u < g ? u : 0] * dim;
                    sum_sqdiff4(a + i * dim, rows, dim, v);
                    for (size_t u = 0; u < g; u++) row[js[u]] = m == DIST_EUCLIDEAN ? sqrt(v[u]) : v[u];
                    g = 0;
                }
            }
        }
    }
}

/* Fill out via SGEMM. The na x nb float product is written into the first
 * half of out's bytes and widened in place from the last entry backwards
 * (entry k's double covers floats 2k, 2k+1 >= k, already consumed), so no
 * extra na*nb buffer is touched. memcpy keeps the type punning defined. */
static int dist_matrix_gemm(dist_metric m, const float *a, size_t na, const float *b, size_t nb, size_t dim,
                            double *out, tr_err *err) {
    int rc = TR_OK;
    size_t nn = na + nb;
    double *norm2 = malloc(nn * sizeof *norm2);
    if (norm2 == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "", "distance matrix: cannot allocate %zu norms", nn);
        goto fail;
    }
    double maxn2 = 0;
    for (size_t i = 0; i < nn; i++) {
        const float *v = i < na ? a + i * dim : b + (i - na) * dim;
        norm2[i] = sum_dot(v, v, dim);
        if (norm2[i] > maxn2) maxn2 = norm2[i];
    }
    if (!(maxn2 < DIST_GEMM_MAX_NORM2)) { /* float products could overflow */
        dist_matrix_direct(m, a, na, b, nb, dim, out);
        goto fail;
    }
    if (m == DIST_COSINE)
        for (size_t j = na; j < nn; j++) norm2[j] = norm2[j] > 0 ? 1.0 / sqrt(norm2[j]) : 0;
    float *c = (float *)(void *)out;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)na, (int)nb, (int)dim, 1.0f, a, (int)dim, b, (int)dim,
                0.0f, c, (int)nb);
    const double *nra = norm2, *nrb = norm2 + na;
    for (size_t i = na; i-- > 0;) {
        const float *ai = a + i * dim;
        double inva = nra[i] > 0 ? 1.0 / sqrt(nra[i]) : 0;
        for (size_t j = nb; j-- > 0;) {
            size_t k = i * nb + j;
            float f;
            memcpy(&f, (char *)out + k * sizeof(float), sizeof f);
            double dot = f, d, scale;
            switch (m) {
            case DIST_SQEUCLIDEAN:
            case DIST_EUCLIDEAN:
                scale = nra[i] + nrb[j];
                d = scale - 2.0 * dot;
                if (d <= DIST_RECOMPUTE_FRAC * scale)
                    d = -1.0; /* recomputed below; every entry kept is > 0 */
                else if (m == DIST_EUCLIDEAN)
                    d = sqrt(d);
                break;
            case DIST_COSINE:
                /* nrb[] holds 1/||b_j|| here (0 for a zero row) */
                d = 1.0 - dot * inva * nrb[j];
                if (d < 0) d = 0;
                if (inva == 0 || nrb[j] == 0)
                    d = 1.0;
                else if (d <= DIST_RECOMPUTE_FRAC)
                    d = dist_one(DIST_COSINE, ai, b + j * dim, dim);
                break;
            default:
                d = -dot;
                break;
            }
            memcpy((char *)out + k * sizeof(double), &d, sizeof d);
        }
    }
    if (m == DIST_SQEUCLIDEAN || m == DIST_EUCLIDEAN) recompute_marked(m, a, na, b, nb, dim, out);
fail:
    free(norm2);
    return rc;
}

int dist_matrix(dist_metric m, const float *a, size_t na, const float *b, size_t nb, size_t dim, double *out,
                tr_err *err) {
    size_t cells, bytes, macs;
    if ((unsigned)m >= DIST_COUNT) return tr_seterr(err, TR_EINVAL, "metric", "unknown metric %d", (int)m);
    if (!tr_size_mul(na, nb, &cells) || !tr_size_mul(cells, sizeof(double), &bytes))
        return tr_seterr(err, TR_ELIMIT, "", "distance matrix %zu x %zu is too large", na, nb);
    if (cells == 0) return TR_OK;
    int gemm = tr_size_mul(cells, dim, &macs) && macs >= DIST_GEMM_MIN_MACS && na <= INT_MAX && nb <= INT_MAX &&
               dim <= INT_MAX && dim > 0;
    /* GEMM pays off only when both sides have some rows; a single row is a
     * plain dot loop either way. */
    if (!gemm || na < 4 || nb < 4) {
        dist_matrix_direct(m, a, na, b, nb, dim, out);
        return TR_OK;
    }
    return dist_matrix_gemm(m, a, na, b, nb, dim, out, err);
}
