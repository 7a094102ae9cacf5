/* alloc.c - cJSON allocation hooks with a per-thread cache of small blocks. */
#include "alloc.h"

#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#if defined(__SANITIZE_ADDRESS__)
#define SRV_ALLOC_POOL 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SRV_ALLOC_POOL 0
#endif
#endif
#ifndef SRV_ALLOC_POOL
#define SRV_ALLOC_POOL 1
#endif

#define SMALL 64       /* sizeof(cJSON) on LP64, and most keys */
#define CACHE_MAX 8192 /* blocks kept per thread (about 640 KiB) */

typedef struct block {
    struct block *next;
} block;

typedef struct {
    block *head;
    size_t n;
    int registered;
} cache;

static _Thread_local cache t_cache;
static pthread_key_t g_key;
static size_t g_small_usable; /* malloc_usable_size of a malloc(SMALL) block */

void srv_alloc_thread_release(void) {
    while (t_cache.head) {
        block *b = t_cache.head;
        t_cache.head = b->next;
        free(b);
    }
    t_cache.n = 0;
}

static void key_destructor(void *p) {
    (void)p;
    srv_alloc_thread_release();
}

static void *pool_malloc(size_t sz) {
    if (sz <= SMALL) {
        block *b = t_cache.head;
        if (b) {
            t_cache.head = b->next;
            t_cache.n--;
            return b;
        }
        return malloc(SMALL);
    }
    return malloc(sz);
}

static void pool_free(void *p) {
    if (!p) return;
    /* only blocks exactly of the small size class are cached; anything else
     * (print buffers, long strings) goes straight back to malloc */
    if (t_cache.n < CACHE_MAX && malloc_usable_size(p) == g_small_usable) {
        if (!t_cache.registered) {
            t_cache.registered = 1;
            (void)pthread_setspecific(g_key, &t_cache); /* non-NULL so the destructor runs */
        }
        block *b = p;
        b->next = t_cache.head;
        t_cache.head = b;
        t_cache.n++;
        return;
    }
    free(p);
}

void srv_alloc_install(void) {
    if (!SRV_ALLOC_POOL) return;
    void *probe = malloc(SMALL);
    if (!probe || pthread_key_create(&g_key, key_destructor) != 0) {
        free(probe);
        return;
    }
    g_small_usable = malloc_usable_size(probe);
    free(probe);
    cJSON_Hooks hooks = {pool_malloc, pool_free};
    cJSON_InitHooks(&hooks);
}
