/* vectors.c - request vectors to what handlers compare: parse, optionally embed, normalise. */
#include "vectors.h"

#include "batcher.h"
#include "metrics.h"
#include "xbatch.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static jio_choice g_metrics[DIST_COUNT + 1];
static pthread_once_t g_metric_once = PTHREAD_ONCE_INIT;

static void metrics_init(void) {
    for (int i = 0; i < DIST_COUNT; i++) g_metrics[i] = (jio_choice){dist_name((dist_metric)i), i};
}

const jio_choice *srv_metric_choices(void) {
    pthread_once(&g_metric_once, metrics_init);
    return g_metrics;
}

int srv_vec_opts_parse(const srv_ctx *ctx, const cJSON *body, int with_metric, srv_vec_opts *o, srv_reply *out) {
    int rc;
    o->embed = 1;
    o->normalize = -1;
    o->metric = ctx->state->metric;
    if ((rc = jio_bool(body, "embed", &o->embed, out))) return rc;
    if ((rc = jio_bool(body, "normalize", &o->normalize, out))) return rc;
    if (with_metric) {
        int m = (int)o->metric;
        if ((rc = jio_enum(body, "metric", srv_metric_choices(), &m, out))) return rc;
        o->metric = (dist_metric)m;
    }
    return 0;
}

int srv_forward(const srv_ctx *ctx, const float *x, size_t n, float *y, int normalize, tr_err *err) {
    const srv_state *st = ctx->state;
    if (ctx->defer) return xb_forward(ctx->defer, st, x, n, y, normalize, &ctx->scratch->work, err);
    return bat_forward(st->batcher, st->model, x, n, y, normalize, &ctx->scratch->work, err);
}

int srv_vectors(const srv_ctx *ctx, const cJSON *body, const char *name, int slot, const srv_vec_opts *o, size_t *n,
                size_t *dim, const float **v, srv_reply *out) {
    const mdl_model *m = ctx->state->model;
    srv_scratch *s = ctx->scratch;
    size_t d = o->embed ? (size_t)mdl_input_dim(m) : *dim, total;
    tr_err err;
    jio_images img = {o->embed && m->has_image ? &m->image : NULL, ctx->cfg->max_image_pixels, !o->embed,
                      ctx->raw_image};
    const xb_job *job = ctx->defer;
    int rc;
    if (job && job->replay && job->recorded && slot == 0 && o->embed)
        *n = job->n; /* the replay of the recorded forward: its rows were read and checked then, and are in the batch */
    else if ((rc = jio_vectors(body, name, ctx->cfg->max_batch, &img, &s->in[slot], n, &d, out)))
        return rc;
    if (slot == 0 && !(job && job->replay)) srv_metrics_batch(ctx->route, *n); /* once per request */
    if (!o->embed) {
        *dim = d;
        if (o->normalize == 1) mdl_l2_normalize(s->in[slot].p, *n, d);
        *v = s->in[slot].p;
        return 0;
    }
    size_t od = (size_t)mdl_output_dim(m);
    if (!tr_size_mul(*n, od, &total) || tr_scratch_reserve(&s->emb[slot], total) != TR_OK)
        return srv_fail(out, 503, name, "%s: out of memory for %zu embeddings", name, *n);
    tr_clearerr(&err);
    if ((rc = srv_forward(ctx, s->in[slot].p, *n, s->emb[slot].p, o->normalize, &err)) != TR_OK)
        return srv_fail_tr(out, rc, &err);
    /* huge (finite) inputs can overflow float32 inside the model */
    for (size_t i = 0; i < total; i++) {
        if (!isfinite(s->emb[slot].p[i])) {
            char path[160];
            snprintf(path, sizeof path, "%s[%zu]", name, i / od);
            return srv_fail(out, 422, path, "%s: the embedding overflows float32 (inputs too large for this model)",
                            path);
        }
    }
    *dim = od;
    *v = s->emb[slot].p;
    return 0;
}

double *srv_doubles(const srv_ctx *ctx, size_t n, srv_reply *out) {
    size_t floats;
    if (!tr_size_mul(n ? n : 1, 2, &floats) || tr_scratch_reserve(&ctx->scratch->dbl, floats) != TR_OK) {
        srv_fail(out, 503, "", "out of memory for %zu results", n);
        return NULL;
    }
    return (double *)(void *)ctx->scratch->dbl.p;
}

cJSON *srv_scoring_config(const srv_vec_opts *o, const mdl_model *m, double margin, loss_kind k) {
    cJSON *c = cJSON_CreateObject();
    if (!c) return NULL;
    cJSON_AddStringToObject(c, "metric", dist_name(o->metric));
    cJSON_AddNumberToObject(c, "margin", margin);
    cJSON_AddStringToObject(c, "loss", loss_name(k));
    cJSON_AddBoolToObject(c, "normalize", o->normalize >= 0 ? o->normalize : (o->embed ? m->normalize : 0));
    cJSON_AddBoolToObject(c, "embed", o->embed);
    return c;
}

int srv_margin_loss(const cJSON *body, const jio_choice *losses, loss_kind *k, double *margin, srv_reply *out) {
    int rc, kv = (int)*k;
    if ((rc = jio_number(body, "margin", 0, 1e9, 0, margin, out))) return rc;
    if ((rc = jio_enum(body, "loss", losses, &kv, out))) return rc;
    *k = (loss_kind)kv;
    return 0;
}

cJSON *srv_add_counts(cJSON *res, const size_t counts[LOSS_CAT_COUNT]) {
    cJSON *cnt = cJSON_AddObjectToObject(res, "counts");
    if (!cnt) return NULL;
    cJSON_AddNumberToObject(cnt, "easy", (double)counts[LOSS_CAT_EASY]);
    cJSON_AddNumberToObject(cnt, "semi_hard", (double)counts[LOSS_CAT_SEMI_HARD]);
    cJSON_AddNumberToObject(cnt, "hard", (double)counts[LOSS_CAT_HARD]);
    return cnt;
}
