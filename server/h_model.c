/* h_model.c - GET /v1/model: what is loaded and the effective scoring defaults. */
#include "handlers.h"

int h_model(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    const srv_state *st = ctx->state;
    const mdl_model *m = st->model;
    cJSON *o = mdl_describe_json(m);
    (void)body;
    if (!o) goto oom;
    /* the effective scoring defaults: flags override the file's metadata */
    cJSON_ReplaceItemInObjectCaseSensitive(o, "metric", cJSON_CreateString(dist_name(st->metric)));
    cJSON_ReplaceItemInObjectCaseSensitive(o, "loss", cJSON_CreateString(loss_name(st->triplet_loss)));
    cJSON_ReplaceItemInObjectCaseSensitive(o, "margin", cJSON_CreateNumber(st->margin));
    cJSON_AddStringToObject(o, "pair_loss", loss_name(st->pair_loss));
    cJSON_AddStringToObject(o, "path", st->model_path);
    cJSON_AddStringToObject(o, "loaded_at", st->loaded_at_iso);
    cJSON_AddNumberToObject(o, "generation", st->generation);
    if (st->gallery) {
        cJSON *g = cJSON_AddObjectToObject(o, "gallery");
        if (!g) goto oom;
        cJSON_AddNumberToObject(g, "n", (double)st->gallery->n);
        cJSON_AddNumberToObject(g, "dim", (double)st->gallery->dim);
        cJSON_AddStringToObject(g, "sha256", gal_sha256(st->gallery));
        cJSON_AddBoolToObject(g, "labels", st->gallery->labels != NULL);
        cJSON_AddBoolToObject(g, "ids", st->gallery->ids != NULL);
    } else
        cJSON_AddNullToObject(o, "gallery");
    out->body = o;
    return out->status = 200;
oom:
    cJSON_Delete(o);
    return srv_fail(out, 503, "", "out of memory");
}
