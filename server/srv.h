/* srv.h - shared server types: configuration, state snapshot, handler context and reply. */
#ifndef SRV_H
#define SRV_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "dist.h"
#include "gallery.h"
#include "loss.h"
#include "model.h"
#include "tr_err.h"

#define SRV_VERSION "0.1.0"

/* ---- configuration (config.c) ---------------------------------------- */

typedef enum { SRV_LOG_TEXT, SRV_LOG_JSON, SRV_LOG_OFF } srv_log_format;

/* Effective options after defaults, environment (TRIPLETD_<NAME>) and
 * flags (flag wins). Strings are owned by the config (srv_config_free). */
typedef struct {
    char *model;            /* --model PATH (required) */
    char *gallery;          /* --gallery PATH or NULL */
    int allow_gallery_mismatch;
    char *host;             /* --host, default 127.0.0.1 */
    int port;               /* 0 = pick a free port */
    char *port_file;        /* write the bound port here, or NULL */
    int threads;            /* MHD thread pool size */
    size_t max_body;        /* bytes */
    size_t max_batch;       /* vectors per request field */
    int max_concurrent;     /* in-flight requests before 429 */
    int timeout;            /* idle connection seconds */
    char *metric;           /* NULL = model metadata */
    double margin;          /* NAN = model metadata */
    char *loss;             /* NULL = model metadata */
    char *api_key;          /* NULL = no auth */
    char *api_key_file;
    srv_log_format log_format;
    int log_flush_ms;       /* access log lines gather this long before one write; 0 = a write per line */
    double drain_timeout;   /* seconds */
    int allow_model_path;   /* POST /v1/admin/reload may name a file */
    size_t batch_max_rows;  /* rows per batched forward (batcher.c); 0/1 = off */
    int batch_leaders;      /* forwards at once before requests queue; 0 = CPUs */
    int has_metric, has_loss; /* parsed overrides are valid */
    dist_metric metric_v;
    loss_kind loss_v;
} srv_config;

/* Fill cfg from env and argv. Returns 0 to run, 1 when --help/--version
 * printed their text to stdout (exit 0), -1 on a bad option with the
 * one-line reason in err->msg (exit 2). */
int srv_config_parse(srv_config *cfg, int argc, char **argv, tr_err *err);
void srv_config_free(srv_config *cfg);
/* Print the option table (name, env, default, help) to f (a FILE *). */
void srv_config_usage(void *f);

/* ---- state snapshot (state.c) ---------------------------------------- */

/* The loaded model and gallery plus the effective scoring defaults. Never
 * changes after srv_state_load; shared by refcount between requests. */
typedef struct srv_state {
    mdl_model *model;
    gal_gallery *gallery;    /* or NULL */
    char *model_path;
    char *gallery_path;      /* or NULL */
    dist_metric metric;      /* flag, then model metadata, then sqeuclidean */
    loss_kind triplet_loss;  /* triplet | triplet-soft */
    loss_kind pair_loss;     /* contrastive | contrastive-squared */
    double margin;
    time_t loaded_at;
    char loaded_at_iso[32];  /* 2026-01-02T03:04:05Z */
    int generation;          /* 1 for the first load, +1 per reload */
    _Atomic int refs;        /* state.c */
    struct bat_batcher *batcher; /* batches concurrent forwards on model (NULL: off) */
} srv_state;

/* Load model_path (and gallery_path when non-NULL) into a new snapshot with
 * one reference. Every refusal names the file and the problem. */
int srv_state_load(const srv_config *cfg, const char *model_path, const char *gallery_path, srv_state **out, tr_err *err);
void srv_state_ref(srv_state *s);
void srv_state_unref(srv_state *s); /* frees at zero; NULL is a no-op */

/* The current snapshot: install replaces it (taking over the caller's
 * reference); acquire returns it with a new reference (or NULL). */
void srv_state_install(srv_state *s);
srv_state *srv_state_acquire(void);
/* Reload from model_path/gallery_path (NULL: the current snapshot's files)
 * and swap; on failure the current snapshot stays and err says why. */
int srv_state_reload(const srv_config *cfg, const char *model_path, const char *gallery_path, tr_err *err);

/* ---- metrics (metrics.c) --------------------------------------------- */

/* Route indices used in metrics labels; routes.c defines the table. */
int srv_route_count(void);
const char *srv_route_label(int route); /* path, or "other" for -1 */

void srv_metrics_request(int route, int http_status, double seconds);
void srv_metrics_batch(int route, size_t n);
void srv_metrics_inflight(int delta);
int srv_metrics_inflight_now(void);
void srv_metrics_triplets(const size_t counts[CAT_COUNT]);
void srv_metrics_reload(int ok);
/* Render Prometheus text exposition into a malloc'd NUL-terminated string. */
char *srv_metrics_render(const srv_state *st);

/* ---- handler context and reply --------------------------------------- */

/* Per-thread buffers reused across requests (FACTS.md: fresh pages cost). */
typedef struct {
    tr_scratch in[3];   /* parsed request vectors (one per vector field) */
    tr_scratch emb[3];  /* their embeddings */
    tr_scratch work;    /* forward pass workspace */
    tr_scratch dbl;     /* doubles (distances, losses) via 2 floats each */
} srv_scratch;

/* Everything a handler may use. state is the snapshot the request started
 * with; it stays valid until the reply is sent even across a reload. */
typedef struct srv_ctx {
    srv_state *state;
    const srv_config *cfg;
    srv_scratch *scratch;
    const char *request_id;
    int route;
    const char *path;   /* the request path (without the query) */
    /* query argument lookup (http.c); NULL when the request has none */
    const char *(*arg)(void *conn, const char *name);
    void *conn;
} srv_ctx;

/* Value of query argument name ("?n=500"), or NULL. */
static inline const char *srv_arg(const srv_ctx *ctx, const char *name)
{
    return ctx->arg ? ctx->arg(ctx->conn, name) : NULL;
}

#define SRV_MAX_HEADERS 4

typedef struct {
    int status;             /* HTTP status (200 on success) */
    cJSON *body;            /* success body, owned; NULL for errors */
    const char *content_type; /* NULL = application/json */
    char *raw;              /* pre-rendered body (malloc'd) instead of body */
    size_t raw_len;
    /* error record (status >= 400) */
    char err_type[32];
    char err_field[128];
    char err_msg[512];
    int n_headers;
    char hname[SRV_MAX_HEADERS][32];
    char hvalue[SRV_MAX_HEADERS][160];
} srv_reply;

/* A handler fills out (status 200 + body, or an error via srv_fail) and
 * returns out->status. It never touches libmicrohttpd. body is the parsed
 * JSON object (NULL for GET routes). */
typedef int (*srv_handler)(const srv_ctx *ctx, const cJSON *body, srv_reply *out);

/* ---- errors (errors.c) ----------------------------------------------- */
/* Query argument name as an integer in lo..hi (def when absent) into *v;
 * else a 422 naming it. Returns 0 or the HTTP status (query.c). */
int srv_arg_long(const srv_ctx *ctx, const char *name, long lo, long hi, long def, long *v, srv_reply *out);


/* Set an error reply: HTTP status, culprit field ("" or NULL: none) and a
 * printf message. Returns http. */
int srv_fail(srv_reply *out, int http, const char *field, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Map a library status + error record to an error reply (client mistakes
 * 422, ENOMEM 503, internal 500). Returns the HTTP status. */
int srv_fail_tr(srv_reply *out, int status, const tr_err *err);
/* The error type string for an HTTP status ("invalid_input", ...). */
const char *srv_error_type(int http);
/* {"error":{"code","type","message","field"}} for an error reply. */
cJSON *srv_error_json(const srv_reply *r);
/* Add a response header (ignored beyond SRV_MAX_HEADERS). */
void srv_reply_header(srv_reply *r, const char *name, const char *value);
void srv_reply_init(srv_reply *r);
void srv_reply_clear(srv_reply *r); /* frees body/raw */

/* ---- routes (routes.c) ----------------------------------------------- */

typedef struct {
    const char *method;
    const char *path;
    srv_handler fn;
    int auth;     /* 1: needs the API key when one is set */
    int has_body; /* 1: POST with a JSON body */
} srv_route;

/* Find the route for method+path: its index, or -1 with *path_known set to
 * 1 when the path exists under other methods (then allow lists them,
 * "GET, POST"). */
int srv_route_find(const char *method, const char *path, int *path_known, char *allow, size_t allow_cap);
const srv_route *srv_route_at(int i);

/* ---- handlers -------------------------------------------------------- */

int h_healthz(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_readyz(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_metrics(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_model(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_openapi(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_embed(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_embeddings(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_distance(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_loss_triplet(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_loss_pair(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_loss_infonce(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_mine(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_admin_reload(const srv_ctx *ctx, const cJSON *body, srv_reply *out);
int h_search(const srv_ctx *ctx, const cJSON *body, srv_reply *out);  /* h_search.c */
int h_gallery(const srv_ctx *ctx, const cJSON *body, srv_reply *out); /* h_search.c */
int h_stats(const srv_ctx *ctx, const cJSON *body, srv_reply *out);   /* h_stats.c */
int h_projection(const srv_ctx *ctx, const cJSON *body, srv_reply *out); /* h_projection.c */

/* The OpenAPI document as JSON text (openapi_doc.c, generated from
 * proto/openapi.yaml by server/gen_openapi.py). */
extern const char srv_openapi_json[];

/* ---- lifecycle (http.c) ---------------------------------------------- */

/* 1 while draining (SIGTERM received): /readyz answers 503. */
int srv_draining(void);

#endif
