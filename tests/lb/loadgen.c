/* loadgen.c - bounded HTTP load generator for tripletd replicas that checks every answer.
 *
 * N threads, each with one keep-alive libcurl handle, share a request budget
 * of mixed POST /v1/embed and POST /v1/loss/triplet requests. The expected
 * answers are computed beforehand with libtriplet from the model files given
 * with --model (one or more: during a rolling update an answer may come from
 * either model, but every value of one answer must come from the same one).
 * Each answer must be HTTP 200 and match within 1e-5 (relative above 1).
 *
 *   loadgen --url http://127.0.0.1:8080 --model a.safetensors [--model b...]
 *           [--threads 8] [--requests 20000] [--rate 0] [--max-seconds 100]
 *           [--progress FILE] [--seed 1]
 *
 * Prints one summary line (counts per outcome and per model); exit 0 only if
 * the whole budget was answered correctly in time, 1 otherwise, 2 on bad usage.
 */
#include <curl/curl.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dist.h"
#include "membuf.h"
#include "model.h"
#include "tr_err.h"

#define LG_MAX_MODELS 4
#define LG_N_INPUTS 48
#define LG_N_TEMPLATES 64
#define LG_MAX_VECS 3 /* vectors per embed request; triplets per loss request */
#define LG_MARGIN 0.2
#define LG_TOL 1e-5
#define LG_MAX_REPORTS 10

typedef enum { REQ_EMBED, REQ_TRIPLET } lg_kind;

typedef struct {
    lg_kind kind;
    int n;                   /* vectors (embed) or triplets (loss) */
    int idx[LG_MAX_VECS][3]; /* input indices: embed uses idx[i][0] */
    char *body;              /* JSON request body */
    const char *path;
    double loss[LG_MAX_MODELS]; /* expected mean loss per model */
    double losses[LG_MAX_MODELS][LG_MAX_VECS];
} lg_template;

typedef struct {
    const char *url;
    int n_models;
    mdl_model *models[LG_MAX_MODELS];
    float *emb[LG_MAX_MODELS]; /* LG_N_INPUTS x output_dim */
    lg_template tpl[LG_N_TEMPLATES];
    long budget;
    double rate, max_seconds;
    int threads;
    struct timespec t0;
    atomic_long next, done, ok, failed, n_embed, n_triplet, http_err, transport_err, mismatch, ambiguous, reports;
    atomic_long per_model[LG_MAX_MODELS];
    atomic_int timed_out;
} lg_ctx;

typedef membuf lg_buf;

static double lg_now(const lg_ctx *c) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - c->t0.tv_sec) + (double)(t.tv_nsec - c->t0.tv_nsec) * 1e-9;
}

static int lg_close(double got, double want) {
    double tol = LG_TOL * (fabs(want) > 1.0 ? fabs(want) : 1.0);
    return isfinite(got) && fabs(got - want) <= tol;
}

static size_t lg_write(char *data, size_t size, size_t nmemb, void *ud) {
    size_t n = size * nmemb;
    return membuf_add(ud, data, n, 0) == TR_OK ? n : 0;
}

/* Append printf output to a growing string; 0 on success, -1 on ENOMEM. */
static int lg_appendf(lg_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int lg_appendf(lg_buf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof tmp) return -1;
    return lg_write(tmp, 1, (size_t)n, b) == (size_t)n ? 0 : -1;
}

static int lg_append_vec(lg_buf *b, const uint8_t *x, int dim) {
    if (lg_appendf(b, "[")) return -1;
    for (int i = 0; i < dim; i++)
        if (lg_appendf(b, i ? ",%u" : "%u", (unsigned)x[i])) return -1;
    return lg_appendf(b, "]");
}

static int lg_append_list(lg_buf *b, const char *key, const lg_template *t, int col, const uint8_t *in, int dim,
                          int first) {
    if (lg_appendf(b, "%s\"%s\":[", first ? "" : ",", key)) return -1;
    for (int i = 0; i < t->n; i++) {
        if (i && lg_appendf(b, ",")) return -1;
        if (lg_append_vec(b, in + (size_t)t->idx[i][col] * (size_t)dim, dim)) return -1;
    }
    return lg_appendf(b, "]");
}

/* Inputs (pixel-like integers), their embeddings per model, the request
 * templates and their expected answers. */
static int lg_prepare(lg_ctx *c, unsigned seed) {
    int dim = mdl_input_dim(c->models[0]), rc = -1;
    mdl_ws ws = {0};
    tr_err err;
    uint8_t *in = malloc((size_t)LG_N_INPUTS * (size_t)dim);
    float *x = malloc((size_t)dim * sizeof *x);
    if (!in || !x) goto fail;
    uint32_t s = seed ? seed : 1;
    for (size_t i = 0; i < (size_t)LG_N_INPUTS * (size_t)dim; i++) {
        s ^= s << 13, s ^= s >> 17, s ^= s << 5;
        in[i] = (uint8_t)(s >> 11);
    }
    for (int m = 0; m < c->n_models; m++) {
        int od = mdl_output_dim(c->models[m]);
        c->emb[m] = malloc((size_t)LG_N_INPUTS * (size_t)od * sizeof(float));
        if (!c->emb[m]) goto fail;
        for (int i = 0; i < LG_N_INPUTS; i++) {
            for (int j = 0; j < dim; j++) x[j] = in[(size_t)i * (size_t)dim + (size_t)j];
            if (mdl_forward(c->models[m], x, 1, c->emb[m] + (size_t)i * (size_t)od, -1, &ws, &err) != TR_OK) {
                fprintf(stderr, "loadgen: forward with model %d: %s\n", m, err.msg);
                goto fail;
            }
        }
    }
    for (int t = 0; t < LG_N_TEMPLATES; t++) {
        lg_template *tp = &c->tpl[t];
        lg_buf b = {0};
        tp->kind = t % 2 ? REQ_TRIPLET : REQ_EMBED;
        tp->n = 1 + (t / 2) % LG_MAX_VECS;
        for (int i = 0; i < tp->n; i++)
            for (int k = 0; k < 3; k++) tp->idx[i][k] = (t * 7 + i * 13 + k * 5) % LG_N_INPUTS;
        if (tp->kind == REQ_EMBED) {
            tp->path = "/v1/embed";
            if (lg_appendf(&b, "{") || lg_append_list(&b, "inputs", tp, 0, in, dim, 1) || lg_appendf(&b, "}"))
                goto fail_body;
        } else {
            tp->path = "/v1/loss/triplet";
            if (lg_appendf(&b, "{") || lg_append_list(&b, "anchors", tp, 0, in, dim, 1) ||
                lg_append_list(&b, "positives", tp, 1, in, dim, 0) ||
                lg_append_list(&b, "negatives", tp, 2, in, dim, 0) ||
                lg_appendf(&b, ",\"metric\":\"sqeuclidean\",\"margin\":%g,\"loss\":\"triplet\",\"reduction\":\"mean\"}",
                           LG_MARGIN))
                goto fail_body;
            for (int m = 0; m < c->n_models; m++) {
                size_t od = (size_t)mdl_output_dim(c->models[m]);
                double sum = 0;
                for (int i = 0; i < tp->n; i++) {
                    const float *a = c->emb[m] + (size_t)tp->idx[i][0] * od;
                    const float *p = c->emb[m] + (size_t)tp->idx[i][1] * od;
                    const float *n = c->emb[m] + (size_t)tp->idx[i][2] * od;
                    double l = dist_one(DIST_SQEUCLIDEAN, a, p, od) - dist_one(DIST_SQEUCLIDEAN, a, n, od) + LG_MARGIN;
                    tp->losses[m][i] = l > 0 ? l : 0;
                    sum += tp->losses[m][i];
                }
                tp->loss[m] = sum / tp->n;
            }
        }
        tp->body = b.p;
        continue;
    fail_body:
        free(b.p);
        goto fail;
    }
    rc = 0;
fail:
    if (rc) fprintf(stderr, "loadgen: out of memory preparing requests\n");
    mdl_ws_free(&ws);
    free(in);
    free(x);
    return rc;
}

/* Bitmask of the models whose expected answer this response body matches. */
static unsigned lg_match(const lg_ctx *c, const lg_template *t, const cJSON *root) {
    unsigned mask = 0;
    for (int m = 0; m < c->n_models; m++) {
        int good = 1;
        if (t->kind == REQ_EMBED) {
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, "embeddings");
            int od = mdl_output_dim(c->models[m]);
            good = cJSON_IsArray(e) && cJSON_GetArraySize(e) == t->n;
            for (int i = 0; good && i < t->n; i++) {
                const cJSON *v = cJSON_GetArrayItem(e, i);
                const float *want = c->emb[m] + (size_t)t->idx[i][0] * (size_t)od;
                good = cJSON_IsArray(v) && cJSON_GetArraySize(v) == od;
                int j = 0;
                for (const cJSON *x = v ? v->child : NULL; good && x; x = x->next, j++)
                    good = cJSON_IsNumber(x) && lg_close(x->valuedouble, want[j]);
            }
        } else {
            const cJSON *l = cJSON_GetObjectItemCaseSensitive(root, "loss");
            const cJSON *ls = cJSON_GetObjectItemCaseSensitive(root, "losses");
            good = cJSON_IsNumber(l) && lg_close(l->valuedouble, t->loss[m]) && cJSON_IsArray(ls) &&
                   cJSON_GetArraySize(ls) == t->n;
            for (int i = 0; good && i < t->n; i++) {
                const cJSON *x = cJSON_GetArrayItem(ls, i);
                good = cJSON_IsNumber(x) && lg_close(x->valuedouble, t->losses[m][i]);
            }
        }
        if (good) mask |= 1u << m;
    }
    return mask;
}

static void lg_report(lg_ctx *c, long i, const char *what, const char *detail) {
    if (atomic_fetch_add(&c->reports, 1) < LG_MAX_REPORTS)
        fprintf(stderr, "loadgen: request %ld (%s): %s%s%.300s\n", i, c->tpl[i % LG_N_TEMPLATES].path, what,
                detail ? ": " : "", detail ? detail : "");
}

static void lg_sleep_until(const lg_ctx *c, double when) {
    double d = when - lg_now(c);
    if (d <= 0) return;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static void *lg_worker(void *arg) {
    lg_ctx *c = arg;
    lg_buf resp = {0};
    char url[512];
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    if (!h || !hdr) {
        fprintf(stderr, "loadgen: cannot create a curl handle\n");
        atomic_store(&c->timed_out, 1);
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, lg_write);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
    for (;;) {
        long i = atomic_fetch_add(&c->next, 1);
        if (i >= c->budget) break;
        if (c->rate > 0) lg_sleep_until(c, (double)i / c->rate);
        if (lg_now(c) > c->max_seconds) {
            atomic_store(&c->timed_out, 1);
            break;
        }
        const lg_template *t = &c->tpl[i % LG_N_TEMPLATES];
        snprintf(url, sizeof url, "%s%s", c->url, t->path);
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, t->body);
        resp.n = 0;
        if (resp.p) resp.p[0] = '\0';
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        atomic_fetch_add(t->kind == REQ_EMBED ? &c->n_embed : &c->n_triplet, 1);
        int ok = 0;
        if (cc != CURLE_OK) {
            atomic_fetch_add(&c->transport_err, 1);
            lg_report(c, i, "transport error", curl_easy_strerror(cc));
        } else if (status != 200) {
            char what[32];
            snprintf(what, sizeof what, "HTTP %ld", status);
            atomic_fetch_add(&c->http_err, 1);
            lg_report(c, i, what, resp.p ? resp.p : "");
        } else {
            cJSON *root = cJSON_ParseWithLength(resp.p ? resp.p : "", resp.n);
            unsigned mask = root ? lg_match(c, t, root) : 0;
            cJSON_Delete(root);
            if (!mask) {
                atomic_fetch_add(&c->mismatch, 1);
                lg_report(c, i, "answer matches no model", resp.p ? resp.p : "");
            } else {
                ok = 1;
                if (mask & (mask - 1)) atomic_fetch_add(&c->ambiguous, 1);
                for (int m = 0; m < c->n_models; m++)
                    if (mask == 1u << m) atomic_fetch_add(&c->per_model[m], 1);
            }
        }
        atomic_fetch_add(ok ? &c->ok : &c->failed, 1);
        atomic_fetch_add(&c->done, 1);
    }
out:
    curl_slist_free_all(hdr);
    curl_easy_cleanup(h);
    free(resp.p);
    return NULL;
}

static void lg_progress(const char *path, long done) {
    if (!path) return;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    fprintf(f, "%ld\n", done);
    if (fclose(f) == 0) rename(tmp, path);
}

static int lg_usage(const char *msg) {
    fprintf(stderr,
            "loadgen: %s\nusage: loadgen --url URL --model FILE [--model FILE ...] [--threads N]\n"
            "               [--requests N] [--rate REQ_PER_S] [--max-seconds S] [--progress FILE] [--seed N]\n",
            msg);
    return 2;
}

int main(int argc, char **argv) {
    static lg_ctx c;
    const char *progress = NULL;
    unsigned seed = 1;
    int rc = 1;
    c.threads = 8;
    c.budget = 20000;
    c.max_seconds = 100;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!v) return lg_usage("every option takes a value");
        i++;
        errno = 0;
        if (!strcmp(a, "--url"))
            c.url = v;
        else if (!strcmp(a, "--progress"))
            progress = v;
        else if (!strcmp(a, "--model")) {
            tr_err err;
            if (c.n_models == LG_MAX_MODELS) return lg_usage("at most 4 --model");
            if (mdl_load(v, &c.models[c.n_models], &err) != TR_OK) {
                fprintf(stderr, "loadgen: --model %s: %s\n", v, err.msg);
                return 2;
            }
            c.n_models++;
        } else if (!strcmp(a, "--threads"))
            c.threads = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--requests"))
            c.budget = strtol(v, &end, 10);
        else if (!strcmp(a, "--seed"))
            seed = (unsigned)strtoul(v, &end, 10);
        else if (!strcmp(a, "--rate"))
            c.rate = strtod(v, &end);
        else if (!strcmp(a, "--max-seconds"))
            c.max_seconds = strtod(v, &end);
        else
            return lg_usage("unknown option");
        if (end && (*end || end == v || errno)) {
            fprintf(stderr, "loadgen: %s: not a number: \"%s\"\n", a, v);
            return 2;
        }
    }
    if (!c.url || !c.n_models) return lg_usage("--url and --model are required");
    if (c.threads < 1 || c.threads > 256) return lg_usage("--threads: expected 1..256");
    if (c.budget < 1 || c.rate < 0 || !(c.max_seconds > 0))
        return lg_usage("--requests, --rate or --max-seconds out of range");
    for (int m = 1; m < c.n_models; m++)
        if (mdl_input_dim(c.models[m]) != mdl_input_dim(c.models[0]))
            return lg_usage("all models must have the same input dimension");

    pthread_t tid[256];
    int started = 0;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) goto fail;
    if (lg_prepare(&c, seed)) goto fail;
    clock_gettime(CLOCK_MONOTONIC, &c.t0);
    for (; started < c.threads; started++)
        if (pthread_create(&tid[started], NULL, lg_worker, &c)) {
            fprintf(stderr, "loadgen: cannot start thread %d\n", started);
            atomic_store(&c.timed_out, 1);
            atomic_store(&c.next, c.budget);
            break;
        }
    while (atomic_load(&c.done) < c.budget && lg_now(&c) < c.max_seconds + 35 && !atomic_load(&c.timed_out)) {
        lg_progress(progress, atomic_load(&c.done));
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
    double secs = lg_now(&c);
    long done = atomic_load(&c.done);
    lg_progress(progress, done);
    printf("loadgen: requests=%ld ok=%ld failed=%ld embed=%ld triplet=%ld http_errors=%ld transport_errors=%ld "
           "mismatches=%ld",
           done, atomic_load(&c.ok), atomic_load(&c.failed), atomic_load(&c.n_embed), atomic_load(&c.n_triplet),
           atomic_load(&c.http_err), atomic_load(&c.transport_err), atomic_load(&c.mismatch));
    for (int m = 0; m < c.n_models; m++) printf(" model%d=%ld", m, atomic_load(&c.per_model[m]));
    printf(" ambiguous=%ld seconds=%.2f rps=%.0f\n", atomic_load(&c.ambiguous), secs,
           secs > 0 ? (double)done / secs : 0.0);
    if (done < c.budget)
        fprintf(stderr, "loadgen: only %ld of %ld requests answered within %.0f s\n", done, c.budget, c.max_seconds);
    rc = (done == c.budget && atomic_load(&c.failed) == 0 && atomic_load(&c.ok) == c.budget) ? 0 : 1;
fail:
    for (int t = 0; t < LG_N_TEMPLATES; t++) free(c.tpl[t].body);
    for (int m = 0; m < c.n_models; m++) {
        free(c.emb[m]);
        mdl_free(c.models[m]);
    }
    curl_global_cleanup();
    return rc;
}
