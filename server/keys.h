/* keys.h - API keys: --api-key / --api-key-file (one key) or --api-keys-file (named keys, reloaded on SIGHUP). */
#ifndef KEYS_H
#define KEYS_H

#include <stddef.h>

#include "config.h"
#include "tr_err.h"

#define SRV_KEYS_MAX 256 /* keys in one file; names counted in /metrics */

/* Load the configured keys (none configured: *n_keys 0, every route open).
 * Files readable by group or others are loaded with a warning in *warn
 * (empty when none). */
int srv_keys_init(const srv_config *cfg, char *warn, size_t warn_cap, tr_err *err);
/* SIGHUP: read --api-keys-file again; a key removed stops working for the
 * next request. On an error the old keys stay. TR_OK without a keys file. */
int srv_keys_reload(const srv_config *cfg, tr_err *err);
void srv_keys_free(void);

/* 1 when keys are configured. */
int srv_keys_on(void);
/* Check "Bearer KEY" (the Authorization header, may be NULL) against every
 * key in constant time; on a match return 1, the key's name in *name
 * (static storage of the key set; "" for the single --api-key) and its
 * counter in *slot (-1 when it has none) for srv_keys_count. */
int srv_keys_check(const char *authorization, const char **name, int *slot);
/* Count a request authenticated by the key whose counter is slot (/metrics); -1 is a no-op. */
void srv_keys_count(int slot);
/* Append the per-key request counters in Prometheus text to buf (len, cap);
 * returns the new length. */
size_t srv_keys_render(char *buf, size_t len, size_t cap);

#endif
