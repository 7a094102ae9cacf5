/* config.h - tripletd's options: defaults, environment TRIPLETD_<NAME> and flags (config.c). */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

#include <stddef.h>

#include "dist.h"
#include "loss.h"
#include "tr_err.h"

#define SRV_VERSION "0.1.0"

typedef enum { SRV_LOG_TEXT, SRV_LOG_JSON, SRV_LOG_OFF } srv_log_format;

/* Effective options after defaults, environment (TRIPLETD_<NAME>) and
 * flags (flag wins). Strings are owned by the config (srv_config_free). */
typedef struct {
    char *model;   /* --model PATH (required) */
    char *gallery; /* --gallery PATH or NULL */
    int allow_gallery_mismatch;
    char *host;                 /* --host, default 127.0.0.1 */
    int port;                   /* 0 = pick a free port */
    char *port_file;            /* write the bound port here, or NULL */
    int threads;                /* MHD thread pool size */
    size_t max_body;            /* bytes */
    size_t max_image_pixels;    /* width x height of an image input */
    size_t max_batch;           /* vectors per request field */
    int max_concurrent;         /* in-flight requests before 429 */
    int timeout;                /* idle connection seconds */
    int max_connections;        /* open connections in total */
    int max_connections_per_ip; /* per client address (IPv6 /64), 0 = none */
    char *metric;               /* NULL = model metadata */
    double margin;              /* NAN = model metadata */
    char *loss;                 /* NULL = model metadata */
    char *api_key;              /* NULL = no auth */
    char *api_key_file;
    char *api_keys_file; /* named keys, reloaded on SIGHUP, or NULL */
    srv_log_format log_format;
    int log_flush_ms;     /* access log lines gather this long before one write; 0 = a write per line */
    double drain_timeout; /* seconds */
    char *tls_cert;       /* --tls-cert PEM: HTTPS, or NULL */
    char *tls_key;
    char *tls_client_ca;      /* mutual TLS, or NULL */
    char *model_dir;          /* --model-dir: reloads may name files relative to it, or NULL */
    int allow_model_path;     /* deprecated; requires model_dir */
    int no_console;           /* GET / and its files answer 404 */
    size_t batch_max_rows;    /* rows per batched forward (batcher.c); 0/1 = off */
    int batch_leaders;        /* forwards at once before requests queue; 0 = CPUs */
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

#endif
