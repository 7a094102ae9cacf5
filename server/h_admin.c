/* h_admin.c - POST /v1/admin/reload: load the model (and gallery) again and swap atomically. */
#include <stdlib.h>
#include <string.h>

#include "confine.h"
#include "handlers.h"
#include "json_io.h"
#include "log.h"
#include "metrics.h"

int h_admin_reload(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    static const char *const FIELDS[] = {"model", "gallery", NULL};
    const char *model = NULL, *gallery = NULL;
    char *model_real = NULL, *gallery_real = NULL;
    tr_err err;
    int rc;
    if (body) {
        if ((rc = jio_check_fields(body, FIELDS, out))) return rc;
        if ((rc = jio_string(body, "model", &model, out))) return rc;
        if ((rc = jio_string(body, "gallery", &gallery, out))) return rc;
    }
    if ((model || gallery) && !ctx->cfg->model_dir)
        return srv_fail(
            out, 403, model ? "model" : "gallery",
            "%s: naming a file needs tripletd --model-dir DIR (files relative to it); send {} to reload the "
            "current files",
            model ? "model" : "gallery");
    if (model && (rc = srv_confine(ctx->cfg->model_dir, "model", model, &model_real, out))) return rc;
    if (gallery && (rc = srv_confine(ctx->cfg->model_dir, "gallery", gallery, &gallery_real, out))) {
        free(model_real);
        return rc;
    }
    tr_clearerr(&err);
    rc = srv_state_reload(ctx->cfg, model_real, gallery_real, &err);
    free(model_real);
    free(gallery_real);
    srv_metrics_reload(rc == TR_OK);
    if (rc != TR_OK) {
        srv_log_msg("error", "reload failed, keeping the old model: %s", err.msg);
        /* the field is the request's: which file was refused (the name inside it is in the message) */
        return srv_fail(out, srv_http_status(rc), strcmp(err.field, "gallery") == 0 ? "gallery" : "model",
                        "reload failed, still serving %s: %s", ctx->state->model->sha256, err.msg);
    }
    srv_state *now = srv_state_acquire();
    srv_log_msg("info", "reloaded %s (%s)", now->model_path, now->model->sha256);
    cJSON *o = cJSON_CreateObject();
    if (!o) {
        srv_state_unref(now);
        return srv_fail(out, 503, "", "out of memory");
    }
    cJSON_AddStringToObject(o, "status", "reloaded");
    cJSON_AddStringToObject(o, "model", now->model->name);
    cJSON_AddStringToObject(o, "path", now->model_path);
    cJSON_AddStringToObject(o, "sha256", now->model->sha256);
    cJSON_AddStringToObject(o, "previous_sha256", ctx->state->model->sha256);
    cJSON_AddStringToObject(o, "loaded_at", now->loaded_at_iso);
    cJSON_AddNumberToObject(o, "generation", now->generation);
    if (now->gallery_path) cJSON_AddStringToObject(o, "gallery", now->gallery_path);
    srv_state_unref(now);
    out->body = o;
    return out->status = 200;
}
