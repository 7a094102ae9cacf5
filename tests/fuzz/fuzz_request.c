/* fuzz_request.c - fuzz target: request bodies through srv_dispatch, what http.c calls once a body is in (no HTTP).
 * Input: "PATH\nBODY" - a request path (POST routes first, then GET; any route but /v1/admin/reload; {name} segments
 * match as the server matches them), a newline, the body. The state is a small
 * 4 -> 3 -> 2 model and a 5-item gallery built once, so that bodies reach past dimension checks.
 * A client's body must never crash, leak, yield a 5xx, or produce a reply that is not valid JSON with finite numbers.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tmpdir.h"
#include "fuzz_common.h"
#include "gallery.h"
#include "dispatch.h"
#include "json_parse.h"
#include "mlp.h"
#include "routes.h"
#include "state.h"

static srv_config g_cfg;
static srv_state *g_state;

/* Build the model and gallery files in a scratch directory, load them as tripletd would, remove the files. */
static void setup(void) {
    char dir[512], mpath[600], gpath[600];
    const int dims[3] = {4, 3, 2};
    mdl_model *m = NULL, *loaded = NULL;
    tr_err err;
    snprintf(dir, sizeof dir, "%s/fuzz_request.XXXXXX", test_tmpdir());
    if (mkdtemp(dir) == NULL) fz_fail("setup", "mkdtemp failed");
    snprintf(mpath, sizeof mpath, "%s/m.safetensors", dir);
    snprintf(gpath, sizeof gpath, "%s/g.safetensors", dir);
    if (mdl_new(dims, 2, MDL_ACT_RELU, 1, &m, &err)) fz_fail("mdl_new", err.msg);
    for (int l = 0; l < 2; l++) {
        for (int i = 0; i < mdl_mlp(m)->layers[l].in * mdl_mlp(m)->layers[l].out; i++)
            mdl_mlp(m)->layers[l].w[i] = (float)((i * 7 + l) % 5) / 4.0f - 0.5f;
        for (int i = 0; i < mdl_mlp(m)->layers[l].out; i++) mdl_mlp(m)->layers[l].b[i] = 0.1f * (float)i;
    }
    if (mdl_save(m, mpath, NULL, 0, &err) || mdl_load(mpath, &loaded, &err)) fz_fail("model", err.msg);
    const float emb[10] = {1, 0, 0, 1, -1, 0, 0.5f, 0.5f, 0, -1};
    const int64_t labels[5] = {0, 1, 0, 1, 2};
    const char *ids[5] = {"a", "b", "c", "d", "e"};
    if (gal_save(gpath, emb, 5, 2, labels, ids, loaded->sha256, &err)) fz_fail("gal_save", err.msg);
    char *argv[] = {"tripletd", "--model", mpath, "--max-batch", "64", NULL};
    if (srv_config_parse(&g_cfg, 5, argv, &err) != 0) fz_fail("srv_config_parse", err.msg);
    if (srv_state_load(&g_cfg, mpath, gpath, &g_state, &err)) fz_fail("srv_state_load", err.msg);
    srv_state_ref(g_state); /* g_state stays ours; the installed reference is the current snapshot's */
    srv_state_install(g_state);
    unlink(mpath);
    unlink(gpath);
    rmdir(dir);
    mdl_free(m);
    mdl_free(loaded);
}

/* The route of path as the server finds it (POST, else GET), or -1 (reload is left out: it swaps the process-wide
 * snapshot). */
static int find_route(const char *path) {
    static const char *const METHODS[] = {"POST", "GET"};
    char allow[96];
    int known;
    for (size_t m = 0; m < sizeof METHODS / sizeof METHODS[0]; m++) {
        int r = srv_route_find(METHODS[m], path, &known, allow, sizeof allow);
        if (r >= 0) return strcmp(srv_route_at(r)->path, "/v1/admin/reload") != 0 ? r : -1;
    }
    return -1;
}

/* Every number in a reply must be finite: cJSON would print NaN/Inf as null. */
static void check_numbers(const cJSON *j, const char *route) {
    for (; j; j = j->next) {
        if (cJSON_IsNumber(j) && !isfinite(j->valuedouble)) {
            char m[160];
            snprintf(m, sizeof m, "%s: reply holds a non-finite number at \"%s\"", route, j->string ? j->string : "[]");
            fz_fail("reply", m);
        }
        check_numbers(j->child, route);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (g_state == NULL) setup();
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl == NULL || memchr(data, '\0', (size_t)(nl - data)) != NULL) return 0;
    char *path = (char *)fz_dup(data, (size_t)(nl - data) + 1);
    path[nl - data] = '\0';
    int route = find_route(path);
    if (route < 0) {
        free(path);
        return 0;
    }
    const srv_route *rt = srv_route_at(route);
    size_t len = size - (size_t)(nl - data) - 1;
    char *text = (char *)fz_dup(nl + 1, len); /* exactly the body: no NUL after it to lean on */
    srv_request rq = {.route = route, .path = path, .body = text, .len = len, .request_id = "fuzz", .in_flight = 1};
    srv_reply out;
    srv_reply_init(&out);
    int st = srv_dispatch(&g_cfg, &rq, &out);
    char m[sizeof out.err_msg + sizeof out.err_field + 100];
    if (st != out.status) {
        snprintf(m, sizeof m, "%s returned %d but set status %d", rt->path, st, out.status);
        fz_fail("handler", m);
    }
    if (st >= 500 || st < 200 || (st >= 300 && st < 400)) {
        snprintf(m, sizeof m, "%s answered %d to a client's body: %s [%s]", rt->path, st, out.err_msg, out.err_field);
        fz_fail("handler", m);
    }
    if (st >= 400) {
        if (out.err_msg[0] == '\0' || out.err_type[0] == '\0')
            fz_fail("handler", "error reply without type or message");
        if (getenv("FUZZ_VERBOSE"))
            fprintf(stderr, "%s: %d %s [%s] %s\n", rt->path, st, out.err_type, out.err_field, out.err_msg);
        cJSON *e = srv_error_json(&out);
        char *s = e ? cJSON_PrintUnformatted(e) : NULL;
        if (s == NULL) fz_fail("srv_error_json", "cannot render the error");
        free(s);
        cJSON_Delete(e);
    } else if (out.body) {
        /* the reply as sent must be valid JSON with finite numbers (pre-rendered float arrays included) */
        check_numbers(out.body, rt->path);
        char *s = cJSON_PrintUnformatted(out.body), why[96];
        size_t at = 0;
        if (s == NULL) fz_fail("reply", "cannot render the reply");
        cJSON *back = srv_json_parse(s, strlen(s), why, sizeof why, &at);
        if (back == NULL) {
            snprintf(m, sizeof m, "%s: reply is not valid JSON (%s at byte %zu): %.300s", rt->path, why, at, s);
            fz_fail("reply", m);
        }
        check_numbers(back, rt->path);
        cJSON_Delete(back);
        free(s);
    } else if (out.raw == NULL) {
        snprintf(m, sizeof m, "%s: 2xx reply without a body", rt->path);
        fz_fail("handler", m);
    }
    srv_reply_clear(&out);
    free(text);
    free(path);
    return 0;
}
