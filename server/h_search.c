/* h_search.c - POST /v1/search (exact kNN over the loaded gallery) and GET /v1/gallery. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_io.h"
#include "knn.h"
#include "metrics.h"
#include "vectors.h"

#define SEARCH_MAX_K 1000

static int no_gallery(srv_reply *out) {
    return srv_fail(out, 409, "",
                    "no gallery is loaded: start tripletd with --gallery PATH (build one with `tripletctl index`)");
}

/* Optional integer filter_label (exact in a double: |x| <= 2^53). */
static int parse_filter(const cJSON *body, const gal_gallery *g, int *use, int64_t *label, srv_reply *out) {
    const cJSON *it = cJSON_GetObjectItemCaseSensitive(body, "filter_label");
    *use = 0;
    if (it == NULL || cJSON_IsNull(it)) return 0;
    if (!cJSON_IsNumber(it))
        return srv_fail(out, 422, "filter_label", "filter_label: expected an integer, got %s", jio_type_name(it));
    double v = it->valuedouble;
    if (!jio_is_int53(v)) return srv_fail(out, 422, "filter_label", "filter_label: expected an integer");
    if (g->labels == NULL)
        return srv_fail(out, 422, "filter_label", "filter_label: the gallery %s has no labels", g->path ? g->path : "");
    *use = 1;
    *label = (int64_t)v;
    return 0;
}

/* The hits of one query as [{"index","id","label","distance"}, ...]; the
 * library's padding (index -1) is left out. */
static cJSON *hits_json(const gal_gallery *g, const knn_hit *h, size_t k) {
    cJSON *arr = cJSON_CreateArray();
    for (size_t e = 0; arr && e < k && h[e].index >= 0; e++) {
        size_t i = (size_t)h[e].index;
        cJSON *o = cJSON_CreateObject();
        if (o == NULL) goto fail;
        cJSON_AddItemToArray(arr, o);
        if (!cJSON_AddNumberToObject(o, "index", (double)i)) goto fail;
        if (!(g->ids ? cJSON_AddStringToObject(o, "id", g->ids[i]) : cJSON_AddNullToObject(o, "id"))) goto fail;
        if (!(g->labels ? cJSON_AddNumberToObject(o, "label", (double)g->labels[i])
                        : cJSON_AddNullToObject(o, "label")))
            goto fail;
        if (!cJSON_AddNumberToObject(o, "distance", h[e].dist)) goto fail;
    }
    return arr;
fail:
    cJSON_Delete(arr);
    return NULL;
}

int h_search(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    static const char *const fields[] = {"queries", "k", "embed", "metric", "filter_label", NULL};
    const srv_state *st = ctx->state;
    const gal_gallery *g = st->gallery;
    const mdl_model *m = st->model;
    srv_scratch *sc = ctx->scratch;
    knn_hit *hits = NULL;
    cJSON *res = NULL;
    size_t k = 10, n = 0, dim, bytes;
    int embed = 1, use_filter, rc;
    int64_t filter = 0;
    int metric = (int)st->metric;
    tr_err err;

    if (g == NULL) return no_gallery(out);
    if ((rc = jio_check_fields(body, fields, out)) || (rc = jio_size(body, "k", 1, SEARCH_MAX_K, &k, out)) ||
        (rc = jio_bool(body, "embed", &embed, out)) ||
        (rc = jio_enum(body, "metric", srv_metric_choices(), &metric, out)) ||
        (rc = parse_filter(body, g, &use_filter, &filter, out)))
        return rc;
    if (embed && (size_t)mdl_output_dim(m) != g->dim)
        return srv_fail(out, 422, "embed",
                        "embed: the model outputs %d values but the gallery holds %zu-dimensional embeddings; "
                        "send embeddings with \"embed\": false",
                        mdl_output_dim(m), g->dim);
    dim = embed ? (size_t)mdl_input_dim(m) : g->dim;
    jio_images img = {embed && m->has_image ? &m->image : NULL, ctx->cfg->max_image_pixels, !embed, 0};
    if ((rc = jio_vectors(body, "queries", ctx->cfg->max_batch, &img, &sc->in[0], &n, &dim, out))) return rc;
    const float *q = sc->in[0].p;
    if (embed) {
        size_t total;
        if (!tr_size_mul(n, g->dim, &total) || tr_scratch_reserve(&sc->emb[0], total) != TR_OK)
            return srv_fail(out, 503, "queries", "queries: out of memory for %zu embeddings", n);
        if ((rc = srv_forward(ctx, q, n, sc->emb[0].p, -1, &err)) != TR_OK) return srv_fail_tr(out, rc, &err);
        q = sc->emb[0].p;
    }
    if (!tr_size_mul(n, k, &bytes) || !tr_size_mul(bytes, sizeof *hits, &bytes) || (hits = malloc(bytes)) == NULL)
        return srv_fail(out, 503, "k", "k: out of memory for %zu x %zu results", n, k);
    knn_opts o = {
        .threads = 1, .labels = g->labels, .use_filter = use_filter, .filter_label = filter, .g_sqnorm = g->sqnorm};
    if ((rc = knn_search((dist_metric)metric, q, n, g->emb, g->n, g->dim, k, &o, hits, &err)) != TR_OK) {
        rc = srv_fail_tr(out, rc, &err);
        goto done;
    }
    res = cJSON_CreateObject();
    cJSON *results = cJSON_AddArrayToObject(res, "results"), *pred = cJSON_AddArrayToObject(res, "predicted_labels");
    if (results == NULL || pred == NULL) goto oom;
    for (size_t i = 0; i < n; i++) {
        int64_t label;
        int found;
        cJSON *r = hits_json(g, hits + i * k, k);
        if (r == NULL) goto oom;
        cJSON_AddItemToArray(results, r);
        if ((rc = knn_vote(hits + i * k, k, g->labels, &label, &found, &err)) != TR_OK) {
            rc = srv_fail_tr(out, rc, &err);
            goto done;
        }
        cJSON *p = found ? cJSON_CreateNumber((double)label) : cJSON_CreateNull();
        if (p == NULL) goto oom;
        cJSON_AddItemToArray(pred, p);
    }
    if (!cJSON_AddNumberToObject(res, "k", (double)k) ||
        !cJSON_AddStringToObject(res, "metric", dist_name((dist_metric)metric)))
        goto oom;
    srv_metrics_batch(ctx->route, n);
    out->status = 200;
    out->body = res;
    res = NULL;
    rc = 200;
    goto done;
oom:
    rc = srv_fail(out, 503, "", "out of memory building the search reply");
done:
    cJSON_Delete(res);
    free(hits);
    return rc;
}

int h_gallery(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    const srv_state *st = ctx->state;
    const gal_gallery *g = st->gallery;
    (void)body;
    if (g == NULL) return no_gallery(out);
    cJSON *o = cJSON_CreateObject();
    int ok = o && cJSON_AddNumberToObject(o, "size", (double)g->n) &&
             cJSON_AddNumberToObject(o, "dim", (double)g->dim) &&
             cJSON_AddBoolToObject(o, "labels", g->labels != NULL) &&
             cJSON_AddNumberToObject(o, "n_labels", (double)g->n_classes) &&
             cJSON_AddBoolToObject(o, "ids", g->ids != NULL) && cJSON_AddBoolToObject(o, "images", g->images != NULL) &&
             cJSON_AddStringToObject(o, "sha256", gal_sha256(g)) &&
             (g->model_sha256[0] ? cJSON_AddStringToObject(o, "model_sha256", g->model_sha256) != NULL
                                 : cJSON_AddNullToObject(o, "model_sha256") != NULL) &&
             cJSON_AddBoolToObject(o, "model_match", strcmp(g->model_sha256, st->model->sha256) == 0) &&
             cJSON_AddStringToObject(o, "path", st->gallery_path ? st->gallery_path : (g->path ? g->path : "")) &&
             cJSON_AddStringToObject(o, "metric", dist_name(st->metric)) &&
             cJSON_AddNumberToObject(o, "max_k", SEARCH_MAX_K);
    if (!ok) {
        cJSON_Delete(o);
        return srv_fail(out, 503, "", "out of memory building the gallery reply");
    }
    out->status = 200;
    out->body = o;
    return 200;
}
