/* errors.c - the one place mapping statuses to HTTP codes, error types and the JSON error body. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

/* Every status the server answers with, ascending, and the error type of each error status. */
static const struct {
    int http;
    const char *type;
} STATUSES[] = {
    {200, NULL},
    {400, "invalid_json"},
    {401, "unauthorized"},
    {403, "forbidden"},
    {404, "not_found"},
    {405, "method_not_allowed"},
    {409, "no_gallery"},
    {413, "payload_too_large"},
    {415, "unsupported_media_type"},
    {422, "invalid_input"},
    {429, "too_many_requests"},
    {500, "internal"},
    {503, "not_ready"},
};
_Static_assert(sizeof STATUSES / sizeof STATUSES[0] == SRV_N_STATUS, "SRV_N_STATUS is the size of the status table");

int srv_status_index(int http) {
    for (int i = 0; i < SRV_N_STATUS; i++)
        if (STATUSES[i].http == http) return i;
    return SRV_N_STATUS;
}

int srv_status_at(int i) {
    return i >= 0 && i < SRV_N_STATUS ? STATUSES[i].http : 0;
}

const char *srv_error_type(int http) {
    int i = srv_status_index(http);
    if (i < SRV_N_STATUS && STATUSES[i].type) return STATUSES[i].type;
    return http >= 500 ? "internal" : "invalid_input";
}

void srv_reply_init(srv_reply *r) {
    memset(r, 0, sizeof *r);
    r->status = 200;
}

void srv_reply_clear(srv_reply *r) {
    cJSON_Delete(r->body);
    free(r->raw);
    r->body = NULL;
    r->raw = NULL;
}

/* A message cut by snprintf may end inside a UTF-8 sequence: drop it. */
static void utf8_trim(char *s) {
    size_t n = strlen(s), i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0) return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (i - 1) < want) s[i - 1] = 0;
}

int srv_fail(srv_reply *out, int http, const char *field, const char *fmt, ...) {
    va_list ap;
    cJSON_Delete(out->body);
    out->body = NULL;
    out->status = http;
    snprintf(out->err_type, sizeof out->err_type, "%s", srv_error_type(http));
    snprintf(out->err_field, sizeof out->err_field, "%s", field ? field : "");
    va_start(ap, fmt);
    vsnprintf(out->err_msg, sizeof out->err_msg, fmt, ap);
    va_end(ap);
    utf8_trim(out->err_msg);
    utf8_trim(out->err_field);
    return http;
}

int srv_http_status(int status) {
    switch (status) {
    case TR_EINVAL:
    case TR_EFORMAT:
    case TR_ELIMIT:
    case TR_EDIM:
    case TR_EIO:
    case TR_ENOTFOUND:
        return 422;
    case TR_ENOMEM:
        return 503;
    default:
        return 500;
    }
}

int srv_fail_tr(srv_reply *out, int status, const tr_err *err) {
    const char *msg = err && err->msg[0] ? err->msg : tr_strerror(status);
    return srv_fail(out, srv_http_status(status), err ? err->field : "", "%s", msg);
}

cJSON *srv_error_json(const srv_reply *r) {
    cJSON *root = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(root, "error");
    if (!e) {
        cJSON_Delete(root);
        return NULL;
    }
    cJSON_AddNumberToObject(e, "code", r->status);
    cJSON_AddStringToObject(e, "type", r->err_type[0] ? r->err_type : srv_error_type(r->status));
    cJSON_AddStringToObject(e, "message", r->err_msg[0] ? r->err_msg : srv_error_type(r->status));
    cJSON_AddStringToObject(e, "field", r->err_field);
    return root;
}

void srv_reply_header(srv_reply *r, const char *name, const char *value) {
    if (r->n_headers >= SRV_MAX_HEADERS) return;
    snprintf(r->hname[r->n_headers], sizeof r->hname[0], "%s", name);
    snprintf(r->hvalue[r->n_headers], sizeof r->hvalue[0], "%s", value);
    r->n_headers++;
}
