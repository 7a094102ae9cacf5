/* log.h - access log lines (text or JSON) and server messages on stderr. */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include <stddef.h>

#include "srv.h"

/* Set the access log format (text, json or off). */
void srv_log_init(srv_log_format fmt);
/* One access log line: method, path, status, body bytes, microseconds, request id. */
void srv_log_access(const char *method, const char *path, int status, size_t bytes, double usec, const char *request_id);
/* A server message ("listening on ...", "reload failed: ..."), in the log format. */
void srv_log_msg(const char *level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
