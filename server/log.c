/* log.c - access log lines (text or JSON) and server messages on stderr. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static srv_log_format g_fmt = SRV_LOG_TEXT;

void srv_log_init(srv_log_format fmt) { g_fmt = fmt; }

static void timestamp(char *buf, size_t cap)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, cap, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, cap - n, ".%03dZ", (int)(tv.tv_usec / 1000));
}

/* Copy s into out as JSON string content (quotes not included) or as text
 * with control characters replaced, so a hostile path cannot forge lines. */
static void clean(const char *s, char *out, size_t cap, int json)
{
    size_t j = 0;
    for (; s && *s && j + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (json && (c == '"' || c == '\\')) out[j++] = '\\', out[j++] = (char)c;
        else if (c < 0x20 || c == 0x7f) j += (size_t)snprintf(out + j, cap - j, json ? "\\u%04x" : "\\x%02x", c);
        else out[j++] = (char)c;
    }
    out[j] = 0;
}

/* One write(2) per line keeps lines from different threads whole. */
static void emit(const char *line, size_t n) { (void)!write(2, line, n); }

void srv_log_access(const char *method, const char *path, int status, size_t bytes, double usec, const char *request_id)
{
    char ts[40], m[64], p[1200], id[200], line[1600];
    int n;
    if (g_fmt == SRV_LOG_OFF) return;
    int json = g_fmt == SRV_LOG_JSON;
    timestamp(ts, sizeof ts);
    clean(method, m, sizeof m, json);
    clean(path, p, sizeof p, json);
    clean(request_id, id, sizeof id, json);
    if (json)
        n = snprintf(line, sizeof line,
                     "{\"ts\":\"%s\",\"method\":\"%s\",\"path\":\"%s\",\"status\":%d,\"bytes\":%zu,\"us\":%.0f,\"request_id\":\"%s\"}\n",
                     ts, m, p, status, bytes, usec, id);
    else n = snprintf(line, sizeof line, "%s %s %s %d %zuB %.0fus id=%s\n", ts, m, p, status, bytes, usec, id);
    if (n > 0) emit(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

void srv_log_msg(const char *level, const char *fmt, ...)
{
    char ts[40], msg[1024], c[1200], line[1400];
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
    if (n > 0) emit(line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}
