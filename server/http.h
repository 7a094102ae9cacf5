/* http.h - the HTTP daemon (libmicrohttpd): start, quiesce, drain, stop. */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include "config.h"
#include "tr_err.h"

typedef struct srv_http srv_http;

/* Listen on cfg->host:cfg->port with cfg->threads workers; *port receives
 * the bound port. Errors name the address. */
int srv_http_start(const srv_config *cfg, srv_http **out, int *port, tr_err *err);
/* Turn /readyz to 503 and close the listening socket (in-flight requests
 * and open connections continue). */
void srv_http_quiesce(srv_http *h);
/* Wait until no request is in flight or timeout seconds pass; returns the
 * number still in flight. */
int srv_http_drain(srv_http *h, double timeout);
/* Stop the daemon (closes every connection) and free it. NULL is a no-op. */
void srv_http_stop(srv_http *h);
/* SIGHUP: read --tls-cert and --tls-key again for new handshakes; on an
 * error the old pair keeps serving. TR_OK when TLS is off. */
int srv_http_tls_reload(srv_http *h, const srv_config *cfg, tr_err *err);
int srv_http_has_tls(const srv_http *h);

#endif
