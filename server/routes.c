/* routes.c - the route table: method + path -> handler, auth flag; also builds Allow for 405. */
#include <stdio.h>
#include <string.h>

#include "routes.h"

/* Metrics count routes by their index in this table and label them by path. */
static const srv_route ROUTES[] = {
    {"GET", "/healthz", h_healthz, 0, 0, 0, 0},
    {"GET", "/readyz", h_readyz, 0, 0, 0, 0},
    {"GET", "/metrics", h_metrics, 0, 0, 0, 0},
    {"GET", "/openapi.json", h_openapi, 1, 0, 0, 0},
    {"GET", "/v1/model", h_model, 1, 0, 0, 0},
    {"POST", "/v1/embed", h_embed, 1, 1, 1, 1},
    {"POST", "/v1/embeddings", h_embeddings, 1, 1, 0, 1},
    {"POST", "/v1/distance", h_distance, 1, 1, 0, 0},
    {"POST", "/v1/loss/triplet", h_loss_triplet, 1, 1, 0, 0},
    {"POST", "/v1/loss/pair", h_loss_pair, 1, 1, 0, 0},
    {"POST", "/v1/loss/infonce", h_loss_infonce, 1, 1, 0, 0},
    {"POST", "/v1/mine", h_mine, 1, 1, 0, 0},
    {"POST", "/v1/admin/reload", h_admin_reload, 1, 1, 0, 0},
    {"POST", "/v1/search", h_search, 1, 1, 0, 0},
    {"GET", "/v1/gallery", h_gallery, 1, 0, 0, 0},
    {"GET", "/v1/stats", h_stats, 1, 0, 0, 0},
    {"GET", "/v1/gallery/projection", h_projection, 1, 0, 0, 0},
    {"GET", "/v1/gallery/items/{index}", h_gallery_item, 1, 0, 0, 0},
    {"GET", "/v1/gallery/items/{index}/image", h_gallery_image, 1, 0, 0, 0},
    {"GET", "/", h_console, 0, 0, 0, 0},
    {"GET", "/console.js", h_console, 0, 0, 0, 0},
    {"GET", "/charts.js", h_console, 0, 0, 0, 0},
    {"GET", "/console.css", h_console, 0, 0, 0, 0},
};

#define N_ROUTES (int)(sizeof ROUTES / sizeof ROUTES[0])

int srv_route_count(void) {
    return N_ROUTES;
}

const srv_route *srv_route_at(int i) {
    return i >= 0 && i < N_ROUTES ? &ROUTES[i] : NULL;
}

const char *srv_route_label(int route) {
    return route >= 0 && route < N_ROUTES ? ROUTES[route].path : "other";
}

/* A route path matches segment by segment; "{name}" matches one non-empty segment. */
static int path_match(const char *pat, const char *path) {
    while (*pat && *path) {
        if (*pat == '{') {
            if (*path == '/') return 0;
            while (*pat && *pat != '}') pat++;
            if (*pat) pat++;
            while (*path && *path != '/') path++;
        } else if (*pat++ != *path++)
            return 0;
    }
    return *pat == 0 && *path == 0;
}

int srv_route_find(const char *method, const char *path, int *path_known, char *allow, size_t allow_cap) {
    size_t len = 0;
    int found = -1, head_ok = 0;
    *path_known = 0;
    if (allow_cap) allow[0] = 0;
    for (int i = 0; i < N_ROUTES; i++) {
        if (!path_match(ROUTES[i].path, path)) continue;
        *path_known = 1;
        if (strcmp(ROUTES[i].method, method) == 0) found = i;
        if (strcmp(ROUTES[i].method, "GET") == 0) head_ok = 1;
        if (len < allow_cap)
            len += (size_t)snprintf(allow + len, allow_cap - len, "%s%s", len ? ", " : "", ROUTES[i].method);
    }
    if (head_ok && len < allow_cap) snprintf(allow + len, allow_cap - len, ", HEAD");
    if (found < 0 && head_ok && strcmp(method, "HEAD") == 0) {
        for (int i = 0; i < N_ROUTES; i++)
            if (path_match(ROUTES[i].path, path) && strcmp(ROUTES[i].method, "GET") == 0) found = i;
    }
    return found;
}
