/* dispatch.h - one routed request from its body to a filled reply, without HTTP (dispatch.c). */
#ifndef SRV_DISPATCH_H
#define SRV_DISPATCH_H

#include <stddef.h>

#include "config.h"
#include "errors.h"

typedef struct {
    int route;        /* index in the route table (routes.h), >= 0 */
    const char *body; /* the request body as received (NULL when len is 0) */
    size_t len;
    const char *request_id; /* as echoed in X-Request-Id */
    const char *path;       /* the request path, without the query */
    /* query argument lookup (NULL: the request has none), called with conn */
    const char *(*arg)(void *conn, const char *name);
    void *conn;
    int in_flight; /* for the handler's context (handlers.h) */
    int draining;
    int image_body; /* the body is a PNG or JPEG file for POST /v1/embed */
    /* cross-request batching (xbatch.h): NULL runs the request at once; else
     * its forward may be recorded (job->recorded after srv_dispatch) and the
     * request finished by srv_dispatch_replay after xb_run */
    struct xb_job *job;
} srv_request;

/* Parse the body as the route wants it (one JSON object for POST routes;
 * 400 for an empty body or invalid JSON, 422 for another JSON value), take
 * the current snapshot (503 when none is loaded) and the thread's scratch,
 * and run the route's handler. out starts as srv_reply_init left it; on
 * return it holds the reply. Returns what the handler returned (which must
 * be out->status), or the status of an error found before it ran. Used by
 * http.c and by the request fuzz target (tests/fuzz/fuzz_request.c). */
int srv_dispatch(const srv_config *cfg, const srv_request *rq, srv_reply *out);

/* Finish a request whose forward srv_dispatch recorded (rq->job->recorded),
 * after its batch ran: the handler runs again on the kept body and snapshot,
 * with the forward's outputs, and fills out; the job lets both go. */
int srv_dispatch_replay(const srv_config *cfg, const srv_request *rq, srv_reply *out);

#endif
