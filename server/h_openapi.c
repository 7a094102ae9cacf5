/* h_openapi.c - GET /openapi.json: the wire contract (proto/openapi.yaml, embedded as JSON). */
#include <string.h>

#include "handlers.h"

int h_openapi(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    (void)ctx, (void)body;
    out->raw = strdup(srv_openapi_json);
    if (!out->raw) return srv_fail(out, 503, "", "out of memory");
    out->raw_len = strlen(out->raw);
    return out->status = 200;
}
