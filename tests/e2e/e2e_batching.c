/* e2e_batching.c - batched forwards (server/batcher.c): concurrent answers equal single-threaded ones, across a reload,
 * and the batch-size metrics. */
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define IN_DIM 784
#define OUT_DIM 32
#define N_BODY 192 /* distinct request bodies */
#define BIG_ROWS 6 /* rows of the "big" bodies (more than the cap of 4 below) */
#define N_CLIENT 64
#define ITER 6    /* requests per client in the equality test */
#define RTOL 1e-6 /* of a row's largest component */

static char *body[N_BODY];
static int rows_of[N_BODY];
static double *ref[2][N_BODY]; /* [model A/B][body] rows x OUT_DIM, from an unbatched server */

static int is_big(int i) {
    return i % 16 == 5;
}

/* Body i: 1 row (BIG_ROWS for is_big), distinct inputs; every third asks for raw (unnormalised) outputs. */
static void build_bodies(void) {
    for (int i = 0; i < N_BODY; i++) {
        rows_of[i] = is_big(i) ? BIG_ROWS : 1;
        cJSON *q = cJSON_CreateObject(), *in = cJSON_AddArrayToObject(q, "inputs");
        for (int r = 0; r < rows_of[i]; r++) {
            float x[IN_DIM];
            uint32_t s = (uint32_t)(i * 1000 + r) * 2654435761u + 12345u;
            for (int d = 0; d < IN_DIM; d++) {
                s = s * 1664525u + 1013904223u;
                x[d] = (float)((s >> 8) % 1000) / 1000.0f;
            }
            cJSON_AddItemToArray(in, cJSON_CreateFloatArray(x, IN_DIM));
        }
        if (i % 3 == 0) cJSON_AddFalseToObject(q, "normalize");
        body[i] = cJSON_PrintUnformatted(q);
        cJSON_Delete(q);
    }
}

/* The reply's embeddings as rows x OUT_DIM doubles (malloc'd), or NULL. */
static double *embeddings(const e2e_resp *r, int rows) {
    size_t n = 0, d = 0;
    double *e = r->status == 200 ? e2e_jmatrix(e2e_jget(r->json, "embeddings"), &n, &d) : NULL;
    if (e && (n != (size_t)rows || d != OUT_DIM)) {
        free(e);
        e = NULL;
    }
    return e;
}

/* Largest |got - want| of a row over the row's largest |want|: sgemm (batched)
 * and sgemv (alone) sum in different orders, so a component near zero can
 * differ by more than RTOL of itself but not of its row. */
static double row_diff(const double *got, const double *want) {
    double dmax = 0, wmax = 0;
    for (int d = 0; d < OUT_DIM; d++) {
        if (fabs(got[d] - want[d]) > dmax) dmax = fabs(got[d] - want[d]);
        if (fabs(want[d]) > wmax) wmax = fabs(want[d]);
    }
    return dmax / (wmax > 0 ? wmax : 1);
}

static int same(const double *got, const double *want, int rows) {
    if (!got || !want) return 0;
    for (int r = 0; r < rows; r++)
        if (row_diff(got + r * OUT_DIM, want + r * OUT_DIM) > RTOL) return 0;
    return 1;
}

/* ---- model files ------------------------------------------------------ */

static int reload(const e2e_server *s) {
    e2e_resp r;
    e2e_post(s, "/v1/admin/reload", "{}", &r);
    int ok = CHECK(r.status == 200, "POST /v1/admin/reload: status %ld %s", r.status, r.body ? r.body : "");
    e2e_resp_free(&r);
    return ok;
}

/* ---- metrics ---------------------------------------------------------- */

typedef struct {
    double le1, le4, le8, count, sum;
} rows_hist;

static int get_rows_hist(const e2e_server *s, rows_hist *h) {
    e2e_resp r;
    e2e_get(s, "/metrics", &r);
    int ok = CHECK(r.status == 200 && r.body, "GET /metrics: status %ld", r.status);
    if (ok) {
        h->le1 = e2e_metric(r.body, "tripletd_forward_batch_rows_bucket{le=\"1\"}");
        h->le4 = e2e_metric(r.body, "tripletd_forward_batch_rows_bucket{le=\"4\"}");
        h->le8 = e2e_metric(r.body, "tripletd_forward_batch_rows_bucket{le=\"8\"}");
        h->count = e2e_metric(r.body, "tripletd_forward_batch_rows_count");
        h->sum = e2e_metric(r.body, "tripletd_forward_batch_rows_sum");
        ok = CHECK(!isnan(h->le1) && !isnan(h->le4) && !isnan(h->le8) && !isnan(h->count) && !isnan(h->sum) &&
                       strstr(r.body, "# TYPE tripletd_forward_batch_rows histogram"),
                   "/metrics lacks the tripletd_forward_batch_rows histogram");
    }
    e2e_resp_free(&r);
    return ok;
}

/* ---- load ------------------------------------------------------------- */

typedef struct {
    const e2e_server *s;
    int id, max_iter, accept_b;
    atomic_int *stop;
    int ok, bad_status, wrong, seen_b, big;
    long last_status;
} client;

static void *client_run(void *arg) {
    client *c = arg;
    void *conn = e2e_conn_new();
    for (int j = 0; j < c->max_iter && !(c->stop && atomic_load(c->stop)); j++) {
        int i = (c->id * 7 + j * 13) % N_BODY;
        e2e_req rq = {.method = "POST", .path = "/v1/embed", .body = body[i]};
        e2e_resp r;
        e2e_request_conn(conn, c->s, &rq, &r);
        if (r.status != 200) {
            c->bad_status++;
            c->last_status = r.status;
        } else {
            double *e = embeddings(&r, rows_of[i]);
            if (same(e, ref[0][i], rows_of[i]))
                c->ok++;
            else if (c->accept_b && same(e, ref[1][i], rows_of[i]))
                c->ok++, c->seen_b++;
            else {
                c->wrong++;
                if (e) {
                    double worst[2] = {0, 0};
                    for (int m = 0; m < 2; m++)
                        for (int k = 0; k < rows_of[i]; k++)
                            worst[m] = fmax(worst[m], row_diff(e + k * OUT_DIM, ref[m][i] + k * OUT_DIM));
                    CHECK(0,
                          "body %d: largest difference %g (of the row's largest value) from model A, %g from model B",
                          i, worst[0], worst[1]);
                }
            }
            c->big += is_big(i);
            free(e);
        }
        e2e_resp_free(&r);
    }
    e2e_conn_free(conn);
    return NULL;
}

static void run_clients(const e2e_server *s, client *cl, int max_iter, int accept_b, atomic_int *stop, pthread_t *th) {
    for (int i = 0; i < N_CLIENT; i++) {
        cl[i] = (client){.s = s, .id = i, .max_iter = max_iter, .accept_b = accept_b, .stop = stop};
        if (pthread_create(&th[i], NULL, client_run, &cl[i]) != 0) e2e_die("pthread_create failed");
    }
}

static void join_clients(client *cl, pthread_t *th, const char *what, int *total, int *big, int *seen_b) {
    int wrong = 0, bad = 0, ok = 0;
    *total = *big = *seen_b = 0;
    for (int i = 0; i < N_CLIENT; i++) {
        pthread_join(th[i], NULL);
        ok += cl[i].ok;
        wrong += cl[i].wrong;
        bad += cl[i].bad_status;
        *big += cl[i].big;
        *seen_b += cl[i].seen_b;
        if (cl[i].bad_status)
            CHECK(0, "%s: client %d got %d non-200 replies (last %ld)", what, i, cl[i].bad_status, cl[i].last_status);
    }
    *total = ok + wrong;
    CHECK(wrong == 0 && bad == 0 && ok > 0, "%s: %d answers equal the single-threaded ones, %d differ, %d failed", what,
          ok, wrong, bad);
}

/* ---- tests ------------------------------------------------------------ */

/* References from a server with batching off (every forward runs alone): models A and B. */
static int measure_refs(const char *dir, const char *live, const char *path_a, const char *path_b) {
    e2e_server s;
    const char *args[] = {"--model", live, "--batch-max-rows", "0", NULL};
    (void)dir;
    if (e2e_install_file(path_a, live) != 0 || e2e_server_start(&s, args) != 0) return -1;
    int rc = 0, sent_single = 0, sent_big = 0;
    for (int m = 0; m < 2 && rc == 0; m++) {
        if (m == 1 && (e2e_install_file(path_b, live) != 0 || !reload(&s))) rc = -1;
        for (int i = 0; i < N_BODY && rc == 0; i++) {
            e2e_resp r;
            e2e_post(&s, "/v1/embed", body[i], &r);
            if ((ref[m][i] = embeddings(&r, rows_of[i])) == NULL) {
                CHECK(0, "reference embed %d on model %c: status %ld %s", i, 'A' + m, r.status, r.body ? r.body : "");
                rc = -1;
            }
            if (is_big(i))
                sent_big++;
            else
                sent_single++;
            e2e_resp_free(&r);
        }
    }
    rows_hist h;
    if (rc == 0 && get_rows_hist(&s, &h)) {
        CHECK(h.le1 == sent_single && h.count == sent_single + sent_big && h.le8 == h.count,
              "--batch-max-rows 0: forwards le1 %g le8 %g count %g, want %d single-row and %d of %d rows run alone",
              h.le1, h.le8, h.count, sent_single, sent_big, BIG_ROWS);
    }
    e2e_server_stop(&s, SIGTERM, 10);
    if (rc == 0) {
        double diff = 0;
        for (int k = 0; k < OUT_DIM; k++) diff += fabs(ref[1][0][k] - ref[0][0][k]);
        rc =
            CHECK(diff > 1e-3, "model B answers like A (%g): the reload test could not tell them apart", diff) ? 0 : -1;
    }
    return rc;
}

static void test_batching(void) {
    e2e_server s;
    char dir[256], live[400], path_a[400], path_b[400];
    e2e_mkdtemp(dir, sizeof dir, "e2e-batching");
    snprintf(live, sizeof live, "%s/model.safetensors", dir);
    snprintf(path_a, sizeof path_a, "%s/a.safetensors", dir);
    snprintf(path_b, sizeof path_b, "%s/b.safetensors", dir);
    if (!CHECK(e2e_install_file(e2e_root_path("tests/data/e2e-model.safetensors"), path_a) == 0 &&
                   e2e_write_shifted_model(path_b) == 0,
               "cannot write the model files in %s", dir))
        goto out;
    if (measure_refs(dir, live, path_a, path_b) != 0 || e2e_install_file(path_a, live) != 0) goto out;

    /* 64 concurrent clients, cap 4 rows per batch: bodies of 6 rows must run alone;
     * one forward at a time so that the others queue (batch) even on a quiet machine */
    const char *args[] = {
        "--model",         live, "--threads", "24", "--max-concurrent", "1000", "--batch-max-rows", "4",
        "--batch-leaders", "1",  NULL};
    if (!CHECK(e2e_server_start(&s, args) == 0, "tripletd --batch-max-rows 4 did not start")) goto out;
    client cl[N_CLIENT];
    pthread_t th[N_CLIENT];
    int total, big, seen_b, all_total = 0, all_big = 0;
    rows_hist h;
    for (int round = 0; round < 5; round++) {
        run_clients(&s, cl, ITER, 0, NULL, th);
        join_clients(cl, th, "64 concurrent clients", &total, &big, &seen_b);
        all_total += total;
        all_big += big;
        if (!get_rows_hist(&s, &h) || h.count - h.le1 - (h.le8 - h.le4) > 0) break; /* batches seen */
    }
    if (get_rows_hist(&s, &h)) {
        double rows = (double)(all_total - all_big) + (double)all_big * BIG_ROWS;
        CHECK(h.sum == rows, "tripletd_forward_batch_rows_sum %g, want the %g rows sent", h.sum, rows);
        CHECK(h.le8 - h.le4 == all_big, "forwards of 5-8 rows: %g, want the %d %d-row requests (they bypass the cap)",
              h.le8 - h.le4, all_big, BIG_ROWS);
        CHECK(h.count - h.le1 - (h.le8 - h.le4) > 0,
              "no forward batched 2-4 single-row requests (forwards %g, 1-row %g) under 64 concurrent clients", h.count,
              h.le1);
        CHECK(h.count < all_total, "%g forwards for %d requests: nothing was batched", h.count, all_total);
        printf("batching: %d requests in %g forwards (%g of 1 row)\n", all_total, h.count, h.le1);
    }

    /* reload A -> B under the same load: each answer is A's or B's for its input, never a mix */
    atomic_int stop = 0;
    run_clients(&s, cl, 100000, 1, &stop, th);
    usleep(300000);
    int reloaded = e2e_install_file(path_b, live) == 0 && reload(&s);
    double t0 = e2e_now();
    int b_seen = 0;
    while (reloaded && !b_seen && e2e_now() - t0 < 10 * (e2e_slow() ? 4 : 1)) {
        e2e_resp r;
        e2e_post(&s, "/v1/embed", body[1], &r);
        double *e = embeddings(&r, rows_of[1]);
        b_seen = same(e, ref[1][1], rows_of[1]);
        free(e);
        e2e_resp_free(&r);
        if (!b_seen) usleep(20000);
    }
    usleep(300000);
    atomic_store(&stop, 1);
    join_clients(cl, th, "64 concurrent clients across a reload", &total, &big, &seen_b);
    CHECK(b_seen, "after the reload the server does not answer with model B");
    CHECK(seen_b > 0, "no client saw model B during the reload test (%d requests)", total);
    e2e_server_stop(&s, SIGTERM, 10);

    /* the defaults (cap 256, one running forward per CPU) on model B */
    const char *dargs[] = {"--model", live, "--threads", "24", "--max-concurrent", "1000", NULL};
    if (!CHECK(e2e_server_start(&s, dargs) == 0, "tripletd with the default batching did not start")) goto out;
    for (int i = 0; i < N_BODY; i++) { /* the clients compare with ref[0]: make B the expected model */
        double *t = ref[0][i];
        ref[0][i] = ref[1][i];
        ref[1][i] = t;
    }
    run_clients(&s, cl, ITER, 0, NULL, th);
    join_clients(cl, th, "64 concurrent clients, default batching", &total, &big, &seen_b);
    e2e_server_stop(&s, SIGTERM, 10);

    /* one worker thread: no two forwards run at once, so a forward of several
     * single-row requests is the batch of one event-loop pass (http.c, xbatch.c) */
    const char *oargs[] = {"--model", live, "--threads", "1", "--max-concurrent", "1000", NULL};
    if (!CHECK(e2e_server_start(&s, oargs) == 0, "tripletd --threads 1 did not start")) goto out;
    all_total = all_big = 0;
    for (int round = 0; round < 5; round++) {
        run_clients(&s, cl, ITER, 0, NULL, th);
        join_clients(cl, th, "64 concurrent clients, one worker thread", &total, &big, &seen_b);
        all_total += total;
        all_big += big;
        if (!get_rows_hist(&s, &h) || h.count < all_total) break; /* batches seen */
    }
    if (get_rows_hist(&s, &h)) {
        double rows = (double)(all_total - all_big) + (double)all_big * BIG_ROWS;
        CHECK(h.sum == rows, "one worker: tripletd_forward_batch_rows_sum %g, want the %g rows sent", h.sum, rows);
        CHECK(h.count < all_total, "one worker: %g forwards for %d requests: no pass batched its requests", h.count,
              all_total);
        printf("one worker: %d requests in %g forwards (%g of 1 row)\n", all_total, h.count, h.le1);
    }
    e2e_server_stop(&s, SIGTERM, 10);
out:
    for (int m = 0; m < 2; m++)
        for (int i = 0; i < N_BODY; i++) free(ref[m][i]), ref[m][i] = NULL;
    unlink(live);
    unlink(path_a);
    unlink(path_b);
    rmdir(dir);
}

int main(void) {
    build_bodies();
    double t0 = e2e_now();
    test_batching();
    printf("batching: %.1f s\n", e2e_now() - t0);
    for (int i = 0; i < N_BODY; i++) cJSON_free(body[i]);
    return e2e_report("e2e_batching");
}
