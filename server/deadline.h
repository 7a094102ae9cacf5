/* deadline.h - a whole-request deadline per connection: headers and body must arrive within --timeout. */
#ifndef DEADLINE_H
#define DEADLINE_H

/* libmicrohttpd's connection timeout is an idle timeout: a client that
 * trickles one byte of its headers (or body) every second is never cut.
 * A sweeper thread shuts down any connection that has not delivered a whole
 * request within `seconds` of its accept or of its previous reply. */
typedef struct srv_dl srv_dl;
typedef struct srv_dl_conn srv_dl_conn;

/* Start the sweeper. NULL when out of memory or the thread cannot start. */
srv_dl *srv_dl_new(int seconds);
/* Stop the sweeper and free; every connection must be closed first. NULL is a no-op. */
void srv_dl_free(srv_dl *dl);
/* A connection on socket fd was accepted: its clock starts. NULL when out of memory (never cut). */
srv_dl_conn *srv_dl_open(srv_dl *dl, int fd);
/* The connection is closing (before its socket is): forget it. NULL is a no-op. */
void srv_dl_close(srv_dl *dl, srv_dl_conn *c);
/* Its request arrived whole and is being answered: not cut until srv_dl_rearm. */
void srv_dl_busy(srv_dl_conn *c);
/* Its reply went out: the clock starts again for the next request. */
void srv_dl_rearm(srv_dl_conn *c);
/* Connections cut so far. */
unsigned long long srv_dl_cut_total(void);

#endif
