/* tls.h - HTTPS: the certificate and key (reloadable), the client CA for mutual TLS, the priority string. */
#ifndef TLS_H
#define TLS_H

#include "config.h"
#include "tr_err.h"

/* TLS 1.2 and 1.3 only, AEAD ciphers, forward-secret key exchange, the server's order. */
#define SRV_TLS_PRIORITIES                                                                                             \
    "SECURE128:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"          \
    "-MAC-ALL:+AEAD:-KX-ALL:+ECDHE-ECDSA:+ECDHE-RSA:%SERVER_PRECEDENCE"

typedef struct srv_tls srv_tls;

/* Load --tls-cert and --tls-key (and --tls-client-ca's text into *ca_pem,
 * owned by the returned object). NULL *out when TLS is off. A key that does
 * not match the certificate is refused. */
int srv_tls_new(const srv_config *cfg, srv_tls **out, tr_err *err);
/* Read the files again and use them for new handshakes; on any error the
 * old pair keeps serving. Thread-safe against handshakes in progress. */
int srv_tls_reload(srv_tls *t, const srv_config *cfg, tr_err *err);
void srv_tls_free(srv_tls *t);

/* For libmicrohttpd: the certificate callback (MHD_OPTION_HTTPS_CERT_CALLBACK)
 * and the client CA PEM (MHD_OPTION_HTTPS_MEM_TRUST) or NULL. */
void *srv_tls_cert_callback(void);
const char *srv_tls_client_ca(const srv_tls *t);

/* Mutual TLS: 1 when the session's client presented a certificate that the
 * client CA signed and that is valid now; 0 otherwise (the connection is
 * then closed without an answer). session is a gnutls_session_t. */
int srv_tls_client_ok(void *session);

#endif
