/* h_gallery_item.c - GET /v1/gallery/items/{index}: one gallery row (id, label, embedding), and its source image as
 * PNG. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "handlers.h"
#include "png_write.h"

#define ITEMS_PREFIX "/v1/gallery/items/"

/* The {index} segment of the path: 0 and *index, else the error status. */
static int parse_index(const srv_ctx *ctx, const gal_gallery *g, size_t *index, srv_reply *out) {
    const char *s = ctx->path + strlen(ITEMS_PREFIX);
    char *end;
    size_t n = strcspn(s, "/");
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (n == 0 || n > 12 || end != s + n || *s < '0' || *s > '9' || errno)
        return srv_fail(out, 422, "index", "index: expected a gallery row number, got \"%.*s\"", (int)(n > 40 ? 40 : n),
                        s);
    if (v >= g->n) return srv_fail(out, 404, "index", "index: %llu is past the gallery's %zu rows", v, g->n);
    *index = (size_t)v;
    return 0;
}

int srv_gallery_index(const srv_ctx *ctx, size_t *index, srv_reply *out) {
    const gal_gallery *g = ctx->state->gallery;
    if (!g) {
        srv_fail(out, 409, "",
                 "no gallery is loaded: start tripletd with --gallery PATH (build one with `tripletctl index`)");
        snprintf(out->err_type, sizeof out->err_type, "no_gallery");
        return out->status;
    }
    return parse_index(ctx, g, index, out);
}

int h_gallery_item(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    const gal_gallery *g = ctx->state->gallery;
    size_t i;
    int rc;
    (void)body;
    if ((rc = srv_gallery_index(ctx, &i, out))) return rc;
    cJSON *o = cJSON_CreateObject(), *e;
    int ok =
        o && cJSON_AddNumberToObject(o, "index", (double)i) &&
        (g->ids ? cJSON_AddStringToObject(o, "id", g->ids[i]) : cJSON_AddNullToObject(o, "id")) &&
        (g->labels ? cJSON_AddNumberToObject(o, "label", (double)g->labels[i]) : cJSON_AddNullToObject(o, "label")) &&
        cJSON_AddBoolToObject(o, "image", g->images != NULL) && (e = cJSON_AddArrayToObject(o, "embedding")) != NULL;
    for (size_t j = 0; ok && j < g->dim; j++) {
        cJSON *v = cJSON_CreateNumber(g->emb[i * g->dim + j]);
        ok = v != NULL;
        if (ok) cJSON_AddItemToArray(e, v);
    }
    if (!ok) {
        cJSON_Delete(o);
        return srv_fail(out, 503, "", "out of memory building the item");
    }
    out->body = o;
    return out->status = 200;
}

int h_gallery_image(const srv_ctx *ctx, const cJSON *body, srv_reply *out) {
    const gal_gallery *g = ctx->state->gallery;
    size_t i, len;
    uint8_t *png;
    tr_err err;
    int rc;
    (void)body;
    if ((rc = srv_gallery_index(ctx, &i, out))) return rc;
    if (!g->images)
        return srv_fail(out, 404, "images",
                        "the gallery has no images (build it with `tripletctl index --keep-images`)");
    size_t bytes = g->img_h * g->img_w * g->img_c;
    if ((rc = png_write_mem(g->images + i * bytes, g->img_w, g->img_h, (int)g->img_c, &png, &len, &err)) != TR_OK)
        return srv_fail_tr(out, rc, &err);
    out->raw = (char *)png;
    out->raw_len = len;
    out->content_type = "image/png";
    srv_reply_header(out, "Cache-Control", "private, max-age=3600");
    return out->status = 200;
}
