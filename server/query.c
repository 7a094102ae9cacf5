/* query.c - query-string arguments of GET routes, checked like body fields. */
#include <errno.h>
#include <stdlib.h>

#include "handlers.h"

int srv_arg_long(const srv_ctx *ctx, const char *name, long lo, long hi, long def, long *v, srv_reply *out) {
    const char *s = srv_arg(ctx, name);
    char *end;
    *v = def;
    if (s == NULL) return 0;
    errno = 0;
    long x = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno || x < lo || x > hi)
        return srv_fail(out, 422, name, "%s: expected an integer in %ld..%ld, got \"%.40s\"", name, lo, hi, s);
    *v = x;
    return 0;
}
