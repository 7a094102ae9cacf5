/* e2e_console.c - the console's routes against a real tripletd: GET /v1/stats after known traffic,
 * GET /v1/gallery/projection on a gal_save_images gallery (checked against lib/pca.c on the same rows),
 * GET /v1/gallery/items/{index} and its PNG image, and the console's page: its files, CSP, --api-key and --no-console.
 */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gallery.h"
#include "harness.h"
#include "pca.h"
#include "png_write.h"

#define GN 1500 /* gallery rows */
#define GD 32   /* the e2e model's output */

static e2e_server S;
static char gal_path[512], plain_path[600]; /* with images, without */
static float GEMB[GN * GD];
static int64_t GLAB[GN];
static uint8_t GIMG[GN * 4 * 5 * 3]; /* 4 x 5 RGB per row */
static char *GIDS[GN];

/* Four clusters along different axes plus a deterministic wobble. */
static void write_gallery(void) {
    static char idbuf[GN][16];
    for (int i = 0; i < GN; i++) {
        GLAB[i] = i % 4;
        for (int j = 0; j < GD; j++)
            GEMB[i * GD + j] = (float)((j == GLAB[i] * 3 ? 5.0 : 0.0) + ((i * 37 + j * 11) % 23) / 23.0 - 0.5);
        snprintf(idbuf[i], sizeof idbuf[i], "item-%d", i);
        GIDS[i] = idbuf[i];
    }
    tr_err err;
    snprintf(gal_path, sizeof gal_path, "%s/console-e2e-%d.gallery.safetensors", e2e_tmpdir(), (int)getpid());
    for (size_t i = 0; i < sizeof GIMG; i++) GIMG[i] = (uint8_t)(i * 31 + i / 60);
    if (gal_save_images(gal_path, GEMB, GN, GD, GLAB, (const char *const *)GIDS, NULL, GIMG, 4, 5, 3, &err) != TR_OK)
        e2e_die("gal_save: %s", err.msg);
    snprintf(plain_path, sizeof plain_path, "%s.plain", gal_path);
    if (gal_save(plain_path, GEMB, GN, GD, GLAB, NULL, NULL, &err) != TR_OK) e2e_die("gal_save: %s", err.msg);
}

/* Sleep until the wall-clock second changes, so what was sent is in a complete second. */
static void next_second(void) {
    time_t t0 = time(NULL);
    while (time(NULL) == t0) usleep(20000);
}

static const cJSON *route_of(const cJSON *stats, const char *route) {
    const cJSON *r;
    cJSON_ArrayForEach(r, e2e_jget(stats, "routes")) {
        const char *name = e2e_jstr(r, "route");
        if (name && strcmp(name, route) == 0) return r;
    }
    return NULL;
}

static void test_stats(void) {
    e2e_resp r;
    char body[256];
    /* triplets on given 2-d vectors, margin 0.2: easy (loss 0), semi-hard (0.1), hard (1.1) */
    static const char *const TRIPLETS[] = {"[[0,0]],\"positives\":[[0.1,0]],\"negatives\":[[1,0]]",
                                           "[[0,0]],\"positives\":[[0.5,0]],\"negatives\":[[0.6,0]]",
                                           "[[0,0]],\"positives\":[[1,0]],\"negatives\":[[0.1,0]]"};
    for (int i = 0; i < 25; i++) {
        e2e_get(&S, "/v1/model", &r);
        CHECK_EQ_INT(r.status, 200, "GET /v1/model");
        e2e_resp_free(&r);
    }
    for (int i = 0; i < 4; i++) {
        e2e_get(&S, "/v1/no-such-route", &r);
        e2e_resp_free(&r);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof body, "{\"anchors\":%s,\"embed\":false,\"metric\":\"euclidean\",\"margin\":0.2}",
                 TRIPLETS[i]);
        e2e_post(&S, "/v1/loss/triplet", body, &r);
        CHECK_EQ_INT(r.status, 200, "POST /v1/loss/triplet");
        e2e_resp_free(&r);
    }
    next_second();
    e2e_get(&S, "/v1/stats?window=600", &r);
    if (!CHECK_EQ_INT(r.status, 200, "GET /v1/stats") || !CHECK(r.json != NULL, "stats: not JSON")) {
        e2e_resp_free(&r);
        return;
    }
    const cJSON *o = r.json, *m = route_of(o, "/v1/model"), *t = route_of(o, "/v1/loss/triplet");
    CHECK_EQ_INT(e2e_jnum(o, "window_seconds"), 600, "stats window_seconds");
    CHECK_EQ_INT(e2e_jnum(o, "span_seconds"), 600, "stats span_seconds");
    CHECK(m != NULL && t != NULL, "stats: routes lack /v1/model or /v1/loss/triplet");
    if (m) CHECK_EQ_INT(e2e_jnum(m, "requests"), 25, "stats /v1/model requests");
    if (m)
        CHECK(e2e_jnum(m, "p50_ms") > 0 && e2e_jnum(m, "p99_ms") >= e2e_jnum(m, "p50_ms"),
              "stats /v1/model p50 <= p99");
    if (t) CHECK_EQ_INT(e2e_jnum(t, "requests"), 3, "stats /v1/loss/triplet requests");
    const cJSON *other = route_of(o, "other");
    CHECK(other && e2e_jnum(other, "errors") == 4, "stats: 4 errors on route other");
    CHECK_EQ_INT(e2e_jnum(o, "status.404"), 4, "stats status 404");
    CHECK(e2e_jnum(o, "errors") >= 4, "stats errors >= 4");
    CHECK_EQ_INT(e2e_jnum(o, "triplets.easy"), 1, "stats triplets easy");
    CHECK_EQ_INT(e2e_jnum(o, "triplets.semi_hard"), 1, "stats triplets semi_hard");
    CHECK_EQ_INT(e2e_jnum(o, "triplets.hard"), 1, "stats triplets hard");
    /* losses 0, 0.1 and 1.1: bins le 0, le 0.1 and the open one */
    const cJSON *lh = e2e_jget(o, "triplets.loss_histogram");
    CHECK(cJSON_GetArraySize(lh) == 22, "loss histogram: 22 bins");
    CHECK_EQ_INT(e2e_jnum(cJSON_GetArrayItem(lh, 0), "count"), 1, "loss bin le 0");
    CHECK_EQ_INT(e2e_jnum(cJSON_GetArrayItem(lh, 2), "count"), 1, "loss bin le 0.1");
    CHECK_EQ_INT(e2e_jnum(cJSON_GetArrayItem(lh, 21), "count"), 1, "loss bin open");
    CHECK_EQ_INT(e2e_jnum(o, "batch.vectors"), 3, "stats batch vectors (one per triplet field 0)");
    /* the series holds every counted request: the total equals requests */
    double sum = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, e2e_jget(o, "series.requests")) sum += v->valuedouble;
    CHECK_EQ_INT(cJSON_GetArraySize(e2e_jget(o, "series.requests")), 600, "series length");
    CHECK_EQ_INT(sum, e2e_jnum(o, "requests"), "series sum = requests");
    CHECK(e2e_jnum(o, "requests") >= 32, "stats requests >= 32 (25 + 4 + 3)");
    e2e_resp_free(&r);

    e2e_get(&S, "/v1/stats?window=0", &r);
    CHECK_ERROR(&r, 422, "invalid_input", "window", "stats window=0");
    e2e_resp_free(&r);
    e2e_get(&S, "/v1/stats?window=abc", &r);
    CHECK_ERROR(&r, 422, "invalid_input", "window", "stats window=abc");
    e2e_resp_free(&r);
}

static void test_projection(void) {
    e2e_resp r, r2;
    char hdr[32];
    e2e_get(&S, "/v1/gallery/projection?n=1000", &r);
    if (!CHECK_EQ_INT(r.status, 200, "GET /v1/gallery/projection?n=1000") || !CHECK(r.json, "projection: not JSON")) {
        e2e_resp_free(&r);
        return;
    }
    CHECK_EQ_INT(e2e_jnum(r.json, "size"), GN, "projection size");
    CHECK_EQ_INT(e2e_jnum(r.json, "n"), 1000, "projection n");
    CHECK_STR(e2e_jstr(r.json, "sample"), "stride", "projection sample");
    CHECK_STR(e2e_header(&r, "X-Cache", hdr, sizeof hdr), "miss", "first projection X-Cache");
    const cJSON *pts = e2e_jget(r.json, "points");
    CHECK_EQ_INT(cJSON_GetArraySize(pts), 1000, "projection points");
    /* the documented sample, projected by lib/pca.c here on the same rows */
    size_t idx[GN], n;
    static float rows[GN * GD];
    static double xy[GN * 2];
    pca_sample(GN, 1000, idx, &n);
    for (size_t i = 0; i < n; i++) memcpy(rows + i * GD, GEMB + idx[i] * GD, sizeof(float) * GD);
    tr_err err;
    CHECK(pca_project(rows, n, GD, GD, 2, xy, NULL, &err) == TR_OK, "pca_project: %s", err.msg);
    int bad = 0;
    for (size_t i = 0; i < n && bad < 5; i++) {
        const cJSON *p = cJSON_GetArrayItem(pts, (int)i);
        double x = e2e_jnum(p, "x"), y = e2e_jnum(p, "y");
        const char *id = e2e_jstr(p, "id");
        int ok = e2e_jnum(p, "index") == (double)idx[i] && e2e_jnum(p, "label") == (double)GLAB[idx[i]] && id &&
                 strcmp(id, GIDS[idx[i]]) == 0 && e2e_near(x, xy[2 * i], 1e-6, 1e-6) &&
                 e2e_near(y, xy[2 * i + 1], 1e-6, 1e-6);
        bad += !CHECK(ok, "projection point %zu: index %g label %g id %s x %g y %g; want %zu %lld %s %g %g", i,
                      e2e_jnum(p, "index"), e2e_jnum(p, "label"), id ? id : "null", x, y, idx[i],
                      (long long)GLAB[idx[i]], GIDS[idx[i]], xy[2 * i], xy[2 * i + 1]);
    }
    double r0 = e2e_jnum(r.json, "explained_variance_ratio.0"), r1 = e2e_jnum(r.json, "explained_variance_ratio.1");
    CHECK(r0 >= r1 && r1 > 0 && r0 + r1 <= 1 + 1e-9, "explained_variance_ratio %g %g", r0, r1);
    /* the second call is served from the cache, byte for byte */
    e2e_get(&S, "/v1/gallery/projection?n=1000", &r2);
    CHECK_STR(e2e_header(&r2, "X-Cache", hdr, sizeof hdr), "hit", "second projection X-Cache");
    CHECK(r2.body_len == r.body_len && memcmp(r2.body, r.body, r.body_len) == 0, "cached projection differs");
    e2e_resp_free(&r2);
    e2e_resp_free(&r);
    /* more than the gallery: every row */
    e2e_get(&S, "/v1/gallery/projection?n=20000", &r);
    CHECK_EQ_INT(e2e_jnum(r.json, "n"), GN, "projection n=20000 on 1500 rows");
    CHECK_STR(e2e_jstr(r.json, "sample"), "all", "projection sample all");
    e2e_resp_free(&r);
    static const char *const BAD[] = {"0", "20001", "-3", "12x", ""};
    for (int i = 0; i < 5; i++) {
        char path[64];
        snprintf(path, sizeof path, "/v1/gallery/projection?n=%s", BAD[i]);
        e2e_get(&S, path, &r);
        CHECK_ERROR(&r, 422, "invalid_input", "n", path);
        e2e_resp_free(&r);
    }
}

static void test_items(void) {
    e2e_resp r;
    e2e_get(&S, "/v1/gallery/items/5", &r);
    if (CHECK_EQ_INT(r.status, 200, "GET /v1/gallery/items/5")) {
        size_t n = 0;
        double *e = e2e_jarray(e2e_jget(r.json, "embedding"), &n);
        CHECK_EQ_INT(n, GD, "item embedding length");
        for (size_t j = 0; e && j < n && j < GD; j++)
            if (!CHECK((float)e[j] == GEMB[5 * GD + j], "item 5 embedding[%zu]: %g, want %g", j, e[j],
                       GEMB[5 * GD + j]))
                break;
        free(e);
        CHECK_EQ_INT(e2e_jnum(r.json, "index"), 5, "item index");
        CHECK_EQ_INT(e2e_jnum(r.json, "label"), GLAB[5], "item label");
        CHECK_STR(e2e_jstr(r.json, "id"), "item-5", "item id");
    }
    e2e_resp_free(&r);
    static const struct {
        const char *path;
        long status;
        const char *type;
    } BAD[] = {{"/v1/gallery/items/1500", 404, "not_found"},
               {"/v1/gallery/items/abc", 422, "invalid_input"},
               {"/v1/gallery/items/-1", 422, "invalid_input"},
               {"/v1/gallery/items/1x", 422, "invalid_input"},
               {"/v1/gallery/items/99999999999999999999", 422, "invalid_input"}};
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        e2e_get(&S, BAD[i].path, &r);
        CHECK_ERROR(&r, BAD[i].status, BAD[i].type, "index", BAD[i].path);
        e2e_resp_free(&r);
    }
    /* the image: the PNG lib/png_write.c makes of row 7's pixels, byte for byte */
    uint8_t *png;
    size_t len;
    char hdr[64];
    tr_err err;
    e2e_get(&S, "/v1/gallery/items/7/image", &r);
    CHECK_EQ_INT(r.status, 200, "GET /v1/gallery/items/7/image");
    CHECK_STR(e2e_header(&r, "Content-Type", hdr, sizeof hdr), "image/png", "image Content-Type");
    if (CHECK(png_write_mem(GIMG + 7 * 60, 5, 4, 3, &png, &len, &err) == TR_OK, "png_write_mem: %s", err.msg)) {
        CHECK(r.body_len == len && memcmp(r.body, png, len) == 0, "image of row 7: %zu bytes, want the %zu of its PNG",
              r.body_len, len);
        free(png);
    }
    e2e_resp_free(&r);
    e2e_get(&S, "/v1/gallery/items/1500/image", &r);
    CHECK_ERROR(&r, 404, "not_found", "index", "image past the end");
    e2e_resp_free(&r);
    e2e_get(&S, "/v1/gallery", &r);
    CHECK(cJSON_IsTrue(e2e_jget(r.json, "images")), "GET /v1/gallery: images true");
    e2e_resp_free(&r);
    e2e_get(&S, "/v1/gallery/items/", &r);
    CHECK_EQ_INT(r.status, 404, "GET /v1/gallery/items/ (no index)");
    e2e_resp_free(&r);
    e2e_post(&S, "/v1/gallery/items/3", "{}", &r);
    CHECK_EQ_INT(r.status, 405, "POST /v1/gallery/items/3");
    e2e_resp_free(&r);
}

/* The page and every file it names: 200, their types, the CSP; nothing from another host. */
static void test_page(const e2e_server *s, int want_key) {
    e2e_resp r;
    char hdr[300];
    e2e_get(s, "/", &r);
    if (!CHECK_EQ_INT(r.status, 200, "GET /")) {
        e2e_resp_free(&r);
        return;
    }
    const char *csp = e2e_header(&r, "Content-Security-Policy", hdr, sizeof hdr);
    CHECK(csp && strstr(csp, "default-src 'none'") && strstr(csp, "connect-src 'self'") &&
              strstr(csp, "script-src 'self'") && !strstr(csp, "unsafe-inline") && !strstr(csp, "http"),
          "GET /: Content-Security-Policy %s", csp ? csp : "(none)");
    CHECK(e2e_header(&r, "Content-Type", hdr, sizeof hdr) && strncmp(hdr, "text/html", 9) == 0,
          "GET /: Content-Type %s", hdr);
    CHECK(strstr(r.body, want_key ? "data-auth=\"key\"" : "data-auth=\"off\"") != NULL, "GET /: data-auth %s",
          want_key ? "key" : "off");
    CHECK(strstr(r.body, "rel=\"icon\" href=\"data:") != NULL, "GET /: a data: favicon (no /favicon.ico request)");
    int files = 0;
    for (const char *p = r.body; (p = strstr(p, "=\"")) != NULL; p += 2) {
        if (p < r.body + 4 || (strncmp(p - 3, "src", 3) != 0 && strncmp(p - 4, "href", 4) != 0)) continue;
        const char *u = p + 2;
        size_t n = strcspn(u, "\"");
        char url[128];
        snprintf(url, sizeof url, "%.*s", (int)(n < 127 ? n : 127), u);
        if (url[0] == '#' || strncmp(url, "data:", 5) == 0) continue;
        CHECK(url[0] == '/' && url[1] != '/', "GET /: %s is not on this server", url);
        if (strcmp(url, "/openapi.json") == 0) continue;
        e2e_resp f;
        e2e_get(s, url, &f);
        CHECK_EQ_INT(f.status, 200, url);
        CHECK(e2e_header(&f, "Content-Security-Policy", hdr, sizeof hdr) != NULL, "%s: no CSP", url);
        CHECK(strstr(f.body, "http://") == NULL || strstr(url, ".js"), "%s: names another host", url);
        e2e_resp_free(&f);
        files++;
    }
    CHECK(files >= 3, "GET /: %d files (script, style)", files);
    e2e_resp_free(&r);
}

static void test_console_flags(void) {
    e2e_server s2;
    e2e_resp r;
    const char *keyed[] = {"--threads", "1", "--api-key", "console-key", NULL};
    if (CHECK(e2e_server_start(&s2, keyed) == 0, "tripletd --api-key did not start")) {
        test_page(&s2, 1); /* the page itself needs no key */
        e2e_get(&s2, "/v1/stats", &r);
        CHECK_EQ_INT(r.status, 401, "GET /v1/stats without the key");
        e2e_resp_free(&r);
        e2e_server_stop(&s2, SIGTERM, 10);
    }
    const char *off[] = {"--threads", "1", "--no-console", "--gallery", plain_path, "--allow-gallery-mismatch", NULL};
    if (CHECK(e2e_server_start(&s2, off) == 0, "tripletd --no-console did not start")) {
        const char *paths[] = {"/", "/console.js", "/console.css"};
        for (int i = 0; i < 3; i++) {
            e2e_get(&s2, paths[i], &r);
            CHECK_ERROR(&r, 404, "not_found", "", paths[i]);
            e2e_resp_free(&r);
        }
        e2e_get(&s2, "/v1/stats", &r);
        CHECK_EQ_INT(r.status, 200, "--no-console: GET /v1/stats still served");
        e2e_resp_free(&r);
        /* a gallery without images loads and says so */
        e2e_get(&s2, "/v1/gallery/items/3/image", &r);
        CHECK_ERROR(&r, 404, "not_found", "images", "image from a gallery without images");
        e2e_resp_free(&r);
        e2e_get(&s2, "/v1/gallery/items/3", &r);
        CHECK(r.status == 200 && cJSON_IsFalse(e2e_jget(r.json, "image")),
              "item of a gallery without images: image false");
        e2e_resp_free(&r);
        e2e_server_stop(&s2, SIGTERM, 10);
    }
}

static void test_no_gallery(void) {
    e2e_server s2;
    e2e_resp r;
    const char *args[] = {"--threads", "1", NULL};
    if (!CHECK(e2e_server_start(&s2, args) == 0, "second tripletd did not start")) return;
    e2e_get(&s2, "/v1/gallery/projection", &r);
    CHECK_ERROR(&r, 409, "no_gallery", "", "projection without a gallery");
    e2e_resp_free(&r);
    e2e_get(&s2, "/v1/gallery/items/0/image", &r);
    CHECK_ERROR(&r, 409, "no_gallery", "", "image without a gallery");
    e2e_resp_free(&r);
    e2e_server_stop(&s2, SIGTERM, 10);
}

int main(void) {
    write_gallery();
    const char *args[] = {"--threads", "2", "--gallery", gal_path, "--allow-gallery-mismatch", NULL};
    if (e2e_server_start(&S, args) != 0) e2e_die("tripletd did not start");
    test_stats();
    test_projection();
    test_items();
    test_page(&S, 0);
    test_no_gallery();
    test_console_flags();
    int st = e2e_server_stop(&S, SIGTERM, e2e_slow() ? 30 : 10);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "tripletd did not exit 0 after SIGTERM (status %d)", st);
    if (e2e_failures) e2e_server_log_tail(&S, 10);
    unlink(gal_path);
    unlink(plain_path);
    return e2e_report("e2e_console");
}
