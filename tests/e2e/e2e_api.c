/* e2e_api.c - every tripletd route against PyTorch golden values (tests/golden/e2e_golden.json). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

/* Tolerances. Embedded paths run the model in float32 (sgemv/sgemm) against
 * PyTorch float64 on the same weights: ~1e-7 relative per component, so
 * unit-scale distances agree to ~1e-6. Given vectors are float32-exact and
 * the server sums in double: agreement to 1e-12 relative (proto/scoring.md),
 * tested at 1e-9. */
#define EMB_RTOL 1e-4
#define EMB_ATOL 2e-5
#define EXACT_RTOL 1e-9
#define EXACT_ATOL 1e-12

static cJSON *G; /* the golden document */
static e2e_server S;

/* ---- helpers --------------------------------------------------------- */

/* Recursively compare numbers, arrays and strings of got against want. */
static int near_json(const cJSON *got, const cJSON *want, double rtol, double atol, const char *what, const char *file,
                     int line) {
    if (cJSON_IsNumber(want)) {
        return e2e_check(cJSON_IsNumber(got) && e2e_near(got->valuedouble, want->valuedouble, rtol, atol), file, line,
                         "%s: got %.17g, want %.17g", what, cJSON_IsNumber(got) ? got->valuedouble : NAN,
                         want->valuedouble);
    }
    if (cJSON_IsString(want)) {
        return e2e_check(cJSON_IsString(got) && strcmp(got->valuestring, want->valuestring) == 0, file, line,
                         "%s: got \"%s\", want \"%s\"", what, cJSON_IsString(got) ? got->valuestring : "(not a string)",
                         want->valuestring);
    }
    if (cJSON_IsBool(want)) {
        return e2e_check(cJSON_IsBool(got) && cJSON_IsTrue(got) == cJSON_IsTrue(want), file, line,
                         "%s: boolean mismatch", what);
    }
    if (cJSON_IsArray(want)) {
        int n = cJSON_GetArraySize(want);
        if (!e2e_check(cJSON_IsArray(got) && cJSON_GetArraySize(got) == n, file, line,
                       "%s: want an array of %d, got %s", what, n, cJSON_IsArray(got) ? "another length" : "no array"))
            return 0;
        int ok = 1;
        for (int i = 0; i < n && ok; i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s[%d]", what, i);
            ok &= near_json(cJSON_GetArrayItem(got, i), cJSON_GetArrayItem(want, i), rtol, atol, sub, file, line);
        }
        return ok;
    }
    if (cJSON_IsObject(want)) {
        int ok = 1;
        const cJSON *w;
        cJSON_ArrayForEach(w, want) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.%s", what, w->string);
            ok &= near_json(cJSON_GetObjectItemCaseSensitive(got, w->string), w, rtol, atol, sub, file, line);
        }
        return ok;
    }
    return e2e_check(0, file, line, "%s: unsupported golden item", what);
}
#define NEAR_JSON(got, want, rtol, atol, what) near_json((got), (want), (rtol), (atol), (what), __FILE__, __LINE__)

static const cJSON *gold(const char *path) {
    const cJSON *it = e2e_jget(G, path);
    if (!it) e2e_die("golden file has no %s (regenerate with tests/golden/gen_e2e.py)", path);
    return it;
}

/* Rows idx[0..n) of the golden matrix at path, as a new cJSON array. */
static cJSON *pick_rows(const char *path, const cJSON *idx) {
    const cJSON *m = gold(path), *i;
    cJSON *out = cJSON_CreateArray();
    cJSON_ArrayForEach(i, idx) cJSON_AddItemToArray(out, cJSON_Duplicate(cJSON_GetArrayItem(m, i->valueint), 1));
    return out;
}

static cJSON *slice(const char *path, int from, int to) {
    const cJSON *m = gold(path);
    cJSON *out = cJSON_CreateArray();
    for (int i = from; i < to; i++) cJSON_AddItemToArray(out, cJSON_Duplicate(cJSON_GetArrayItem(m, i), 1));
    return out;
}

/* POST obj (consumed) to path; the reply in r. */
static void post_obj(const char *path, cJSON *obj, e2e_resp *r) {
    char *body = cJSON_PrintUnformatted(obj);
    cJSON_Delete(obj);
    e2e_post(&S, path, body, r);
    free(body);
}

static int ok_json(const e2e_resp *r, const char *what) {
    return CHECK(r->status == 200 && r->json, "%s: status %ld, body %.300s %s", what, r->status, r->body, r->curl_err);
}

/* ---- routes ---------------------------------------------------------- */

static void test_health(void) {
    e2e_resp r;
    e2e_get(&S, "/healthz", &r);
    if (ok_json(&r, "GET /healthz")) CHECK_STR(e2e_jstr(r.json, "status"), "ok", "healthz status");
    e2e_resp_free(&r);
    e2e_get(&S, "/readyz", &r);
    CHECK_EQ_INT(r.status, 200, "GET /readyz with a model loaded");
    e2e_resp_free(&r);
}

static void test_model(void) {
    e2e_resp r;
    e2e_get(&S, "/v1/model", &r);
    if (ok_json(&r, "GET /v1/model")) {
        const cJSON *j = r.json;
        CHECK_EQ_INT(e2e_jnum(j, "input_dim"), e2e_jnum(G, "model.input_dim"), "model input_dim");
        CHECK_EQ_INT(e2e_jnum(j, "output_dim"), e2e_jnum(G, "model.output_dim"), "model output_dim");
        CHECK_EQ_INT(e2e_jnum(j, "parameters"), e2e_jnum(G, "model.parameters"), "model parameters");
        CHECK(cJSON_IsTrue(e2e_jget(j, "normalize")), "model normalize: want true");
        CHECK_STR(e2e_jstr(j, "metric"), "sqeuclidean", "model metric");
        CHECK_STR(e2e_jstr(j, "loss"), "triplet", "model loss");
        CHECK_NEAR(e2e_jnum(j, "margin"), 0.2, 0, 1e-12, "model margin");
        CHECK_STR(e2e_jstr(j, "name"), e2e_jstr(G, "model.name"), "model name");
        const char *sha = e2e_jstr(j, "sha256");
        if (!sha) sha = e2e_jstr(j, "file_sha256");
        CHECK_STR(sha, e2e_jstr(G, "model.sha256"), "model sha256 (of the file, as sha256sum prints it)");
        CHECK(e2e_jstr(j, "loaded_at") || cJSON_IsNumber(e2e_jget(j, "loaded_at")), "model loaded_at missing");
        const cJSON *layers = e2e_jget(j, "layers");
        if (CHECK(cJSON_GetArraySize(layers) == 2, "model layers: want 2 entries, got %d",
                  cJSON_GetArraySize(layers))) {
            CHECK_EQ_INT(e2e_jnum(layers, "0.in"), 784, "layers[0].in");
            CHECK_EQ_INT(e2e_jnum(layers, "0.out"), 64, "layers[0].out");
            CHECK_EQ_INT(e2e_jnum(layers, "1.in"), 64, "layers[1].in");
            CHECK_EQ_INT(e2e_jnum(layers, "1.out"), 32, "layers[1].out");
            CHECK_STR(e2e_jstr(layers, "0.activation"), "relu", "layers[0].activation");
        }
    }
    e2e_resp_free(&r);
}

static void test_openapi(void) {
    e2e_resp r;
    e2e_get(&S, "/openapi.json", &r);
    if (ok_json(&r, "GET /openapi.json")) {
        const char *v = e2e_jstr(r.json, "openapi");
        CHECK(v && strncmp(v, "3.", 2) == 0, "openapi version: %s", v ? v : "(none)");
        const char *routes[] = {"/healthz",      "/readyz",          "/metrics",     "/v1/model",
                                "/v1/embed",     "/v1/embeddings",   "/v1/distance", "/v1/loss/triplet",
                                "/v1/loss/pair", "/v1/loss/infonce", "/v1/mine",     "/v1/admin/reload"};
        const cJSON *paths = e2e_jget(r.json, "paths");
        for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
            CHECK(cJSON_GetObjectItemCaseSensitive(paths, routes[i]), "openapi paths: %s missing", routes[i]);
    }
    char ct[128];
    CHECK(e2e_header(&r, "Content-Type", ct, sizeof ct) && strstr(ct, "application/json"), "openapi Content-Type: %s",
          e2e_header(&r, "Content-Type", ct, sizeof ct) ? ct : "(none)");
    e2e_resp_free(&r);
}

static void test_embed(void) {
    e2e_resp r, rb;
    /* float path, batch of five */
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "inputs", slice("x", 0, 5));
    post_obj("/v1/embed", q, &r);
    cJSON *want = slice("embeddings", 0, 5);
    if (ok_json(&r, "embed floats")) {
        CHECK_EQ_INT(e2e_jnum(r.json, "dim"), 32, "embed dim");
        CHECK(e2e_jstr(r.json, "model") != NULL, "embed: \"model\" missing");
        NEAR_JSON(e2e_jget(r.json, "embeddings"), want, EMB_RTOL, EMB_ATOL, "embed embeddings");
    }
    /* base64 output decodes to the same float32 values */
    q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "inputs", slice("x", 0, 5));
    cJSON_AddStringToObject(q, "encoding_format", "base64");
    post_obj("/v1/embed", q, &rb);
    if (ok_json(&rb, "embed base64 output") && r.json) {
        for (int i = 0; i < 5; i++) {
            const cJSON *s = cJSON_GetArrayItem(e2e_jget(rb.json, "embeddings"), i);
            size_t n = 0;
            float *f = cJSON_IsString(s) ? e2e_b64_decode_floats(s->valuestring, &n) : NULL;
            if (!CHECK(f && n == 32, "embed base64 [%d]: not a base64 string of 32 float32", i)) {
                free(f);
                continue;
            }
            const cJSON *row = cJSON_GetArrayItem(e2e_jget(r.json, "embeddings"), i);
            for (size_t k = 0; k < n; k++)
                CHECK((float)cJSON_GetArrayItem(row, (int)k)->valuedouble == f[k],
                      "embed [%d][%zu]: base64 %.9g vs float %.9g", i, k, (double)f[k],
                      cJSON_GetArrayItem(row, (int)k)->valuedouble);
            free(f);
        }
    }
    e2e_resp_free(&rb);
    /* base64 input gives the same embeddings as the float input */
    q = cJSON_CreateObject();
    cJSON *in = cJSON_AddArrayToObject(q, "inputs");
    for (int i = 0; i < 5; i++) {
        size_t n;
        double *d = e2e_jarray(cJSON_GetArrayItem(gold("x"), i), &n);
        float *f = malloc(n * sizeof *f);
        for (size_t k = 0; k < n; k++) f[k] = (float)d[k];
        char *b = e2e_b64_floats(f, n);
        cJSON_AddItemToArray(in, cJSON_CreateString(b));
        free(b);
        free(f);
        free(d);
    }
    post_obj("/v1/embed", q, &rb);
    if (ok_json(&rb, "embed base64 input") && r.json)
        NEAR_JSON(e2e_jget(rb.json, "embeddings"), e2e_jget(r.json, "embeddings"), 0, 0,
                  "embed base64 input vs float input");
    e2e_resp_free(&rb);
    e2e_resp_free(&r);
    cJSON_Delete(want);

    /* a single vector is a batch of one */
    q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "inputs", cJSON_Duplicate(cJSON_GetArrayItem(gold("x"), 7), 1));
    post_obj("/v1/embed", q, &r);
    want = slice("embeddings", 7, 8);
    if (ok_json(&r, "embed single vector"))
        NEAR_JSON(e2e_jget(r.json, "embeddings"), want, EMB_RTOL, EMB_ATOL, "embed single vector");
    e2e_resp_free(&r);
    cJSON_Delete(want);

    /* normalize: false overrides the model */
    q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "inputs", slice("x", 2, 4));
    cJSON_AddFalseToObject(q, "normalize");
    post_obj("/v1/embed", q, &r);
    want = slice("embeddings_raw", 2, 4);
    if (ok_json(&r, "embed normalize false"))
        NEAR_JSON(e2e_jget(r.json, "embeddings"), want, EMB_RTOL, EMB_ATOL, "embed normalize=false");
    e2e_resp_free(&r);
    cJSON_Delete(want);
}

static void test_embeddings_openai(void) {
    e2e_resp r;
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "input", slice("x", 0, 3));
    cJSON_AddStringToObject(q, "model", "e2e-test");
    post_obj("/v1/embeddings", q, &r);
    cJSON *want = slice("embeddings", 0, 3);
    if (ok_json(&r, "POST /v1/embeddings")) {
        CHECK_STR(e2e_jstr(r.json, "object"), "list", "embeddings object");
        CHECK(e2e_jstr(r.json, "model") != NULL, "embeddings: model missing");
        CHECK_EQ_INT(e2e_jnum(r.json, "usage.prompt_tokens"), 0, "usage.prompt_tokens");
        CHECK_EQ_INT(e2e_jnum(r.json, "usage.total_tokens"), 0, "usage.total_tokens");
        const cJSON *data = e2e_jget(r.json, "data");
        if (CHECK(cJSON_GetArraySize(data) == 3, "embeddings data: want 3 entries")) {
            for (int i = 0; i < 3; i++) {
                const cJSON *d = cJSON_GetArrayItem(data, i);
                CHECK_STR(e2e_jstr(d, "object"), "embedding", "data[i].object");
                CHECK_EQ_INT(e2e_jnum(d, "index"), i, "data[i].index");
                NEAR_JSON(e2e_jget(d, "embedding"), cJSON_GetArrayItem(want, i), EMB_RTOL, EMB_ATOL,
                          "data[i].embedding");
            }
        }
    }
    e2e_resp_free(&r);
    /* base64 encoding_format: the embedding is a string (what the OpenAI Python client asks for) */
    q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "input", cJSON_Duplicate(cJSON_GetArrayItem(gold("x"), 1), 1));
    cJSON_AddStringToObject(q, "encoding_format", "base64");
    post_obj("/v1/embeddings", q, &r);
    if (ok_json(&r, "embeddings base64")) {
        const char *s = e2e_jstr(r.json, "data.0.embedding");
        size_t n = 0;
        float *f = s ? e2e_b64_decode_floats(s, &n) : NULL;
        if (CHECK(f && n == 32, "embeddings base64: want a base64 string of 32 floats")) {
            for (size_t k = 0; k < n; k++)
                CHECK_NEAR(f[k], cJSON_GetArrayItem(cJSON_GetArrayItem(want, 1), (int)k)->valuedouble, EMB_RTOL,
                           EMB_ATOL, "embeddings base64 value");
        }
        free(f);
    }
    e2e_resp_free(&r);
    cJSON_Delete(want);
}

static const char *METRICS[] = {"sqeuclidean", "euclidean", "cosine", "dot"};

/* The /v1/distance cases checked against the golden file for every metric:
 * rows a[i] vs b[i] or the pairwise matrix, of embedded model inputs ("x")
 * or of given vectors ("v", embed: false). */
static const struct {
    const char *src, *label, *gold; /* gold: distance.<metric>.<gold> */
    int a0, a1, b0, b1, pairwise;
} DIST_CASES[] = {
    {"x", "rows (embedded)", "rows", 0, 3, 3, 6, 0},
    {"x", "matrix (embedded)", "matrix", 0, 3, 3, 8, 1}, /* pairwise 3 x 5 */
    {"v", "rows (given)", "given_rows", 0, 4, 4, 8, 0},
    {"v", "matrix (given)", "given_matrix", 0, 4, 4, 10, 1},
};

static void test_distance(void) {
    char what[128], path[128];
    for (int m = 0; m < 4; m++)
        for (size_t c = 0; c < sizeof DIST_CASES / sizeof DIST_CASES[0]; c++) {
            int given = DIST_CASES[c].src[0] == 'v', pairwise = DIST_CASES[c].pairwise;
            e2e_resp r;
            cJSON *q = cJSON_CreateObject();
            cJSON_AddItemToObject(q, "a", slice(DIST_CASES[c].src, DIST_CASES[c].a0, DIST_CASES[c].a1));
            cJSON_AddItemToObject(q, "b", slice(DIST_CASES[c].src, DIST_CASES[c].b0, DIST_CASES[c].b1));
            cJSON_AddStringToObject(q, "metric", METRICS[m]);
            if (given) cJSON_AddFalseToObject(q, "embed");
            if (pairwise) cJSON_AddTrueToObject(q, "pairwise");
            post_obj("/v1/distance", q, &r);
            snprintf(what, sizeof what, "distance %s %s", METRICS[m], DIST_CASES[c].label);
            snprintf(path, sizeof path, "distance.%s.%s", METRICS[m], DIST_CASES[c].gold);
            if (ok_json(&r, what)) {
                if (c == 0) CHECK_STR(e2e_jstr(r.json, "metric"), METRICS[m], what);
                NEAR_JSON(e2e_jget(r.json, pairwise ? "matrix" : "distances"), gold(path),
                          given ? EXACT_RTOL : EMB_RTOL, given ? EXACT_ATOL : EMB_ATOL, what);
            }
            e2e_resp_free(&r);
        }
    /* default metric is the model's (sqeuclidean); a single vector is a batch of one */
    e2e_resp r;
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "a", cJSON_Duplicate(cJSON_GetArrayItem(gold("v"), 0), 1));
    cJSON_AddItemToObject(q, "b", cJSON_Duplicate(cJSON_GetArrayItem(gold("v"), 4), 1));
    cJSON_AddFalseToObject(q, "embed");
    post_obj("/v1/distance", q, &r);
    if (ok_json(&r, "distance defaults")) {
        CHECK_STR(e2e_jstr(r.json, "metric"), "sqeuclidean", "distance default metric");
        CHECK_NEAR(e2e_jnum(r.json, "distances.0"), e2e_jnum(G, "distance.sqeuclidean.given_rows.0"), EXACT_RTOL,
                   EXACT_ATOL, "distance single pair");
    }
    e2e_resp_free(&r);
}

/* Send one triplet case; a,p,n are the request's vectors (consumed). */
static void triplet_one(cJSON *a, cJSON *p, cJSON *n, int embed, const cJSON *c, double rtol, double atol,
                        const char *what) {
    e2e_resp r;
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "anchors", a);
    cJSON_AddItemToObject(q, "positives", p);
    cJSON_AddItemToObject(q, "negatives", n);
    cJSON_AddBoolToObject(q, "embed", embed);
    const char *keys[] = {"metric", "margin", "loss", "swap", "reduction"};
    for (int k = 0; k < 5; k++) cJSON_AddItemToObject(q, keys[k], cJSON_Duplicate(cJSON_GetObjectItem(c, keys[k]), 1));
    post_obj("/v1/loss/triplet", q, &r);
    const cJSON *e = cJSON_GetObjectItem(c, "expect");
    if (ok_json(&r, what)) {
        const char *num[] = {"loss", "losses", "d_ap", "d_an", "active_fraction"};
        for (int k = 0; k < 5; k++) {
            char w[160];
            snprintf(w, sizeof w, "%s %s", what, num[k]);
            NEAR_JSON(e2e_jget(r.json, num[k]), cJSON_GetObjectItem(e, num[k]), rtol, atol, w);
        }
        int swap = cJSON_IsTrue(cJSON_GetObjectItem(c, "swap"));
        if (swap)
            NEAR_JSON(e2e_jget(r.json, "d_pn"), cJSON_GetObjectItem(e, "d_pn"), rtol, atol, "triplet d_pn (swap)");
        if (atol <= EXACT_ATOL) { /* categories only where float noise cannot move a boundary */
            NEAR_JSON(e2e_jget(r.json, "categories"), cJSON_GetObjectItem(e, "categories"), 0, 0, what);
            NEAR_JSON(e2e_jget(r.json, "counts"), cJSON_GetObjectItem(e, "counts"), 0, 0, what);
        }
        const cJSON *cfg = e2e_jget(r.json, "config");
        for (int k = 0; k < 5; k++) {
            char w[160];
            snprintf(w, sizeof w, "%s config.%s", what, keys[k]);
            NEAR_JSON(cJSON_GetObjectItem(cfg, keys[k]), cJSON_GetObjectItem(c, keys[k]), 0, 1e-15, w);
        }
        CHECK(cJSON_IsBool(cJSON_GetObjectItem(cfg, "normalize")), "%s: config.normalize missing", what);
    }
    e2e_resp_free(&r);
}

static void test_triplet(void) {
    const cJSON *c;
    int i = 0;
    char what[160];
    cJSON_ArrayForEach(c, gold("triplet_given.cases")) {
        snprintf(what, sizeof what, "triplet given #%d (%s %s swap=%d %s)", i++, e2e_jstr(c, "metric"),
                 e2e_jstr(c, "loss"), cJSON_IsTrue(e2e_jget(c, "swap")), e2e_jstr(c, "reduction"));
        triplet_one(cJSON_Duplicate(gold("triplet_given.anchors"), 1),
                    cJSON_Duplicate(gold("triplet_given.positives"), 1),
                    cJSON_Duplicate(gold("triplet_given.negatives"), 1), 0, c, EXACT_RTOL, EXACT_ATOL, what);
    }
    i = 0;
    cJSON_ArrayForEach(c, gold("triplet_embed.cases")) {
        snprintf(what, sizeof what, "triplet embedded #%d (%s)", i++, e2e_jstr(c, "metric"));
        triplet_one(pick_rows("x", gold("triplet_embed.anchors")), pick_rows("x", gold("triplet_embed.positives")),
                    pick_rows("x", gold("triplet_embed.negatives")), 1, c, EMB_RTOL, EMB_ATOL, what);
    }
    /* defaults: the model's metric, margin and loss; reduction mean; no swap */
    e2e_resp r;
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "anchors", slice("x", 0, 2));
    cJSON_AddItemToObject(q, "positives", slice("x", 2, 4));
    cJSON_AddItemToObject(q, "negatives", slice("x", 4, 6));
    post_obj("/v1/loss/triplet", q, &r);
    if (ok_json(&r, "triplet defaults")) {
        CHECK_STR(e2e_jstr(r.json, "config.metric"), "sqeuclidean", "triplet default metric");
        CHECK_STR(e2e_jstr(r.json, "config.loss"), "triplet", "triplet default loss");
        CHECK_STR(e2e_jstr(r.json, "config.reduction"), "mean", "triplet default reduction");
        CHECK_NEAR(e2e_jnum(r.json, "config.margin"), 0.2, 0, 1e-12, "triplet default margin");
        CHECK(cJSON_IsFalse(e2e_jget(r.json, "config.swap")), "triplet default swap: want false");
        CHECK(cJSON_IsTrue(e2e_jget(r.json, "config.normalize")), "triplet default normalize: want the model's (true)");
        CHECK(e2e_jget(r.json, "d_pn") == NULL, "triplet: d_pn present without swap");
        CHECK_EQ_INT(cJSON_GetArraySize(e2e_jget(r.json, "losses")), 2, "triplet defaults losses count");
    }
    e2e_resp_free(&r);
}

static void test_pair(void) {
    const cJSON *c;
    int i = 0;
    char what[160];
    cJSON_ArrayForEach(c, gold("pair_given.cases")) {
        snprintf(what, sizeof what, "pair #%d (%s %s %s)", i++, e2e_jstr(c, "metric"), e2e_jstr(c, "loss"),
                 e2e_jstr(c, "reduction"));
        e2e_resp r;
        cJSON *q = cJSON_CreateObject();
        cJSON_AddItemToObject(q, "a", cJSON_Duplicate(gold("pair_given.a"), 1));
        cJSON_AddItemToObject(q, "b", cJSON_Duplicate(gold("pair_given.b"), 1));
        cJSON_AddItemToObject(q, "labels", cJSON_Duplicate(gold("pair_given.labels"), 1));
        cJSON_AddFalseToObject(q, "embed");
        const char *keys[] = {"metric", "margin", "loss", "reduction"};
        for (int k = 0; k < 4; k++)
            cJSON_AddItemToObject(q, keys[k], cJSON_Duplicate(cJSON_GetObjectItem(c, keys[k]), 1));
        post_obj("/v1/loss/pair", q, &r);
        if (ok_json(&r, what)) {
            const cJSON *e = cJSON_GetObjectItem(c, "expect");
            NEAR_JSON(e2e_jget(r.json, "loss"), cJSON_GetObjectItem(e, "loss"), EXACT_RTOL, EXACT_ATOL, what);
            NEAR_JSON(e2e_jget(r.json, "losses"), cJSON_GetObjectItem(e, "losses"), EXACT_RTOL, EXACT_ATOL, what);
            NEAR_JSON(e2e_jget(r.json, "distances"), cJSON_GetObjectItem(e, "distances"), EXACT_RTOL, EXACT_ATOL, what);
            for (int k = 0; k < 4; k++)
                NEAR_JSON(e2e_jget(e2e_jget(r.json, "config"), keys[k]), cJSON_GetObjectItem(c, keys[k]), 0, 1e-15,
                          what);
        }
        e2e_resp_free(&r);
    }
}

static void infonce_one(cJSON *a, cJSON *b, int embed, const cJSON *c, double rtol, double atol, const char *what) {
    e2e_resp r;
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "a", a);
    cJSON_AddItemToObject(q, "b", b);
    cJSON_AddBoolToObject(q, "embed", embed);
    const char *keys[] = {"temperature", "tau_plus", "beta", "estimator"};
    for (int k = 0; k < 4; k++) cJSON_AddItemToObject(q, keys[k], cJSON_Duplicate(cJSON_GetObjectItem(c, keys[k]), 1));
    post_obj("/v1/loss/infonce", q, &r);
    if (ok_json(&r, what)) {
        const cJSON *e = cJSON_GetObjectItem(c, "expect");
        NEAR_JSON(e2e_jget(r.json, "loss"), cJSON_GetObjectItem(e, "loss"), rtol, atol, what);
        NEAR_JSON(e2e_jget(r.json, "losses"), cJSON_GetObjectItem(e, "losses"), rtol, atol, what);
    }
    e2e_resp_free(&r);
}

static void test_infonce(void) {
    const cJSON *c;
    int i = 0;
    char what[160];
    cJSON_ArrayForEach(c, gold("infonce_given.cases")) {
        snprintf(what, sizeof what, "infonce given #%d (%s T=%g)", i++, e2e_jstr(c, "estimator"),
                 e2e_jnum(c, "temperature"));
        infonce_one(cJSON_Duplicate(gold("infonce_given.a"), 1), cJSON_Duplicate(gold("infonce_given.b"), 1), 0, c,
                    EXACT_RTOL, 1e-10, what);
    }
    cJSON_ArrayForEach(c, gold("infonce_embed.cases"))
        infonce_one(pick_rows("x", gold("infonce_embed.a")), pick_rows("x", gold("infonce_embed.b")), 1, c, EMB_RTOL,
                    EMB_ATOL, "infonce embedded");
    /* defaults: temperature 0.5, tau_plus 0.1, beta 1, hard estimator (= the first given case) */
    e2e_resp r;
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "a", cJSON_Duplicate(gold("infonce_given.a"), 1));
    cJSON_AddItemToObject(q, "b", cJSON_Duplicate(gold("infonce_given.b"), 1));
    cJSON_AddFalseToObject(q, "embed");
    post_obj("/v1/loss/infonce", q, &r);
    if (ok_json(&r, "infonce defaults"))
        NEAR_JSON(e2e_jget(r.json, "losses"), gold("infonce_given.cases.0.expect.losses"), EXACT_RTOL, 1e-10,
                  "infonce defaults");
    e2e_resp_free(&r);
}

/* Mined triplets: the response lists them as objects or as index triples;
 * accept "triplets": [{"anchor"|"a", "positive"|"p", "negative"|"n", ...}] or [[a,p,n]]. */
static int triplet_index(const cJSON *t, int k) {
    if (cJSON_IsArray(t)) return cJSON_GetArrayItem(t, k)->valueint;
    const char *names[3][3] = {{"anchor", "a", "i"}, {"positive", "p", "j"}, {"negative", "n", "k"}};
    for (int i = 0; i < 3; i++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, names[k][i]);
        if (cJSON_IsNumber(v)) return v->valueint;
    }
    return -1;
}

/* Per-triplet number: from the triplet object, else from a parallel array. */
static double mined_value(const cJSON *resp, const cJSON *t, int idx, const char *key, const char *plural) {
    const cJSON *v = cJSON_IsObject(t) ? cJSON_GetObjectItemCaseSensitive(t, key) : NULL;
    if (cJSON_IsNumber(v)) return v->valuedouble;
    v = cJSON_GetArrayItem(e2e_jget(resp, plural), idx);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *mined_category(const cJSON *resp, const cJSON *t, int idx) {
    const cJSON *v = cJSON_IsObject(t) ? cJSON_GetObjectItemCaseSensitive(t, "category") : NULL;
    if (cJSON_IsString(v)) return v->valuestring;
    v = cJSON_GetArrayItem(e2e_jget(resp, "categories"), idx);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void test_mine(void) {
    const cJSON *c;
    char what[160];
    cJSON_ArrayForEach(c, gold("mine_given.cases")) {
        const char *strategy = e2e_jstr(c, "strategy");
        snprintf(what, sizeof what, "mine %s", strategy);
        e2e_resp r;
        cJSON *q = cJSON_CreateObject();
        cJSON_AddItemToObject(q, "inputs", cJSON_Duplicate(gold("mine_given.inputs"), 1));
        cJSON_AddItemToObject(q, "labels", cJSON_Duplicate(gold("mine_given.labels"), 1));
        cJSON_AddStringToObject(q, "strategy", strategy);
        cJSON_AddFalseToObject(q, "embed");
        cJSON_AddItemToObject(q, "metric", cJSON_Duplicate(e2e_jget(c, "metric"), 1));
        cJSON_AddItemToObject(q, "margin", cJSON_Duplicate(e2e_jget(c, "margin"), 1));
        cJSON_AddNumberToObject(q, "max_triplets", 100000);
        post_obj("/v1/mine", q, &r);
        if (!ok_json(&r, what)) {
            e2e_resp_free(&r);
            continue;
        }
        const cJSON *e = e2e_jget(c, "expect"), *want = e2e_jget(e, "triplets"), *got = e2e_jget(r.json, "triplets");
        int n = cJSON_GetArraySize(want);
        if (CHECK(cJSON_IsArray(got) && cJSON_GetArraySize(got) == n, "%s: want %d triplets listed, got %d", what, n,
                  cJSON_GetArraySize(got))) {
            int bad = 0;
            for (int i = 0; i < n && bad < 3; i++) {
                const cJSON *t = cJSON_GetArrayItem(got, i), *w = cJSON_GetArrayItem(want, i);
                int same = 1;
                for (int k = 0; k < 3; k++) same &= triplet_index(t, k) == cJSON_GetArrayItem(w, k)->valueint;
                bad += !CHECK(same, "%s: triplet %d is (%d,%d,%d), want (%d,%d,%d)", what, i, triplet_index(t, 0),
                              triplet_index(t, 1), triplet_index(t, 2), cJSON_GetArrayItem(w, 0)->valueint,
                              cJSON_GetArrayItem(w, 1)->valueint, cJSON_GetArrayItem(w, 2)->valueint);
                bad += !CHECK_NEAR(mined_value(r.json, t, i, "d_ap", "d_ap"),
                                   cJSON_GetArrayItem(e2e_jget(e, "d_ap"), i)->valuedouble, EXACT_RTOL, EXACT_ATOL,
                                   "mine d_ap");
                bad += !CHECK_NEAR(mined_value(r.json, t, i, "d_an", "d_an"),
                                   cJSON_GetArrayItem(e2e_jget(e, "d_an"), i)->valuedouble, EXACT_RTOL, EXACT_ATOL,
                                   "mine d_an");
                bad += !CHECK_NEAR(mined_value(r.json, t, i, "loss", "losses"),
                                   cJSON_GetArrayItem(e2e_jget(e, "losses"), i)->valuedouble, EXACT_RTOL, EXACT_ATOL,
                                   "mine loss");
                bad += !CHECK_STR(mined_category(r.json, t, i),
                                  cJSON_GetArrayItem(e2e_jget(e, "categories"), i)->valuestring, "mine category");
            }
        }
        /* summary numbers: the mean loss, and (batch-all) counts and mean over positive losses */
        double mean = e2e_jnum(r.json, "mean_loss");
        CHECK_NEAR(mean, e2e_jnum(e, "mean_loss"), EXACT_RTOL, EXACT_ATOL, "mine mean_loss");
        if (strcmp(strategy, "batch-all") == 0) {
            CHECK_NEAR(e2e_jnum(r.json, "mean_positive_loss"), e2e_jnum(e, "mean_pos_loss"), EXACT_RTOL, EXACT_ATOL,
                       "mine batch-all mean over positive losses");
            CHECK_EQ_INT(e2e_jnum(r.json, "n_positive"), e2e_jnum(e, "n_positive"), "mine batch-all n_positive");
        }
        CHECK_EQ_INT(e2e_jnum(r.json, "n_triplets"), e2e_jnum(e, "total"), "mine n_triplets");
        NEAR_JSON(e2e_jget(r.json, "counts"), e2e_jget(e, "counts"), 0, 0, "mine counts");
        NEAR_JSON(e2e_jget(r.json, "anchors_without_positive"), e2e_jget(e, "no_positive"), 0, 0,
                  "mine anchors_without_positive");
        NEAR_JSON(e2e_jget(r.json, "anchors_without_negative"), e2e_jget(e, "no_negative"), 0, 0,
                  "mine anchors_without_negative");
        e2e_resp_free(&r);
    }
    /* max_triplets bounds the listing, not the counts */
    e2e_resp r;
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "inputs", cJSON_Duplicate(gold("mine_given.inputs"), 1));
    cJSON_AddItemToObject(q, "labels", cJSON_Duplicate(gold("mine_given.labels"), 1));
    cJSON_AddStringToObject(q, "strategy", "batch-all");
    cJSON_AddFalseToObject(q, "embed");
    cJSON_AddNumberToObject(q, "margin", 1.0);
    cJSON_AddNumberToObject(q, "max_triplets", 5);
    post_obj("/v1/mine", q, &r);
    if (ok_json(&r, "mine max_triplets")) {
        CHECK_EQ_INT(cJSON_GetArraySize(e2e_jget(r.json, "triplets")), 5, "mine max_triplets listing");
        CHECK_EQ_INT(e2e_jnum(r.json, "n_listed"), 5, "mine max_triplets n_listed");
        CHECK_EQ_INT(e2e_jnum(r.json, "n_triplets"), e2e_jnum(G, "mine_given.cases.2.expect.total"),
                     "mine max_triplets: n_triplets counts all");
    }
    e2e_resp_free(&r);
}

/* ---- protocol features ----------------------------------------------- */

static void test_pretty_and_request_id(void) {
    e2e_resp a, b;
    e2e_get(&S, "/v1/model?pretty=1", &a);
    e2e_get(&S, "/v1/model", &b);
    if (ok_json(&a, "pretty=1") && ok_json(&b, "no pretty")) {
        CHECK(strstr(a.body, "\n  ") || strstr(a.body, "\n\t"), "?pretty=1: body is not indented: %.80s", a.body);
        char *nl = strchr(b.body, '\n');
        CHECK(!nl || nl == b.body + b.body_len - 1, "without ?pretty the body should be one line");
        CHECK(a.body_len > b.body_len, "pretty body (%zu bytes) not longer than compact (%zu)", a.body_len, b.body_len);
        CHECK_EQ_INT(e2e_jnum(a.json, "input_dim"), 784, "pretty body is the same JSON");
    }
    e2e_resp_free(&a);
    e2e_resp_free(&b);

    char v1[256], v2[256];
    e2e_req rq = {.method = "GET", .path = "/healthz", .headers = {"X-Request-Id: e2e-req-42"}};
    e2e_request(&S, &rq, &a);
    CHECK(e2e_header(&a, "X-Request-Id", v1, sizeof v1) && strcmp(v1, "e2e-req-42") == 0, "X-Request-Id not echoed");
    e2e_resp_free(&a);
    e2e_get(&S, "/healthz", &a);
    e2e_get(&S, "/healthz", &b);
    const char *g1 = e2e_header(&a, "X-Request-Id", v1, sizeof v1), *g2 = e2e_header(&b, "X-Request-Id", v2, sizeof v2);
    CHECK(g1 && *g1 && g2 && *g2 && strcmp(g1, g2) != 0,
          "X-Request-Id: want a generated, distinct id per request (%s, %s)", g1 ? g1 : "-", g2 ? g2 : "-");
    e2e_resp_free(&a);
    e2e_resp_free(&b);
    /* the access log (text) has one line per request with method, path, status and id; lines gather
     * for --log-flush (10 ms by default) before one write */
    const char *want[] = {"GET /healthz 200", "id=e2e-req-42", NULL};
    CHECK(e2e_wait_file(S.log, want, e2e_slow() ? 20 : 5),
          "access log: no \"GET /healthz 200 ... id=e2e-req-42\" line");
    /* errors carry the id too */
    e2e_req rq2 = {.method = "GET", .path = "/no/such/route", .headers = {"X-Request-Id: e2e-err-7"}};
    e2e_request(&S, &rq2, &a);
    CHECK(e2e_header(&a, "X-Request-Id", v1, sizeof v1) && strcmp(v1, "e2e-err-7") == 0,
          "X-Request-Id not echoed on an error");
    e2e_resp_free(&a);
}

/* Sum of the samples of metric lines whose text contains every needle. */
static double metric_sum(const char *text, const char *name, const char *needle1, const char *needle2) {
    double sum = 0;
    int found = 0;
    size_t nl = strlen(name);
    for (const char *p = text; p && *p;) {
        const char *e = strchr(p, '\n');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char line[1024];
        if (len < sizeof line && *p != '#' && strncmp(p, name, nl) == 0 && (p[nl] == '{' || p[nl] == ' ')) {
            memcpy(line, p, len);
            line[len] = '\0';
            if ((!needle1 || strstr(line, needle1)) && (!needle2 || strstr(line, needle2))) {
                const char *sp = strrchr(line, ' ');
                if (sp) {
                    sum += strtod(sp + 1, NULL);
                    found = 1;
                }
            }
        }
        p = e ? e + 1 : NULL;
    }
    return found ? sum : NAN;
}

/* Name of the first metric of the given TYPE whose name contains part. */
static int metric_named(const char *text, const char *type, const char *part, char *out, size_t cap) {
    for (const char *p = strstr(text, "# TYPE "); p; p = strstr(p + 1, "# TYPE ")) {
        char name[200], t[40];
        if (sscanf(p, "# TYPE %199s %39s", name, t) == 2 && strcmp(t, type) == 0 && strstr(name, part)) {
            snprintf(out, cap, "%s", name);
            return 1;
        }
    }
    return 0;
}

static void test_metrics(void) {
    e2e_resp r;
    e2e_get(&S, "/metrics", &r);
    char ct[128], name[200];
    CHECK(r.status == 200, "GET /metrics: status %ld", r.status);
    CHECK(e2e_header(&r, "Content-Type", ct, sizeof ct) && strstr(ct, "text/plain"),
          "/metrics Content-Type: want text/plain (Prometheus text format)");
    const char *t = r.body;
    /* requests by route and status: a counter with route and status labels that saw our embed calls */
    if (CHECK(metric_named(t, "counter", "request", name, sizeof name),
              "/metrics: no request counter (# TYPE ... counter)")) {
        double n = metric_sum(t, name, "/v1/embed\"", "\"200\"");
        CHECK(n >= 5, "/metrics %s{route=\"/v1/embed\",status=\"200\"}: %g, want >= 5", name, n);
        double e404 = metric_sum(t, name, "\"404\"", NULL);
        CHECK(e404 >= 1, "/metrics %s: no 404 counted (%g)", name, e404);
    }
    /* latency histogram by route */
    if (CHECK(metric_named(t, "histogram", "seconds", name, sizeof name) ||
                  metric_named(t, "histogram", "latency", name, sizeof name),
              "/metrics: no latency histogram")) {
        char bucket[240];
        snprintf(bucket, sizeof bucket, "%s_bucket", name);
        double inf = metric_sum(t, bucket, "le=\"+Inf\"", "/v1/embed\"");
        CHECK(inf >= 5, "/metrics %s{le=\"+Inf\",route=\"/v1/embed\"}: %g, want >= 5", bucket, inf);
    }
    CHECK(metric_named(t, "gauge", "flight", name, sizeof name), "/metrics: no in-flight gauge");
    CHECK(metric_named(t, "histogram", "batch", name, sizeof name), "/metrics: no batch size histogram");
    if (CHECK(metric_named(t, "gauge", "model_info", name, sizeof name), "/metrics: no model info gauge"))
        CHECK(metric_sum(t, name, e2e_jstr(G, "model.sha256"), NULL) == 1,
              "/metrics %s: no series with the model's sha256 and value 1", name);
    /* triplets scored by category: the given triplet cases scored easy, semi-hard and hard ones */
    if (CHECK(metric_named(t, "counter", "triplets", name, sizeof name), "/metrics: no triplets-by-category counter")) {
        CHECK(metric_sum(t, name, "semi-hard\"", NULL) > 0, "/metrics %s: no semi-hard triplets counted", name);
        CHECK(metric_sum(t, name, "\"hard\"", NULL) > 0, "/metrics %s: no hard triplets counted", name);
        CHECK(metric_sum(t, name, "\"easy\"", NULL) > 0, "/metrics %s: no easy triplets counted", name);
    }
    e2e_resp_free(&r);
}

/* ---- the error codes a single server can show ------------------------ */

static void test_errors(void) {
    e2e_resp r;
    char allow[128];
    e2e_get(&S, "/no/such/route", &r);
    CHECK_ERROR(&r, 404, "not_found", NULL, "GET unknown path");
    e2e_resp_free(&r);

    e2e_get(&S, "/v1/embed", &r);
    CHECK_ERROR(&r, 405, "method_not_allowed", NULL, "GET /v1/embed");
    CHECK(e2e_header(&r, "Allow", allow, sizeof allow) && strstr(allow, "POST"), "405 without Allow: POST");
    e2e_resp_free(&r);
    e2e_req del = {.method = "DELETE", .path = "/v1/model"};
    e2e_request(&S, &del, &r);
    CHECK_ERROR(&r, 405, "method_not_allowed", NULL, "DELETE /v1/model");
    CHECK(e2e_header(&r, "Allow", allow, sizeof allow) && strstr(allow, "GET"), "405 without Allow: GET");
    e2e_resp_free(&r);

    e2e_post(&S, "/v1/embed", "{\"inputs\": [1, 2,", &r);
    CHECK_ERROR(&r, 400, "invalid_json", NULL, "truncated JSON");
    e2e_resp_free(&r);

    e2e_req rq = {
        .method = "POST", .path = "/v1/embed", .headers = {"Content-Type: text/plain"}, .body = "{\"inputs\": [0]}"};
    e2e_request(&S, &rq, &r);
    CHECK_ERROR(&r, 415, "unsupported_media_type", NULL, "text/plain body");
    e2e_resp_free(&r);

    /* 413: the server runs with --max-body 1000000 */
    size_t big = 1200000;
    char *body = malloc(big + 1);
    memset(body, ' ', big);
    memcpy(body, "{\"inputs\":", 10);
    body[big - 1] = '}';
    body[big] = '\0';
    e2e_post(&S, "/v1/embed", body, &r);
    CHECK_ERROR(&r, 413, "payload_too_large", NULL, "body over --max-body");
    e2e_resp_free(&r);
    free(body);

    /* 422 naming the culprit: dimension mismatch in the second vector */
    cJSON *q = cJSON_CreateObject();
    cJSON *in = slice("x", 0, 2);
    cJSON_DeleteItemFromArray(cJSON_GetArrayItem(in, 1), 0);
    cJSON_AddItemToObject(q, "anchors", in);
    cJSON_AddItemToObject(q, "positives", slice("x", 2, 4));
    cJSON_AddItemToObject(q, "negatives", slice("x", 4, 6));
    post_obj("/v1/loss/triplet", q, &r);
    if (CHECK_ERROR(&r, 422, "invalid_input", "anchors[1]", "anchors[1] with 783 numbers")) {
        const char *m = e2e_jstr(r.json, "error.message");
        CHECK(strstr(m, "784") && strstr(m, "783"), "dimension message should name 784 and 783: %s", m);
    }
    e2e_resp_free(&r);

    /* the server is still fine */
    e2e_get(&S, "/healthz", &r);
    CHECK_EQ_INT(r.status, 200, "healthz after errors");
    e2e_resp_free(&r);
}

int main(void) {
    G = e2e_read_json("tests/golden/e2e_golden.json");

    const char *args[] = {"--max-body", "1000000", "--threads", "2", NULL};
    if (e2e_server_start(&S, args) != 0) e2e_die("tripletd did not start");
    test_health();
    test_model();
    test_openapi();
    test_embed();
    test_embeddings_openai();
    test_distance();
    test_triplet();
    test_pair();
    test_infonce();
    test_mine();
    test_pretty_and_request_id();
    test_errors();
    test_metrics();
    int st = e2e_server_stop(&S, SIGTERM, e2e_slow() ? 30 : 10);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "tripletd did not exit 0 after SIGTERM (status %d)", st);
    if (e2e_failures) e2e_server_log_tail(&S, 10);
    cJSON_Delete(G);
    return e2e_report("e2e_api");
}
