/* connlimit.c - open connections counted in total and per client address (IPv4, or IPv6 by /64), under one lock. */
#include "connlimit.h"

#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#define SLOTS 16384 /* open addressing; more distinct addresses than this are not tracked per address */

typedef struct {
    uint64_t key; /* 0: empty */
    int n;
} slot;

static slot g_slots[SLOTS];
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int g_open;
static int g_max_total, g_max_ip;
static int g_dirty; /* a slot was written since the last clear (the table starts zeroed, untouched) */

/* The address as a 64-bit key: IPv4 address, or the /64 prefix of an IPv6 one (one client's block). */
static uint64_t addr_key(const struct sockaddr *a) {
    uint64_t k = 0;
    if (a->sa_family == AF_INET)
        k = 0x100000000ull | ((const struct sockaddr_in *)a)->sin_addr.s_addr;
    else if (a->sa_family == AF_INET6)
        memcpy(&k, ((const struct sockaddr_in6 *)a)->sin6_addr.s6_addr, 8), k |= 1;
    return k ? k : 1;
}

static slot *find(uint64_t key, int create) {
    uint64_t h = key * 0x9E3779B97F4A7C15ull;
    for (unsigned i = 0; i < 64; i++) {
        slot *s = &g_slots[((h >> 50) + i) & (SLOTS - 1)];
        if (s->key == key) return s;
        if (s->key == 0 || (s->n == 0 && create)) {
            if (!create) return NULL;
            g_dirty = 1;
            s->key = key;
            s->n = 0;
            return s;
        }
    }
    return NULL;
}

void srv_conn_init(int max_total, int max_per_ip) {
    pthread_mutex_lock(&g_lock);
    if (g_dirty) memset(g_slots, 0, sizeof g_slots); /* not at start: 256 KiB of RSS for zeros */
    g_dirty = 0;
    g_max_total = max_total, g_max_ip = max_per_ip;
    atomic_store(&g_open, 0);
    pthread_mutex_unlock(&g_lock);
}

int srv_conn_admit(const struct sockaddr *addr, socklen_t len) {
    (void)len;
    if (g_max_total && atomic_load(&g_open) >= g_max_total) return 0;
    if (!g_max_ip) return 1;
    pthread_mutex_lock(&g_lock);
    slot *s = find(addr_key(addr), 0);
    int ok = !s || s->n < g_max_ip;
    pthread_mutex_unlock(&g_lock);
    return ok;
}

void srv_conn_opened(const struct sockaddr *addr) {
    atomic_fetch_add(&g_open, 1);
    if (!g_max_ip || !addr) return;
    pthread_mutex_lock(&g_lock);
    slot *s = find(addr_key(addr), 1);
    if (s) s->n++;
    pthread_mutex_unlock(&g_lock);
}

void srv_conn_closed(const struct sockaddr *addr) {
    atomic_fetch_sub(&g_open, 1);
    if (!g_max_ip || !addr) return;
    pthread_mutex_lock(&g_lock);
    slot *s = find(addr_key(addr), 0);
    if (s && s->n > 0) s->n--;
    pthread_mutex_unlock(&g_lock);
}

int srv_conn_open(void) {
    return atomic_load(&g_open);
}
