/* h_health.c - operational routes: /healthz, /readyz, /metrics. */
#include <string.h>

#include "handlers.h"
#include "metrics.h"

int h_healthz(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    (void)ctx, (void)body;
    out->body = cJSON_CreateObject();
    if (!out->body || !cJSON_AddStringToObject(out->body, "status", "ok"))
        return srv_fail(out, 503, "", "out of memory");
    return out->status = 200;
}

int h_readyz(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    (void)body;
    if (ctx->draining) return srv_fail(out, 503, "", "draining: shutting down");
    if (!ctx->state) return srv_fail(out, 503, "", "no model loaded");
    out->body = cJSON_CreateObject();
    if (!out->body) return srv_fail(out, 503, "", "out of memory");
    cJSON_AddStringToObject(out->body, "status", "ready");
    cJSON_AddStringToObject(out->body, "model", ctx->state->model->name);
    cJSON_AddStringToObject(out->body, "sha256", ctx->state->model->sha256);
    return out->status = 200;
}

int h_metrics(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    (void)body;
    out->raw = srv_metrics_render(ctx->state, ctx->in_flight, ctx->draining);
    if (!out->raw) return srv_fail(out, 503, "", "out of memory");
    out->raw_len = strlen(out->raw);
    out->content_type = "text/plain; version=0.0.4; charset=utf-8";
    return out->status = 200;
}
