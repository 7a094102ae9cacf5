/* log.c - access log lines (text or JSON) and server messages on stderr.
 *
 * Access lines go to a buffer that one writer thread empties with one
 * write(2) per --log-flush interval (or when half full): a write per line
 * from every worker made the workers queue on the file's lock, which halved
 * the server's throughput. Server messages are rare and written at once,
 * after the access lines buffered before them. Two buffers of LOG_BUF bytes
 * bound the memory; a logger that finds both full waits for the writer. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "tr_err.h"

#define LOG_BUF (64 * 1024)
#define LOG_LINE 1600

static struct {
    pthread_mutex_t mu;
    pthread_cond_t wake;  /* writer: lines are waiting, or stop */
    pthread_cond_t space; /* loggers and messages: the writer took a buffer or finished a write */
    char buf[2][LOG_BUF];
    size_t len; /* bytes waiting in buf[cur] */
    int cur;
    int running; /* the writer thread runs */
    int writing; /* the writer is writing the other buffer */
    int stop;
    int flush_ms;
    pthread_t thread;
} g_log = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .space = PTHREAD_COND_INITIALIZER};

static srv_log_format g_fmt = SRV_LOG_TEXT;

/* All of buf to stderr (retrying short writes and EINTR); lost on errors. */
static void write_all(const char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = write(2, buf, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return;
        buf += w, n -= (size_t)w;
    }
}

static void *writer_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&g_log.mu);
    for (;;) {
        while (!g_log.len && !g_log.stop) pthread_cond_wait(&g_log.wake, &g_log.mu);
        if (!g_log.len) break;                        /* stop, nothing left */
        if (!g_log.stop && g_log.len < LOG_BUF / 2) { /* let lines gather */
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            long ns = until.tv_nsec + (long)g_log.flush_ms % 1000 * 1000000L;
            until.tv_sec += g_log.flush_ms / 1000 + ns / 1000000000L;
            until.tv_nsec = ns % 1000000000L;
            while (!g_log.stop && g_log.len < LOG_BUF / 2)
                if (pthread_cond_timedwait(&g_log.wake, &g_log.mu, &until) == ETIMEDOUT) break;
        }
        const char *out = g_log.buf[g_log.cur];
        size_t n = g_log.len;
        g_log.cur ^= 1;
        g_log.len = 0;
        g_log.writing = 1;
        pthread_mutex_unlock(&g_log.mu);
        write_all(out, n);
        pthread_mutex_lock(&g_log.mu);
        g_log.writing = 0;
        pthread_cond_broadcast(&g_log.space);
    }
    pthread_mutex_unlock(&g_log.mu);
    return NULL;
}

int srv_log_init(srv_log_format fmt, int flush_ms) {
    g_fmt = fmt;
    if (fmt == SRV_LOG_OFF || flush_ms <= 0 || g_log.running) return 0;
    g_log.flush_ms = flush_ms;
    g_log.stop = 0;
    if (pthread_create(&g_log.thread, NULL, writer_main, NULL) != 0) return -1;
    g_log.running = 1;
    return 0;
}

void srv_log_close(void) {
    pthread_mutex_lock(&g_log.mu);
    int running = g_log.running;
    g_log.stop = 1;
    pthread_cond_signal(&g_log.wake);
    pthread_mutex_unlock(&g_log.mu);
    if (!running) return;
    pthread_join(g_log.thread, NULL);
    pthread_mutex_lock(&g_log.mu);
    g_log.running = 0;
    pthread_mutex_unlock(&g_log.mu);
}

/* One access line: into the buffer while the writer runs, else at once. */
static void emit_access(const char *line, size_t n) {
    pthread_mutex_lock(&g_log.mu);
    if (!g_log.running || g_log.stop) {
        pthread_mutex_unlock(&g_log.mu);
        write_all(line, n);
        return;
    }
    while (g_log.len + n > LOG_BUF && g_log.running) pthread_cond_wait(&g_log.space, &g_log.mu);
    size_t before = g_log.len;
    memcpy(g_log.buf[g_log.cur] + g_log.len, line, n);
    g_log.len += n;
    /* wake the writer when it sleeps on an empty buffer or should not wait */
    if (before == 0 || (before < LOG_BUF / 2 && g_log.len >= LOG_BUF / 2)) pthread_cond_signal(&g_log.wake);
    pthread_mutex_unlock(&g_log.mu);
}

/* A server message: after every access line logged before it. */
static void emit_msg(const char *line, size_t n) {
    pthread_mutex_lock(&g_log.mu);
    while (g_log.writing) pthread_cond_wait(&g_log.space, &g_log.mu);
    write_all(g_log.buf[g_log.cur], g_log.len);
    g_log.len = 0;
    write_all(line, n);
    pthread_mutex_unlock(&g_log.mu);
}

/* "2026-01-02T03:04:05.678Z"; the date part is formatted once per second per thread. */
static void timestamp(char *buf, size_t cap) {
    static _Thread_local time_t t_sec = -1;
    static _Thread_local char t_date[32];
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (tv.tv_sec != t_sec) {
        struct tm tm;
        gmtime_r(&tv.tv_sec, &tm);
        strftime(t_date, sizeof t_date, "%Y-%m-%dT%H:%M:%S", &tm);
        t_sec = tv.tv_sec;
    }
    snprintf(buf, cap, "%s.%03dZ", t_date, (int)(tv.tv_usec / 1000));
}

/* Copy s into out as JSON string content (quotes not included) or as text
 * with control characters replaced, so a hostile path cannot forge lines. */
static void clean(const char *s, char *out, size_t cap, int json) {
    size_t j = 0;
    for (; s && *s && j + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (json && (c == '"' || c == '\\'))
            out[j++] = '\\', out[j++] = (char)c;
        else if (c < 0x20 || c == 0x7f)
            j += (size_t)snprintf(out + j, cap - j, json ? "\\u%04x" : "\\x%02x", c);
        else
            out[j++] = (char)c;
    }
    out[j] = 0;
}

void srv_log_access(const char *method, const char *path, int status, size_t bytes, double usec, const char *request_id,
                    const char *key) {
    char ts[40], m[64], p[1200], id[200], kn[80] = "", line[LOG_LINE];
    int n;
    if (g_fmt == SRV_LOG_OFF) return;
    int json = g_fmt == SRV_LOG_JSON;
    timestamp(ts, sizeof ts);
    clean(method, m, sizeof m, json);
    clean(path, p, sizeof p, json);
    clean(request_id, id, sizeof id, json);
    long us = usec > 0 ? (long)(usec + 0.5) : 0;
    if (key && key[0]) clean(key, kn, sizeof kn, json); /* the key's name, never the key */
    if (json)
        n = snprintf(line, sizeof line,
                     "{\"ts\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"bytes\":%zu,\"us\":%ld,"
                     "\"request_id\":\"%s\"%s%s%s}\n",
                     ts, m, p, status, bytes, us, id, kn[0] ? ",\"key\":\"" : "", kn, kn[0] ? "\"" : "");
    else
        n = snprintf(line, sizeof line, "%s %s %s %d %zuB %ldus id=%s%s%s\n", ts, m, p, status, bytes, us, id,
                     kn[0] ? " key=" : "", kn);
    if (n > 0) emit_access(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void srv_log_msg(const char *level, const char *fmt, ...) {
    char ts[40], msg[sizeof(tr_err){0}.msg + 512], c[sizeof msg + 256], line[sizeof c + 128];
    va_list ap;
    int n;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    timestamp(ts, sizeof ts);
    if (g_fmt == SRV_LOG_JSON) {
        clean(msg, c, sizeof c, 1);
        n = snprintf(line, sizeof line, "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"%s\"}\n", ts, level, c);
    } else {
        clean(msg, c, sizeof c, 0);
        n = snprintf(line, sizeof line, "%s %s %s\n", ts, level, c);
    }
    if (n > 0) emit_msg(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}
