/* dispatch.c - one routed request: parse the body, take the snapshot and scratch, run the handler. */
#include "dispatch.h"

#include <stdlib.h>
#include <string.h>

#include "json_io.h"
#include "json_parse.h"
#include "routes.h"
#include "xbatch.h"

/* A raw PNG or JPEG body of POST /v1/embed becomes {"inputs": {"image": "<base64>"}}, so the one
 * input path (json_io.c) decodes it, with its limits and its errors (field "body": srv_ctx.raw_image). */
static int image_body(const srv_request *rq, cJSON **body, srv_reply *out) {
    size_t n = (rq->len + 2) / 3 * 4 + 1;
    char *b64 = malloc(n);
    cJSON *in = NULL;
    if (!b64) return srv_fail(out, 503, "", "out of memory for a %zu-byte image", rq->len);
    jio_b64_encode_raw(b64, (const unsigned char *)rq->body, rq->len);
    *body = cJSON_CreateObject();
    in = *body ? cJSON_AddObjectToObject(*body, "inputs") : NULL;
    int ok = in && cJSON_AddStringToObject(in, "image", b64);
    free(b64);
    if (!ok) return srv_fail(out, 503, "", "out of memory for a %zu-byte image", rq->len);
    return 0;
}

/* The body as one JSON object in *body (NULL for routes without one, or an
 * empty reload body). Returns 0, or the HTTP status of the error in out. */
static int parse_body(const srv_route *rt, const srv_request *rq, cJSON **body, srv_reply *out) {
    char why[96];
    size_t at = 0;
    *body = NULL;
    if (!rt->has_body) return 0;
    if (rq->len == 0) {
        if (strcmp(rt->path, "/v1/admin/reload") == 0) return 0; /* {} may be left out */
        if (rq->image_body) /* the media type is right, the image is not there: invalid input (proto/images.md) */
            return srv_fail(out, 422, "body", "body: empty image data (0 bytes; expected a PNG or JPEG file)");
        return srv_fail(out, 400, "", "request body is empty (expected a JSON object)");
    }
    if (rq->image_body) return image_body(rq, body, out);
    if (!(*body = srv_json_parse_packed(rq->body, rq->len, why, sizeof why, &at)))
        return srv_fail(out, 400, "", "invalid JSON at byte %zu of %zu: %s", at, rq->len, why);
    if (!cJSON_IsObject(*body))
        return srv_fail(out, 422, "", "request body: expected a JSON object, got %s",
                        cJSON_IsArray(*body)    ? "an array"
                        : cJSON_IsString(*body) ? "a string"
                                                : "a scalar");
    return 0;
}

/* The handler's context for rq on snapshot st (the caller's reference). */
static srv_ctx ctx_of(const srv_config *cfg, const srv_request *rq, srv_state *st) {
    return (srv_ctx){
        .state = st,
        .cfg = cfg,
        .scratch = srv_scratch_thread(),
        .request_id = rq->request_id,
        .route = rq->route,
        .path = rq->path,
        .arg = rq->arg,
        .conn = rq->conn,
        .in_flight = rq->in_flight,
        .draining = rq->draining,
        .raw_image = rq->image_body,
        .defer = rq->job,
    };
}

int srv_dispatch(const srv_config *cfg, const srv_request *rq, srv_reply *out) {
    const srv_route *rt = srv_route_at(rq->route);
    cJSON *body = NULL;
    int rc = parse_body(rt, rq, &body, out);
    if (rc) {
        cJSON_Delete(body);
        return rc;
    }
    srv_ctx ctx = ctx_of(cfg, rq, srv_state_acquire());
    if (!ctx.state || !ctx.scratch)
        rc = srv_fail(out, 503, "", ctx.state ? "out of memory" : "no model loaded");
    else {
        out->status = 200;
        rc = rt->fn(&ctx, body, out);
    }
    if (rq->job && rq->job->recorded) { /* the forward waits for the batch: keep what the replay needs */
        rq->job->state = ctx.state;
        rq->job->body = body;
        srv_reply_clear(out); /* the handler stopped at the forward: its reply is not the answer */
        srv_reply_init(out);
        return 0;
    }
    srv_state_unref(ctx.state);
    cJSON_Delete(body);
    return rc;
}

int srv_dispatch_replay(const srv_config *cfg, const srv_request *rq, srv_reply *out) {
    xb_job *j = rq->job;
    srv_ctx ctx = ctx_of(cfg, rq, j->state);
    int rc;
    j->replay = 1;
    if (!ctx.scratch)
        rc = srv_fail(out, 503, "", "out of memory");
    else {
        out->status = 200;
        rc = srv_route_at(rq->route)->fn(&ctx, j->body, out);
    }
    srv_state_unref(j->state);
    cJSON_Delete(j->body);
    j->state = NULL;
    j->body = NULL;
    return rc;
}
