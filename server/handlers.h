/* handlers.h - what a handler sees (srv_ctx) and fills (srv_reply), and every handler of the route table. */
#ifndef SRV_HANDLERS_H
#define SRV_HANDLERS_H

#include <cjson/cJSON.h>

#include "config.h"
#include "errors.h"
#include "scratch.h"
#include "state.h"

/* Everything a handler may use. state is the snapshot the request started
 * with; it stays valid until the reply is sent even across a reload. */
typedef struct srv_ctx {
    srv_state *state;
    const srv_config *cfg;
    srv_scratch *scratch;
    const char *request_id;
    int route;
    const char *path; /* the request path (without the query) */
    /* query argument lookup (http.c); NULL when the request has none */
    const char *(*arg)(void *conn, const char *name);
    void *conn;
    int in_flight; /* requests being received or answered, this one included */
    int draining;  /* 1 after SIGTERM: /readyz answers 503 */
    int raw_image; /* the body was a raw PNG or JPEG file (POST /v1/embed): its errors name "body" */
    /* cross-request batching (xbatch.h): the forward is recorded now and
     * replayed after the batch ran; NULL runs it at once */
    struct xb_job *defer;
} srv_ctx;

/* Value of query argument name ("?n=500"), or NULL. */
static inline const char *srv_arg(const srv_ctx *ctx, const char *name) {
    return ctx->arg ? ctx->arg(ctx->conn, name) : NULL;
}
/* Query argument name as an integer in lo..hi (def when absent) into *v;
 * else a 422 naming it. Returns 0 or the HTTP status (query.c). */
int srv_arg_long(const srv_ctx *ctx, const char *name, long lo, long hi, long def, long *v, srv_reply *out);

/* A handler fills out (status 200 + body, or an error via srv_fail) and
 * returns out->status. It never touches libmicrohttpd. body is the parsed
 * JSON object (NULL for GET routes). */
typedef int (*srv_handler)(const srv_ctx *ctx, const cJSON *body, srv_reply *out);

int h_healthz(const srv_ctx *ctx, const cJSON *body, srv_reply *out); /* h_health.c */
int h_readyz(const srv_ctx *ctx, const cJSON *body, srv_reply *out);  /* h_health.c */
int h_metrics(const srv_ctx *ctx, const cJSON *body, srv_reply *out); /* h_health.c */
int h_model(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_openapi(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_embed(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_embeddings(const srv_ctx *ctx, const cJSON *body, srv_reply *out); /* h_embed.c */
int h_distance(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_loss_triplet(const srv_ctx *ctx, const cJSON *body, srv_reply *out); /* h_loss.c */
int h_loss_pair(const srv_ctx *ctx, const cJSON *body, srv_reply *out);    /* h_loss.c */
int h_loss_infonce(const srv_ctx *ctx, const cJSON *body, srv_reply *out); /* h_loss.c */
int h_mine(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_admin_reload(const srv_ctx *ctx, const cJSON *body, srv_reply *out); /* h_admin.c */
int h_search(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_gallery(const srv_ctx *ctx, const cJSON *body, srv_reply *out); /* h_search.c */
int h_stats(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_projection(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_console(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_gallery_item(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_gallery_image(const srv_ctx *ctx, const cJSON *body, srv_reply *out); /* h_gallery_item.c */
/* The {index} of a /v1/gallery/items/{index}... path, checked against the
 * gallery (409 without one, 422 not a number, 404 past the end). */
int srv_gallery_index(const srv_ctx *ctx, size_t *index, srv_reply *out); /* h_gallery_item.c */

/* The OpenAPI document as JSON text (openapi_doc.c, generated from
 * proto/openapi.yaml by server/gen_openapi.py). */
extern const char srv_openapi_json[];

#endif
