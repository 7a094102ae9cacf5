/* config.c - the one table of tripletd options: flag, env TRIPLETD_<NAME>, default, help, parser. */
#include <ctype.h>
#include <sys/stat.h>
#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

typedef enum { O_STR, O_INT, O_SIZE, O_DOUBLE, O_BOOL, O_LOGFMT } opt_type;

typedef struct {
    const char *name; /* flag without "--"; env is TRIPLETD_ + upper(name), '-' -> '_' */
    opt_type type;
    size_t off;      /* field in srv_config */
    const char *def; /* default text ("" = none) */
    double lo, hi;   /* numeric range */
    const char *help;
} opt;

#define F(x) offsetof(srv_config, x)
static const opt OPTS[] = {
    {"model", O_STR, F(model), "", 0, 0,
     "model file: safetensors, or ONNX when the name ends in .onnx (proto/model-format.md); required"},
    {"gallery", O_STR, F(gallery), "", 0, 0, "gallery file for /v1/search (proto/gallery-format.md)"},
    {"allow-gallery-mismatch", O_BOOL, F(allow_gallery_mismatch), "false", 0, 1,
     "serve a gallery built with another model"},
    {"host", O_STR, F(host), "127.0.0.1", 0, 0, "address to listen on (0.0.0.0 for all)"},
    {"port", O_INT, F(port), "8080", 0, 65535, "TCP port; 0 picks a free one (printed and written to --port-file)"},
    {"port-file", O_STR, F(port_file), "", 0, 0, "write the bound port to this file"},
    {"threads", O_INT, F(threads), "0", 0, 256, "HTTP worker threads (0 = number of CPUs)"},
    {"max-body", O_SIZE, F(max_body), "8388608", 64, 1073741824.0, "largest request body in bytes (413 above)"},
    {"max-image-pixels", O_SIZE, F(max_image_pixels), "16777216", 1, 4294967295.0,
     "largest image input in pixels (width x height; 422 above, checked before decoding)"},
    {"max-batch", O_SIZE, F(max_batch), "1024", 1, 1048576, "most vectors in one request field (422 above)"},
    {"max-concurrent", O_INT, F(max_concurrent), "256", 1, 100000, "requests in flight; more get 429 with Retry-After"},
    {"max-connections", O_INT, F(max_connections), "10000", 1, 19000,
     "open connections in total; more are closed at once"},
    {"max-connections-per-ip", O_INT, F(max_connections_per_ip), "0", 0, 19000,
     "open connections from one client address (IPv6: one /64); more are closed at once (0 = no limit: behind a proxy "
     "every client has its address)"},
    {"timeout", O_INT, F(timeout), "60", 1, 86400,
     "seconds a connection may take to send a whole request (headers and body) and may stay idle; slower ones are cut"},
    {"metric", O_STR, F(metric), "", 0, 0, "default metric sqeuclidean|euclidean|cosine|dot (else the model's)"},
    {"margin", O_DOUBLE, F(margin), "", 0, 1e9, "default margin (else the model's)"},
    {"loss", O_STR, F(loss), "", 0, 0,
     "default loss triplet|triplet-soft|contrastive|contrastive-squared (else the model's)"},
    {"api-key", O_STR, F(api_key), "", 0, 0, "require Authorization: Bearer KEY (except /healthz, /readyz, /metrics)"},
    {"api-key-file", O_STR, F(api_key_file), "", 0, 0, "read the API key from this file (first line)"},
    {"api-keys-file", O_STR, F(api_keys_file), "", 0, 0,
     "several API keys, one per line (name:key or key); reloaded on SIGHUP"},
    {"log-format", O_LOGFMT, F(log_format), "text", 0, 0, "access log on stderr: text|json|off"},
    {"log-flush", O_INT, F(log_flush_ms), "10", 0, 10000,
     "milliseconds access log lines gather before one write (0 = write each line at once)"},
    {"drain-timeout", O_DOUBLE, F(drain_timeout), "10", 0, 3600, "seconds to finish in-flight requests on SIGTERM"},
    {"batch-max-rows", O_SIZE, F(batch_max_rows), "256", 0, 65536,
     "most rows in one batched model forward (0 or 1: no batching)"},
    {"batch-leaders", O_INT, F(batch_leaders), "0", 0, 64,
     "model forwards running at once before requests queue to batch (0 = number of CPUs)"},
    {"no-console", O_BOOL, F(no_console), "false", 0, 1, "do not serve the web console at /"},
    {"tls-cert", O_STR, F(tls_cert), "", 0, 0, "serve HTTPS with this PEM certificate (chain); reloaded on SIGHUP"},
    {"tls-key", O_STR, F(tls_key), "", 0, 0, "the PEM private key of --tls-cert; reloaded on SIGHUP"},
    {"tls-client-ca", O_STR, F(tls_client_ca), "", 0, 0,
     "mutual TLS: only clients with a certificate this PEM CA signed get answers"},
    {"model-dir", O_STR, F(model_dir), "", 0, 0,
     "POST /v1/admin/reload may name model and gallery files by a path relative to this folder"},
    {"allow-model-path", O_BOOL, F(allow_model_path), "false", 0, 1,
     "deprecated: needs --model-dir, which alone allows naming files"},
};
#undef F
#define N_OPTS (sizeof OPTS / sizeof OPTS[0])

static void env_name(const opt *o, char *buf, size_t cap) {
    size_t i = (size_t)snprintf(buf, cap, "TRIPLETD_");
    for (const char *p = o->name; *p && i + 1 < cap; p++) buf[i++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    buf[i] = 0;
}

void srv_config_usage(void *fp) {
    FILE *f = fp;
    fprintf(f, "usage: tripletd --model PATH [options]\n\nEvery option can also be set by its environment variable "
               "(the flag wins).\n\n");
    for (size_t i = 0; i < N_OPTS; i++) {
        char env[64], flag[64];
        env_name(&OPTS[i], env, sizeof env);
        snprintf(flag, sizeof flag, "--%s%s", OPTS[i].name, OPTS[i].type == O_BOOL ? "" : " V");
        fprintf(f, "  %-28s %-32s %s", flag, env, OPTS[i].help);
        if (OPTS[i].def[0] && OPTS[i].type != O_BOOL) fprintf(f, " [%s]", OPTS[i].def);
        fputc('\n', f);
    }
    fprintf(f, "  %-28s %-32s %s\n  %-28s %-32s %s\n", "--help", "", "print this table", "--version", "",
            "print the version");
}

/* Parse one value into cfg; src names where it came from for the message. */
static int set_opt(srv_config *cfg, const opt *o, const char *val, const char *src, tr_err *err) {
    char *p = (char *)cfg + o->off, *end = NULL;
    errno = 0;
    switch (o->type) {
    case O_STR: {
        char **s = (char **)(void *)p;
        free(*s);
        *s = NULL;
        if (val[0] == 0) return 0;
        if (!(*s = strdup(val))) return tr_seterr(err, TR_ENOMEM, o->name, "%s: out of memory", src);
        return 0;
    }
    case O_INT: {
        long v = strtol(val, &end, 10);
        if (errno || end == val || *end || v < (long)o->lo || v > (long)o->hi)
            return tr_seterr(err, TR_EINVAL, o->name, "%s: expected an integer in %.0f..%.0f, got \"%s\"", src, o->lo,
                             o->hi, val);
        *(int *)(void *)p = (int)v;
        return 0;
    }
    case O_SIZE: {
        double v = strtod(val, &end), mul = 1;
        if (end != val && *end) {
            if (strcmp(end, "k") == 0 || strcmp(end, "K") == 0 || strcmp(end, "KiB") == 0)
                mul = 1024.0;
            else if (strcmp(end, "M") == 0 || strcmp(end, "MiB") == 0)
                mul = 1048576.0;
            else if (strcmp(end, "G") == 0 || strcmp(end, "GiB") == 0)
                mul = 1073741824.0;
            else
                mul = -1;
        }
        v *= mul;
        if (errno || end == val || mul < 0 || !isfinite(v) || v != floor(v) || v < o->lo || v > o->hi)
            return tr_seterr(err, TR_EINVAL, o->name,
                             "%s: expected a whole number in %.0f..%.0f (suffix K, M or G allowed), got \"%s\"", src,
                             o->lo, o->hi, val);
        *(size_t *)(void *)p = (size_t)v;
        return 0;
    }
    case O_DOUBLE: {
        double v = strtod(val, &end);
        if (errno || end == val || *end || !isfinite(v) || v < o->lo || v > o->hi)
            return tr_seterr(err, TR_EINVAL, o->name, "%s: expected a number in %g..%g, got \"%s\"", src, o->lo, o->hi,
                             val);
        *(double *)(void *)p = v;
        return 0;
    }
    case O_BOOL: {
        int v;
        if (!strcmp(val, "1") || !strcmp(val, "true") || !strcmp(val, "yes") || !strcmp(val, "on"))
            v = 1;
        else if (!strcmp(val, "0") || !strcmp(val, "false") || !strcmp(val, "no") || !strcmp(val, "off") || !val[0])
            v = 0;
        else
            return tr_seterr(err, TR_EINVAL, o->name, "%s: expected true or false, got \"%s\"", src, val);
        *(int *)(void *)p = v;
        return 0;
    }
    case O_LOGFMT: {
        srv_log_format v;
        if (!strcmp(val, "text"))
            v = SRV_LOG_TEXT;
        else if (!strcmp(val, "json"))
            v = SRV_LOG_JSON;
        else if (!strcmp(val, "off"))
            v = SRV_LOG_OFF;
        else
            return tr_seterr(err, TR_EINVAL, o->name, "%s: expected text, json or off, got \"%s\"", src, val);
        *(srv_log_format *)(void *)p = v;
        return 0;
    }
    }
    return tr_seterr(err, TR_EINTERNAL, o->name, "%s: unknown option type", src);
}

static const opt *find_opt(const char *name, size_t len) {
    for (size_t i = 0; i < N_OPTS; i++)
        if (strlen(OPTS[i].name) == len && strncmp(OPTS[i].name, name, len) == 0) return &OPTS[i];
    return NULL;
}

/* Read the first line of path into *key. */
static int read_key_file(const char *path, char **key, tr_err *err) {
    char buf[1024];
    FILE *f = fopen(path, "r");
    if (!f) return tr_seterr(err, TR_EIO, "api-key-file", "--api-key-file %s: %s", path, strerror(errno));
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    buf[strcspn(buf, "\r\n")] = 0;
    if (!buf[0]) return tr_seterr(err, TR_EINVAL, "api-key-file", "--api-key-file %s: the file holds no key", path);
    free(*key);
    if (!(*key = strdup(buf))) return tr_seterr(err, TR_ENOMEM, "api-key-file", "out of memory");
    return 0;
}

/* Each option's default, then its TRIPLETD_* environment variable. */
static int apply_env(srv_config *cfg, tr_err *err) {
    char src[96], en[64];
    for (size_t i = 0; i < N_OPTS; i++) {
        const char *env;
        env_name(&OPTS[i], en, sizeof en);
        if (OPTS[i].type == O_DOUBLE && !OPTS[i].def[0]) *(double *)(void *)((char *)cfg + OPTS[i].off) = NAN;
        if (OPTS[i].def[0] && set_opt(cfg, &OPTS[i], OPTS[i].def, "default", err)) return -1;
        if ((env = getenv(en)) != NULL && env[0]) {
            snprintf(src, sizeof src, "%s", en);
            if (set_opt(cfg, &OPTS[i], env, src, err)) return -1;
        }
    }
    return 0;
}

/* The command line over the environment: 0, 1 after --help or --version
 * (printed), -1 on a bad option. */
static int apply_args(srv_config *cfg, int argc, char **argv, tr_err *err) {
    char src[96];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            srv_config_usage(stdout);
            return 1;
        }
        if (!strcmp(a, "--version")) {
            printf("tripletd %s\n", SRV_VERSION);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0)
            return tr_seterr(err, TR_EINVAL, a, "unexpected argument \"%s\" (options start with --; see --help)", a);
        const char *eq = strchr(a + 2, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        const opt *o = find_opt(a + 2, len);
        if (!o) return tr_seterr(err, TR_EINVAL, a, "unknown option \"%.*s\" (see --help)", (int)(len + 2), a);
        const char *val;
        if (eq)
            val = eq + 1;
        else if (o->type == O_BOOL)
            val = "true";
        else if (i + 1 < argc)
            val = argv[++i];
        else
            return tr_seterr(err, TR_EINVAL, o->name, "--%s: missing value", o->name);
        snprintf(src, sizeof src, "--%s", o->name);
        if (set_opt(cfg, o, val, src, err)) return -1;
    }
    return 0;
}

/* Derived values and the checks across options. */
static int resolve(srv_config *cfg, tr_err *err) {
    if (!cfg->model)
        return tr_seterr(err, TR_EINVAL, "model", "--model: required (the model file to serve; see --help)");
    if (cfg->threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->threads = n > 0 ? (int)(n < 64 ? n : 64) : 2;
    }
    if (cfg->metric) {
        if (dist_parse(cfg->metric, &cfg->metric_v) != 0)
            return tr_seterr(err, TR_EINVAL, "metric",
                             "--metric: unknown metric \"%s\" (sqeuclidean, euclidean, cosine or dot)", cfg->metric);
        cfg->has_metric = 1;
    }
    if (cfg->loss) {
        if (loss_parse(cfg->loss, &cfg->loss_v) != 0 || cfg->loss_v == LOSS_INFONCE)
            return tr_seterr(err, TR_EINVAL, "loss",
                             "--loss: unknown loss \"%s\" (triplet, triplet-soft, contrastive or contrastive-squared)",
                             cfg->loss);
        cfg->has_loss = 1;
    }
    if (cfg->api_key_file && read_key_file(cfg->api_key_file, &cfg->api_key, err)) return -1;
    if (cfg->allow_model_path && !cfg->model_dir)
        return tr_seterr(
            err, TR_EINVAL, "allow-model-path",
            "--allow-model-path is deprecated and no longer allows any path: give --model-dir DIR, and reloads may "
            "name files relative to DIR");
    struct stat sb;
    if (cfg->model_dir && (stat(cfg->model_dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        return tr_seterr(err, TR_EINVAL, "model-dir", "--model-dir %s: not a folder", cfg->model_dir);
    return 0;
}

int srv_config_parse(srv_config *cfg, int argc, char **argv, tr_err *err) {
    memset(cfg, 0, sizeof *cfg);
    tr_clearerr(err);
    int rc = apply_env(cfg, err);
    if (rc == 0) rc = apply_args(cfg, argc, argv, err);
    if (rc == 0) rc = resolve(cfg, err);
    if (rc != 0) {
        srv_config_free(cfg);
        return rc > 0 ? 1 : -1;
    }
    return 0;
}

void srv_config_free(srv_config *cfg) {
    for (size_t i = 0; i < N_OPTS; i++) {
        if (OPTS[i].type != O_STR) continue;
        char **s = (char **)(void *)((char *)cfg + OPTS[i].off);
        free(*s);
        *s = NULL;
    }
}
