/* connlimit.h - connection limits across all worker daemons: in total and per client address. */
#ifndef CONNLIMIT_H
#define CONNLIMIT_H

#include <stddef.h>
#include <sys/socket.h>

/* Set the limits (0 = none) and clear the counts. */
void srv_conn_init(int max_total, int max_per_ip);
/* 1 when a new connection from addr may be accepted (checked before it is;
 * a burst may pass the limit by at most one connection per worker). */
int srv_conn_admit(const struct sockaddr *addr, socklen_t len);
/* A connection from addr started / closed. */
void srv_conn_opened(const struct sockaddr *addr);
void srv_conn_closed(const struct sockaddr *addr);
/* Connections open now (all addresses). */
int srv_conn_open(void);

#endif
