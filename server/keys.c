/* keys.c - API keys: SHA-256 digests compared in constant time against every key; named keys reload on SIGHUP. */
#include "keys.h"

#include <ctype.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <nettle/memops.h>

#include "tr_err.h"

typedef struct {
    char name[64];
    unsigned char digest[32];
    int slot; /* its counter in g_count, -1 for the unnamed --api-key */
} key;

typedef struct keyset {
    size_t n;
    key k[SRV_KEYS_MAX];
    struct keyset *older; /* kept until exit: a request may still read a replaced set's names */
} keyset;

static _Atomic(keyset *) g_keys;
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
/* per-name request counters, never reset (names survive reloads) */
static struct {
    char name[64];
    atomic_ullong n;
} g_count[SRV_KEYS_MAX];
static atomic_int g_n_count;

static int digest(const char *s, size_t n, unsigned char out[32]) {
    tr_sha256(s, n, out);
    return 0;
}

/* The counter of a key name, made on first use (under g_lock); -1 for no name or a full table. */
static int count_slot(const char *name) {
    int n = atomic_load(&g_n_count);
    if (!name[0]) return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(g_count[i].name, name) == 0) return i;
    if (n == SRV_KEYS_MAX) return -1;
    snprintf(g_count[n].name, sizeof g_count[n].name, "%s", name);
    atomic_store(&g_n_count, n + 1);
    return n;
}

/* "name:key" or "key" per line; blank lines and # comments skipped; names [A-Za-z0-9._-]. */
static int load_file(const char *path, keyset *ks, tr_err *err) {
    FILE *f = fopen(path, "r");
    char line[1024];
    size_t ln = 0;
    if (!f) return tr_seterr(err, TR_EIO, "api-keys-file", "--api-keys-file %s: cannot open", path);
    int rc = TR_OK;
    while (fgets(line, sizeof line, f)) {
        ln++;
        size_t len = strcspn(line, "\r\n");
        line[len] = 0;
        char *s = line;
        while (*s == ' ' || *s == '\t') s++;
        if (*s == 0 || *s == '#') continue;
        for (char *e = s + strlen(s); e > s && (e[-1] == ' ' || e[-1] == '\t');) *--e = 0;
        char *colon = strchr(s, ':'), *k = colon ? colon + 1 : s;
        if (ks->n == SRV_KEYS_MAX) {
            rc =
                tr_seterr(err, TR_ELIMIT, "api-keys-file", "--api-keys-file %s: more than %d keys", path, SRV_KEYS_MAX);
            break;
        }
        key *dst = &ks->k[ks->n];
        if (colon) {
            size_t nl = (size_t)(colon - s);
            int ok = nl > 0 && nl < sizeof dst->name;
            for (size_t i = 0; ok && i < nl; i++) ok = isalnum((unsigned char)s[i]) || strchr("._-", s[i]);
            if (!ok) {
                rc = tr_seterr(err, TR_EFORMAT, "api-keys-file",
                               "--api-keys-file %s: line %zu: a key name is 1-63 characters of A-Z a-z 0-9 . _ -", path,
                               ln);
                break;
            }
            memcpy(dst->name, s, nl);
            dst->name[nl] = 0;
        } else
            snprintf(dst->name, sizeof dst->name, "line%zu", ln);
        if (strlen(k) < 8) {
            rc = tr_seterr(err, TR_EFORMAT, "api-keys-file",
                           "--api-keys-file %s: line %zu: a key needs at least 8 characters", path, ln);
            break;
        }
        for (size_t i = 0; i < ks->n; i++)
            if (strcmp(ks->k[i].name, dst->name) == 0) {
                rc = tr_seterr(err, TR_EFORMAT, "api-keys-file",
                               "--api-keys-file %s: line %zu: the name \"%s\" is used twice", path, ln, dst->name);
                break;
            }
        if (rc || digest(k, strlen(k), dst->digest)) {
            if (!rc) rc = tr_seterr(err, TR_EINTERNAL, "api-keys-file", "cannot hash a key");
            break;
        }
        ks->n++;
    }
    fclose(f);
    if (!rc && ks->n == 0) rc = tr_seterr(err, TR_EFORMAT, "api-keys-file", "--api-keys-file %s: no keys", path);
    memset(line, 0, sizeof line);
    return rc;
}

static void install(keyset *ks) {
    pthread_mutex_lock(&g_lock);
    ks->older = atomic_load(&g_keys);
    for (size_t i = 0; i < ks->n; i++) ks->k[i].slot = count_slot(ks->k[i].name);
    atomic_store(&g_keys, ks);
    pthread_mutex_unlock(&g_lock);
}

int srv_keys_init(const srv_config *cfg, char *warn, size_t warn_cap, tr_err *err) {
    warn[0] = 0;
    if (!cfg->api_key && !cfg->api_keys_file) return TR_OK;
    if (cfg->api_key && cfg->api_keys_file)
        return tr_seterr(err, TR_EINVAL, "api-keys-file",
                         "--api-keys-file and --api-key/--api-key-file exclude each other");
    keyset *ks = calloc(1, sizeof *ks);
    if (!ks) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    int rc = TR_OK;
    if (cfg->api_keys_file) {
        struct stat sb;
        if (stat(cfg->api_keys_file, &sb) == 0 && (sb.st_mode & 077))
            snprintf(warn, warn_cap,
                     "--api-keys-file %s is readable by others than its owner (mode %03o); chmod 600 it",
                     cfg->api_keys_file, (unsigned)(sb.st_mode & 0777));
        rc = load_file(cfg->api_keys_file, ks, err);
    } else if (digest(cfg->api_key, strlen(cfg->api_key), ks->k[0].digest) == 0)
        ks->n = 1;
    else
        rc = tr_seterr(err, TR_EINTERNAL, "api-key", "cannot hash the API key");
    if (rc) {
        free(ks);
        return rc;
    }
    install(ks);
    return TR_OK;
}

int srv_keys_reload(const srv_config *cfg, tr_err *err) {
    if (!cfg->api_keys_file) return TR_OK;
    keyset *ks = calloc(1, sizeof *ks);
    if (!ks) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    int rc = load_file(cfg->api_keys_file, ks, err);
    if (rc) {
        free(ks);
        return rc;
    }
    install(ks);
    return TR_OK;
}

void srv_keys_free(void) {
    keyset *ks = atomic_exchange(&g_keys, NULL);
    while (ks) {
        keyset *o = ks->older;
        memset(ks, 0, sizeof *ks);
        free(ks);
        ks = o;
    }
}

int srv_keys_on(void) {
    return atomic_load(&g_keys) != NULL;
}

int srv_keys_check(const char *a, const char **name, int *slot) {
    keyset *ks = atomic_load(&g_keys);
    unsigned char got[32];
    *name = "";
    *slot = -1;
    if (!ks) return 1;
    if (!a || strncasecmp(a, "Bearer ", 7) != 0) return 0;
    a += 7;
    while (*a == ' ') a++;
    if (digest(a, strlen(a), got)) return 0;
    /* every key is compared, whatever matched before: the time does not say which or whether */
    size_t hit = ks->n;
    for (size_t i = 0; i < ks->n; i++) {
        int eq = memeql_sec(got, ks->k[i].digest, 32);
        hit = eq ? i : hit;
    }
    if (hit == ks->n) return 0;
    *name = ks->k[hit].name;
    *slot = ks->k[hit].slot;
    return 1;
}

void srv_keys_count(int slot) {
    if (slot >= 0) atomic_fetch_add(&g_count[slot].n, 1);
}

size_t srv_keys_render(char *buf, size_t len, size_t cap) {
    int n = atomic_load(&g_n_count);
    if (n == 0 || len >= cap) return len;
    len += (size_t)snprintf(buf + len, cap - len,
                            "# HELP tripletd_requests_by_key_total Requests authenticated by each named API key.\n"
                            "# TYPE tripletd_requests_by_key_total counter\n");
    for (int i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(buf + len, cap - len, "tripletd_requests_by_key_total{key=\"%s\"} %llu\n",
                                g_count[i].name, (unsigned long long)atomic_load(&g_count[i].n));
    return len < cap ? len : cap - 1;
}
