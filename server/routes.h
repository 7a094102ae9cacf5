/* routes.h - the route table: method + path -> handler and its auth and body flags (routes.c). */
#ifndef SRV_ROUTES_H
#define SRV_ROUTES_H

#include <stddef.h>

#include "handlers.h"

typedef struct {
    const char *method;
    const char *path;
    srv_handler fn;
    int auth;       /* 1: needs the API key when one is set */
    int has_body;   /* 1: POST with a JSON body */
    int image_body; /* 1: also takes one raw image/png or image/jpeg file (dispatch.c makes it {"inputs": {"image":
                       ...}}) */
    int batch;      /* 1: its one forward may wait for the end of the event-loop pass and run with others' (xbatch.h) */
} srv_route;

/* Find the route for method+path: its index, or -1 with *path_known set to
 * 1 when the path exists under other methods (then allow lists them,
 * "GET, POST"). HEAD finds the GET route of the path. */
int srv_route_find(const char *method, const char *path, int *path_known, char *allow, size_t allow_cap);
/* Route i of the table, or NULL when i is out of range (-1: no route). */
const srv_route *srv_route_at(int i);
/* Routes in the table; metrics label a route by its path (srv_route_label),
 * "other" for -1. */
int srv_route_count(void);
const char *srv_route_label(int route);

#endif
