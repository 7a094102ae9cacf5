/* h_mine.c - POST /v1/mine: in-batch triplet mining over labelled vectors. */
#include <stdlib.h>
#include <string.h>

#include "mine.h"
#include "metrics.h"
#include "vectors.h"

/* The mining result as the reply's body (without its config); NULL when
 * out of memory. */
static cJSON *mine_json(const mine_result *mr, mine_strategy strategy) {
    cJSON *res = cJSON_CreateObject(), *t;
    if (!res) return NULL;
    cJSON_AddStringToObject(res, "strategy", mine_name(strategy));
    cJSON_AddNumberToObject(res, "loss", strategy == MINE_BATCH_ALL ? mr->mean_pos_loss : mr->mean_loss);
    cJSON_AddNumberToObject(res, "mean_loss", mr->mean_loss);
    cJSON_AddNumberToObject(res, "mean_positive_loss", mr->mean_pos_loss);
    cJSON_AddNumberToObject(res, "n_triplets", (double)mr->n_total);
    cJSON_AddNumberToObject(res, "n_listed", (double)mr->n_listed);
    cJSON_AddNumberToObject(res, "n_positive", (double)mr->n_positive);
    cJSON_AddNumberToObject(res, "fraction_positive", mr->n_total ? (double)mr->n_positive / (double)mr->n_total : 0.0);
    if (!srv_add_counts(res, mr->counts)) goto fail;
    cJSON *tri = cJSON_AddArrayToObject(res, "triplets"), *dap = cJSON_AddArrayToObject(res, "d_ap"),
          *dan = cJSON_AddArrayToObject(res, "d_an"), *los = cJSON_AddArrayToObject(res, "losses"),
          *cat = cJSON_AddArrayToObject(res, "categories");
    if (!tri || !dap || !dan || !los || !cat) goto fail;
    for (size_t i = 0; i < mr->n_listed; i++) {
        const mine_triplet *m = &mr->t[i];
        int idx[3] = {m->a, m->p, m->n};
        if (!(t = cJSON_CreateIntArray(idx, 3))) goto fail;
        cJSON_AddItemToArray(tri, t);
        cJSON_AddItemToArray(dap, cJSON_CreateNumber(m->d_ap));
        cJSON_AddItemToArray(dan, cJSON_CreateNumber(m->d_an));
        cJSON_AddItemToArray(los, cJSON_CreateNumber(m->loss));
        cJSON_AddItemToArray(cat, cJSON_CreateString(loss_category_name(m->cat)));
    }
    cJSON *nop = cJSON_AddArrayToObject(res, "anchors_without_positive"),
          *non = cJSON_AddArrayToObject(res, "anchors_without_negative");
    if (!nop || !non) goto fail;
    for (size_t i = 0; i < mr->n_no_positive; i++) cJSON_AddItemToArray(nop, cJSON_CreateNumber(mr->no_positive[i]));
    for (size_t i = 0; i < mr->n_no_negative; i++) cJSON_AddItemToArray(non, cJSON_CreateNumber(mr->no_negative[i]));
    return res;
fail:
    cJSON_Delete(res);
    return NULL;
}

int h_mine(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    static const char *const FIELDS[] = {"inputs", "labels", "strategy", "embed",        "normalize",
                                         "metric", "margin", "loss",     "max_triplets", NULL};
    static const jio_choice STRATEGIES[] = {
        {"batch-hard", MINE_BATCH_HARD}, {"semi-hard", MINE_SEMI_HARD}, {"batch-all", MINE_BATCH_ALL}, {NULL, 0}};
    static const jio_choice LOSSES[] = {{"triplet", LOSS_TRIPLET}, {"triplet-soft", LOSS_TRIPLET_SOFT}, {NULL, 0}};
    srv_vec_opts o;
    const float *x;
    int strategy = -1;
    size_t n = 0, dim = 0, max_list = 1000;
    loss_kind k = ctx->state->triplet_loss;
    double margin = ctx->state->margin, *D;
    int64_t *labels = NULL;
    int rc;
    tr_err err;
    mine_result mr;
    cJSON *res = NULL;
    memset(&mr, 0, sizeof mr);
    if ((rc = jio_check_fields(body, FIELDS, out))) return rc;
    if ((rc = srv_vec_opts_parse(ctx, body, 1, &o, out))) return rc;
    if ((rc = jio_enum(body, "strategy", STRATEGIES, &strategy, out))) return rc;
    if (strategy < 0)
        return srv_fail(out, 422, "strategy",
                        "strategy: required field is missing (batch-hard, semi-hard or batch-all)");
    if ((rc = srv_margin_loss(body, LOSSES, &k, &margin, out))) return rc;
    if ((rc = jio_size(body, "max_triplets", 0, 1000000, &max_list, out))) return rc;
    if ((rc = srv_vectors(ctx, body, "inputs", 0, &o, &n, &dim, &x, out))) return rc;
    if ((rc = jio_labels(body, "labels", n, 0, &labels, out))) return rc;
    if (!(D = srv_doubles(ctx, n * n, out))) goto done; /* n <= max-batch */
    tr_clearerr(&err);
    if ((rc = dist_matrix(o.metric, x, n, x, n, dim, D, &err)) != TR_OK ||
        (rc = mine_run((mine_strategy)strategy, D, labels, n, k, margin, max_list, &mr, &err)) != TR_OK) {
        srv_fail_tr(out, rc, &err);
        goto done;
    }
    srv_metrics_triplets(mr.counts);
    if (!(res = mine_json(&mr, (mine_strategy)strategy))) goto oom;
    cJSON *cfg = srv_scoring_config(&o, ctx->state->model, margin, k);
    if (!cfg) goto oom;
    cJSON_AddItemToObject(res, "config", cfg);
    cJSON_AddNumberToObject(cfg, "max_triplets", (double)max_list);
    out->body = res;
    out->status = 200;
    res = NULL;
    goto done;
oom:
    srv_fail(out, 503, "", "out of memory");
done:
    cJSON_Delete(res);
    mine_result_free(&mr);
    free(labels);
    return out->status;
}
