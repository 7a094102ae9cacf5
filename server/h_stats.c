/* h_stats.c - GET /v1/stats: the rolling window of live figures (stats.c) as JSON. */
#include <time.h>

#include "handlers.h"
#include "stats.h"

int h_stats(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    long window;
    int rc;
    (void)body;
    if ((rc = srv_arg_long(ctx, "window", 1, STATS_SPAN, 60, &window, out))) return rc;
    out->body = srv_stats_json((int)window, time(NULL), ctx->in_flight);
    if (!out->body) return srv_fail(out, 503, "", "out of memory building the stats reply");
    return out->status = 200;
}
