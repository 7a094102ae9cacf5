/* h_console.c - GET / and the console's scripts and styles, from the copies embedded at build time. */
#include <stdlib.h>
#include <string.h>

#include "console.h"
#include "handlers.h"
#include "keys.h"

int h_console(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    static const char AUTH_OFF[] = "data-auth=\"off\"", AUTH_KEY[] = "data-auth=\"key\"";
    const srv_asset *a = srv_console_assets;
    (void)body;
    if (ctx->cfg->no_console)
        return srv_fail(out, 404, "", "no route GET %s (the console is off: --no-console)", ctx->path);
    while (a->path && strcmp(a->path, ctx->path) != 0) a++;
    if (!a->path) return srv_fail(out, 404, "", "no route GET %s", ctx->path);
    if (!(out->raw = malloc(a->len + 1))) return srv_fail(out, 503, "", "out of memory");
    memcpy(out->raw, a->data, a->len + 1);
    out->raw_len = a->len;
    /* the page asks for the key before its first call when the server wants one */
    char *mark = strcmp(a->path, "/") == 0 && srv_keys_on() ? strstr(out->raw, AUTH_OFF) : NULL;
    if (mark) memcpy(mark, AUTH_KEY, sizeof AUTH_KEY - 1);
    out->content_type = a->content_type;
    srv_reply_header(out, "Content-Security-Policy", SRV_CONSOLE_CSP);
    srv_reply_header(out, "X-Content-Type-Options", "nosniff");
    srv_reply_header(out, "Cache-Control", "no-cache");
    srv_reply_header(out, "Referrer-Policy", "no-referrer");
    return out->status = 200;
}
