/* tls.c - HTTPS through libmicrohttpd's GnuTLS: a certificate callback that serves the current pair, reloadable. */
#include "tls.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* One loaded certificate chain and key. Pairs are never freed while the
 * server runs: a handshake may still hold the one a reload replaced (a
 * few KiB per SIGHUP). */
typedef struct pair {
    gnutls_pcert_st *pcert;
    unsigned int n_pcert;
    gnutls_privkey_t key;
    struct pair *older;
} pair;

struct srv_tls {
    _Atomic(pair *) cur;
    pthread_mutex_t reload_lock;
    char *client_ca;
};

/* One process, one TLS configuration: the callback has no user pointer. */
static srv_tls *g_tls;

static void pair_free(pair *p) {
    while (p) {
        pair *o = p->older;
        for (unsigned i = 0; i < p->n_pcert; i++) gnutls_pcert_deinit(&p->pcert[i]);
        gnutls_free(p->pcert);
        gnutls_privkey_deinit(p->key);
        free(p);
        p = o;
    }
}

/* Read cert and key files into a new pair, checking that they belong together. */
static int pair_load(const char *cert_path, const char *key_path, pair **out, tr_err *err) {
    gnutls_datum_t c = {0}, k = {0};
    gnutls_x509_crt_t *crts = NULL;
    unsigned int n = 0;
    pair *p = calloc(1, sizeof *p);
    int rc = TR_OK, g;
    *out = NULL;
    if (!p) return tr_seterr(err, TR_ENOMEM, "tls-cert", "out of memory");
    if ((g = gnutls_load_file(cert_path, &c)) < 0) {
        rc = tr_seterr(err, TR_EIO, "tls-cert", "--tls-cert %s: cannot read: %s", cert_path, gnutls_strerror(g));
        goto done;
    }
    if ((g = gnutls_load_file(key_path, &k)) < 0) {
        rc = tr_seterr(err, TR_EIO, "tls-key", "--tls-key %s: cannot read: %s", key_path, gnutls_strerror(g));
        goto done;
    }
    if ((g = gnutls_x509_crt_list_import2(&crts, &n, &c, GNUTLS_X509_FMT_PEM, 0)) < 0 || n == 0) {
        rc = tr_seterr(err, TR_EFORMAT, "tls-cert", "--tls-cert %s: not a PEM certificate: %s", cert_path,
                       g < 0 ? gnutls_strerror(g) : "no certificate");
        goto done;
    }
    if (!(p->pcert = gnutls_calloc(n, sizeof *p->pcert))) {
        rc = tr_seterr(err, TR_ENOMEM, "tls-cert", "out of memory");
        goto done;
    }
    for (unsigned i = 0; i < n; i++, p->n_pcert++)
        if ((g = gnutls_pcert_import_x509(&p->pcert[i], crts[i], 0)) < 0) {
            rc = tr_seterr(err, TR_EFORMAT, "tls-cert", "--tls-cert %s: %s", cert_path, gnutls_strerror(g));
            goto done;
        }
    if ((g = gnutls_privkey_init(&p->key)) < 0 ||
        (g = gnutls_privkey_import_x509_raw(p->key, &k, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
        rc = tr_seterr(err, TR_EFORMAT, "tls-key", "--tls-key %s: not a PEM private key: %s", key_path,
                       gnutls_strerror(g));
        goto done;
    }
    /* the key must be the certificate's: compare their public key ids */
    unsigned char kid[64], cid[64];
    size_t kn = sizeof kid, cn = sizeof cid;
    gnutls_pubkey_t pub = NULL;
    if (gnutls_pubkey_init(&pub) < 0 || gnutls_pubkey_import_privkey(pub, p->key, 0, 0) < 0 ||
        gnutls_pubkey_get_key_id(pub, 0, kid, &kn) < 0 || gnutls_x509_crt_get_key_id(crts[0], 0, cid, &cn) < 0 ||
        kn != cn || memcmp(kid, cid, kn) != 0)
        rc = tr_seterr(err, TR_EFORMAT, "tls-key", "--tls-key %s does not match the certificate in %s", key_path,
                       cert_path);
    gnutls_pubkey_deinit(pub);
done:
    for (unsigned i = 0; i < n; i++) gnutls_x509_crt_deinit(crts[i]);
    gnutls_free(crts);
    gnutls_free(c.data);
    gnutls_free(k.data);
    if (rc)
        pair_free(p);
    else
        *out = p;
    return rc;
}

static int retrieve(gnutls_session_t s, const gnutls_datum_t *req_ca_dn, int n_req, const gnutls_pk_algorithm_t *algos,
                    int n_algos, gnutls_pcert_st **pcert, unsigned int *n_pcert, gnutls_privkey_t *key) {
    (void)s, (void)req_ca_dn, (void)n_req, (void)algos, (void)n_algos;
    pair *p = g_tls ? atomic_load(&g_tls->cur) : NULL;
    if (!p) return -1;
    *pcert = p->pcert;
    *n_pcert = p->n_pcert;
    *key = p->key;
    return 0;
}

void *srv_tls_cert_callback(void) {
    /* libmicrohttpd takes the function through an option array's void pointer */
    gnutls_certificate_retrieve_function2 *fn = retrieve;
    void *p;
    memcpy(&p, &fn, sizeof p);
    return p;
}

const char *srv_tls_client_ca(const srv_tls *t) {
    return t ? t->client_ca : NULL;
}

int srv_tls_new(const srv_config *cfg, srv_tls **out, tr_err *err) {
    *out = NULL;
    if (!cfg->tls_cert && !cfg->tls_key && !cfg->tls_client_ca) return TR_OK;
    if (!cfg->tls_cert || !cfg->tls_key)
        return tr_seterr(err, TR_EINVAL, cfg->tls_cert ? "tls-key" : "tls-cert",
                         "TLS needs both --tls-cert and --tls-key%s",
                         cfg->tls_client_ca ? " (--tls-client-ca adds client certificates to them)" : "");
    srv_tls *t = calloc(1, sizeof *t);
    pair *p = NULL;
    int rc;
    if (!t) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    pthread_mutex_init(&t->reload_lock, NULL);
    if ((rc = pair_load(cfg->tls_cert, cfg->tls_key, &p, err))) goto fail;
    atomic_store(&t->cur, p);
    if (cfg->tls_client_ca) {
        gnutls_datum_t ca = {0};
        int g = gnutls_load_file(cfg->tls_client_ca, &ca);
        if (g < 0 || !(t->client_ca = malloc(ca.size + 1))) {
            gnutls_free(ca.data);
            rc = tr_seterr(err, TR_EIO, "tls-client-ca", "--tls-client-ca %s: cannot read", cfg->tls_client_ca);
            goto fail;
        }
        memcpy(t->client_ca, ca.data, ca.size);
        t->client_ca[ca.size] = '\0';
        gnutls_free(ca.data);
        if (!strstr(t->client_ca, "-----BEGIN CERTIFICATE-----")) {
            rc = tr_seterr(err, TR_EFORMAT, "tls-client-ca", "--tls-client-ca %s: not a PEM certificate",
                           cfg->tls_client_ca);
            goto fail;
        }
    }
    g_tls = t;
    *out = t;
    return TR_OK;
fail:
    srv_tls_free(t);
    return rc;
}

int srv_tls_reload(srv_tls *t, const srv_config *cfg, tr_err *err) {
    pair *p;
    if (!t) return TR_OK;
    int rc = pair_load(cfg->tls_cert, cfg->tls_key, &p, err);
    if (rc) return rc;
    pthread_mutex_lock(&t->reload_lock);
    p->older = atomic_load(&t->cur);
    atomic_store(&t->cur, p);
    pthread_mutex_unlock(&t->reload_lock);
    return TR_OK;
}

void srv_tls_free(srv_tls *t) {
    if (!t) return;
    if (g_tls == t) g_tls = NULL;
    pair_free(atomic_load(&t->cur));
    pthread_mutex_destroy(&t->reload_lock);
    free(t->client_ca);
    free(t);
}

int srv_tls_client_ok(void *session) {
    gnutls_session_t s = session;
    unsigned int status = 0, n = 0;
    if (!s || !gnutls_certificate_get_peers(s, &n) || n == 0) return 0;
    return gnutls_certificate_verify_peers2(s, &status) == 0 && status == 0;
}
