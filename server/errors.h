/* errors.h - the reply a handler fills, and its error form: one status table, one JSON error body (errors.c). */
#ifndef SRV_ERRORS_H
#define SRV_ERRORS_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "tr_err.h"

#define SRV_MAX_HEADERS 4

typedef struct {
    int status;               /* HTTP status (200 on success) */
    cJSON *body;              /* success body, owned; NULL for errors */
    const char *content_type; /* NULL = application/json */
    char *raw;                /* pre-rendered body (malloc'd) instead of body */
    size_t raw_len;
    /* error record (status >= 400) */
    char err_type[32];
    char err_field[128];
    char err_msg[sizeof(tr_err){0}.msg + 256]; /* a library message behind a prefix */
    int n_headers;
    char hname[SRV_MAX_HEADERS][32];
    char hvalue[SRV_MAX_HEADERS][256];
} srv_reply;

void srv_reply_init(srv_reply *r);  /* empty, status 200 */
void srv_reply_clear(srv_reply *r); /* frees body/raw */
/* Add a response header (ignored beyond SRV_MAX_HEADERS). */
void srv_reply_header(srv_reply *r, const char *name, const char *value);

/* The statuses the server answers with: 200 and every error status of the
 * table in errors.c, ascending. Metrics and stats count requests by index. */
#define SRV_N_STATUS 13
/* Index of http in that list, SRV_N_STATUS for any other status. */
int srv_status_index(int http);
/* The status at index i (0..SRV_N_STATUS-1), 0 outside. */
int srv_status_at(int i);

/* Set an error reply: HTTP status, culprit field ("" or NULL: none) and a
 * printf message; the error type comes from the status table. Returns http. */
int srv_fail(srv_reply *out, int http, const char *field, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* The HTTP status for a library status: client mistakes (bad input, bad or
 * missing files) 422, TR_ENOMEM 503, anything else 500. */
int srv_http_status(int status);
/* srv_fail with srv_http_status(status) and the error record's message and
 * field. Returns the HTTP status. */
int srv_fail_tr(srv_reply *out, int status, const tr_err *err);
/* The error type string for an HTTP status ("invalid_input", ...). */
const char *srv_error_type(int http);
/* {"error":{"code","type","message","field"}} for an error reply. */
cJSON *srv_error_json(const srv_reply *r);

#endif
