/* e2e_contract.c - regression checks for places where the server once departed from its wire contract
 * (proto/openapi.yaml; proto/DEVIATIONS.md lists what departs on purpose): the served OpenAPI document, text sent
 * to /v1/embeddings, the metric default chain (flags, then the model's metadata, then sqeuclidean), OpenAI request
 * fields, single vectors and headers. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define IN 784

static char dir[256];

/* Every "description" and "summary" in the document is a string: YAML flow
 * mappings turn `{description: 1, then ...}` into a number and a stray key,
 * which made /openapi.json an invalid OpenAPI document. */
static int walk_texts(const cJSON *n, char *where, size_t cap) {
    int bad = 0, props = n->string && strcmp(n->string, "properties") == 0; /* members are names there */
    const cJSON *c;
    cJSON_ArrayForEach(c, n) {
        if (!props && c->string && (strcmp(c->string, "description") == 0 || strcmp(c->string, "summary") == 0) &&
            !cJSON_IsString(c) && !bad) {
            snprintf(where, cap, "%s", n->string ? n->string : "?");
            bad = 1;
        }
        if (!bad && (cJSON_IsObject(c) || cJSON_IsArray(c))) bad = walk_texts(c, where, cap);
    }
    return bad;
}

static void test_openapi(const e2e_server *s) {
    static const char *const paths[] = {"/healthz",         "/readyz",       "/metrics",         "/openapi.json",
                                        "/v1/model",        "/v1/embed",     "/v1/embeddings",   "/v1/distance",
                                        "/v1/loss/triplet", "/v1/loss/pair", "/v1/loss/infonce", "/v1/mine",
                                        "/v1/admin/reload", "/v1/search",    "/v1/gallery",      NULL};
    e2e_resp r;
    e2e_req rq = {.method = "GET", .path = "/openapi.json", .headers = {"Authorization: Bearer k"}};
    e2e_request(s, &rq, &r);
    if (CHECK(r.status == 200 && r.json, "GET /openapi.json: status %ld", r.status)) {
        const char *v = e2e_jstr(r.json, "openapi");
        CHECK(v && strncmp(v, "3.0.", 4) == 0, "openapi version: %s", v ? v : "(none)");
        char where[128] = "";
        CHECK(!walk_texts(r.json, where, sizeof where), "a description or summary that is not a string, under \"%s\"",
              where);
        const cJSON *p = cJSON_GetObjectItemCaseSensitive(r.json, "paths");
        for (int i = 0; paths[i]; i++)
            CHECK(cJSON_GetObjectItemCaseSensitive(p, paths[i]) != NULL, "/openapi.json lacks path %s", paths[i]);
    }
    e2e_resp_free(&r);
}

/* A body {"input": <input>} (or with extra members) for /v1/embeddings. */
static void expect_text_refused(const e2e_server *s, const char *body, const char *field) {
    e2e_resp r;
    e2e_req rq = {.method = "POST", .path = "/v1/embeddings", .body = body, .headers = {"Authorization: Bearer k"}};
    e2e_request(s, &rq, &r);
    if (CHECK_ERROR(&r, 422, "invalid_input", field, body)) {
        const char *m = e2e_jstr(r.json, "error.message");
        CHECK(m && strstr(m, "text input is not supported"), "%s: message does not say text is unsupported: %s", body,
              m ? m : "(none)");
    }
    e2e_resp_free(&r);
}

static char *vec_json(float base, int n) {
    char *b = malloc((size_t)n * 16 + 8);
    size_t len = 0;
    if (!b) e2e_die("out of memory");
    b[len++] = '[';
    for (int j = 0; j < n; j++) len += (size_t)sprintf(b + len, "%s%g", j ? "," : "", (double)(base + (float)(j % 13)));
    b[len++] = ']';
    b[len] = 0;
    return b;
}

static void test_openai_fields(const e2e_server *s) {
    expect_text_refused(s, "{\"input\":\"a photo of a cat\"}", "input");
    expect_text_refused(s, "{\"input\":[\"hello\",\"world\"],\"model\":\"text-embedding-3-small\"}", "input[0]");
    expect_text_refused(s, "{\"input\":\"hello\"}", "input");

    char *v = vec_json(1, IN), body[20000];
    e2e_resp r;
    /* OpenAI request fields: user and dimensions (equal to the model's) accepted */
    snprintf(body, sizeof body, "{\"input\":%s,\"model\":\"any\",\"user\":\"u-7\",\"dimensions\":32}", v);
    e2e_req rq = {.method = "POST", .path = "/v1/embeddings", .body = body, .headers = {"Authorization: Bearer k"}};
    e2e_request(s, &rq, &r);
    if (CHECK(r.status == 200 && r.json, "user + dimensions 32: status %ld %s", r.status, r.body ? r.body : "")) {
        CHECK_STR(e2e_jstr(r.json, "object"), "list", "object");
        CHECK_STR(e2e_jstr(r.json, "data.0.object"), "embedding", "data[0].object");
        CHECK_EQ_INT(e2e_jnum(r.json, "data.0.index"), 0, "data[0].index");
        CHECK_EQ_INT(cJSON_GetArraySize(e2e_jget(r.json, "data.0.embedding")), 32, "a single vector is a batch of one");
        CHECK_EQ_INT(e2e_jnum(r.json, "usage.prompt_tokens"), 0, "usage.prompt_tokens");
        CHECK_EQ_INT(e2e_jnum(r.json, "usage.total_tokens"), 0, "usage.total_tokens");
    }
    e2e_resp_free(&r);
    snprintf(body, sizeof body, "{\"input\":%s,\"dimensions\":16}", v);
    e2e_request(s, &rq, &r);
    CHECK_ERROR(&r, 422, "invalid_input", "dimensions", "dimensions 16 on a 32-d model");
    e2e_resp_free(&r);
    free(v);
}

/* Distances between two raw 2-d vectors with the server's default metric. */
static const char *default_metric(const e2e_server *s) {
    static char name[32];
    e2e_resp r;
    e2e_req rq = {.method = "POST",
                  .path = "/v1/distance",
                  .body = "{\"a\":[3,4],\"b\":[0,0],\"embed\":false}",
                  .headers = {"Authorization: Bearer k"}};
    name[0] = 0;
    e2e_request(s, &rq, &r);
    if (CHECK(r.status == 200 && r.json, "single raw vectors a, b: status %ld", r.status)) {
        const char *m = e2e_jstr(r.json, "metric");
        snprintf(name, sizeof name, "%s", m ? m : "");
        CHECK_EQ_INT(cJSON_GetArraySize(e2e_jget(r.json, "distances")), 1, "single vectors: one distance");
    }
    e2e_resp_free(&r);
    return name;
}

/* Copy the e2e model with its "metric" metadata changed in place (the JSON
 * header keeps its length: the value is padded with spaces). */
static void model_with_metric(const char *metric, const char *out) {
    size_t len;
    char *b = e2e_read_file(e2e_root_path("tests/data/e2e-model.safetensors"), &len);
    if (!b || len < 8) e2e_die("cannot read tests/data/e2e-model.safetensors");
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | (unsigned char)b[i];
    const char *key = "\"metric\":\"sqeuclidean\"";
    char *at = NULL;
    for (size_t i = 8; i + strlen(key) <= 8 + hl && !at; i++)
        if (memcmp(b + i, key, strlen(key)) == 0) at = b + i;
    if (!at) e2e_die("e2e model header has no %s", key);
    char repl[64];
    if (metric)
        snprintf(repl, sizeof repl, "\"metric\":\"%s\"", metric);
    else
        snprintf(repl, sizeof repl, "\"metriX\":\"sqeuclidean\""); /* no metric key (an unknown one instead) */
    size_t rl = strlen(repl);
    if (rl > strlen(key)) e2e_die("metric name too long");
    memcpy(at, repl, rl);
    memset(at + rl, ' ', strlen(key) - rl);
    if (e2e_write_file(out, b, len) != 0) e2e_die("cannot write %s", out);
    free(b);
}

static void test_metric_chain(void) {
    static const struct {
        const char *model_metric; /* NULL: metadata without metric */
        const char *flag;         /* NULL: no --metric */
        const char *want;
    } cases[] = {
        {"euclidean", NULL, "euclidean"}, /* the model's metadata */
        {"dot", "cosine", "cosine"},      /* the flag over the model */
        {NULL, NULL, "sqeuclidean"},      /* neither: sqeuclidean */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/model-%zu.safetensors", dir, i);
        model_with_metric(cases[i].model_metric, path);
        const char *args[] = {
            "--model",     path, "--api-key", "k", "--log-format", "off", cases[i].flag ? "--metric" : NULL,
            cases[i].flag, NULL};
        e2e_server s;
        if (e2e_server_start(&s, args) != 0) {
            CHECK(0, "case %zu: tripletd did not start with model metric %s", i,
                  cases[i].model_metric ? cases[i].model_metric : "(none)");
            continue;
        }
        CHECK_STR(default_metric(&s), cases[i].want, "default metric");
        e2e_resp r;
        e2e_req rq = {.method = "GET", .path = "/v1/model", .headers = {"Authorization: Bearer k"}};
        e2e_request(&s, &rq, &r);
        CHECK_STR(e2e_jstr(r.json, "metric"), cases[i].want, "/v1/model metric");
        e2e_resp_free(&r);
        e2e_server_stop(&s, 15, 10);
    }
}

static void test_headers(const e2e_server *s) {
    e2e_resp r;
    char buf[128];
    /* X-Request-Id echoed when sent, generated otherwise */
    e2e_req rq = {.method = "GET", .path = "/healthz", .headers = {"X-Request-Id: audit-42"}};
    e2e_request(s, &rq, &r);
    CHECK_STR(e2e_header(&r, "X-Request-Id", buf, sizeof buf), "audit-42", "X-Request-Id echoed");
    e2e_resp_free(&r);
    e2e_get(s, "/healthz", &r);
    CHECK(e2e_header(&r, "X-Request-Id", buf, sizeof buf) && buf[0], "X-Request-Id generated");
    e2e_resp_free(&r);
    /* 401 with WWW-Authenticate: Bearer; /healthz, /readyz, /metrics open */
    e2e_get(s, "/v1/model", &r);
    CHECK_ERROR(&r, 401, "unauthorized", NULL, "no key");
    CHECK(e2e_header(&r, "WWW-Authenticate", buf, sizeof buf) && strncmp(buf, "Bearer", 6) == 0,
          "401 WWW-Authenticate: %s", e2e_header(&r, "WWW-Authenticate", buf, sizeof buf) ? buf : "(none)");
    e2e_resp_free(&r);
    const char *open[] = {"/healthz", "/readyz", "/metrics"};
    for (int i = 0; i < 3; i++) {
        e2e_get(s, open[i], &r);
        CHECK(r.status == 200, "%s without a key: %ld", open[i], r.status);
        e2e_resp_free(&r);
    }
    /* 405 with Allow; ?pretty=1 indents */
    e2e_req g = {.method = "GET", .path = "/v1/distance", .headers = {"Authorization: Bearer k"}};
    e2e_request(s, &g, &r);
    CHECK_ERROR(&r, 405, "method_not_allowed", NULL, "GET /v1/distance");
    CHECK(e2e_header(&r, "Allow", buf, sizeof buf) && strstr(buf, "POST"), "405 Allow: %s",
          e2e_header(&r, "Allow", buf, sizeof buf) ? buf : "(none)");
    e2e_resp_free(&r);
    e2e_req p = {.method = "GET", .path = "/v1/model?pretty=1", .headers = {"Authorization: Bearer k"}};
    e2e_request(s, &p, &r);
    CHECK(r.status == 200 && r.json && strchr(r.body, '\n'), "?pretty=1 indents: %.60s", r.body ? r.body : "");
    e2e_resp_free(&r);
}

int main(void) {
    e2e_mkdtemp(dir, sizeof dir, "e2e_contract");
    e2e_server s;
    const char *args[] = {"--api-key", "k", "--log-format", "off", NULL};
    if (e2e_server_start(&s, args) != 0) e2e_die("tripletd did not start");
    test_openapi(&s);
    test_openai_fields(&s);
    test_headers(&s);
    e2e_server_stop(&s, 15, 10);
    test_metric_chain();
    for (int i = 0; i < 3; i++) {
        char path[400];
        snprintf(path, sizeof path, "%s/model-%d.safetensors", dir, i);
        remove(path);
    }
    remove(dir);
    return e2e_report("e2e_contract");
}
