/* e2e_search.c - POST /v1/search and GET /v1/gallery against a real tripletd
 * with real galleries (one built by `tripletctl index`, one by gal_save with
 * designed ties), checked against a brute-force double reference. */
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gallery.h"
#include "harness.h"

#define DIM 32 /* the e2e model's output */
#define IN 784 /* its input */
#define NG 150 /* designed gallery rows */
#define NQ 9   /* designed queries */
#define NCLS 4

static char model_path[512], model_sha[65], dir[256];
static float G[NG * DIM], Q[NQ * DIM];
static int64_t L[NG];

static void sha256_file(const char *path, char out[65]) {
    size_t len;
    char *b = e2e_read_file(path, &len);
    unsigned char md[32];
    unsigned n = 0;
    if (b == NULL) e2e_die("cannot read %s", path);
    EVP_Digest(b, len, md, &n, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    free(b);
}

/* ---- reference: exact double sums (the data are small integers, so every
 * sum is exact and ties are real ties), full sort by (distance, index) --- */

static double ref_dist(const char *metric, const float *a, const float *b) {
    double dot = 0, na = 0, nb = 0, sq = 0;
    for (int i = 0; i < DIM; i++) {
        dot += (double)a[i] * b[i];
        na += (double)a[i] * a[i];
        nb += (double)b[i] * b[i];
        sq += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    if (strcmp(metric, "sqeuclidean") == 0) return sq;
    if (strcmp(metric, "euclidean") == 0) return sqrt(sq);
    if (strcmp(metric, "dot") == 0) return -dot;
    if (na == 0 || nb == 0) return 1.0;
    double c = dot / (sqrt(na) * sqrt(nb));
    return 1.0 - (c > 1 ? 1 : c < -1 ? -1 : c);
}

typedef struct {
    double d;
    int i;
} rhit;

static int rhit_cmp(const void *pa, const void *pb) {
    const rhit *a = pa, *b = pb;
    if (a->d != b->d) return a->d < b->d ? -1 : 1;
    return (a->i > b->i) - (a->i < b->i);
}

/* Reference top-k of query q: returns the count (<= k). */
static int ref_search(const char *metric, const float *q, int k, int use_filter, int64_t filter, rhit *out) {
    rhit all[NG];
    int n = 0;
    for (int i = 0; i < NG; i++) {
        if (use_filter && L[i] != filter) continue;
        all[n].d = ref_dist(metric, q, G + i * DIM);
        all[n].i = i;
        n++;
    }
    qsort(all, (size_t)n, sizeof all[0], rhit_cmp);
    if (n > k) n = k;
    memcpy(out, all, (size_t)n * sizeof all[0]);
    return n;
}

/* Majority label of the hits, ties to the label of the nearest hit. */
static int64_t ref_vote(const rhit *h, int n) {
    int best = -1, best_count = 0;
    for (int a = 0; a < n; a++) {
        int c = 0, first = 1;
        for (int b = 0; b < n; b++) {
            if (L[h[b].i] != L[h[a].i]) continue;
            if (b < a) first = 0;
            c++;
        }
        if (first && c > best_count) best = a, best_count = c;
    }
    return best < 0 ? -1 : L[h[best].i];
}

/* ---- data ------------------------------------------------------------ */

static void make_designed(void) {
    /* small integers: many exact ties; duplicates; zero rows; scaled copies
     * (equal cosines) */
    uint64_t s = 12345;
    for (int i = 0; i < NG; i++) {
        for (int e = 0; e < DIM; e++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            G[i * DIM + e] = (float)((int)(s >> 61) - 3); /* -3..4 */
        }
        L[i] = i % NCLS;
    }
    for (int i = 10; i < NG; i += 10) memcpy(G + i * DIM, G + (i - 7) * DIM, DIM * sizeof(float)); /* duplicates */
    for (int i = 25; i < NG; i += 50) memset(G + i * DIM, 0, DIM * sizeof(float));                 /* zero rows */
    for (int e = 0; e < DIM; e++) G[77 * DIM + e] = 2 * G[76 * DIM + e];                           /* same direction */
    for (int q = 0; q < NQ; q++)
        for (int e = 0; e < DIM; e++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            Q[q * DIM + e] = (float)((int)(s >> 62) - 1); /* -1..2 */
        }
    memset(Q + 1 * DIM, 0, DIM * sizeof(float));            /* a zero query */
    memcpy(Q + 2 * DIM, G + 3 * DIM, DIM * sizeof(float));  /* a query on a duplicated row */
    memcpy(Q + 3 * DIM, G + 76 * DIM, DIM * sizeof(float)); /* on the scaled pair */
}

static cJSON *matrix_json(const float *x, int n, int dim) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++) {
        cJSON *r = cJSON_CreateArray();
        for (int e = 0; e < dim; e++) cJSON_AddItemToArray(r, cJSON_CreateNumber(x[i * dim + e]));
        cJSON_AddItemToArray(a, r);
    }
    return a;
}

/* SIGTERM and expect a clean exit (a sanitizer report would make it fail). */
static void stop_clean(e2e_server *s, const char *what) {
    int st = e2e_server_stop(s, 15, e2e_slow() ? 40 : 10);
    if (!CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s: tripletd exit status %d", what, st))
        e2e_server_log_tail(s, 30);
}

static int search(const e2e_server *s, cJSON *req, e2e_resp *r) {
    char *body = cJSON_PrintUnformatted(req);
    int rc = e2e_post(s, "/v1/search", body, r);
    free(body);
    cJSON_Delete(req);
    return rc;
}

/* ---- checks ---------------------------------------------------------- */

static void check_exact_n(const e2e_server *s, const char *metric, int k, int use_filter, int64_t filter, int nq) {
    cJSON *req = cJSON_CreateObject();
    cJSON_AddItemToObject(req, "queries", matrix_json(Q, nq, DIM));
    cJSON_AddBoolToObject(req, "embed", 0);
    cJSON_AddNumberToObject(req, "k", k);
    cJSON_AddStringToObject(req, "metric", metric);
    if (use_filter) cJSON_AddNumberToObject(req, "filter_label", (double)filter);
    e2e_resp r;
    char what[128];
    snprintf(what, sizeof what, "%s k=%d%s", metric, k, use_filter ? " filtered" : "");
    search(s, req, &r);
    if (!CHECK(r.status == 200 && r.json, "%s: status %ld: %s", what, r.status, r.body ? r.body : "")) goto done;
    const cJSON *res = e2e_jget(r.json, "results"), *pred = e2e_jget(r.json, "predicted_labels");
    if (!CHECK(cJSON_GetArraySize(res) == nq && cJSON_GetArraySize(pred) == nq, "%s: %d results", what,
               cJSON_GetArraySize(res)))
        goto done;
    for (int q = 0; q < nq; q++) {
        rhit ref[NG];
        int n = ref_search(metric, Q + q * DIM, k, use_filter, filter, ref);
        const cJSON *hits = cJSON_GetArrayItem(res, q);
        if (!CHECK(cJSON_GetArraySize(hits) == n, "%s q%d: %d hits, want %d (only real hits)", what, q,
                   cJSON_GetArraySize(hits), n))
            continue;
        for (int e = 0; e < n; e++) {
            const cJSON *h = cJSON_GetArrayItem(hits, e);
            int idx = (int)e2e_jnum(h, "index");
            double d = e2e_jnum(h, "distance");
            if (!CHECK(idx == ref[e].i && e2e_near(d, ref[e].d, 1e-12, 1e-12),
                       "%s q%d hit %d: got (%d, %.17g), want (%d, %.17g)", what, q, e, idx, d, ref[e].i, ref[e].d))
                break;
            char id[16];
            snprintf(id, sizeof id, "g%d", ref[e].i);
            CHECK_STR(e2e_jstr(h, "id"), id, "hit id");
            CHECK_EQ_INT(e2e_jnum(h, "label"), L[ref[e].i], "hit label");
        }
        const cJSON *p = cJSON_GetArrayItem(pred, q);
        int64_t want = ref_vote(ref, n);
        if (want < 0)
            CHECK(cJSON_IsNull(p), "%s q%d: predicted label should be null", what, q);
        else
            CHECK(cJSON_IsNumber(p) && p->valuedouble == (double)want, "%s q%d: predicted %g, want %lld", what, q,
                  cJSON_IsNumber(p) ? p->valuedouble : NAN, (long long)want);
    }
done:
    e2e_resp_free(&r);
}

static void check_limits(const e2e_server *s) {
    static const struct {
        const char *body, *field, *what;
    } bad[] = {
        {"{\"queries\":[[1]],\"embed\":false,\"k\":0}", "k", "k = 0"},
        {"{\"queries\":[[1]],\"embed\":false,\"k\":1001}", "k", "k over 1000"},
        {"{\"queries\":[[1]],\"embed\":false,\"k\":2.5}", "k", "k not an integer"},
        {"{\"queries\":[[1]],\"embed\":false,\"k\":\"3\"}", "k", "k a string"},
        {"{\"embed\":false}", "queries", "queries missing"},
        {"{\"queries\":[],\"embed\":false}", "queries", "queries empty"},
        {"{\"queries\":[[1,2,3]],\"embed\":false}", "queries[0]", "query of the wrong dimension"},
        {"{\"queries\":[[1,2,3]]}", "queries[0]", "raw query of the wrong dimension"},
        {"{\"queries\":[[1]],\"embed\":false,\"metric\":\"manhattan\"}", "metric", "unknown metric"},
        {"{\"queries\":[[1]],\"embed\":false,\"filter_label\":1.5}", "filter_label", "fractional filter"},
        {"{\"queries\":[[1]],\"embed\":false,\"filter_label\":\"a\"}", "filter_label", "string filter"},
        {"{\"queries\":[[1]],\"embed\":false,\"kk\":3}", "kk", "unknown field"},
        {"{\"queries\":[[1]],\"embed\":\"no\"}", "embed", "embed not a boolean"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        e2e_resp r;
        e2e_post(s, "/v1/search", bad[i].body, &r);
        CHECK_ERROR(&r, 422, "invalid_input", bad[i].field, bad[i].what);
        e2e_resp_free(&r);
    }
    /* more queries than --max-batch (8 for this server) */
    float z[9 * DIM];
    for (int i = 0; i < 9 * DIM; i++) z[i] = (float)(i % 5);
    cJSON *req = cJSON_CreateObject();
    cJSON_AddItemToObject(req, "queries", matrix_json(z, 9, DIM));
    cJSON_AddBoolToObject(req, "embed", 0);
    e2e_resp r;
    search(s, req, &r);
    CHECK_ERROR(&r, 422, "invalid_input", "queries", "queries over --max-batch");
    e2e_resp_free(&r);
}

static void check_gallery_info(const e2e_server *s, const char *gpath, int n, int dim, int labels, int n_labels,
                               int model_match) {
    e2e_resp r;
    char sha[65];
    sha256_file(gpath, sha);
    e2e_get(s, "/v1/gallery", &r);
    if (CHECK(r.status == 200 && r.json, "GET /v1/gallery: %ld %s", r.status, r.body ? r.body : "")) {
        CHECK_EQ_INT(e2e_jnum(r.json, "size"), n, "gallery size");
        CHECK_EQ_INT(e2e_jnum(r.json, "dim"), dim, "gallery dim");
        CHECK(cJSON_IsTrue(e2e_jget(r.json, "labels")) == labels, "gallery labels flag");
        CHECK_EQ_INT(e2e_jnum(r.json, "n_labels"), n_labels, "gallery distinct labels");
        CHECK_STR(e2e_jstr(r.json, "sha256"), sha, "gallery sha256");
        CHECK(cJSON_IsTrue(e2e_jget(r.json, "model_match")) == model_match, "model_match");
        CHECK(e2e_jstr(r.json, "path") && strstr(e2e_jstr(r.json, "path"), "safetensors"), "gallery path");
    }
    e2e_resp_free(&r);
}

/* Gallery built by `tripletctl index` from JSON lines with ids; raw queries
 * are embedded by the server. Checked against a reference on /v1/embed's
 * embeddings of the same queries (float forward passes may differ in the
 * last bit, so indices are compared where the reference gap is clear). */
static void check_indexed(void) {
    char data[300], gpath[300], cmd[1400];
    snprintf(data, sizeof data, "%s/rows.jsonl", dir);
    snprintf(gpath, sizeof gpath, "%s/indexed.safetensors", dir);
    FILE *f = fopen(data, "w");
    if (!f) e2e_die("cannot write %s", data);
    uint64_t s = 99;
    enum { NR = 120 };
    static float raw[NR * IN];
    for (int i = 0; i < NR; i++) {
        fprintf(f, "{\"id\": \"%s%d\", \"label\": %d, \"x\": [", i == 5 ? "caf\\u00e9-" : "row-", i, i % 3);
        for (int e = 0; e < IN; e++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            raw[i * IN + e] = (float)(s >> 56);
            fprintf(f, "%s%d", e ? "," : "", (int)(s >> 56));
        }
        fprintf(f, "]}\n");
    }
    fclose(f);
    const char *ctl = getenv("TRIPLETCTL");
    snprintf(cmd, sizeof cmd, "'%s' index --quiet --model '%s' --data '%s' --out '%s'", ctl ? ctl : "bin/tripletctl",
             model_path, data, gpath);
    int st = system(cmd);
    if (!CHECK(st == 0, "tripletctl index exit status %d", st)) return;
    gal_gallery *g = NULL;
    tr_err err;
    if (!CHECK(gal_load(gpath, &g, &err) == TR_OK, "gal_load of the indexed gallery: %s", err.msg)) return;
    CHECK(g->n == NR && g->dim == DIM && g->ids && g->labels, "indexed gallery shape");
    CHECK_STR(g->model_sha256, model_sha, "indexed gallery model_sha256");
    CHECK_STR(g->ids[5], "caf\xc3\xa9-5", "indexed gallery unicode id");

    e2e_server srv;
    const char *args[] = {"--model", model_path, "--gallery", gpath, NULL};
    if (!CHECK(e2e_server_start(&srv, args) == 0, "tripletd with the indexed gallery")) goto done;
    check_gallery_info(&srv, gpath, NR, DIM, 1, 3, 1);
    /* queries: rows 7 and 50 of the data (their own nearest is themselves), and a mix */
    enum { NQI = 3 };
    float qraw[NQI * IN];
    memcpy(qraw, raw + 7 * IN, IN * sizeof(float));
    memcpy(qraw + IN, raw + 50 * IN, IN * sizeof(float));
    for (int e = 0; e < IN; e++) qraw[2 * IN + e] = (raw[e] + raw[IN + e]) / 2;
    cJSON *er = cJSON_CreateObject();
    cJSON_AddItemToObject(er, "inputs", matrix_json(qraw, NQI, IN));
    char *eb = cJSON_PrintUnformatted(er);
    cJSON_Delete(er);
    e2e_resp r;
    e2e_post(&srv, "/v1/embed", eb, &r);
    free(eb);
    size_t rows = 0, cols = 0;
    double *emb = r.json ? e2e_jmatrix(e2e_jget(r.json, "embeddings"), &rows, &cols) : NULL;
    e2e_resp_free(&r);
    if (!CHECK(emb && rows == NQI && cols == DIM, "/v1/embed of the queries")) goto stop;
    cJSON *req = cJSON_CreateObject();
    cJSON_AddItemToObject(req, "queries", matrix_json(qraw, NQI, IN));
    cJSON_AddNumberToObject(req, "k", 5);
    search(&srv, req, &r);
    if (CHECK(r.status == 200 && r.json, "embedded search: %ld %s", r.status, r.body ? r.body : "")) {
        for (int q = 0; q < NQI; q++) {
            float qe[DIM];
            for (int e = 0; e < DIM; e++) qe[e] = (float)emb[q * DIM + e];
            rhit all[NR];
            for (int i = 0; i < NR; i++) all[i].d = ref_dist("sqeuclidean", qe, g->emb + i * DIM), all[i].i = i;
            qsort(all, NR, sizeof all[0], rhit_cmp);
            const cJSON *hits = cJSON_GetArrayItem(e2e_jget(r.json, "results"), q);
            CHECK_EQ_INT(cJSON_GetArraySize(hits), 5, "embedded search hits");
            for (int e = 0; e < 5 && e < cJSON_GetArraySize(hits); e++) {
                const cJSON *h = cJSON_GetArrayItem(hits, e);
                int clear = (e == 0 || all[e].d - all[e - 1].d > 1e-4) && all[e + 1].d - all[e].d > 1e-4;
                if (clear) CHECK_EQ_INT(e2e_jnum(h, "index"), all[e].i, "embedded search index");
                CHECK_NEAR(e2e_jnum(h, "distance"), all[e].d, 1e-4, 1e-5, "embedded search distance");
                char id[32];
                snprintf(id, sizeof id, "%s%d", all[e].i == 5 ? "caf\xc3\xa9-" : "row-", all[e].i);
                if (clear) CHECK_STR(e2e_jstr(h, "id"), id, "embedded search id");
            }
        }
        /* a query that is a gallery row finds itself first, at distance ~0 */
        const cJSON *h0 = cJSON_GetArrayItem(cJSON_GetArrayItem(e2e_jget(r.json, "results"), 0), 0);
        CHECK_EQ_INT(e2e_jnum(h0, "index"), 7, "row 7 finds itself");
        CHECK_NEAR(e2e_jnum(h0, "distance"), 0, 0, 1e-5, "self distance");
    }
    e2e_resp_free(&r);
stop:
    free(emb);
    stop_clean(&srv, "indexed gallery server");
done:
    gal_free(g);
}

/* The counter tripletd_reloads_total{result=...} from /metrics, or -1. */
static long reloads(const e2e_server *s, const char *result) {
    e2e_resp r;
    char key[64];
    long v = -1;
    snprintf(key, sizeof key, "tripletd_reloads_total{result=\"%s\"} ", result);
    if (e2e_get(s, "/metrics", &r) == 0 && r.body) {
        const char *p = strstr(r.body, key);
        if (p) v = strtol(p + strlen(key), NULL, 10);
    }
    e2e_resp_free(&r);
    return v;
}

/* Wait (bounded) until the reload counter for result passes before. */
static int wait_reload(const e2e_server *s, const char *result, long before) {
    double end = e2e_now() + (e2e_slow() ? 40 : 10);
    while (e2e_now() < end) {
        if (reloads(s, result) > before) return 1;
        usleep(20000);
    }
    return 0;
}

static void gallery_sha(const e2e_server *s, char out[65]) {
    e2e_resp r;
    out[0] = '\0';
    if (e2e_get(s, "/v1/gallery", &r) == 0 && r.json && e2e_jstr(r.json, "sha256"))
        snprintf(out, 65, "%s", e2e_jstr(r.json, "sha256"));
    e2e_resp_free(&r);
}

/* Install bytes at path by rename, as a gallery is replaced while tripletd
 * maps it (a rewrite in place would change the mapped file under it). */
static int install_bytes(const char *path, const void *buf, size_t len) {
    char tmp[320];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    return e2e_write_file(tmp, buf, len) == 0 ? rename(tmp, path) : -1;
}

/* A search of gallery row 0 that must find itself: 1 when it does. */
static int finds_row0(const e2e_server *s) {
    cJSON *req = cJSON_CreateObject();
    cJSON_AddItemToObject(req, "queries", matrix_json(G, 1, DIM));
    cJSON_AddBoolToObject(req, "embed", 0);
    cJSON_AddNumberToObject(req, "k", 1);
    e2e_resp r;
    search(s, req, &r);
    int ok = r.status == 200 && r.json &&
             e2e_jnum(cJSON_GetArrayItem(cJSON_GetArrayItem(e2e_jget(r.json, "results"), 0), 0), "index") == 0;
    e2e_resp_free(&r);
    return ok;
}

/* A client searching in a loop while the galleries swap: every search finds
 * row 0 (each gallery here starts with the same rows). */
typedef struct {
    const e2e_server *s;
    atomic_int *stop;
    int ok, bad;
} searcher;

static void *search_loop(void *arg) {
    searcher *w = arg;
    while (!atomic_load(w->stop)) {
        if (finds_row0(w->s))
            w->ok++;
        else
            w->bad++;
    }
    return NULL;
}

/* Reloads under search load: a reload maps the new file and the old
 * mapping goes only after the searches using it finished (a search on an
 * unmapped gallery would crash the server, or fail under ASan). */
static void reload_under_search(const e2e_server *s, const char *gpath) {
    enum { N_SEARCHERS = 4, N_RELOADS = 6 };
    atomic_int stop = 0;
    searcher w[N_SEARCHERS];
    pthread_t th[N_SEARCHERS];
    int started = 0, reloaded = 0;
    tr_err err;
    for (; started < N_SEARCHERS; started++) {
        w[started] = (searcher){s, &stop, 0, 0};
        if (pthread_create(&th[started], NULL, search_loop, &w[started]) != 0) break;
    }
    for (int i = 0; i < N_RELOADS; i++) {
        if (gal_save(gpath, G, i % 2 ? 100 : 60, DIM, L, NULL, model_sha, &err) != TR_OK) break;
        e2e_resp r;
        e2e_post(s, "/v1/admin/reload", "{}", &r);
        reloaded += r.status == 200;
        e2e_resp_free(&r);
    }
    atomic_store(&stop, 1);
    int ok = 0, bad = 0;
    for (int i = 0; i < started; i++) {
        pthread_join(th[i], NULL);
        ok += w[i].ok, bad += w[i].bad;
    }
    CHECK(reloaded == N_RELOADS, "reloads under search load: %d of %d answered 200", reloaded, N_RELOADS);
    CHECK(ok > 0 && bad == 0, "searches during the reloads: %d found row 0, %d did not", ok, bad);
}

/* SIGHUP reloads the gallery with the model; a corrupt or truncated file
 * keeps the old snapshot (and its mapping) serving. */
static void check_reload(void) {
    char gpath[300], sha0[65], sha1[65], want[65];
    snprintf(gpath, sizeof gpath, "%s/reloaded.safetensors", dir);
    tr_err err;
    if (!CHECK(gal_save(gpath, G, 60, DIM, L, NULL, model_sha, &err) == TR_OK, "gal_save: %s", err.msg)) return;
    size_t whole_len = 0;
    char *whole = e2e_read_file(gpath, &whole_len);
    e2e_server srv;
    const char *args[] = {"--model", model_path, "--gallery", gpath, NULL};
    if (!CHECK(whole && e2e_server_start(&srv, args) == 0, "tripletd for the reload test")) {
        free(whole);
        return;
    }
    gallery_sha(&srv, sha0);
    /* a corrupt gallery: the reload fails, the old one keeps serving */
    long failed = reloads(&srv, "failed"), ok = reloads(&srv, "ok");
    install_bytes(gpath, "not a safetensors file", 22);
    kill(srv.pid, SIGHUP);
    CHECK(wait_reload(&srv, "failed", failed), "a reload of a corrupt gallery is counted as failed");
    gallery_sha(&srv, sha1);
    CHECK(strcmp(sha1, sha0) == 0, "the old gallery still serves after a failed reload: %s vs %s", sha1, sha0);
    /* truncated inside the embeddings: refused naming the file and the problem */
    install_bytes(gpath, whole, whole_len / 2);
    e2e_resp r;
    e2e_post(&srv, "/v1/admin/reload", "{}", &r);
    if (CHECK_ERROR(&r, 422, "invalid_input", NULL, "reload of a truncated gallery")) {
        const char *m = e2e_jstr(r.json, "error.message");
        CHECK(m && strstr(m, gpath) && strstr(m, "embeddings") && strstr(m, "past the data section"),
              "truncated gallery: the message must name the file and the problem: %s", m ? m : "");
    }
    e2e_resp_free(&r);
    CHECK(finds_row0(&srv), "after failed reloads the old gallery no longer answers searches");
    gallery_sha(&srv, sha1);
    CHECK(strcmp(sha1, sha0) == 0, "the old gallery's digest changed after a failed reload: %s vs %s", sha1, sha0);
    /* a new gallery of 100 rows: SIGHUP swaps it in */
    if (!CHECK(gal_save(gpath, G, 100, DIM, L, NULL, model_sha, &err) == TR_OK, "gal_save: %s", err.msg)) goto stop;
    sha256_file(gpath, want);
    kill(srv.pid, SIGHUP);
    CHECK(wait_reload(&srv, "ok", ok), "SIGHUP reload");
    gallery_sha(&srv, sha1);
    CHECK(strcmp(sha1, want) == 0, "the reloaded gallery serves: %s, want %s", sha1, want);
    check_gallery_info(&srv, gpath, 100, DIM, 1, NCLS, 1);
    CHECK(finds_row0(&srv), "the reloaded gallery does not answer searches");
    reload_under_search(&srv, gpath);
stop:
    free(whole);
    stop_clean(&srv, "reload server");
}

/* A gallery built with another model is refused, unless allowed. */
static void check_mismatch(void) {
    char gpath[300];
    snprintf(gpath, sizeof gpath, "%s/other.safetensors", dir);
    tr_err err;
    const char *other = "00000000000000000000000000000000000000000000000000000000000000ff";
    if (!CHECK(gal_save(gpath, G, NG, DIM, L, NULL, other, &err) == TR_OK, "gal_save: %s", err.msg)) return;
    e2e_server srv;
    const char *args[] = {"--model", model_path, "--gallery", gpath, NULL};
    fprintf(stderr, "(a refused start is expected next)\n");
    int rc = e2e_server_start(&srv, args);
    CHECK(rc != 0, "tripletd must refuse a gallery built with another model");
    e2e_server_stop(&srv, 9, 5);
    const char *args2[] = {"--model", model_path, "--gallery", gpath, "--allow-gallery-mismatch", NULL};
    if (!CHECK(e2e_server_start(&srv, args2) == 0, "tripletd --allow-gallery-mismatch")) return;
    check_gallery_info(&srv, gpath, NG, DIM, 1, NCLS, 0);
    stop_clean(&srv, "mismatch server");
}

int main(void) {
    snprintf(model_path, sizeof model_path, "%s", e2e_root_path("tests/data/e2e-model.safetensors"));
    sha256_file(model_path, model_sha);
    e2e_mkdtemp(dir, sizeof dir, "e2e_search");
    make_designed();

    /* no gallery: 409 no_gallery */
    e2e_server s0;
    const char *a0[] = {"--model", model_path, NULL};
    if (e2e_server_start(&s0, a0) != 0) e2e_die("tripletd did not start");
    e2e_resp r;
    e2e_post(&s0, "/v1/search", "{\"queries\":[[1,2]],\"embed\":false}", &r);
    CHECK_ERROR(&r, 409, "no_gallery", NULL, "search without a gallery");
    e2e_resp_free(&r);
    e2e_get(&s0, "/v1/gallery", &r);
    CHECK_ERROR(&r, 409, "no_gallery", NULL, "gallery info without a gallery");
    e2e_resp_free(&r);
    stop_clean(&s0, "no-gallery server");

    /* designed gallery: exact answers for every metric, k, filter */
    char gpath[300], *ids[NG];
    snprintf(gpath, sizeof gpath, "%s/designed.safetensors", dir);
    for (int i = 0; i < NG; i++) {
        ids[i] = malloc(16);
        snprintf(ids[i], 16, "g%d", i);
    }
    tr_err err;
    if (gal_save(gpath, G, NG, DIM, L, (const char *const *)ids, model_sha, &err) != TR_OK)
        e2e_die("gal_save: %s", err.msg);
    for (int i = 0; i < NG; i++) free(ids[i]);
    e2e_server s1;
    const char *a1[] = {"--model", model_path, "--gallery", gpath, "--max-batch", "8", NULL};
    if (e2e_server_start(&s1, a1) != 0) e2e_die("tripletd with a gallery did not start");
    check_gallery_info(&s1, gpath, NG, DIM, 1, NCLS, 1);
    const char *metrics[] = {"sqeuclidean", "euclidean", "cosine", "dot"};
    /* NQ = 9 queries is over --max-batch 8: send them in two requests */
    float all_q[NQ * DIM];
    memcpy(all_q, Q, sizeof Q);
    for (int part = 0; part < 2; part++) {
        int nq = part ? NQ - 8 : 8;
        memcpy(Q, all_q + (part ? 8 * DIM : 0), (size_t)nq * DIM * sizeof(float));
        for (int m = 0; m < 4; m++) {
            for (int k = 1; k <= 40; k += 13) check_exact_n(&s1, metrics[m], k, 0, 0, nq);
            check_exact_n(&s1, metrics[m], NG + 3, 0, 0, nq); /* k over the gallery: only real hits */
            check_exact_n(&s1, metrics[m], 7, 1, 2, nq);
            check_exact_n(&s1, metrics[m], 50, 1, 3, nq); /* more than the class holds */
            check_exact_n(&s1, metrics[m], 5, 1, 99, nq); /* no such label: empty lists, null votes */
        }
    }
    memcpy(Q, all_q, sizeof Q);
    check_limits(&s1);
    stop_clean(&s1, "designed gallery server");

    check_indexed();
    check_mismatch();
    check_reload();

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    return e2e_report("e2e_search");
}
