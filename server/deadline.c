/* deadline.c - cut connections that trickle a request for longer than the deadline (slowloris, slow bodies). */
#include "deadline.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

struct srv_dl_conn {
    int fd;
    atomic_llong start_ms; /* when the current request's clock started */
    atomic_int busy;       /* a whole request arrived; its reply is under way */
    int cut;
    srv_dl_conn *prev, *next;
};

struct srv_dl {
    long long limit_ms;
    pthread_mutex_t mu; /* guards the list; close takes it, so no fd is shut down after its close */
    pthread_cond_t cv;
    int stop;
    srv_dl_conn head; /* sentinel of a circular list */
    pthread_t th;
};

static atomic_ullong g_cut;

static long long now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void *sweep(void *arg) {
    srv_dl *dl = arg;
    pthread_mutex_lock(&dl->mu);
    while (!dl->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 250 * 1000 * 1000; /* a connection lives at most a quarter second past its deadline */
        if (until.tv_nsec >= 1000000000) until.tv_sec++, until.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&dl->cv, &dl->mu, &until);
        long long now = now_ms();
        for (srv_dl_conn *c = dl->head.next; c != &dl->head; c = c->next) {
            if (c->cut || atomic_load(&c->busy) || now - atomic_load(&c->start_ms) < dl->limit_ms) continue;
            /* the daemon sees end of file and closes it; the socket stays ours until srv_dl_close */
            shutdown(c->fd, SHUT_RDWR);
            c->cut = 1;
            atomic_fetch_add(&g_cut, 1);
        }
    }
    pthread_mutex_unlock(&dl->mu);
    return NULL;
}

srv_dl *srv_dl_new(int seconds) {
    srv_dl *dl = calloc(1, sizeof *dl);
    if (!dl) return NULL;
    dl->limit_ms = (long long)seconds * 1000;
    dl->head.next = dl->head.prev = &dl->head;
    pthread_mutex_init(&dl->mu, NULL);
    pthread_cond_init(&dl->cv, NULL);
    if (pthread_create(&dl->th, NULL, sweep, dl) != 0) {
        pthread_mutex_destroy(&dl->mu);
        pthread_cond_destroy(&dl->cv);
        free(dl);
        return NULL;
    }
    return dl;
}

void srv_dl_free(srv_dl *dl) {
    if (!dl) return;
    pthread_mutex_lock(&dl->mu);
    dl->stop = 1;
    pthread_cond_signal(&dl->cv);
    pthread_mutex_unlock(&dl->mu);
    pthread_join(dl->th, NULL);
    pthread_mutex_destroy(&dl->mu);
    pthread_cond_destroy(&dl->cv);
    free(dl);
}

srv_dl_conn *srv_dl_open(srv_dl *dl, int fd) {
    srv_dl_conn *c = dl ? calloc(1, sizeof *c) : NULL;
    if (!c) return NULL;
    c->fd = fd;
    atomic_store(&c->start_ms, now_ms());
    pthread_mutex_lock(&dl->mu);
    c->next = dl->head.next;
    c->prev = &dl->head;
    dl->head.next->prev = c;
    dl->head.next = c;
    pthread_mutex_unlock(&dl->mu);
    return c;
}

void srv_dl_close(srv_dl *dl, srv_dl_conn *c) {
    if (!dl || !c) return;
    pthread_mutex_lock(&dl->mu);
    c->prev->next = c->next;
    c->next->prev = c->prev;
    pthread_mutex_unlock(&dl->mu);
    free(c);
}

void srv_dl_busy(srv_dl_conn *c) {
    if (c) atomic_store(&c->busy, 1);
}

void srv_dl_rearm(srv_dl_conn *c) {
    if (!c) return;
    atomic_store(&c->start_ms, now_ms());
    atomic_store(&c->busy, 0);
}

unsigned long long srv_dl_cut_total(void) {
    return atomic_load(&g_cut);
}
