/* http.c - the only file that includes microhttpd.h: body collection, limits, auth, in-flight count, replies. */
#include "http.h"
#include "connlimit.h"
#include "deadline.h"
#include "keys.h"
#include "tls.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "routes.h"
#include "stats.h"
#include "xbatch.h"

/* One libmicrohttpd daemon (one epoll thread, one listening socket) per
 * worker thread, all on the same port with SO_REUSEPORT, so the kernel
 * spreads new connections over the workers. A single daemon with a thread
 * pool let whichever worker woke first accept a burst of connections: all
 * 64 of a benchmark's landed on one of two workers in about one run in
 * five, and the other core sat idle for the life of those connections.
 *
 * The worker threads are ours (loop_main): each runs its daemon's event
 * loop, one pass at a time, and at the end of a pass runs the forwards of
 * the embed requests that pass read as one batch (xbatch.h), their
 * connections suspended meanwhile. Quiescing happens in the worker thread
 * too: a daemon without an internal thread is not to be touched from
 * another one while its loop runs. */
typedef struct req req;
typedef struct {
    struct srv_http *h;
    struct MHD_Daemon *d;
    pthread_t th;
    int started;
    atomic_int stop;    /* set by srv_http_stop */
    atomic_int quiesce; /* 1: srv_http_quiesce asks; 2: done */
    xb_batch *xb;       /* NULL: forwards run at once */
    req *pending;       /* suspended requests whose forwards are in xb */
} http_loop;

static _Thread_local http_loop *tl_loop; /* the worker's own loop, in its thread */

/* Rows after which a pass runs its batch before reading on: sgemm per row
 * is already near its best there (FACTS: 44k rows/s at batch 1, 95k at 32),
 * and the requests of a batch wait for all of it. */
#define PASS_ROWS 16

/* Each connection's libmicrohttpd buffer (request line, headers, the body as it arrives, the reply's
 * headers): zeroed between two requests of a keep-alive connection, so its size is paid per request.
 * 16 KiB instead of the default 32 KiB: 0.6 us less server CPU per embed request at 64 connections;
 * headers over about 15 KiB are refused (400), bodies stream through it in pieces. */
#define CONN_MEMORY 16384

struct srv_http {
    struct MHD_Daemon **d;
    http_loop *loop;
    int n;
    const srv_config *cfg;
    srv_tls *tls; /* NULL: plain HTTP */
    srv_dl *dl;   /* the whole-request deadline (--timeout) */
};

/* 1 after srv_http_quiesce: /readyz answers 503 and replies close the connection. */
static atomic_int g_draining;
/* Requests being received or answered (the in-flight gauge; drain waits
 * for 0): counted from the first call of on_request to on_completed. */
static atomic_int g_inflight;
/* Requests counted against --max-concurrent: released when the reply is
 * queued, not when MHD completes it, so a client that sends its next request
 * right after reading a reply is not refused for its own previous one. */
static atomic_int g_active;
static atomic_ullong g_req_seq;
static unsigned long long g_req_salt;

/* ---- one request ----------------------------------------------------- */

struct req {
    struct timespec t0;
    int route;       /* -1: no route */
    int early;       /* error status decided before the body (0: none) */
    srv_reply reply; /* an early error, or what the handler filled */
    char *body;
    size_t len, cap, discarded;
    int pretty;
    int image_body;       /* the body is a PNG or JPEG file (POST /v1/embed) */
    const char *key_name; /* the named API key that authenticated it, or "" */
    int key_slot;         /* its request counter, or -1 */
    int active;           /* counted in g_active */
    int draining;         /* g_draining as the handler saw it; -1 before dispatch */
    char request_id[72];
    char method[16];
    /* cross-request batching: 1 while suspended for the batch, 2 answered by the replay */
    int deferred;
    xb_job job;
    struct MHD_Connection *conn;
    const char *url;
    req *next_pending;
};

static double since(const struct timespec *t0) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

/* An X-Request-Id we may echo: 1..64 visible ASCII characters. */
static int id_ok(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f || s[n] == '"' || s[n] == '\\') return 0;
    return n > 0 && n <= 64;
}

/* image/png or image/jpeg (parameters ignored): a raw image body, which POST /v1/embed takes. */
static int is_image_type(const char *ct) {
    size_t n = strcspn(ct, "; \t");
    return (n == 9 && strncasecmp(ct, "image/png", 9) == 0) || (n == 10 && strncasecmp(ct, "image/jpeg", 10) == 0);
}

static int is_json_type(const char *ct) {
    const char *semi = strchr(ct, ';');
    size_t n = semi ? (size_t)(semi - ct) : strlen(ct);
    while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t')) n--;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0) return 1;
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 && strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static enum MHD_Result send_reply(struct MHD_Connection *c, req *r, const char *path) {
    srv_reply *out = &r->reply;
    char *text = NULL;
    size_t len = 0;
    struct MHD_Response *resp;
    enum MHD_Result ret;
    if (out->raw) {
        text = out->raw;
        len = out->raw_len;
        out->raw = NULL;
    } else {
        cJSON *doc = out->status >= 400 ? srv_error_json(out) : out->body;
        if (doc) text = r->pretty ? cJSON_Print(doc) : cJSON_PrintUnformatted(doc);
        if (doc != out->body) cJSON_Delete(doc);
        if (!text) {
            static const char oom[] =
                "{\"error\":{\"code\":503,\"type\":\"not_ready\",\"message\":\"out of memory\",\"field\":\"\"}}";
            out->status = 503;
            out->content_type = NULL;
            text = strdup(oom);
            if (!text) return MHD_NO;
        }
        len = strlen(text);
        if (r->pretty && len) { /* cJSON_Print has no trailing newline; curl users like one */
            char *t = realloc(text, len + 2);
            if (t) text = t, text[len++] = '\n', text[len] = 0;
        }
    }
    resp = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(text);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            out->content_type ? out->content_type : "application/json");
    MHD_add_response_header(resp, "X-Request-Id", r->request_id);
    for (int i = 0; i < out->n_headers; i++) MHD_add_response_header(resp, out->hname[i], out->hvalue[i]);
    if (out->status == 401)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"tripletd\"");
    /* close after the drain began, as the handler saw it: a /readyz answered 200
     * keeps its connection, so the client's next request there sees the 503 */
    if (r->draining >= 0 ? r->draining : atomic_load(&g_draining))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    ret = MHD_queue_response(c, (unsigned int)out->status, resp);
    MHD_destroy_response(resp);
    if (r->active) r->active = 0, atomic_fetch_sub(&g_active, 1);
    double sec = since(&r->t0);
    srv_metrics_request(r->route, out->status, sec);
    srv_stats_request(r->route, out->status, sec, atomic_load(&g_inflight));
    srv_log_access(r->method, path, out->status, len, sec * 1e6, r->request_id, r->key_name);
    srv_keys_count(r->key_slot);
    return ret;
}

/* The connection's deadline record (socket context), or NULL. */
static srv_dl_conn *conn_dl(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static const char *query_arg(void *conn, const char *name) {
    return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

/* The body collected: the handler's reply (dispatch.c), or with a job, maybe
 * its forward recorded for the batch (r->job.recorded) and the reply later. */
static void dispatch(const srv_http *h, req *r, struct MHD_Connection *c, const char *url, xb_job *job) {
    if (r->draining < 0) r->draining = atomic_load(&g_draining);
    srv_request rq = {
        .route = r->route,
        .path = url,
        .arg = query_arg,
        .conn = c,
        .body = r->body,
        .len = r->len,
        .request_id = r->request_id,
        .in_flight = atomic_load(&g_inflight),
        .draining = r->draining,
        .image_body = r->image_body,
        .job = job,
    };
    if (job && job->recorded)
        (void)srv_dispatch_replay(h->cfg, &rq, &r->reply);
    else
        (void)srv_dispatch(h->cfg, &rq, &r->reply);
}

/* End of an event-loop pass: run the recorded forwards as one batch, let
 * each request's handler finish with its outputs, and resume the
 * connections (the next pass sends the replies). */
static void flush_batch(http_loop *lp) {
    if (!lp->pending) return;
    xb_run(lp->xb);
    for (req *r = lp->pending, *next; r; r = next) {
        next = r->next_pending;
        r->next_pending = NULL;
        dispatch(lp->h, r, r->conn, r->url, &r->job);
        r->deferred = 2;
        MHD_resume_connection(r->conn);
    }
    lp->pending = NULL;
    xb_reset(lp->xb);
}

/* How much of an oversized body is read (and dropped) before the reply:
 * beyond it the connection is cut. */
static unsigned long long discard_limit(const srv_config *cfg) {
    return (unsigned long long)cfg->max_body * 4 + 1048576;
}

/* A request's first call: its record, counted in flight, its id. NULL when out of memory. */
static req *req_new(struct MHD_Connection *c, const char *method) {
    req *r = calloc(1, sizeof *r);
    if (r) r->key_name = "", r->key_slot = -1;
    if (!r) return NULL;
    clock_gettime(CLOCK_MONOTONIC, &r->t0);
    srv_reply_init(&r->reply);
    r->draining = -1;
    atomic_fetch_add(&g_inflight, 1);
    r->active = 1;
    atomic_fetch_add(&g_active, 1);
    snprintf(r->method, sizeof r->method, "%s", method);
    const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Request-Id");
    if (id && id_ok(id))
        snprintf(r->request_id, sizeof r->request_id, "%s", id);
    else
        snprintf(r->request_id, sizeof r->request_id, "%016llx",
                 (atomic_fetch_add(&g_req_seq, 1) + 1) * 0x9E3779B97F4A7C15ull ^ g_req_salt);
    const char *pretty = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "pretty");
    r->pretty = pretty && (!strcmp(pretty, "1") || !strcmp(pretty, "true"));
    return r;
}

/* Route the request and refuse from its headers alone what must be refused
 * (404, 405, 401, 429, 413, 415) into r->reply. Returns the Content-Length
 * (0 when none). */
static unsigned long long route_and_screen(const srv_http *h, struct MHD_Connection *c, req *r, const char *url,
                                           const char *method) {
    const srv_config *cfg = h->cfg;
    char allow[96];
    int known = 0;
    r->route = srv_route_find(method, url, &known, allow, sizeof allow);
    const srv_route *rt = srv_route_at(r->route);
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    const char *te = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    unsigned long long clen = cl ? strtoull(cl, NULL, 10) : 0;
    int has_body = clen > 0 || te != NULL;
    char shown[128]; /* the path as echoed in messages: printable ASCII only */
    size_t k = 0;
    for (; url[k] && k + 1 < sizeof shown; k++) shown[k] = url[k] > 0x20 && url[k] < 0x7f ? url[k] : '?';
    shown[k] = 0;
    if (!rt && known) {
        srv_fail(&r->reply, 405, "", "method %.16s is not allowed on %s (allowed: %s)", method, shown, allow);
        srv_reply_header(&r->reply, MHD_HTTP_HEADER_ALLOW, allow);
    } else if (!rt)
        srv_fail(&r->reply, 404, "", "no route %.16s %s", method, shown);
    else if (rt->auth && srv_keys_on() &&
             !srv_keys_check(MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
                             &r->key_name, &r->key_slot))
        srv_fail(&r->reply, 401, "", "missing or wrong API key (send Authorization: Bearer <key>)");
    else if (atomic_load(&g_active) > cfg->max_concurrent) {
        srv_fail(&r->reply, 429, "", "too many requests in flight (limit %d); retry later", cfg->max_concurrent);
        srv_reply_header(&r->reply, MHD_HTTP_HEADER_RETRY_AFTER, "1");
    } else if (rt->has_body && clen > cfg->max_body)
        srv_fail(&r->reply, 413, "", "request body of %llu bytes is over the limit of %zu (--max-body)", clen,
                 cfg->max_body);
    else if (rt->image_body && ct && is_image_type(ct))
        r->image_body = 1;
    else if (rt->has_body && (ct ? !is_json_type(ct) : has_body))
        srv_fail(&r->reply, 415, "", "Content-Type must be application/json%s, got %.100s",
                 rt->image_body ? " (or image/png, image/jpeg)" : "", ct ? ct : "none");
    if (r->reply.status != 200)
        r->early = r->reply.status;
    else if (rt->has_body && clen > 0)
        r->cap = (size_t)clen;
    return clen;
}

/* One piece of the body: appended, or counted and dropped after an early
 * error (MHD_NO, cutting the connection, past discard_limit). */
static enum MHD_Result take_upload(const srv_config *cfg, req *r, const char *upload, size_t n) {
    if (r->early) {
        r->discarded += n;
        return r->discarded > discard_limit(cfg) ? MHD_NO : MHD_YES;
    }
    if (r->len + n > cfg->max_body) { /* chunked (or lying) body over the limit: count it, answer at the end */
        srv_fail(&r->reply, 413, "", "request body is over the limit of %zu bytes (--max-body)", cfg->max_body);
        r->early = 413;
        r->discarded = r->len + n;
        return MHD_YES;
    }
    if (r->len + n + 1 > r->cap || !r->body) {
        size_t cap = r->cap > r->len + n + 1 ? r->cap + 1 : (r->len + n + 1) * 2;
        if (cap > cfg->max_body + 1) cap = cfg->max_body + 1;
        if (cap < r->len + n + 1) cap = r->len + n + 1;
        char *p = realloc(r->body, cap);
        if (!p) {
            srv_fail(&r->reply, 503, "", "out of memory for the request body");
            r->early = 503;
            return MHD_YES;
        }
        r->body = p;
        r->cap = cap;
    }
    memcpy(r->body + r->len, upload, n);
    r->len += n;
    r->body[r->len] = 0;
    return MHD_YES;
}

/* MHD calls this for each request: first with the headers (*con_cls NULL),
 * then once per piece of the body, then with no upload to have it answered. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls) {
    srv_http *h = cls;
    req *r = *con_cls;
    (void)version;
    if (!r) {
        /* mutual TLS: a client without a certificate the client CA signed gets no answer at all */
        if (h->tls && srv_tls_client_ca(h->tls)) {
            const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
            if (!ci || !srv_tls_client_ok(ci->tls_session)) return MHD_NO;
        }
        if (!(*con_cls = r = req_new(c, method))) return MHD_NO;
        unsigned long long clen = route_and_screen(h, c, r, url, method);
        /* a body far over the limit is answered now (the connection closes, and the
         * client may see a reset instead of the 413); a moderately oversized one is
         * read and discarded first, so that clients without Expect: 100-continue get it */
        if (r->early && clen > discard_limit(h->cfg)) {
            srv_dl_busy(conn_dl(c));
            return send_reply(c, r, url);
        }
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        return take_upload(h->cfg, r, upload, n);
    }
    srv_dl_busy(conn_dl(c)); /* the whole request is here: the deadline stops while it is answered */
    if (r->deferred == 2) return send_reply(c, r, url); /* resumed: the replay filled the reply */
    http_loop *lp = tl_loop;
    if (!r->early && lp && lp->xb && srv_route_at(r->route)->batch) {
        /* a long pass answers in batches of PASS_ROWS: a request waits for one
         * batch, not for every request the pass reads */
        if (xb_rows(lp->xb) >= PASS_ROWS) flush_batch(lp);
        xb_job_init(&r->job, lp->xb);
        dispatch(h, r, c, url, &r->job);
        if (r->job.recorded) { /* answered at the end of this pass, with the others' */
            r->deferred = 1;
            r->conn = c;
            r->url = url;
            r->next_pending = lp->pending;
            lp->pending = r;
            MHD_suspend_connection(c);
            return MHD_YES;
        }
    } else if (!r->early)
        dispatch(h, r, c, url, NULL);
    return send_reply(c, r, url);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode toe) {
    req *r = *con_cls;
    (void)cls, (void)toe;
    srv_dl_rearm(conn_dl(c));
    if (!r) return;
    atomic_fetch_sub(&g_inflight, 1);
    if (r->active) atomic_fetch_sub(&g_active, 1);
    srv_reply_clear(&r->reply);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code) {
    srv_http *h = cls;
    const union MHD_ConnectionInfo *ai = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
        srv_dl_close(h->dl, *socket_ctx); /* before libmicrohttpd closes the socket */
        *socket_ctx = NULL;
        srv_conn_closed(ai ? ai->client_addr : NULL);
        return;
    }
    if (code != MHD_CONNECTION_NOTIFY_STARTED) return;
    srv_conn_opened(ai ? ai->client_addr : NULL);
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    int one = 1;
    if (ci) (void)setsockopt(ci->connect_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (ci) *socket_ctx = srv_dl_open(h->dl, ci->connect_fd);
}

/* Over --max-connections or --max-connections-per-ip: closed at once, before any byte is read. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len) {
    (void)cls;
    return srv_conn_admit(addr, len) ? MHD_YES : MHD_NO;
}

static void on_mhd_error(void *cls, const char *fmt, va_list ap) {
    char msg[512];
    (void)cls;
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = 0;
    srv_log_msg("warn", "libmicrohttpd: %s", msg);
}

/* 1 when another socket listens on (or holds) this address and port: a
 * plain bind, without SO_REUSEPORT, fails then. */
static int port_taken(const struct sockaddr_storage *addr, socklen_t len) {
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, taken = 0;
    if (fd < 0) return 0;                                             /* MHD's own bind reports the problem */
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one); /* TIME_WAIT leftovers are no owner */
    if (addr->ss_family == AF_INET6) (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    taken = bind(fd, (const struct sockaddr *)addr, len) != 0 && errno == EADDRINUSE;
    close(fd);
    return taken;
}

static void adopt_backlog(struct MHD_Daemon *d, MHD_socket fd);

/* A worker thread: its daemon's event loop, pass after pass (a pass waits
 * up to 50 ms for events, so that stop and quiesce requests are seen). */
static void *loop_main(void *arg) {
    http_loop *lp = arg;
    tl_loop = lp;
    while (!atomic_load(&lp->stop)) {
        if (MHD_run_wait(lp->d, 50) != MHD_YES) {
            struct timespec ms = {0, 1000 * 1000};
            nanosleep(&ms, NULL);
        }
        while (lp->pending) { /* sending the replies may read (and record) new requests */
            flush_batch(lp);
            (void)MHD_run(lp->d); /* the resumed connections: send their replies now */
        }
        if (atomic_load(&lp->quiesce) == 1) {
            MHD_socket fd = MHD_quiesce_daemon(lp->d);
            if (fd != MHD_INVALID_SOCKET) {
                adopt_backlog(lp->d, fd);
                close(fd);
            }
            atomic_store(&lp->quiesce, 2);
        }
    }
    return NULL;
}

/* TLS: the certificate callback, the priorities and the client CA (mTLS)
 * as libmicrohttpd options; nothing without a certificate. */
static void tls_options(const srv_http *h, unsigned int *flags, struct MHD_OptionItem *opts) {
    int k = 0;
    if (h->tls) {
        *flags |= MHD_USE_TLS;
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, srv_tls_cert_callback()};
        opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)SRV_TLS_PRIORITIES};
        if (srv_tls_client_ca(h->tls))
            opts[k++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_TRUST, 0, (void *)srv_tls_client_ca(h->tls)};
    }
    opts[k] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
}

/* One daemon per worker thread on one port: the first binds (port 0: the
 * kernel picks), the others join it. *port receives the port. */
static int start_daemons(srv_http *h, const struct addrinfo *ai, unsigned int flags, struct MHD_OptionItem *tls_opts,
                         int *port, tr_err *err) {
    const srv_config *cfg = h->cfg;
    struct sockaddr_storage addr;
    memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
    *port = cfg->port;
    if (cfg->port && port_taken(&addr, ai->ai_addrlen)) /* SO_REUSEPORT would share it with another server: refuse */
        return tr_seterr(err, TR_EIO, "port", "cannot listen on %s port %d: %s", cfg->host, cfg->port,
                         strerror(EADDRINUSE));
    for (int i = 0; i < h->n; i++) {
        if (ai->ai_family == AF_INET6)
            ((struct sockaddr_in6 *)&addr)->sin6_port = htons((uint16_t)*port);
        else
            ((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)*port);
        errno = 0;
        h->d[i] = MHD_start_daemon(
            flags, (uint16_t)*port, on_accept, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_error, h,
            MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->timeout,
            MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
            MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->max_connections,
            MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned int)1024, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
            MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
        if (!h->d[i])
            return tr_seterr(err, TR_EIO, "port", "cannot listen on %s port %d: %s", cfg->host, *port,
                             errno ? strerror(errno) : "libmicrohttpd refused to start");
        if (i == 0) {
            const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d[0], MHD_DAEMON_INFO_BIND_PORT);
            if (di && di->port) *port = di->port;
        }
    }
    return TR_OK;
}

/* The worker threads, each running its daemon's event loop. */
static int start_loops(srv_http *h, tr_err *err) {
    for (int i = 0; i < h->n; i++) {
        http_loop *lp = &h->loop[i];
        lp->h = h;
        lp->d = h->d[i];
        if (h->cfg->batch_max_rows > 1 && xb_new(h->cfg->batch_max_rows, &lp->xb, err) != TR_OK) return err->code;
        if (pthread_create(&lp->th, NULL, loop_main, lp) != 0)
            return tr_seterr(err, TR_ENOMEM, "threads", "cannot start HTTP worker thread %d", i + 1);
        lp->started = 1;
    }
    return TR_OK;
}

int srv_http_start(const srv_config *cfg, srv_http **out, int *port, tr_err *err) {
    struct addrinfo hints, *ai = NULL;
    srv_http *h = calloc(1, sizeof *h);
    char portstr[16];
    int gai;
    *out = NULL;
    if (!h) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    h->cfg = cfg;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    g_req_salt =
        ((unsigned long long)ts.tv_nsec << 20) ^ (unsigned long long)ts.tv_sec ^ ((unsigned long long)getpid() << 40);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(portstr, sizeof portstr, "%d", cfg->port);
    if ((gai = getaddrinfo(cfg->host, portstr, &hints, &ai)) != 0) {
        tr_seterr(err, TR_EINVAL, "host", "--host %s: %s", cfg->host, gai_strerror(gai));
        goto fail;
    }
    unsigned int flags = MHD_ALLOW_SUSPEND_RESUME | MHD_USE_EPOLL | MHD_USE_ERROR_LOG; /* our threads run the loops */
    if (ai->ai_family == AF_INET6) flags |= MHD_USE_IPv6;
    struct MHD_OptionItem tls_opts[4];
    if (srv_tls_new(cfg, &h->tls, err) != TR_OK) goto fail;
    tls_options(h, &flags, tls_opts);
    srv_conn_init(cfg->max_connections, cfg->max_connections_per_ip);
    if (!(h->dl = srv_dl_new(cfg->timeout))) {
        tr_seterr(err, TR_ENOMEM, "", "cannot start the request deadline thread");
        goto fail;
    }
    h->n = cfg->threads > 0 ? cfg->threads : 1;
    if (!(h->d = calloc((size_t)h->n, sizeof *h->d)) || !(h->loop = calloc((size_t)h->n, sizeof *h->loop))) {
        tr_seterr(err, TR_ENOMEM, "", "out of memory");
        goto fail;
    }
    if (start_daemons(h, ai, flags, tls_opts, port, err) != TR_OK || start_loops(h, err) != TR_OK) goto fail;
    freeaddrinfo(ai);
    *out = h;
    return TR_OK;
fail:
    if (ai) freeaddrinfo(ai);
    srv_http_stop(h);
    return err->code;
}

/* Connections the kernel completed on a daemon's listening socket that the
 * daemon has not accepted yet (its thread was busy with a request): closing
 * the socket would reset them although their clients connected before the
 * drain. Hand them to the daemon instead; they are answered (Connection:
 * close) like the requests in flight. */
static void adopt_backlog(struct MHD_Daemon *d, MHD_socket fd) {
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return;
    for (;;) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof addr;
        int c = accept4(fd, (struct sockaddr *)&addr, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return; /* EAGAIN: the backlog is empty */
        }
        if (MHD_add_connection(d, c, (struct sockaddr *)&addr, len) != MHD_YES) close(c);
    }
}

void srv_http_quiesce(srv_http *h) {
    atomic_store(&g_draining, 1);
    for (int i = 0; h && h->loop && i < h->n; i++)
        if (h->loop[i].started) atomic_store(&h->loop[i].quiesce, 1);
    for (int i = 0; h && h->loop && i < h->n; i++) /* each worker quiesces its daemon between two passes */
        while (h->loop[i].started && atomic_load(&h->loop[i].quiesce) != 2) {
            struct timespec ms = {0, 1000 * 1000};
            nanosleep(&ms, NULL);
        }
}

int srv_http_drain(srv_http *h, double timeout) {
    struct timespec t0;
    (void)h;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (atomic_load(&g_inflight) > 0 && since(&t0) < timeout) {
        struct timespec ms = {0, 10 * 1000 * 1000};
        nanosleep(&ms, NULL);
    }
    return atomic_load(&g_inflight);
}

void srv_http_stop(srv_http *h) {
    if (!h) return;
    for (int i = 0; h->loop && i < h->n; i++)
        if (h->loop[i].started) atomic_store(&h->loop[i].stop, 1);
    for (int i = 0; h->loop && i < h->n; i++)
        if (h->loop[i].started) pthread_join(h->loop[i].th, NULL); /* each pass ends with its batch answered */
    for (int i = 0; h->d && i < h->n; i++)
        if (h->d[i]) MHD_stop_daemon(h->d[i]);
    for (int i = 0; h->loop && i < h->n; i++) xb_free(h->loop[i].xb);
    free(h->loop);
    srv_dl_free(h->dl);
    srv_tls_free(h->tls);
    free(h->d);
    free(h);
}

int srv_http_tls_reload(srv_http *h, const srv_config *cfg, tr_err *err) {
    return h ? srv_tls_reload(h->tls, cfg, err) : TR_OK;
}
int srv_http_has_tls(const srv_http *h) {
    return h && h->tls;
}
