/* scratch.c - per-thread handler buffers: one srv_scratch per thread, freed when the thread exits. */
#include "scratch.h"

#include <pthread.h>
#include <stdlib.h>

static pthread_key_t g_key;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
    srv_scratch *s = p;
    if (!s) return;
    for (int i = 0; i < 3; i++) tr_scratch_free(&s->in[i]), tr_scratch_free(&s->emb[i]);
    mdl_ws_free(&s->work);
    tr_scratch_free(&s->dbl);
    free(s);
}

static void key_init(void) {
    (void)pthread_key_create(&g_key, scratch_free);
}

srv_scratch *srv_scratch_thread(void) {
    pthread_once(&g_once, key_init);
    srv_scratch *s = pthread_getspecific(g_key);
    if (!s && (s = calloc(1, sizeof *s)) != NULL && pthread_setspecific(g_key, s) != 0) {
        free(s);
        s = NULL;
    }
    return s;
}
