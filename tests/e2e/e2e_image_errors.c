/* e2e_image_errors.c - error replies a real client reads, on a real tripletd serving the image model
 * (tests/data/onnx/fashion_image.onnx): images sent as embeddings ("embed": false), the per-side image
 * limit, raw image bodies (empty, refused: field "body"), base64 that is wrapped or URL-safe, and admin
 * reload refusals, whose field is the request's ("model", "gallery"), never a name inside the file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include "gallery.h"
#include "harness.h"
#include "png_write.h"

static char dir[256];

/* Standard base64 of n bytes, padded; wrap > 0 puts a "\n" every wrap characters (coreutils' default is
 * 76), url selects the URL-safe alphabet. malloc'd. */
static char *b64(const uint8_t *p, size_t n, int wrap, int url) {
    const char *A = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                        : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    e2e_buf b = {0};
    size_t col = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        char q[4] = {A[v >> 18 & 63], A[v >> 12 & 63], i + 1 < n ? A[v >> 6 & 63] : '=', i + 2 < n ? A[v & 63] : '='};
        for (int k = 0; k < 4; k++) {
            if (wrap && col == (size_t)wrap) e2e_buf_add(&b, "\n", 1), col = 0;
            e2e_buf_add(&b, &q[k], 1), col++;
        }
    }
    if (!b.p) e2e_die("out of memory");
    return b.p;
}

/* A w x h grey PNG (a gradient); *len bytes, malloc'd. */
static uint8_t *png(size_t w, size_t h, size_t *len) {
    uint8_t *px = malloc(w * h), *out = NULL;
    tr_err err;
    if (!px) e2e_die("out of memory");
    for (size_t i = 0; i < w * h; i++) px[i] = (uint8_t)(i * 7);
    if (png_write_mem(px, w, h, 1, &out, len, &err) != TR_OK) e2e_die("png_write_mem: %s", err.msg);
    free(px);
    return out;
}

/* POST path body (len bytes, of content type ctype); the reply must be an error of status/field whose message
 * holds every needle. */
static void expect_error(const e2e_server *s, const char *path, const char *ctype, const void *body, size_t len,
                         long status, const char *field, const char *const *needles, const char *what) {
    char ct[64];
    snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
    e2e_req rq = {.method = "POST", .path = path, .body = body, .body_len = len, .no_content_type = 1, .headers = {ct}};
    e2e_resp r;
    e2e_request(s, &rq, &r);
    if (CHECK_ERROR(&r, status, status == 422 ? "invalid_input" : "", field, what)) {
        const char *m = e2e_jstr(r.json, "error.message");
        for (int i = 0; needles && needles[i]; i++)
            CHECK(m && strstr(m, needles[i]), "%s: message lacks \"%s\": %s", what, needles[i], m ? m : "(none)");
    }
    e2e_resp_free(&r);
}

static void expect_json_error(const e2e_server *s, const char *path, const char *body, long status, const char *field,
                              const char *const *needles, const char *what) {
    expect_error(s, path, "application/json", body, strlen(body), status, field, needles, what);
}

/* {"image": ...} elements with "embed": false are embeddings in the wrong form: say so, on every route that
 * takes embeddings. */
static void test_images_as_embeddings(const e2e_server *s, const char *img) {
    static const char *const say[] = {"\"embed\": false", "embeddings", "an image cannot be one", NULL};
    char *body = malloc(strlen(img) * 3 + 400);
    if (!body) e2e_die("out of memory");
    sprintf(body, "{\"a\":[{\"image\":\"%s\"}],\"b\":[[1,2]],\"embed\":false}", img);
    expect_json_error(s, "/v1/distance", body, 422, "a[0].image", say, "/v1/distance, embed false, an image in a");
    sprintf(body, "{\"a\":[[1,2]],\"b\":{\"image\":\"%s\"},\"labels\":[1],\"embed\":false}", img);
    expect_json_error(s, "/v1/loss/pair", body, 422, "b.image", say, "/v1/loss/pair, embed false, an image as b");
    sprintf(body, "{\"anchors\":[[1,2]],\"positives\":[[1,2]],\"negatives\":[{\"image\":\"%s\"}],\"embed\":false}",
            img);
    expect_json_error(s, "/v1/loss/triplet", body, 422, "negatives[0].image", say,
                      "/v1/loss/triplet, embed false, an image in negatives");
    sprintf(body, "{\"a\":[[1,2]],\"b\":[{\"image\":\"%s\"}],\"embed\":false}", img);
    expect_json_error(s, "/v1/loss/infonce", body, 422, "b[0].image", say, "/v1/loss/infonce, embed false");
    sprintf(body, "{\"queries\":[{\"image\":\"%s\"}],\"embed\":false}", img);
    expect_json_error(s, "/v1/search", body, 422, "queries[0].image", say, "/v1/search, embed false");
    /* with embed (the default) the same image is served */
    sprintf(body, "{\"queries\":[{\"image\":\"%s\"}],\"k\":1}", img);
    e2e_resp r;
    e2e_post(s, "/v1/search", body, &r);
    CHECK(r.status == 200, "/v1/search with an image: %ld %s", r.status, r.body ? r.body : "");
    e2e_resp_free(&r);
    free(body);
}

static void put32(e2e_buf *b, uint32_t v) {
    uint8_t q[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    e2e_buf_add(b, q, 4);
}

/* One PNG chunk: length, type, data, CRC. */
static void chunk(e2e_buf *b, const char *type, const uint8_t *data, uint32_t n) {
    put32(b, n);
    size_t at = b->n;
    e2e_buf_add(b, type, 4);
    if (n) e2e_buf_add(b, data, n);
    put32(b, (uint32_t)crc32(0, (const uint8_t *)b->p + at, (uInt)(n + 4)));
}

/* A valid 8-bit grey PNG of one black row, w pixels wide (libpng's writer keeps to its own limits). */
static uint8_t *png_row(uint32_t w, size_t *len) {
    e2e_buf b = {0};
    uint8_t ihdr[13] = {
        (uint8_t)(w >> 24), (uint8_t)(w >> 16), (uint8_t)(w >> 8), (uint8_t)w, 0, 0, 0, 1, 8, 0, 0, 0, 0};
    uLongf zn = compressBound(w + 1);
    uint8_t *raw = calloc(1, w + 1), *z = malloc(zn);
    if (!raw || !z || compress(z, &zn, raw, w + 1) != Z_OK) e2e_die("zlib");
    e2e_buf_add(&b, "\x89PNG\r\n\x1a\n", 8);
    chunk(&b, "IHDR", ihdr, 13);
    chunk(&b, "IDAT", z, (uint32_t)zn);
    chunk(&b, "IEND", NULL, 0);
    free(raw), free(z);
    *len = b.n;
    return (uint8_t *)b.p;
}

/* 70000 x 1 is far under the pixel limit but over the per-side limit (65535): the message says which. */
static void test_side_limit(const e2e_server *s) {
    static const char *const say[] = {"70000 x 1", "each side must be at most 65535", NULL};
    size_t len;
    uint8_t *p = png_row(70000, &len);
    expect_error(s, "/v1/embed", "image/png", p, len, 422, "body", say, "raw 70000 x 1 PNG");
    char *enc = b64(p, len, 0, 0), *body = malloc(strlen(enc) + 64);
    if (!body) e2e_die("out of memory");
    sprintf(body, "{\"inputs\":[{\"image\":\"%s\"}]}", enc);
    expect_json_error(s, "/v1/embed", body, 422, "inputs[0].image", say, "70000 x 1 PNG in JSON");
    free(body), free(enc), free(p);
}

/* A raw image body has no JSON path: its errors name "body", an empty one is invalid input (422), not JSON. */
static void test_raw_body(const e2e_server *s, const uint8_t *p, size_t len) {
    static const char *const empty[] = {"empty image data", NULL}, *const trunc[] = {"truncated PNG data", NULL};
    expect_error(s, "/v1/embed", "image/png", "", 0, 422, "body", empty, "empty image/png body");
    expect_error(s, "/v1/embed", "image/jpeg", "", 0, 422, "body", empty, "empty image/jpeg body");
    expect_error(s, "/v1/embed", "image/png", p, len / 2, 422, "body", trunc, "truncated image/png body");
    static const char *const garbage[] = {"not a PNG or JPEG image", NULL};
    expect_error(s, "/v1/embed", "image/png", "GIF89a....", 10, 422, "body", garbage, "a GIF sent as image/png");
    /* an empty JSON body stays a 400 invalid_json */
    e2e_req rq = {.method = "POST", .path = "/v1/embed", .body = "", .body_len = 0};
    e2e_resp r;
    e2e_request(s, &rq, &r);
    CHECK_ERROR(&r, 400, "invalid_json", "", "empty JSON body");
    e2e_resp_free(&r);
}

/* Wrapped and URL-safe base64 stay refused, with the fix in the message. */
static void test_base64_hints(const e2e_server *s, const uint8_t *p, size_t len) {
    static const char *const wrapped[] = {"invalid base64 character", "line break", "base64 -w0", NULL},
                             *const url[] = {"invalid base64 character", "URL-safe", NULL};
    char *enc = b64(p, len, 76, 0), *body = malloc(strlen(enc) * 2 + 64);
    if (!body) e2e_die("out of memory");
    e2e_buf j = {0}; /* the JSON string of enc: its line breaks escaped */
    for (const char *c = enc; *c; c++) e2e_buf_str(&j, *c == '\n' ? "\\n" : (char[2]){*c, 0});
    sprintf(body, "{\"inputs\":[{\"image\":\"%s\"}]}", j.p);
    CHECK(strchr(enc, '\n') != NULL, "the wrapped encoding has line breaks");
    expect_json_error(s, "/v1/embed", body, 422, "inputs[0].image", wrapped, "line-wrapped base64 image");
    free(enc), free(j.p);
    /* URL-safe: bytes whose encoding has '-' or '_' */
    static const uint8_t odd[] = {0xfb, 0xff, 0xbf, 0xfb, 0xef, 0xfe};
    enc = b64(odd, sizeof odd, 0, 1);
    CHECK(strpbrk(enc, "-_") != NULL, "the URL-safe encoding %s has '-' or '_'", enc);
    sprintf(body, "{\"inputs\":[{\"image\":\"%s\"}]}", enc);
    expect_json_error(s, "/v1/embed", body, 422, "inputs[0].image", url, "URL-safe base64 image");
    sprintf(body, "{\"inputs\":\"%s\"}", enc);
    expect_json_error(s, "/v1/embed", body, 422, "inputs", url, "URL-safe base64 float32");
    sprintf(body, "{\"inputs\":\"AAAA\\nAAAA\"}");
    expect_json_error(s, "/v1/embed", body, 422, "inputs", wrapped, "line-wrapped base64 float32");
    free(enc), free(body);
}

/* A safetensors file: 8-byte little-endian header length, header, data. */
static void write_st(const char *name, const char *header, size_t data_len) {
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t hl = strlen(header);
    uint8_t *b = calloc(1, 8 + hl + data_len);
    if (!b) e2e_die("out of memory");
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    if (e2e_write_file(path, b, 8 + hl + data_len)) e2e_die("cannot write %s", path);
    free(b);
}

/* Reload refusals: field is what the request named ("model" or "gallery"); what the loader blamed inside the
 * file is in the message. */
static void test_reload_fields(const e2e_server *s) {
    static const struct {
        const char *file, *header, *inside;
        size_t data;
    } models[] = {
        /* a tensor whose data is not its shape's size, an unreadable header, bad image metadata */
        {"short.safetensors", "{\"w\":{\"dtype\":\"F32\",\"shape\":[4,4],\"data_offsets\":[0,8]}}", "\"w\"", 8},
        {"header.safetensors", "{\"w\":", "header", 0},
        {"image.safetensors",
         "{\"__metadata__\":{\"image\":\"{\\\"channels\\\": 5}\"},"
         "\"0.weight\":{\"dtype\":\"F32\",\"shape\":[2,4],\"data_offsets\":[0,32]},"
         "\"0.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[32,40]}}",
         "image", 40},
    };
    char body[300];
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        const char *const say[] = {models[i].inside, NULL};
        write_st(models[i].file, models[i].header, models[i].data);
        snprintf(body, sizeof body, "{\"model\":\"%s\"}", models[i].file);
        expect_json_error(s, "/v1/admin/reload", body, 422, "model", say, models[i].file);
    }
    static const char junk[] = "\x08\x07\x12\x03not an onnx file";
    char path[400];
    snprintf(path, sizeof path, "%s/bad.onnx", dir);
    e2e_write_file(path, junk, sizeof junk - 1);
    expect_json_error(s, "/v1/admin/reload", "{\"model\":\"bad.onnx\"}", 422, "model", NULL, "a refused .onnx");
    /* a gallery without embeddings: the gallery is to blame */
    static const char *const nogal[] = {"embeddings", NULL};
    write_st("gal.safetensors", "{\"labels\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);
    expect_json_error(s, "/v1/admin/reload", "{\"gallery\":\"gal.safetensors\"}", 422, "gallery", nogal,
                      "a gallery without embeddings");
    e2e_resp r;
    e2e_get(s, "/readyz", &r);
    CHECK(r.status == 200, "still serving after refused reloads: %ld", r.status);
    e2e_resp_free(&r);
    static const char *const names[] = {"short.safetensors", "header.safetensors", "image.safetensors", "bad.onnx",
                                        "gal.safetensors"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        remove(path);
    }
}

int main(void) {
    char model[600], gal[600];
    e2e_mkdtemp(dir, sizeof dir, "e2e_image_errors");
    snprintf(model, sizeof model, "%s", e2e_root_path("tests/data/onnx/fashion_image.onnx"));
    snprintf(gal, sizeof gal, "%s/search.safetensors", dir);
    /* a 24-d gallery of 3 rows for /v1/search (the model's output size) */
    float emb[3 * 24];
    for (int i = 0; i < 3 * 24; i++) emb[i] = (float)(i % 5);
    tr_err err;
    if (gal_save(gal, emb, 3, 24, NULL, NULL, NULL, &err) != TR_OK) e2e_die("gal_save: %s", err.msg);
    e2e_server s;
    const char *args[] = {"--model",      model, "--model-dir", dir, "--gallery", gal, "--allow-gallery-mismatch",
                          "--log-format", "off", NULL};
    if (e2e_server_start(&s, args) != 0) e2e_die("tripletd did not start on %s", model);
    size_t len;
    uint8_t *p = png(28, 28, &len);
    char *img = b64(p, len, 0, 0);
    test_images_as_embeddings(&s, img);
    test_side_limit(&s);
    test_raw_body(&s, p, len);
    test_base64_hints(&s, p, len);
    test_reload_fields(&s);
    e2e_server_stop(&s, 15, 10);
    free(img), free(p);
    remove(gal), rmdir(dir);
    return e2e_report("e2e_image_errors");
}
