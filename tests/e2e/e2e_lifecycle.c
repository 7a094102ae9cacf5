/* e2e_lifecycle.c - concurrency, reload under load, failed reload, --max-concurrent, --api-key, SIGTERM drain. */
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define N_X 12 /* golden inputs */
#define OUT_DIM 32
#define EMB_RTOL 1e-4
#define EMB_ATOL 2e-5

static cJSON *G;
static char *embed_body[N_X];      /* {"inputs": [x[i], x[i+1], x[i+2]]} */
static double ref_a[N_X][OUT_DIM]; /* PyTorch embeddings, model A (the golden model) */
static double ref_b[N_X][OUT_DIM]; /* model B (A with a shifted last bias), measured from a server on B */
static atomic_int seen_b_total;    /* answers from model B, all clients */

static void build_bodies(void) {
    const cJSON *x = e2e_jget(G, "x");
    for (int i = 0; i < N_X; i++) {
        cJSON *q = cJSON_CreateObject(), *in = cJSON_AddArrayToObject(q, "inputs");
        for (int k = 0; k < 3; k++) cJSON_AddItemToArray(in, cJSON_Duplicate(cJSON_GetArrayItem(x, (i + k) % N_X), 1));
        embed_body[i] = cJSON_PrintUnformatted(q);
        cJSON_Delete(q);
        const cJSON *e = cJSON_GetArrayItem(e2e_jget(G, "embeddings"), i);
        for (int d = 0; d < OUT_DIM; d++) ref_a[i][d] = cJSON_GetArrayItem(e, d)->valuedouble;
    }
}

/* Which reference a reply to embed_body[i] matches: 'A', 'B', or 0 (neither, or mixed rows). */
static int match_model(const e2e_resp *r, int i, int have_b) {
    const cJSON *emb = e2e_jget(r->json, "embeddings");
    if (cJSON_GetArraySize(emb) != 3) return 0;
    int all_a = 1, all_b = have_b;
    for (int k = 0; k < 3; k++) {
        const cJSON *row = cJSON_GetArrayItem(emb, k);
        if (cJSON_GetArraySize(row) != OUT_DIM) return 0;
        for (int d = 0; d < OUT_DIM; d++) {
            double v = cJSON_GetArrayItem(row, d)->valuedouble;
            all_a &= e2e_near(v, ref_a[(i + k) % N_X][d], EMB_RTOL, EMB_ATOL);
            if (have_b) all_b &= e2e_near(v, ref_b[(i + k) % N_X][d], 1e-6, 1e-7);
        }
    }
    return all_a ? 'A' : all_b ? 'B' : 0;
}

/* ---- model files ------------------------------------------------------ */

static int copy_file(const char *from, const char *to, size_t max_len) {
    size_t len;
    char *raw = e2e_read_file(from, &len);
    if (!raw) return -1;
    int rc = e2e_write_file(to, raw, len < max_len ? len : max_len);
    free(raw);
    return rc;
}

/* ---- load generator --------------------------------------------------- */

typedef struct {
    const e2e_server *s;
    int id, max_iter, have_b;
    const char *auth; /* extra header or NULL */
    atomic_int *stop;
    int ok, bad_status, wrong, seen_a, seen_b, iters;
    long last_status;
    char last_body[200];
} client;

static void *client_run(void *arg) {
    client *c = arg;
    void *conn = e2e_conn_new();
    for (int it = 0; (c->max_iter == 0 || it < c->max_iter) && !atomic_load(c->stop); it++) {
        int i = (c->id * 5 + it) % N_X;
        e2e_req rq = {.method = "POST", .path = "/v1/embed", .body = embed_body[i], .headers = {c->auth}};
        e2e_resp r;
        e2e_request_conn(conn, c->s, &rq, &r);
        c->iters++;
        if (r.status != 200) {
            c->bad_status++;
            c->last_status = r.status;
            snprintf(c->last_body, sizeof c->last_body, "%.120s %.60s", r.body, r.curl_err);
        } else {
            int m = match_model(&r, i, c->have_b);
            if (m == 'A')
                c->seen_a++, c->ok++;
            else if (m == 'B')
                c->seen_b++, c->ok++, atomic_fetch_add(&seen_b_total, 1);
            else
                c->wrong++;
        }
        e2e_resp_free(&r);
    }
    e2e_conn_free(conn);
    return NULL;
}

/* A different request mix on the same server: given-vector distances (exact). */
typedef struct {
    const e2e_server *s;
    int n, ok;
} dclient;

static void *dclient_run(void *arg) {
    dclient *c = arg;
    cJSON *q = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(q, "a"), *b = cJSON_AddArrayToObject(q, "b");
    for (int i = 0; i < 4; i++) {
        cJSON_AddItemToArray(a, cJSON_Duplicate(cJSON_GetArrayItem(e2e_jget(G, "v"), i), 1));
        cJSON_AddItemToArray(b, cJSON_Duplicate(cJSON_GetArrayItem(e2e_jget(G, "v"), 4 + i), 1));
    }
    cJSON_AddFalseToObject(q, "embed");
    cJSON_AddStringToObject(q, "metric", "cosine");
    char *body = cJSON_PrintUnformatted(q);
    cJSON_Delete(q);
    const cJSON *want = e2e_jget(G, "distance.cosine.given_rows");
    void *conn = e2e_conn_new();
    for (int it = 0; it < c->n; it++) {
        e2e_req rq = {.method = "POST", .path = "/v1/distance", .body = body};
        e2e_resp r;
        e2e_request_conn(conn, c->s, &rq, &r);
        int good = r.status == 200 && cJSON_GetArraySize(e2e_jget(r.json, "distances")) == 4;
        for (int i = 0; good && i < 4; i++)
            good = e2e_near(cJSON_GetArrayItem(e2e_jget(r.json, "distances"), i)->valuedouble,
                            cJSON_GetArrayItem(want, i)->valuedouble, 1e-9, 1e-12);
        c->ok += good;
        e2e_resp_free(&r);
    }
    e2e_conn_free(conn);
    free(body);
    return NULL;
}

/* ---- scenarios --------------------------------------------------------- */

static void test_concurrent_clients(void) {
    e2e_server s;
    const char *args[] = {"--threads", "4", NULL};
    if (!CHECK(e2e_server_start(&s, args) == 0, "concurrency: tripletd did not start")) return;
    enum { NE = 24, ND = 8 };
    pthread_t th[NE + ND];
    client ce[NE];
    dclient cd[ND];
    atomic_int stop = 0;
    int iters = e2e_slow() ? 6 : 15;
    for (int i = 0; i < NE; i++) {
        ce[i] = (client){.s = &s, .id = i, .max_iter = iters, .stop = &stop};
        pthread_create(&th[i], NULL, client_run, &ce[i]);
    }
    for (int i = 0; i < ND; i++) {
        cd[i] = (dclient){.s = &s, .n = iters};
        pthread_create(&th[NE + i], NULL, dclient_run, &cd[i]);
    }
    int ok = 0, total = (NE + ND) * iters;
    for (int i = 0; i < NE + ND; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < NE; i++) {
        ok += ce[i].seen_a;
        if (ce[i].bad_status || ce[i].wrong)
            CHECK(0, "concurrency client %d: %d bad statuses (last %ld: %s), %d wrong answers", i, ce[i].bad_status,
                  ce[i].last_status, ce[i].last_body, ce[i].wrong);
    }
    for (int i = 0; i < ND; i++) ok += cd[i].ok;
    CHECK(ok == total, "%d threads: %d of %d requests answered correctly", NE + ND, ok, total);
    int st = e2e_server_stop(&s, SIGTERM, e2e_slow() ? 30 : 10);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "concurrency: exit status %d", st);
    /* the buffered access log lost no line across its buffer swaps and the exit: one per distance request */
    char *log = e2e_read_file(s.log, NULL);
    int lines = 0;
    for (const char *p = log; p && (p = strstr(p, " POST /v1/distance 200 ")) != NULL; p++) lines++;
    CHECK(lines == ND * iters, "access log: %d lines for %d distance requests", lines, ND * iters);
    free(log);
}

/* Embeddings of model B measured once from a server on B (self-consistency for the reload test). */
static int measure_b(const char *path_b) {
    e2e_server s;
    const char *args[] = {"--model", path_b, NULL};
    if (e2e_server_start(&s, args) != 0) return -1;
    int rc = 0;
    for (int i = 0; i < N_X && rc == 0; i += 3) {
        e2e_resp r;
        e2e_post(&s, "/v1/embed", embed_body[i], &r);
        const cJSON *emb = e2e_jget(r.json, "embeddings");
        if (r.status != 200 || cJSON_GetArraySize(emb) != 3) rc = -1;
        for (int k = 0; rc == 0 && k < 3; k++)
            for (int d = 0; d < OUT_DIM; d++)
                ref_b[i + k][d] = cJSON_GetArrayItem(cJSON_GetArrayItem(emb, k), d)->valuedouble;
        e2e_resp_free(&r);
    }
    e2e_server_stop(&s, SIGTERM, 10);
    /* B must really differ from A, or the test could not tell them apart */
    double diff = 0;
    for (int d = 0; d < OUT_DIM; d++) diff += fabs(ref_b[0][d] - ref_a[0][d]);
    CHECK(diff > 1e-3, "model B embeddings do not differ from A (%g)", diff);
    return rc;
}

static int wait_for_model(const e2e_server *s, int want, double limit) {
    double t0 = e2e_now();
    while (e2e_now() - t0 < limit) {
        e2e_resp r;
        e2e_post(s, "/v1/embed", embed_body[0], &r);
        int m = r.status == 200 ? match_model(&r, 0, 1) : 0;
        e2e_resp_free(&r);
        if (m == want) return 1;
        usleep(20000);
    }
    return 0;
}

static void test_reload_under_load(void) {
    e2e_server s;
    char dir[256], live[400], path_a[400], path_b[400], bad[400];
    /* a private directory for the model files: the first server's temp dir is not known yet */
    snprintf(dir, sizeof dir, "%s/tripletd-e2e-models.XXXXXX", e2e_tmpdir());
    if (!CHECK(mkdtemp(dir) != NULL, "mkdtemp for models")) return;
    snprintf(live, sizeof live, "%s/model.safetensors", dir);
    snprintf(path_a, sizeof path_a, "%s/a.safetensors", dir);
    snprintf(path_b, sizeof path_b, "%s/b.safetensors", dir);
    snprintf(bad, sizeof bad, "%s/corrupt.safetensors", dir);
    int setup = copy_file(e2e_root_path("tests/data/e2e-model.safetensors"), path_a, (size_t)-1) == 0 &&
                e2e_write_shifted_model(path_b) == 0 && copy_file(path_a, bad, 5000) == 0 &&
                e2e_install_file(path_a, live) == 0;
    if (!CHECK(setup, "reload: cannot write the model files in %s", dir)) goto out;
    if (!CHECK(measure_b(path_b) == 0, "reload: could not measure model B")) goto out;

    const char *args[] = {"--model", live, "--threads", "4", NULL};
    if (!CHECK(e2e_server_start(&s, args) == 0, "reload: tripletd did not start")) goto out;
    enum { NC = 16 };
    pthread_t th[NC];
    client c[NC];
    atomic_int stop = 0;
    for (int i = 0; i < NC; i++) {
        c[i] = (client){.s = &s, .id = i, .have_b = 1, .stop = &stop};
        pthread_create(&th[i], NULL, client_run, &c[i]);
    }
    double slow = e2e_slow() ? 3 : 1;
    usleep(100000);
    /* 1. POST /v1/admin/reload to B while clients run */
    e2e_install_file(path_b, live);
    e2e_resp r;
    e2e_post(&s, "/v1/admin/reload", "{}", &r);
    CHECK(r.status == 200, "reload to B: status %ld %s", r.status, r.body);
    e2e_resp_free(&r);
    CHECK(wait_for_model(&s, 'B', 5 * slow), "after POST /v1/admin/reload the server does not answer with model B");
    for (double t1 = e2e_now(); atomic_load(&seen_b_total) < 20 && e2e_now() - t1 < 5 * slow;)
        usleep(10000); /* the clients see B too */
    e2e_get(&s, "/v1/model", &r);
    CHECK(r.status == 200 && e2e_jstr(r.json, "sha256") &&
              strcmp(e2e_jstr(r.json, "sha256"), e2e_jstr(G, "model.sha256")) != 0,
          "/v1/model sha256 still model A's after the reload");
    e2e_resp_free(&r);
    usleep(100000);
    /* 2. SIGHUP back to A */
    e2e_install_file(path_a, live);
    kill(s.pid, SIGHUP);
    CHECK(wait_for_model(&s, 'A', 5 * slow), "after SIGHUP the server does not answer with model A");
    usleep(100000);
    /* 3. a corrupt file: reload fails with 422 naming the problem, the old model keeps serving */
    e2e_install_file(bad, live);
    e2e_post(&s, "/v1/admin/reload", "{}", &r);
    if (CHECK_ERROR(&r, 422, "invalid_input", NULL, "reload of a truncated model")) {
        const char *m = e2e_jstr(r.json, "error.message");
        CHECK(m && strlen(m) > 10, "failed reload message too short: %s", m ? m : "");
    }
    e2e_resp_free(&r);
    kill(s.pid, SIGHUP); /* the same through the signal: logged, not fatal */
    usleep(200000);
    CHECK(wait_for_model(&s, 'A', 2 * slow), "after failed reloads the server no longer answers with model A");
    e2e_get(&s, "/readyz", &r);
    CHECK_EQ_INT(r.status, 200, "/readyz after a failed reload");
    e2e_resp_free(&r);
    /* 4. {"model": path} is refused without --model-dir */
    char body[600];
    snprintf(body, sizeof body, "{\"model\": \"%s\"}", path_b);
    e2e_post(&s, "/v1/admin/reload", body, &r);
    CHECK(r.status >= 400 && r.status < 500 && r.status != 404, "reload with a path and no --model-dir: status %ld",
          r.status);
    e2e_resp_free(&r);
    usleep(100000);
    atomic_store(&stop, 1);
    int ok = 0, total = 0, a = 0, b = 0;
    for (int i = 0; i < NC; i++) {
        pthread_join(th[i], NULL);
        ok += c[i].ok, total += c[i].iters, a += c[i].seen_a, b += c[i].seen_b;
        if (c[i].bad_status || c[i].wrong)
            CHECK(0, "reload client %d: %d failed requests (last %ld: %s), %d answers from neither model", i,
                  c[i].bad_status, c[i].last_status, c[i].last_body, c[i].wrong);
    }
    CHECK(ok == total && total > 0, "reload under load: %d of %d requests answered correctly (model A %d, B %d)", ok,
          total, a, b);
    CHECK(a > 0 && b > 0, "reload under load: clients saw model A %d times and B %d times; want both", a, b);
    printf("reload under load: %d requests, model A %d, model B %d, none lost\n", total, a, b);
    int st = e2e_server_stop(&s, SIGTERM, 10 * slow);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "reload server: exit status %d", st);

    /* --model-dir: {"model": path relative to it} loads that file; a bad path keeps the current model */
    const char *args2[] = {"--model", path_a, "--model-dir", dir, NULL};
    snprintf(body, sizeof body, "{\"model\": \"%s\"}", strrchr(path_b, '/') + 1);
    if (CHECK(e2e_server_start(&s, args2) == 0, "reload --model-dir: tripletd did not start")) {
        e2e_post(&s, "/v1/admin/reload", body, &r);
        CHECK(r.status == 200, "reload {\"model\": B} with --model-dir: status %ld %s", r.status, r.body);
        e2e_resp_free(&r);
        CHECK(wait_for_model(&s, 'B', 2 * slow), "after reload {\"model\": B} the server does not answer with model B");
        e2e_post(&s, "/v1/admin/reload", "{\"model\": \"nonexistent.safetensors\"}", &r);
        if (CHECK_ERROR(&r, 422, "invalid_input", NULL, "reload of a missing file"))
            CHECK(strstr(e2e_jstr(r.json, "error.message"), "no such file"), "failed reload should say why: %s",
                  e2e_jstr(r.json, "error.message"));
        e2e_resp_free(&r);
        CHECK(wait_for_model(&s, 'B', 2 * slow), "after a failed reload the server no longer answers with model B");
        e2e_server_stop(&s, SIGTERM, 10 * slow);
    }
out:
    remove(live), remove(path_a), remove(path_b), remove(bad), rmdir(dir);
}

/* A slow request: InfoNCE over n pairs of dim-64 given vectors (O(n^2) work). */
static char *slow_body(int n) {
    float *v = malloc((size_t)n * 64 * sizeof *v);
    for (int i = 0; i < n * 64; i++) v[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
    cJSON *q = cJSON_CreateObject(), *a = cJSON_AddArrayToObject(q, "a"), *b = cJSON_AddArrayToObject(q, "b");
    for (int i = 0; i < n; i++) {
        char *s = e2e_b64_floats(v + (size_t)i * 64, 64);
        cJSON_AddItemToArray(a, cJSON_CreateString(s));
        cJSON_AddItemToArray(b, cJSON_CreateString(s));
        free(s);
    }
    cJSON_AddFalseToObject(q, "embed");
    char *body = cJSON_PrintUnformatted(q);
    cJSON_Delete(q);
    free(v);
    return body;
}

typedef struct {
    const e2e_server *s;
    const char *body, *auth;
    int n, got200, got429, other, retry_after_ok, json_ok;
    long other_status;
} burst;

static void *burst_run(void *arg) {
    burst *b = arg;
    for (int i = 0; i < b->n; i++) {
        e2e_req rq = {
            .method = "POST", .path = "/v1/loss/infonce", .body = b->body, .headers = {b->auth}, .timeout_ms = 30000};
        e2e_resp r;
        e2e_request(b->s, &rq, &r);
        char ra[64];
        if (r.status == 200)
            b->got200++;
        else if (r.status == 429) {
            b->got429++;
            b->retry_after_ok += e2e_header(&r, "Retry-After", ra, sizeof ra) && atoi(ra) >= 1;
            const cJSON *e = e2e_jget(r.json, "error");
            b->json_ok += e2e_jnum(e, "code") == 429 && e2e_jstr(e, "type") &&
                          strcmp(e2e_jstr(e, "type"), "too_many_requests") == 0;
        } else {
            b->other++;
            b->other_status = r.status;
        }
        e2e_resp_free(&r);
    }
    return NULL;
}

static void test_limits_and_auth(void) {
    e2e_server s;
    char keyfile[512];
    snprintf(keyfile, sizeof keyfile, "%s/tripletd-e2e-key.%d", e2e_tmpdir(), (int)getpid());
    if (!CHECK(e2e_write_file(keyfile, "s3cret-e2e\n", 11) == 0, "cannot write %s", keyfile)) return;
    const char *args[] = {
        "--api-key-file", keyfile, "--max-concurrent", "1", "--threads", "4", "--log-flush", "0", NULL};
    int started = e2e_server_start(&s, args) == 0;
    remove(keyfile);
    if (!CHECK(started, "limits: tripletd did not start")) return;

    /* --api-key: 401 with WWW-Authenticate, except the probes */
    const char *paths[] = {"/v1/model", "/openapi.json"};
    e2e_resp r;
    char www[128];
    for (int i = 0; i < 2; i++) {
        e2e_get(&s, paths[i], &r);
        CHECK_ERROR(&r, 401, "unauthorized", NULL, paths[i]);
        if (i == 0) { /* --log-flush 0: the access line is written before the reply is sent */
            char *log = e2e_read_file(s.log, NULL);
            CHECK(log && strstr(log, "GET /v1/model 401"), "--log-flush 0: no access line right after the request");
            free(log);
        }
        CHECK(e2e_header(&r, "WWW-Authenticate", www, sizeof www) && strstr(www, "Bearer"),
              "%s: 401 without WWW-Authenticate: Bearer", paths[i]);
        e2e_resp_free(&r);
    }
    const char *wrong[] = {"Authorization: Bearer s3cret-e2f", "Authorization: Bearer s3cret-e2e-and-more",
                           "Authorization: Basic czNjcmV0LWUyZQ==", "Authorization: Bearer ",
                           "Authorization: s3cret-e2e"};
    for (int i = 0; i < 5; i++) {
        e2e_req rq = {.method = "POST", .path = "/v1/embed", .body = embed_body[0], .headers = {wrong[i]}};
        e2e_request(&s, &rq, &r);
        CHECK_ERROR(&r, 401, "unauthorized", NULL, wrong[i]);
        e2e_resp_free(&r);
    }
    e2e_post(&s, "/v1/admin/reload", "{}", &r); /* reloading is the most sensitive route */
    CHECK_ERROR(&r, 401, "unauthorized", NULL, "POST /v1/admin/reload without the key");
    e2e_resp_free(&r);
    const char *probes[] = {"/healthz", "/readyz", "/metrics"};
    for (int i = 0; i < 3; i++) {
        e2e_get(&s, probes[i], &r);
        CHECK(r.status == 200, "%s needs no API key: status %ld", probes[i], r.status);
        e2e_resp_free(&r);
    }
    const char *auth = "Authorization: Bearer s3cret-e2e";
    e2e_req ok = {.method = "POST", .path = "/v1/embed", .body = embed_body[0], .headers = {auth}};
    e2e_request(&s, &ok, &r);
    CHECK(r.status == 200 && match_model(&r, 0, 0) == 'A', "the right key: status %ld", r.status);
    e2e_resp_free(&r);

    /* --max-concurrent 1: parallel slow requests, the extra ones get 429 + Retry-After */
    char *body = slow_body(e2e_slow() ? 256 : 512);
    enum { NB = 12 };
    pthread_t th[NB];
    burst b[NB];
    for (int i = 0; i < NB; i++) {
        b[i] = (burst){.s = &s, .body = body, .auth = auth, .n = 3};
        pthread_create(&th[i], NULL, burst_run, &b[i]);
    }
    int g200 = 0, g429 = 0, other = 0, ra = 0, js = 0;
    long other_status = 0;
    for (int i = 0; i < NB; i++) {
        pthread_join(th[i], NULL);
        g200 += b[i].got200, g429 += b[i].got429, other += b[i].other, ra += b[i].retry_after_ok, js += b[i].json_ok;
        if (b[i].other) other_status = b[i].other_status;
    }
    free(body);
    printf("--max-concurrent 1: %d x 200, %d x 429\n", g200, g429);
    CHECK(g200 >= 1 && g429 >= 1, "--max-concurrent 1 with %d parallel clients: %d x 200, %d x 429; want both", NB,
          g200, g429);
    CHECK(other == 0, "--max-concurrent: %d replies neither 200 nor 429 (e.g. %ld)", other, other_status);
    CHECK(ra == g429, "429 without Retry-After (>= 1 s): %d of %d", g429 - ra, g429);
    CHECK(js == g429, "429 without the error JSON (too_many_requests): %d of %d", g429 - js, g429);
    /* the slot is free again: one client at a time never sees 429, on fresh
     * connections or on one keep-alive connection */
    usleep(200000);
    void *conn = e2e_conn_new();
    int seq429 = 0, seqbad = 0;
    for (int i = 0; i < 40; i++) {
        if (i % 2)
            e2e_request_conn(conn, &s, &ok, &r);
        else
            e2e_request(&s, &ok, &r);
        seq429 += r.status == 429;
        seqbad += r.status != 200 && r.status != 429;
        e2e_resp_free(&r);
    }
    e2e_conn_free(conn);
    CHECK(seq429 == 0 && seqbad == 0, "--max-concurrent 1, sequential client: %d x 429, %d other errors in 40 requests",
          seq429, seqbad);
    e2e_server_stop(&s, SIGTERM, e2e_slow() ? 30 : 10);
}

typedef struct {
    const e2e_server *s;
    const char *body;
    long status;
    double t_start, t_end;
    char err[256];
    atomic_int *started;
} inflight;

static void *inflight_run(void *arg) {
    inflight *f = arg;
    e2e_req rq = {.method = "POST", .path = "/v1/loss/infonce", .body = f->body, .timeout_ms = 60000};
    e2e_resp r;
    f->t_start = e2e_now();
    atomic_fetch_add(f->started, 1);
    e2e_request(f->s, &rq, &r);
    f->t_end = e2e_now();
    f->status = r.status;
    snprintf(f->err, sizeof f->err, "%s", r.curl_err);
    e2e_resp_free(&r);
    return NULL;
}

/* One SIGTERM drain: slow requests in flight, /readyz 503, exit 0. Returns 0
 * when timing defeated it (every request had finished before SIGTERM, on a
 * loaded machine) so that the caller tries again; on the last attempt that
 * is a failure. */
static int drain_once(int last) {
    e2e_server s;
    const char *args[] = {"--threads", "4", "--drain-timeout", "30", NULL};
    if (!CHECK(e2e_server_start(&s, args) == 0, "drain: tripletd did not start")) return 1;
    /* a keep-alive connection opened before SIGTERM: it may still ask /readyz during the drain */
    void *conn = e2e_conn_new();
    e2e_req ready = {.method = "GET", .path = "/readyz"};
    e2e_resp r;
    e2e_request_conn(conn, &s, &ready, &r);
    CHECK_EQ_INT(r.status, 200, "/readyz before SIGTERM");
    e2e_resp_free(&r);

    /* time one slow request so the in-flight ones last long enough to see the drain */
    int n = 256;
    char *body = slow_body(n);
    double t0 = e2e_now();
    e2e_post(&s, "/v1/loss/infonce", body, &r);
    double one = e2e_now() - t0;
    e2e_resp_free(&r);
    while (one < 0.15 && n < 1024) { /* the server handles max-batch 1024 by default */
        free(body);
        n *= 2;
        body = slow_body(n);
        t0 = e2e_now();
        e2e_post(&s, "/v1/loss/infonce", body, &r);
        one = e2e_now() - t0;
        e2e_resp_free(&r);
    }
    /* fewer requests than server threads, so that none waits unaccepted in the
     * listen backlog (the drain refuses those) */
    enum { NF = 3 };
    pthread_t th[NF];
    inflight f[NF];
    atomic_int started = 0;
    for (int i = 0; i < NF; i++) {
        f[i] = (inflight){.s = &s, .body = body, .started = &started};
        pthread_create(&th[i], NULL, inflight_run, &f[i]);
    }
    for (double t0s = e2e_now(); atomic_load(&started) < NF && e2e_now() - t0s < 10;) usleep(1000);
    /* SIGTERM when the server reports slow requests in flight (besides this
     * /metrics request), or after a third of one request's time */
    double in_flight = 0, t1 = e2e_now();
    while (e2e_now() - t1 < one * 0.3 + 0.03) {
        e2e_get(&s, "/metrics", &r);
        in_flight = e2e_metric(r.body, "tripletd_in_flight_requests");
        e2e_resp_free(&r);
        if (in_flight >= NF + 1) break;
        usleep(2000);
    }
    double t_term = e2e_now();
    kill(s.pid, SIGTERM);
    /* /readyz on the keep-alive connection turns 503 once the signal is handled */
    int saw503 = 0;
    long st1 = 0;
    for (double t2 = e2e_now(); e2e_now() - t2 < (e2e_slow() ? 8 : 2);) {
        e2e_request_conn(conn, &s, &ready, &r);
        st1 = r.status;
        if (st1 == 503) saw503 = CHECK_ERROR(&r, 503, "not_ready", NULL, "/readyz during the drain");
        e2e_resp_free(&r);
        if (st1 != 200) break;
        usleep(5000);
    }
    /* new connections: refused once the listener closes, or 503 from /readyz before that */
    e2e_get(&s, "/readyz", &r);
    CHECK(r.status == 503 || r.status == 0, "/readyz on a new connection during the drain: %ld, want 503 or refused",
          r.status);
    saw503 |= r.status == 503;
    long st_new = r.status;
    e2e_resp_free(&r);
    int done = 0, finished_after = 0;
    for (int i = 0; i < NF; i++) {
        pthread_join(th[i], NULL);
        done += f[i].status == 200;
        finished_after += f[i].status == 200 && f[i].t_end > t_term;
        /* a client whose connection came after the listener closed is refused: fine */
        int late = f[i].status == 0 && f[i].t_start > t_term - 0.005 && strstr(f[i].err, "onnect");
        if (f[i].status != 200 && !late)
            CHECK(0,
                  "in-flight request %d ended with status %ld during the drain (%s) after %.3f s, %.3f s after SIGTERM",
                  i, f[i].status, f[i].err, f[i].t_end - f[i].t_start, f[i].t_end - t_term);
    }
    printf("drain: one request %.0f ms (n=%d); gauge %g, %d still running at SIGTERM, %d completed\n", one * 1e3, n,
           in_flight, finished_after, done);
    int tested = finished_after >= 1 || last;
    if (tested) {
        CHECK(finished_after >= 1, "no request was still in flight at SIGTERM (the test did not test the drain)");
        /* a fast drain may close the idle keep-alive connection and the listener before /readyz is
         * asked again: then no client can be served either, which is what 503 tells a balancer */
        CHECK(saw503 || (st1 == 0 && st_new == 0),
              "/readyz never answered 503 during the drain (keep-alive connection got %ld, a new one %ld)", st1,
              st_new);
    }
    int st = e2e_server_wait(&s, e2e_slow() ? 60 : 30);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "after SIGTERM: exit status %d, want 0", st);
    if (st == -1) e2e_server_stop(&s, SIGKILL, 1);
    e2e_get(&s, "/healthz", &r);
    CHECK(r.status == 0, "after exit the port still answers (%ld)", r.status);
    e2e_resp_free(&r);
    e2e_conn_free(conn);
    free(body);
    return tested;
}

static void test_sigterm_drain(void) {
    for (int attempt = 0; attempt < 3 && !drain_once(attempt == 2); attempt++) printf("drain: retrying (timing)\n");
}

/* --api-key (the flag wins over TRIPLETD_API_KEY) and the JSON access log:
 * every line is a JSON object, also for hostile paths and request ids. */
static void test_api_key_flag_and_json_log(void) {
    e2e_server s;
    setenv("TRIPLETD_API_KEY", "from-env", 1);
    setenv("TRIPLETD_METRIC", "euclidean", 1); /* no flag: the environment counts */
    setenv("TRIPLETD_MARGIN", "0.9", 1);       /* the flag wins */
    const char *args[] = {"--api-key", "from-flag",    "--log-format", "json",  "--margin", "0.5",
                          "--loss",    "triplet-soft", "--log-flush",  "10000", NULL};
    int started = e2e_server_start(&s, args) == 0;
    unsetenv("TRIPLETD_API_KEY");
    unsetenv("TRIPLETD_METRIC");
    unsetenv("TRIPLETD_MARGIN");
    if (!CHECK(started, "--api-key: tripletd did not start")) return;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    e2e_resp r;
    e2e_req flag = {.method = "GET",
                    .path = "/v1/model",
                    .headers = {"Authorization: Bearer from-flag", "X-Request-Id: e2e-json-1"}};
    e2e_request(&s, &flag, &r);
    CHECK_EQ_INT(r.status, 200, "--api-key from-flag");
    e2e_resp_free(&r);
    /* scoring defaults: --loss and --margin flags, metric from the environment, over the model's metadata */
    cJSON *q = cJSON_CreateObject();
    cJSON_AddItemToObject(q, "anchors", cJSON_Duplicate(e2e_jget(G, "triplet_given.anchors"), 1));
    cJSON_AddItemToObject(q, "positives", cJSON_Duplicate(e2e_jget(G, "triplet_given.positives"), 1));
    cJSON_AddItemToObject(q, "negatives", cJSON_Duplicate(e2e_jget(G, "triplet_given.negatives"), 1));
    cJSON_AddFalseToObject(q, "embed");
    char *tb = cJSON_PrintUnformatted(q);
    cJSON_Delete(q);
    e2e_req trq = {
        .method = "POST", .path = "/v1/loss/triplet", .body = tb, .headers = {"Authorization: Bearer from-flag"}};
    e2e_request(&s, &trq, &r);
    free(tb);
    if (CHECK(r.status == 200, "triplet with server defaults: status %ld %.200s", r.status, r.body)) {
        CHECK_STR(e2e_jstr(r.json, "config.metric"), "euclidean", "metric from TRIPLETD_METRIC");
        CHECK_STR(e2e_jstr(r.json, "config.loss"), "triplet-soft", "loss from --loss");
        CHECK_NEAR(e2e_jnum(r.json, "config.margin"), 0.5, 0, 1e-15, "margin: --margin wins over TRIPLETD_MARGIN");
        const cJSON *c; /* the soft loss does not use the margin: the golden euclidean soft case applies */
        cJSON_ArrayForEach(c, e2e_jget(G, "triplet_given.cases")) if (!strcmp(e2e_jstr(c, "metric"), "euclidean") &&
                                                                      !strcmp(e2e_jstr(c, "loss"), "triplet-soft"))
            CHECK_NEAR(e2e_jnum(r.json, "loss"), e2e_jnum(c, "expect.loss"), 1e-9, 1e-12,
                       "triplet-soft euclidean loss with server defaults");
    }
    e2e_resp_free(&r);
    e2e_req env = {.method = "GET", .path = "/v1/model", .headers = {"Authorization: Bearer from-env"}};
    e2e_request(&s, &env, &r);
    CHECK_ERROR(&r, 401, "unauthorized", NULL, "the environment's key when the flag is set");
    e2e_resp_free(&r);
    e2e_req odd = {.method = "GET", .path = "/a%22b%5C%0A", .headers = {"X-Request-Id: \"quoted\\id"}};
    e2e_request(&s, &odd, &r);
    CHECK_EQ_INT(r.status, 404, "odd path");
    e2e_resp_free(&r);
    /* --log-flush 10000: the access lines wait in the buffer (the half-full mark is far), and the exit writes them;
     * checked only while the 10 s have not passed (a loaded machine can take that long to get here) */
    char *log = e2e_read_file(s.log, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double waited = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (!e2e_slow() && waited < 9.0)
        CHECK(log && !strstr(log, "e2e-json-1"), "--log-flush 10000: an access line was written before the flush");
    free(log);
    e2e_server_stop(&s, SIGTERM, e2e_slow() ? 30 : 10);
    log = e2e_read_file(s.log, NULL);
    int lines = 0, bad = 0, found = 0;
    for (char *p = log, *e; p && *p; p = e + 1) {
        if (!(e = strchr(p, '\n'))) break;
        *e = '\0';
        if (strncmp(p, "tripletd ", 9) == 0) continue; /* the startup banner on stdout (same file) */
        cJSON *j = cJSON_Parse(p);
        lines++;
        if (!cJSON_IsObject(j)) bad += !CHECK(0, "access log line is not a JSON object: %.200s", p);
        const char *id = e2e_jstr(j, "request_id");
        if (id && strcmp(id, "e2e-json-1") == 0) {
            found = 1;
            CHECK_STR(e2e_jstr(j, "method"), "GET", "json log method");
            CHECK_STR(e2e_jstr(j, "path"), "/v1/model", "json log path");
            CHECK_EQ_INT(e2e_jnum(j, "status"), 200, "json log status");
            CHECK(e2e_jnum(j, "bytes") > 0 && e2e_jnum(j, "us") >= 0, "json log bytes and us");
        }
        cJSON_Delete(j);
    }
    CHECK(lines >= 3 && found, "json access log: %d lines, request e2e-json-1 %s", lines, found ? "found" : "missing");
    free(log);
}

/* SIGTERM through kill(2) naming each thread (the kernel hands a process
 * signal to that thread when it does not block it: OpenBLAS starts its
 * pool before main): the server still drains and exits 0. */
static void test_sigterm_any_thread(void) {
    int tried = 0, rounds = 1;
    for (int round = 0; round < rounds; round++) {
        e2e_server s;
        if (!CHECK(e2e_server_start(&s, NULL) == 0, "signal forwarding: tripletd did not start")) return;
        char dir[64], path[160];
        snprintf(dir, sizeof dir, "/proc/%d/task", (int)s.pid);
        DIR *d = opendir(dir);
        pid_t target = s.pid;
        int open_threads = 0; /* threads other than main that do not block SIGTERM */
        for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
            pid_t tid = (pid_t)atoi(e->d_name);
            if (tid <= 0 || tid == s.pid) continue;
            snprintf(path, sizeof path, "%s/%d/status", dir, (int)tid);
            char *st = e2e_read_file(path, NULL), *blk = st ? strstr(st, "SigBlk:") : NULL;
            unsigned long long mask = blk ? strtoull(blk + 7, NULL, 16) : ~0ull;
            free(st);
            if (!(mask & (1ull << (SIGTERM - 1))) && open_threads++ == round) target = tid;
        }
        if (d) closedir(d);
        if (round == 0) rounds = open_threads < 1 ? 1 : open_threads > 4 ? 4 : open_threads;
        tried += target != s.pid;
        kill(target, SIGTERM);
        int st = e2e_server_wait(&s, e2e_slow() ? 30 : 10);
        CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "SIGTERM via thread %d: exit status %d (want a drain and 0)", (int)target, st);
        if (st == -1) e2e_server_stop(&s, SIGKILL, 1);
    }
    printf("signal forwarding: %d SIGTERM(s) named a thread that does not block it\n", tried);
}

/* A port another server already listens on is refused (exit 2), even
 * though the workers share their own port with SO_REUSEPORT. */
static void test_port_in_use(void) {
    e2e_server s;
    if (!CHECK(e2e_server_start(&s, NULL) == 0, "port in use: tripletd did not start")) return;
    char cmd[2048], err[512];
    snprintf(err, sizeof err, "%s/inuse.stderr", s.dir); /* the harness removes s.dir */
    snprintf(cmd, sizeof cmd, "'%s' --model '%s' --host 127.0.0.1 --port %d >/dev/null 2>'%s' </dev/null",
             getenv("TRIPLETD"), e2e_root_path("tests/data/e2e-model.safetensors"), s.port, err);
    int st = system(cmd);
    char *text = e2e_read_file(err, NULL);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2 && text && strstr(text, "in use"),
          "second tripletd on port %d: exit status %d, want 2 and \"in use\": %s", s.port,
          WIFEXITED(st) ? WEXITSTATUS(st) : -1, text ? text : "");
    free(text);
    e2e_resp r;
    e2e_get(&s, "/healthz", &r);
    CHECK_EQ_INT(r.status, 200, "the first server still answers");
    e2e_resp_free(&r);
    e2e_server_stop(&s, SIGTERM, e2e_slow() ? 30 : 10);
}

/* Bad flags or a bad model: exit status 2 and one line naming the problem. */
static void test_bad_startup(void) {
    const char *bin = getenv("TRIPLETD");
    char err[512], cmd[2048];
    snprintf(err, sizeof err, "%s/tripletd-e2e-stderr.%d", e2e_tmpdir(), (int)getpid());
    char corrupt[600];
    snprintf(corrupt, sizeof corrupt, "%s.model", err);
    size_t len;
    char *raw = e2e_read_file(e2e_root_path("tests/data/e2e-model.safetensors"), &len);
    if (raw) e2e_write_file(corrupt, raw, len / 2);
    free(raw);
    struct {
        const char *args, *needle;
    } cases[] = {
        {"--model /nonexistent/model.safetensors", "nonexistent"},
        {"--model @CORRUPT@", "tensor"},
        {"--model @MODEL@ --port 99999", "port"},
        {"--model @MODEL@ --no-such-flag", "no-such-flag"},
        {"--model @MODEL@ --metric manhattan", "manhattan"},
        {"--model @MODEL@ --log-format xml", "xml"},
        {"--port 0", "model"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char args[1200];
        const char *a = cases[i].args, *at = strchr(a, '@');
        if (at && strncmp(at, "@MODEL@", 7) == 0)
            snprintf(args, sizeof args, "%.*s%s%s", (int)(at - a), a, e2e_root_path("tests/data/e2e-model.safetensors"),
                     at + 7);
        else if (at)
            snprintf(args, sizeof args, "%.*s%s%s", (int)(at - a), a, corrupt, at + 9);
        else
            snprintf(args, sizeof args, "%s", a);
        snprintf(cmd, sizeof cmd, "'%s' --host 127.0.0.1 %s >/dev/null 2>'%s' </dev/null", bin, args, err);
        int st = system(cmd);
        char *text = e2e_read_file(err, NULL);
        int lines = 0;
        for (const char *p = text; p && *p; p++) lines += *p == '\n';
        CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2, "tripletd %s: exit status %d, want 2", cases[i].args,
              WIFEXITED(st) ? WEXITSTATUS(st) : -1);
        CHECK(text && lines == 1 && strstr(text, cases[i].needle), "tripletd %s: want one line naming \"%s\", got: %s",
              cases[i].args, cases[i].needle, text ? text : "(nothing)");
        free(text);
    }
    remove(err);
    remove(corrupt);
}

int main(void) {
    G = e2e_read_json("tests/golden/e2e_golden.json");
    build_bodies();
    if (!getenv("TRIPLETD")) setenv("TRIPLETD", e2e_root_path("bin/tripletd"), 1); /* as e2e_server_start does */
    double t0 = e2e_now();
    test_bad_startup();
    test_port_in_use();
    test_api_key_flag_and_json_log();
    printf("bad startup, api key, json log: %.1f s\n", e2e_now() - t0);
    t0 = e2e_now();
    test_concurrent_clients();
    printf("concurrency: %.1f s\n", e2e_now() - t0);
    t0 = e2e_now();
    test_reload_under_load();
    printf("reload: %.1f s\n", e2e_now() - t0);
    t0 = e2e_now();
    test_limits_and_auth();
    printf("limits and auth: %.1f s\n", e2e_now() - t0);
    t0 = e2e_now();
    test_sigterm_drain();
    test_sigterm_any_thread();
    printf("drain: %.1f s\n", e2e_now() - t0);
    for (int i = 0; i < N_X; i++) cJSON_free(embed_body[i]);
    cJSON_Delete(G);
    return e2e_report("e2e_lifecycle");
}
