/* h_loss.c - POST /v1/loss/triplet, /v1/loss/pair and /v1/loss/infonce. */
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "stats.h"
#include "vectors.h"

static const jio_choice REDUCTIONS[] = {
    {"mean", LOSS_RED_MEAN}, {"mean-nonzero", LOSS_RED_MEAN_NONZERO}, {"sum", LOSS_RED_SUM}, {NULL, 0}};

/* The "config" object echoed by the loss routes. */
static cJSON *config_json(const srv_vec_opts *o, const mdl_model *m, double margin, loss_kind k, loss_reduction red) {
    cJSON *c = srv_scoring_config(o, m, margin, k);
    if (c && !cJSON_AddStringToObject(c, "reduction", loss_reduction_name(red))) {
        cJSON_Delete(c);
        return NULL;
    }
    return c;
}

/* margin, loss (restricted to names) and reduction, with snapshot defaults. */
static int loss_opts(const cJSON *body, const jio_choice *losses, loss_kind *k, double *margin, loss_reduction *red,
                     srv_reply *out) {
    int rc, rv = (int)*red;
    if ((rc = srv_margin_loss(body, losses, k, margin, out))) return rc;
    if ((rc = jio_enum(body, "reduction", REDUCTIONS, &rv, out))) return rc;
    *red = (loss_reduction)rv;
    return 0;
}

int h_loss_triplet(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    static const char *const FIELDS[] = {"anchors", "positives", "negatives", "embed",     "normalize", "metric",
                                         "margin",  "loss",      "swap",      "reduction", NULL};
    static const jio_choice LOSSES[] = {{"triplet", LOSS_TRIPLET}, {"triplet-soft", LOSS_TRIPLET_SOFT}, {NULL, 0}};
    srv_vec_opts o;
    const float *a, *p, *ng;
    size_t n = 0, np = 0, nn = 0, dim = 0, counts[LOSS_CAT_COUNT] = {0}, active = 0;
    loss_kind k = ctx->state->triplet_loss;
    loss_reduction red = LOSS_RED_MEAN;
    double margin = ctx->state->margin, *d;
    int swap = 0, rc;
    loss_category *cats = NULL;
    tr_err err;
    cJSON *res = NULL, *arr;
    if ((rc = jio_check_fields(body, FIELDS, out))) return rc;
    if ((rc = srv_vec_opts_parse(ctx, body, 1, &o, out))) return rc;
    if ((rc = loss_opts(body, LOSSES, &k, &margin, &red, out))) return rc;
    if ((rc = jio_bool(body, "swap", &swap, out))) return rc;
    if ((rc = srv_vectors(ctx, body, "anchors", 0, &o, &n, &dim, &a, out))) return rc;
    if ((rc = srv_vectors(ctx, body, "positives", 1, &o, &np, &dim, &p, out))) return rc;
    if (np != n)
        return srv_fail(out, 422, "positives", "positives: expected %zu vectors (as many as anchors), got %zu", n, np);
    if ((rc = srv_vectors(ctx, body, "negatives", 2, &o, &nn, &dim, &ng, out))) return rc;
    if (nn != n)
        return srv_fail(out, 422, "negatives", "negatives: expected %zu vectors (as many as anchors), got %zu", n, nn);
    if (!(d = srv_doubles(ctx, 4 * n, out))) return out->status;
    double *d_ap = d, *d_an = d + n, *d_pn = d + 2 * n, *losses = d + 3 * n;
    dist_rows(o.metric, a, p, n, dim, d_ap);
    dist_rows(o.metric, a, ng, n, dim, d_an);
    if (swap) dist_rows(o.metric, p, ng, n, dim, d_pn);
    if (!(cats = malloc(n * sizeof *cats))) return srv_fail(out, 503, "", "out of memory");
    tr_clearerr(&err);
    if ((rc = loss_triplet(k, d_ap, d_an, swap ? d_pn : NULL, n, margin, losses, cats, &err)) != TR_OK) {
        free(cats);
        return srv_fail_tr(out, rc, &err);
    }
    for (size_t i = 0; i < n; i++) counts[cats[i]]++, active += losses[i] > 0;
    srv_metrics_triplets(counts);
    srv_stats_losses(losses, n);
    if (!(res = cJSON_CreateObject())) goto oom;
    cJSON_AddNumberToObject(res, "loss", loss_reduce(losses, n, red));
    cJSON_AddItemToObject(res, "losses", jio_doubles(losses, n));
    cJSON_AddItemToObject(res, "d_ap", jio_doubles(d_ap, n));
    cJSON_AddItemToObject(res, "d_an", jio_doubles(d_an, n));
    if (swap) cJSON_AddItemToObject(res, "d_pn", jio_doubles(d_pn, n));
    if (!(arr = cJSON_AddArrayToObject(res, "categories"))) goto oom;
    for (size_t i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(loss_category_name(cats[i])));
    if (!srv_add_counts(res, counts)) goto oom;
    cJSON_AddNumberToObject(res, "active_fraction", n ? (double)active / (double)n : 0.0);
    cJSON *cfg = config_json(&o, ctx->state->model, margin, k, red);
    if (!cfg) goto oom;
    cJSON_AddBoolToObject(cfg, "swap", swap);
    cJSON_AddItemToObject(res, "config", cfg);
    free(cats);
    out->body = res;
    return out->status = 200;
oom:
    free(cats);
    cJSON_Delete(res);
    return srv_fail(out, 503, "", "out of memory");
}

int h_loss_pair(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    static const char *const FIELDS[] = {"a",      "b",      "labels", "embed",     "normalize",
                                         "metric", "margin", "loss",   "reduction", NULL};
    static const jio_choice LOSSES[] = {
        {"contrastive", LOSS_CONTRASTIVE}, {"contrastive-squared", LOSS_CONTRASTIVE_SQUARED}, {NULL, 0}};
    srv_vec_opts o;
    const float *a, *b;
    size_t n = 0, nb = 0, dim = 0;
    loss_kind k = ctx->state->pair_loss;
    loss_reduction red = LOSS_RED_MEAN;
    double margin = ctx->state->margin, *d;
    int64_t *labels = NULL;
    int *lab = NULL, rc;
    tr_err err;
    cJSON *res = NULL;
    if ((rc = jio_check_fields(body, FIELDS, out))) return rc;
    if ((rc = srv_vec_opts_parse(ctx, body, 1, &o, out))) return rc;
    if ((rc = loss_opts(body, LOSSES, &k, &margin, &red, out))) return rc;
    if ((rc = srv_vectors(ctx, body, "a", 0, &o, &n, &dim, &a, out))) return rc;
    if ((rc = srv_vectors(ctx, body, "b", 1, &o, &nb, &dim, &b, out))) return rc;
    if (nb != n) return srv_fail(out, 422, "b", "b: expected %zu vectors (as many as a), got %zu", n, nb);
    if ((rc = jio_labels(body, "labels", n, 1, &labels, out))) return rc;
    if (!(lab = malloc(n * sizeof *lab))) goto oom;
    for (size_t i = 0; i < n; i++) lab[i] = (int)labels[i];
    if (!(d = srv_doubles(ctx, 2 * n, out))) goto done;
    dist_rows(o.metric, a, b, n, dim, d);
    tr_clearerr(&err);
    if ((rc = loss_pair(k, d, lab, n, margin, d + n, &err)) != TR_OK) {
        srv_fail_tr(out, rc, &err);
        goto done;
    }
    if (!(res = cJSON_CreateObject())) goto oom;
    cJSON_AddNumberToObject(res, "loss", loss_reduce(d + n, n, red));
    cJSON_AddItemToObject(res, "losses", jio_doubles(d + n, n));
    cJSON_AddItemToObject(res, "distances", jio_doubles(d, n));
    cJSON *cfg = config_json(&o, ctx->state->model, margin, k, red);
    if (!cfg) goto oom;
    cJSON_AddItemToObject(res, "config", cfg);
    out->body = res;
    out->status = 200;
    res = NULL;
    goto done;
oom:
    srv_fail(out, 503, "", "out of memory");
done:
    cJSON_Delete(res);
    free(labels);
    free(lab);
    return out->status;
}

int h_loss_infonce(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    static const char *const FIELDS[] = {"a",         "b",     "temperature", "tau_plus", "beta",
                                         "estimator", "embed", "normalize",   NULL};
    static const jio_choice ESTIMATORS[] = {
        {"hard", 1}, {"easy", 0}, {NULL, 0}}; /* value: the hard-negative estimator */
    srv_vec_opts o;
    const float *a, *b;
    int hard = 1;
    size_t n = 0, nb = 0, dim = 0;
    double temperature = 0.5, tau_plus = 0.1, beta = 1.0, *losses;
    int rc;
    tr_err err;
    cJSON *res = NULL, *cfg;
    if ((rc = jio_check_fields(body, FIELDS, out))) return rc;
    if ((rc = srv_vec_opts_parse(ctx, body, 0, &o, out))) return rc;
    if ((rc = jio_number(body, "temperature", 0, 1e6, 1, &temperature, out))) return rc;
    if ((rc = jio_number(body, "tau_plus", 0, 0.999999, 0, &tau_plus, out))) return rc;
    if ((rc = jio_number(body, "beta", 0, 1e6, 0, &beta, out))) return rc;
    if ((rc = jio_enum(body, "estimator", ESTIMATORS, &hard, out))) return rc;
    if ((rc = srv_vectors(ctx, body, "a", 0, &o, &n, &dim, &a, out))) return rc;
    if ((rc = srv_vectors(ctx, body, "b", 1, &o, &nb, &dim, &b, out))) return rc;
    if (nb != n) return srv_fail(out, 422, "b", "b: expected %zu vectors (as many as a), got %zu", n, nb);
    if (n < 2)
        return srv_fail(out, 422, "a", "a: InfoNCE needs at least 2 pairs (the other pairs are the negatives), got %zu",
                        n);
    if (!(losses = srv_doubles(ctx, 2 * n, out))) return out->status;
    tr_clearerr(&err);
    rc = loss_infonce(a, b, n, dim, temperature, tau_plus, beta, hard, losses, &err);
    if (rc != TR_OK) return srv_fail_tr(out, rc, &err);
    if (!(res = cJSON_CreateObject())) goto oom;
    cJSON_AddNumberToObject(res, "loss", loss_reduce(losses, 2 * n, LOSS_RED_MEAN));
    cJSON_AddItemToObject(res, "losses", jio_doubles(losses, 2 * n));
    if (!(cfg = cJSON_AddObjectToObject(res, "config"))) goto oom;
    cJSON_AddNumberToObject(cfg, "temperature", temperature);
    cJSON_AddNumberToObject(cfg, "tau_plus", tau_plus);
    cJSON_AddNumberToObject(cfg, "beta", beta);
    cJSON_AddStringToObject(cfg, "estimator", hard ? "hard" : "easy");
    cJSON_AddBoolToObject(cfg, "embed", o.embed);
    out->body = res;
    return out->status = 200;
oom:
    cJSON_Delete(res);
    return srv_fail(out, 503, "", "out of memory");
}
