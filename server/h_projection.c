/* h_projection.c - GET /v1/gallery/projection: a 2-D PCA map of a sample of the gallery, cached per snapshot. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pca.h"
#include "handlers.h"

#define PROJ_DEFAULT_N 2000
#define PROJ_MAX_N 20000
#define PROJ_CACHE 4

/* Rendered replies by (snapshot generation, gallery, n): a reload starts a
 * new generation, so an entry never outlives what it describes by meaning;
 * the gallery pointer guards against two states of one generation. */
typedef struct {
    int generation;
    const void *gallery;
    size_t n;
    unsigned long long used;
    char *text;
    size_t len;
} proj_entry;

static proj_entry g_cache[PROJ_CACHE];
static unsigned long long g_tick;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

/* A copy of the cached text for the key, or NULL. */
static char *cache_get(int gen, const void *gal, size_t n, size_t *len) {
    char *copy = NULL;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < PROJ_CACHE; i++) {
        proj_entry *e = &g_cache[i];
        if (!e->text || e->generation != gen || e->gallery != gal || e->n != n) continue;
        if ((copy = malloc(e->len + 1)) != NULL) {
            memcpy(copy, e->text, e->len + 1);
            *len = e->len;
            e->used = ++g_tick;
        }
        break;
    }
    pthread_mutex_unlock(&g_lock);
    return copy;
}

static void cache_put(int gen, const void *gal, size_t n, const char *text, size_t len) {
    char *copy = malloc(len + 1);
    if (!copy) return;
    memcpy(copy, text, len + 1);
    pthread_mutex_lock(&g_lock);
    proj_entry *victim = &g_cache[0];
    for (int i = 0; i < PROJ_CACHE; i++) {
        proj_entry *e = &g_cache[i];
        if (e->text && (e->generation != gen || e->gallery != gal)) { /* another snapshot's: stale */
            free(e->text);
            e->text = NULL;
        }
        if (!e->text || e->used < victim->used) victim = e;
        if (!victim->text) break;
    }
    free(victim->text);
    *victim = (proj_entry){gen, gal, n, ++g_tick, copy, len};
    pthread_mutex_unlock(&g_lock);
}

/* A number rounded to 7 significant digits (the map needs no more; keeps the reply small). */
static double sig7(double v) {
    char b[32];
    snprintf(b, sizeof b, "%.7g", v);
    return strtod(b, NULL);
}

static cJSON *build(const srv_state *st, size_t want, srv_reply *out) {
    const gal_gallery *g = st->gallery;
    size_t *idx = malloc((g->n < want ? g->n : want) * sizeof *idx), n = 0;
    float *rows = NULL;
    double *xy = NULL, var[2], total = 0;
    cJSON *o = NULL, *pts, *arr;
    tr_err err;
    int rc;
    if (!idx) goto oom;
    pca_sample(g->n, want, idx, &n);
    if (!(rows = malloc(n * g->dim * sizeof *rows)) || !(xy = malloc(n * 2 * sizeof *xy))) goto oom;
    for (size_t i = 0; i < n; i++) memcpy(rows + i * g->dim, g->emb + idx[i] * g->dim, g->dim * sizeof *rows);
    if ((rc = pca_project(rows, n, g->dim, g->dim, 2, xy, var, &err)) != TR_OK) {
        srv_fail_tr(out, rc, &err);
        goto done;
    }
    for (size_t j = 0; j < g->dim && n > 1; j++) { /* total variance of the sample, for the ratios */
        double m = 0, s = 0;
        for (size_t i = 0; i < n; i++) m += rows[i * g->dim + j];
        m /= (double)n;
        for (size_t i = 0; i < n; i++) s += (rows[i * g->dim + j] - m) * (rows[i * g->dim + j] - m);
        total += s / (double)(n - 1);
    }
    if (!(o = cJSON_CreateObject()) || !cJSON_AddNumberToObject(o, "size", (double)g->n) ||
        !cJSON_AddNumberToObject(o, "dim", (double)g->dim) || !cJSON_AddNumberToObject(o, "n", (double)n) ||
        !cJSON_AddStringToObject(o, "sample", n == g->n ? "all" : "stride") ||
        !cJSON_AddNumberToObject(o, "generation", st->generation) ||
        !cJSON_AddStringToObject(o, "gallery_sha256", gal_sha256(g)) ||
        !(arr = cJSON_AddArrayToObject(o, "explained_variance")))
        goto oom;
    for (int a = 0; a < 2; a++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(var[a]));
    if (!(arr = cJSON_AddArrayToObject(o, "explained_variance_ratio"))) goto oom;
    for (int a = 0; a < 2; a++) cJSON_AddItemToArray(arr, cJSON_CreateNumber(total > 0 ? var[a] / total : 0));
    if (!(pts = cJSON_AddArrayToObject(o, "points"))) goto oom;
    for (size_t i = 0; i < n; i++) {
        size_t r = idx[i];
        cJSON *p = cJSON_CreateObject();
        if (!p) goto oom;
        cJSON_AddItemToArray(pts, p);
        if (!cJSON_AddNumberToObject(p, "index", (double)r) ||
            !(g->ids ? cJSON_AddStringToObject(p, "id", g->ids[r]) : cJSON_AddNullToObject(p, "id")) ||
            !(g->labels ? cJSON_AddNumberToObject(p, "label", (double)g->labels[r])
                        : cJSON_AddNullToObject(p, "label")) ||
            !cJSON_AddNumberToObject(p, "x", sig7(xy[2 * i])) || !cJSON_AddNumberToObject(p, "y", sig7(xy[2 * i + 1])))
            goto oom;
    }
    goto done;
oom:
    srv_fail(out, 503, "", "out of memory building the projection");
done:
    if (out->status >= 400) {
        cJSON_Delete(o);
        o = NULL;
    }
    free(idx);
    free(rows);
    free(xy);
    return o;
}

int h_projection(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    const srv_state *st = ctx->state;
    long n;
    int rc;
    (void)body;
    if (!st->gallery) {
        srv_fail(out, 409, "",
                 "no gallery is loaded: start tripletd with --gallery PATH (build one with `tripletctl index`)");
        snprintf(out->err_type, sizeof out->err_type, "no_gallery");
        return out->status;
    }
    if ((rc = srv_arg_long(ctx, "n", 1, PROJ_MAX_N, PROJ_DEFAULT_N, &n, out))) return rc;
    if ((out->raw = cache_get(st->generation, st->gallery, (size_t)n, &out->raw_len)) != NULL) {
        srv_reply_header(out, "X-Cache", "hit");
        return out->status = 200;
    }
    cJSON *o = build(st, (size_t)n, out);
    if (!o) return out->status;
    out->raw = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!out->raw) return srv_fail(out, 503, "", "out of memory rendering the projection");
    out->raw_len = strlen(out->raw);
    cache_put(st->generation, st->gallery, (size_t)n, out->raw, out->raw_len);
    srv_reply_header(out, "X-Cache", "miss");
    return out->status = 200;
}
