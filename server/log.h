/* log.h - access log lines (text or JSON) and server messages on stderr. */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include <stddef.h>

#include "config.h"

/* Set the access log format (text, json or off) and how long access lines
 * gather before one write(2) (flush_ms > 0 starts the log writer thread;
 * 0 writes each line at once). Returns 0, or -1 when the writer thread
 * cannot start (lines are then written at once). */
int srv_log_init(srv_log_format fmt, int flush_ms);
/* Write what is buffered and stop the writer thread (lines after it are
 * written at once). */
void srv_log_close(void);
/* One access log line: method, path, status, body bytes, microseconds, request id. */
/* key: the name of the API key that authenticated the request, or NULL/"" (never the key itself). */
void srv_log_access(const char *method, const char *path, int status, size_t bytes, double usec, const char *request_id,
                    const char *key);
/* A server message ("listening on ...", "reload failed: ..."), in the log
 * format; written at once, after the access lines buffered before it. */
void srv_log_msg(const char *level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
