/* e2e_hostile.c - a table of hostile requests: each gets its documented 4xx JSON error and /healthz still answers. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "harness.h"

/* The server runs with these limits; the table's sizes are relative to them. */
#define MAX_BODY 300000
#define MAX_BATCH 8
#define IN_DIM 784

typedef struct {
    const char *name;
    const char *method, *path;
    const char *ctype; /* NULL: application/json; "": no Content-Type at all */
    const char *body;  /* NULL: none. "$X" = a valid 784-d vector, "$X783"/"$X785" wrong sizes, "@gen" = generated */
    int chunked;
    long status;
    const char *type;  /* error type, NULL for a success row */
    const char *field; /* expected error field; NULL: not checked, "": none */
} row;

static const row TABLE[] = {
    /* malformed JSON -> 400 invalid_json */
    {"empty body", "POST", "/v1/embed", NULL, "", 0, 400, "invalid_json", NULL},
    {"lone brace", "POST", "/v1/embed", NULL, "{", 0, 400, "invalid_json", NULL},
    {"truncated array", "POST", "/v1/embed", NULL, "{\"inputs\": [1, 2", 0, 400, "invalid_json", NULL},
    {"truncated string", "POST", "/v1/embed", NULL, "{\"inputs\": \"AAAA", 0, 400, "invalid_json", NULL},
    {"trailing comma", "POST", "/v1/embed", NULL, "{\"inputs\": [1, 2,]}", 0, 400, "invalid_json", NULL},
    {"single quotes", "POST", "/v1/embed", NULL, "{'inputs': [1]}", 0, 400, "invalid_json", NULL},
    {"missing comma", "POST", "/v1/embed", NULL, "{\"inputs\": [1 2]}", 0, 400, "invalid_json", NULL},
    {"garbage after JSON", "POST", "/v1/embed", NULL, "{\"inputs\": $X} xyz", 0, 400, "invalid_json", NULL},
    {"NaN token", "POST", "/v1/distance", NULL, "{\"a\": [NaN], \"b\": [1], \"embed\": false}", 0, 400, "invalid_json",
     NULL},
    {"Infinity token", "POST", "/v1/distance", NULL, "{\"a\": [Infinity], \"b\": [1], \"embed\": false}", 0, 400,
     "invalid_json", NULL},
    {"-Infinity token", "POST", "/v1/distance", NULL, "{\"a\": [-Infinity], \"b\": [1], \"embed\": false}", 0, 400,
     "invalid_json", NULL},
    {"100k nested arrays", "POST", "/v1/embed", NULL, "@deep-array", 0, 400, "invalid_json", NULL},
    {"20k nested objects", "POST", "/v1/embed", NULL, "@deep-object", 0, 400, "invalid_json", NULL},
    {"NUL byte in body", "POST", "/v1/embed", NULL, "@nul-byte", 0, 400, "invalid_json", NULL},
    /* valid JSON, wrong shape or values -> 422 invalid_input naming the field */
    {"top-level array", "POST", "/v1/embed", NULL, "[1, 2, 3]", 0, 422, "invalid_input", NULL},
    {"top-level string", "POST", "/v1/embed", NULL, "\"inputs\"", 0, 422, "invalid_input", NULL},
    {"missing inputs", "POST", "/v1/embed", NULL, "{}", 0, 422, "invalid_input", "inputs"},
    {"null inputs", "POST", "/v1/embed", NULL, "{\"inputs\": null}", 0, 422, "invalid_input", "inputs"},
    {"number as inputs", "POST", "/v1/embed", NULL, "{\"inputs\": 5}", 0, 422, "invalid_input", "inputs"},
    {"object as inputs", "POST", "/v1/embed", NULL, "{\"inputs\": {\"x\": 1}}", 0, 422, "invalid_input", "inputs"},
    {"empty inputs", "POST", "/v1/embed", NULL, "{\"inputs\": []}", 0, 422, "invalid_input", "inputs"},
    {"empty vector", "POST", "/v1/embed", NULL, "{\"inputs\": [[]]}", 0, 422, "invalid_input", "inputs[0]"},
    {"783-d vector", "POST", "/v1/embed", NULL, "{\"inputs\": $X783}", 0, 422, "invalid_input", "inputs"},
    {"785-d vector", "POST", "/v1/embed", NULL, "{\"inputs\": [$X, $X785]}", 0, 422, "invalid_input", "inputs[1]"},
    {"ragged batch", "POST", "/v1/embed", NULL, "{\"inputs\": [$X, $X, $X783]}", 0, 422, "invalid_input", "inputs[2]"},
    {"1e400 component", "POST", "/v1/embed", NULL, "{\"inputs\": [[1e400, $R783]]}", 0, 422, "invalid_input",
     "inputs[0][0]"},
    {"-1e400 component", "POST", "/v1/embed", NULL, "{\"inputs\": [-1e400, $R783]}", 0, 422, "invalid_input",
     "inputs[0]"},
    {"1e39 (over float32)", "POST", "/v1/embed", NULL, "{\"inputs\": [$X, [$R783, 1e39]]}", 0, 422, "invalid_input",
     "inputs[1][783]"},
    {"string component", "POST", "/v1/embed", NULL, "{\"inputs\": [[\"0.5\", $R783]]}", 0, 422, "invalid_input",
     "inputs[0][0]"},
    {"null component", "POST", "/v1/embed", NULL, "{\"inputs\": [[$R783, null]]}", 0, 422, "invalid_input",
     "inputs[0][783]"},
    {"bool component", "POST", "/v1/embed", NULL, "{\"inputs\": [[true, $R783]]}", 0, 422, "invalid_input",
     "inputs[0][0]"},
    {"nested vector", "POST", "/v1/embed", NULL, "{\"inputs\": [[[1], $R783]]}", 0, 422, "invalid_input",
     "inputs[0][0]"},
    {"vector of a number", "POST", "/v1/embed", NULL, "{\"inputs\": [$X, 3]}", 0, 422, "invalid_input", "inputs[1]"},
    {"unknown field", "POST", "/v1/embed", NULL, "{\"inputs\": $X, \"bogus\": 1}", 0, 422, "invalid_input", "bogus"},
    {"bad encoding_format", "POST", "/v1/embed", NULL, "{\"inputs\": $X, \"encoding_format\": \"hex\"}", 0, 422,
     "invalid_input", "encoding_format"},
    {"normalize as string", "POST", "/v1/embed", NULL, "{\"inputs\": $X, \"normalize\": \"yes\"}", 0, 422,
     "invalid_input", "normalize"},
    {"bad base64 chars", "POST", "/v1/embed", NULL, "{\"inputs\": \"@@@@!!!!\"}", 0, 422, "invalid_input", "inputs"},
    {"base64 of 3 bytes", "POST", "/v1/embed", NULL, "{\"inputs\": [\"AAAA\"]}", 0, 422, "invalid_input", "inputs[0]"},
    {"base64 length 1 mod 4", "POST", "/v1/embed", NULL, "{\"inputs\": \"AAAAA\"}", 0, 422, "invalid_input", "inputs"},
    {"base64 of 6 bytes", "POST", "/v1/embed", NULL, "{\"inputs\": \"AAAAAAAA\"}", 0, 422, "invalid_input", "inputs"},
    {"base64 with NaN", "POST", "/v1/embed", NULL, "{\"inputs\": [\"@b64-nan\"]}", 0, 422, "invalid_input",
     "inputs[0][100]"},
    {"base64 783 floats", "POST", "/v1/embed", NULL, "{\"inputs\": [\"@b64-783\"]}", 0, 422, "invalid_input",
     "inputs[0]"},
    {"text for OpenAI input", "POST", "/v1/embeddings", NULL, "{\"input\": \"hello world\"}", 0, 422, "invalid_input",
     "input"},
    {"batch over --max-batch", "POST", "/v1/embed", NULL, "@batch-over", 0, 422, "invalid_input", "inputs"},
    {"distance dim mismatch", "POST", "/v1/distance", NULL, "{\"a\": [[1, 2]], \"b\": [[1, 2, 3]], \"embed\": false}",
     0, 422, "invalid_input", "b[0]"},
    {"distance count mismatch", "POST", "/v1/distance", NULL,
     "{\"a\": [[1, 2]], \"b\": [[1, 2], [3, 4]], \"embed\": false}", 0, 422, "invalid_input", "b"},
    {"unknown metric", "POST", "/v1/distance", NULL,
     "{\"a\": [1], \"b\": [1], \"embed\": false, \"metric\": \"manhattan\"}", 0, 422, "invalid_input", "metric"},
    {"metric as number", "POST", "/v1/distance", NULL, "{\"a\": [1], \"b\": [1], \"embed\": false, \"metric\": 2}", 0,
     422, "invalid_input", "metric"},
    {"pairwise as string", "POST", "/v1/distance", NULL,
     "{\"a\": [1], \"b\": [1], \"embed\": false, \"pairwise\": \"true\"}", 0, 422, "invalid_input", "pairwise"},
    {"embed as number", "POST", "/v1/distance", NULL, "{\"a\": [1], \"b\": [1], \"embed\": 0}", 0, 422, "invalid_input",
     "embed"},
    {"margin as string", "POST", "/v1/loss/triplet", NULL,
     "{\"anchors\": [1], \"positives\": [1], \"negatives\": [2], \"embed\": false, \"margin\": \"0.2\"}", 0, 422,
     "invalid_input", "margin"},
    {"margin 1e400", "POST", "/v1/loss/triplet", NULL,
     "{\"anchors\": [1], \"positives\": [1], \"negatives\": [2], \"embed\": false, \"margin\": 1e400}", 0, 422,
     "invalid_input", "margin"},
    {"pair loss for triplets", "POST", "/v1/loss/triplet", NULL,
     "{\"anchors\": [1], \"positives\": [1], \"negatives\": [2], \"embed\": false, \"loss\": \"contrastive\"}", 0, 422,
     "invalid_input", "loss"},
    {"bad reduction", "POST", "/v1/loss/triplet", NULL,
     "{\"anchors\": [1], \"positives\": [1], \"negatives\": [2], \"embed\": false, \"reduction\": \"avg\"}", 0, 422,
     "invalid_input", "reduction"},
    {"missing negatives", "POST", "/v1/loss/triplet", NULL, "{\"anchors\": [1], \"positives\": [1], \"embed\": false}",
     0, 422, "invalid_input", "negatives"},
    {"ragged triplet counts", "POST", "/v1/loss/triplet", NULL,
     "{\"anchors\": [[1], [2]], \"positives\": [[1], [2]], \"negatives\": [[3]], \"embed\": false}", 0, 422,
     "invalid_input", "negatives"},
    {"label 2", "POST", "/v1/loss/pair", NULL,
     "{\"a\": [[1], [2]], \"b\": [[1], [3]], \"labels\": [1, 2], \"embed\": false}", 0, 422, "invalid_input",
     "labels[1]"},
    {"label count", "POST", "/v1/loss/pair", NULL,
     "{\"a\": [[1], [2]], \"b\": [[1], [3]], \"labels\": [1], \"embed\": false}", 0, 422, "invalid_input", "labels"},
    {"label 0.5", "POST", "/v1/loss/pair", NULL,
     "{\"a\": [[1], [2]], \"b\": [[1], [3]], \"labels\": [0.5, 1], \"embed\": false}", 0, 422, "invalid_input",
     "labels[0]"},
    {"temperature 0", "POST", "/v1/loss/infonce", NULL,
     "{\"a\": [[1, 0], [0, 1]], \"b\": [[1, 0], [0, 1]], \"embed\": false, \"temperature\": 0}", 0, 422,
     "invalid_input", "temperature"},
    {"tau_plus 1", "POST", "/v1/loss/infonce", NULL,
     "{\"a\": [[1, 0], [0, 1]], \"b\": [[1, 0], [0, 1]], \"embed\": false, \"tau_plus\": 1}", 0, 422, "invalid_input",
     "tau_plus"},
    {"bad estimator", "POST", "/v1/loss/infonce", NULL,
     "{\"a\": [[1, 0], [0, 1]], \"b\": [[1, 0], [0, 1]], \"embed\": false, \"estimator\": \"medium\"}", 0, 422,
     "invalid_input", "estimator"},
    {"infonce single pair", "POST", "/v1/loss/infonce", NULL, "{\"a\": [[1, 0]], \"b\": [[1, 0]], \"embed\": false}", 0,
     422, "invalid_input", NULL},
    {"bad strategy", "POST", "/v1/mine", NULL,
     "{\"inputs\": [[1], [2]], \"labels\": [0, 1], \"strategy\": \"random\", \"embed\": false}", 0, 422,
     "invalid_input", "strategy"},
    {"string labels", "POST", "/v1/mine", NULL,
     "{\"inputs\": [[1], [2]], \"labels\": [\"cat\", \"dog\"], \"strategy\": \"batch-hard\", \"embed\": false}", 0, 422,
     "invalid_input", "labels[0]"},
    {"label 1e300", "POST", "/v1/mine", NULL,
     "{\"inputs\": [[1], [2]], \"labels\": [1e300, 1], \"strategy\": \"batch-hard\", \"embed\": false}", 0, 422,
     "invalid_input", "labels[0]"},
    {"max_triplets -1", "POST", "/v1/mine", NULL,
     "{\"inputs\": [[1], [2]], \"labels\": [0, 1], \"strategy\": \"batch-all\", \"embed\": false, \"max_triplets\": "
     "-1}",
     0, 422, "invalid_input", "max_triplets"},
    /* sizes -> 413 */
    {"body over --max-body", "POST", "/v1/embed", NULL, "@oversize", 0, 413, "payload_too_large", NULL},
    {"chunked body over --max-body", "POST", "/v1/embed", NULL, "@oversize", 1, 413, "payload_too_large", NULL},
    /* methods, paths, media types */
    {"GET on a POST route", "GET", "/v1/embed", NULL, NULL, 0, 405, "method_not_allowed", NULL},
    {"PUT on a POST route", "PUT", "/v1/distance", NULL, "{}", 0, 405, "method_not_allowed", NULL},
    {"POST on a GET route", "POST", "/healthz", NULL, "{}", 0, 405, "method_not_allowed", NULL},
    {"DELETE /v1/model", "DELETE", "/v1/model", NULL, NULL, 0, 405, "method_not_allowed", NULL},
    {"unknown path", "GET", "/v2/embed", NULL, NULL, 0, 404, "not_found", NULL},
    {"dot segments", "GET", "/v1/%2e%2e/%2e%2e/etc/passwd", NULL, NULL, 0, 404, "not_found", NULL},
    {"trailing slash", "POST", "/v1/embed/", NULL, "{\"inputs\": $X}", 0, 404, "not_found", NULL},
    {"text/plain body", "POST", "/v1/embed", "text/plain", "{\"inputs\": $X}", 0, 415, "unsupported_media_type", NULL},
    {"form body", "POST", "/v1/embed", "application/x-www-form-urlencoded", "inputs=1", 0, 415,
     "unsupported_media_type", NULL},
    {"no Content-Type", "POST", "/v1/embed", "", "{\"inputs\": $X}", 0, 415, "unsupported_media_type", NULL},
    {"application/jsonx", "POST", "/v1/embed", "application/jsonx", "{\"inputs\": $X}", 0, 415,
     "unsupported_media_type", NULL},
    /* controls: what must keep working next to the hostile rows */
    {"control: charset parameter", "POST", "/v1/embed", "application/json; charset=utf-8", "{\"inputs\": $X}", 0, 200,
     NULL, NULL},
    {"control: chunked body", "POST", "/v1/embed", NULL, "{\"inputs\": [$X, $X]}", 1, 200, NULL, NULL},
    {"control: batch at the limit", "POST", "/v1/embed", NULL, "@batch-limit", 0, 200, NULL, NULL},
};

/* Strings for the templates. */
static char *vec_json(int n, int bracket) {
    char *s = malloc((size_t)n * 8 + 4), *p = s;
    if (bracket) *p++ = '[';
    for (int i = 0; i < n; i++) p += sprintf(p, "%s0.%d", i ? "," : "", i % 10);
    if (bracket) *p++ = ']';
    *p = '\0';
    return s;
}

static char *b64_vec(int n, int nan_at) {
    float *v = malloc((size_t)n * sizeof *v);
    for (int i = 0; i < n; i++) v[i] = (float)(i % 7) * 0.125f;
    if (nan_at >= 0) v[nan_at] = NAN;
    char *s = e2e_b64_floats(v, (size_t)n);
    free(v);
    return s;
}

/* Build a row's body; *len receives the length (bodies may hold NUL). */
static char *make_body(const char *tpl, size_t *len) {
    e2e_buf b = {0};
    e2e_buf_add(&b, "", 0);
    if (strcmp(tpl, "@deep-array") == 0) {
        for (int i = 0; i < 100000; i++) e2e_buf_add(&b, "[", 1);
    } else if (strcmp(tpl, "@deep-object") == 0) {
        for (int i = 0; i < 20000; i++) e2e_buf_str(&b, "{\"a\":");
        e2e_buf_str(&b, "1");
        for (int i = 0; i < 20000; i++) e2e_buf_add(&b, "}", 1);
    } else if (strcmp(tpl, "@nul-byte") == 0) {
        e2e_buf_add(&b, "{\"inputs\": [1,\0 2]}", 19);
    } else if (strcmp(tpl, "@oversize") == 0) {
        e2e_buf_str(&b, "{\"inputs\": [");
        char *v = vec_json(IN_DIM, 1);
        while (b.n < MAX_BODY + 100000) {
            e2e_buf_str(&b, v);
            e2e_buf_str(&b, ",");
        }
        e2e_buf_str(&b, v);
        e2e_buf_str(&b, "]}");
        free(v);
    } else if (strcmp(tpl, "@batch-over") == 0 || strcmp(tpl, "@batch-limit") == 0) {
        int n = tpl[7] == 'o' ? MAX_BATCH + 1 : MAX_BATCH;
        char *v = b64_vec(IN_DIM, -1);
        e2e_buf_str(&b, "{\"inputs\": [");
        for (int i = 0; i < n; i++) {
            e2e_buf_str(&b, i ? ",\"" : "\"");
            e2e_buf_str(&b, v);
            e2e_buf_str(&b, "\"");
        }
        e2e_buf_str(&b, "]}");
        free(v);
    } else {
        char *x = vec_json(IN_DIM, 1), *x783 = vec_json(783, 1), *x785 = vec_json(785, 1), *r783 = vec_json(783, 0);
        char *bnan = b64_vec(IN_DIM, 100), *b783 = b64_vec(783, -1);
        struct {
            const char *key, *val;
        } subs[] = {{"$X783", x783}, {"$X785", x785},    {"$R783", r783},
                    {"$X", x},       {"@b64-nan", bnan}, {"@b64-783", b783}};
        for (const char *p = tpl; *p;) {
            size_t k;
            for (k = 0; k < sizeof subs / sizeof subs[0]; k++)
                if (strncmp(p, subs[k].key, strlen(subs[k].key)) == 0) break;
            if (k < sizeof subs / sizeof subs[0]) {
                e2e_buf_str(&b, subs[k].val);
                p += strlen(subs[k].key);
            } else {
                e2e_buf_add(&b, p, 1);
                p++;
            }
        }
        free(x), free(x783), free(x785), free(r783), free(bnan), free(b783);
    }
    *len = b.n;
    return b.p;
}

int main(void) {
    e2e_server s;
    char mb[32], bt[32];
    snprintf(mb, sizeof mb, "%d", MAX_BODY);
    snprintf(bt, sizeof bt, "%d", MAX_BATCH);
    const char *args[] = {"--max-body", mb, "--max-batch", bt, "--threads", "2", "--timeout", "2", NULL};
    if (e2e_server_start(&s, args) != 0) e2e_die("tripletd did not start");

    size_t n_rows = sizeof TABLE / sizeof TABLE[0];
    CHECK(n_rows >= 40, "the hostile table has %zu rows, want >= 40", n_rows);
    for (size_t i = 0; i < n_rows; i++) {
        const row *t = &TABLE[i];
        char what[200], ctype[160];
        snprintf(what, sizeof what, "row %zu \"%s\" (%s %s)", i, t->name, t->method, t->path);
        size_t len = 0;
        char *body = t->body ? make_body(t->body, &len) : NULL;
        e2e_req rq = {.method = t->method, .path = t->path, .body = body, .body_len = len, .chunked = t->chunked};
        if (body && len == 0) rq.body_len = 0, rq.body = ""; /* an empty body, sent with Content-Length: 0 */
        if (t->ctype && *t->ctype) {
            snprintf(ctype, sizeof ctype, "Content-Type: %s", t->ctype);
            rq.headers[0] = ctype;
        } else if (t->ctype) {
            rq.no_content_type = 1;
        }
        e2e_resp r;
        e2e_request(&s, &rq, &r);
        if (t->type) {
            CHECK_ERROR(&r, t->status, t->type, t->field, what);
            char ct[128];
            CHECK(e2e_header(&r, "Content-Type", ct, sizeof ct) && strstr(ct, "application/json"),
                  "%s: error Content-Type is not application/json", what);
        } else {
            CHECK(r.status == t->status, "%s: status %ld, want %ld (body %.200s)", what, r.status, t->status, r.body);
        }
        e2e_resp_free(&r);
        free(body);
        /* the server survived */
        e2e_get(&s, "/healthz", &r);
        if (!CHECK(r.status == 200, "%s: /healthz afterwards answered %ld (%s)", what, r.status, r.curl_err)) {
            e2e_server_log_tail(&s, 20);
            if (e2e_server_wait(&s, 0.5) != -1) e2e_die("tripletd died on %s", what);
        }
        e2e_resp_free(&r);
    }
    /* raw requests libcurl will not send: a declared size far over the limit is
     * refused before the body (none follows), conflicting or broken framing */
    static const struct {
        const char *name, *bytes;
        long status;
        const char *type;
    } RAW[] = {
        {"Content-Length of 10 GB, no body",
         "POST /v1/embed HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n",
         413, "payload_too_large"},
        {"Content-Length 2^64+1",
         "POST /v1/embed HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: "
         "18446744073709551617\r\n\r\n",
         413, NULL},
        {"bad chunk size",
         "POST /v1/embed HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: "
         "chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
         400, NULL},
        {"header without colon", "GET /healthz HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n", 400, NULL},
        {"200 KB header", "@big-header", 400, NULL},
        {"unknown HTTP version", "GET /healthz HTTP/9.9\r\nHost: t\r\n\r\n", 505, NULL},
    };
    for (size_t i = 0; i < sizeof RAW / sizeof RAW[0]; i++) {
        char what[160];
        snprintf(what, sizeof what, "raw \"%s\"", RAW[i].name);
        e2e_resp r;
        const char *bytes = RAW[i].bytes;
        char *big = NULL;
        if (strcmp(bytes, "@big-header") == 0) { /* larger than any per-connection buffer */
            size_t n = 200000;
            big = malloc(n + 100);
            int k = sprintf(big, "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: ");
            memset(big + k, 'a', n);
            strcpy(big + k + n, "\r\n\r\n");
            bytes = big;
        }
        e2e_raw_request(&s, bytes, strlen(bytes), 5000, &r);
        free(big);
        /* MHD answers framing errors itself (its own body); ours are JSON */
        if (RAW[i].type)
            CHECK_ERROR(&r, RAW[i].status, RAW[i].type, NULL, what);
        else if (RAW[i].status == 505) /* the RFC's answer to an unknown version (proto/DEVIATIONS.md) */
            CHECK(r.status == 505, "%s: status %ld, want 505 (%s)", what, r.status, r.curl_err);
        else
            CHECK(r.status >= 400 && r.status < 500, "%s: status %ld, want a 4xx (%s)", what, r.status, r.curl_err);
        e2e_resp_free(&r);
        e2e_get(&s, "/healthz", &r);
        if (!CHECK(r.status == 200, "%s: /healthz afterwards answered %ld (%s)", what, r.status, r.curl_err))
            if (e2e_server_wait(&s, 0.5) != -1) e2e_die("tripletd died on %s", what);
        e2e_resp_free(&r);
    }

    /* slowloris: a request that stops half-way through its headers is dropped
     * after --timeout 2 s of silence instead of holding the connection */
    {
        const char *half = "POST /v1/embed HTTP/1.1\r\nHost: t\r\nContent-Type: appl";
        e2e_resp r;
        e2e_raw_request(&s, half, strlen(half), 8000, &r);
        double limit = e2e_slow() ? 16 : 6;
        CHECK(r.seconds >= 1.5 && r.seconds < limit,
              "idle half request: connection closed after %.1f s, want about 2 s (--timeout 2)", r.seconds);
        printf("idle half request dropped after %.2f s\n", r.seconds);
        e2e_resp_free(&r);
    }

    /* every error above was a client mistake: none may have been a 500 */
    e2e_resp r;
    e2e_get(&s, "/metrics", &r);
    CHECK(r.status == 200 && !strstr(r.body, "\"500\""), "/metrics counts a 500 after the hostile table");
    e2e_resp_free(&r);

    int st = e2e_server_stop(&s, SIGTERM, e2e_slow() ? 30 : 10);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
          "tripletd exit after the hostile table: status %d (sanitizer report in the log?)", st);
    if (e2e_failures) e2e_server_log_tail(&s, 30);
    return e2e_report("e2e_hostile");
}
