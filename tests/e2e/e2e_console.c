/* e2e_console.c - the console's routes against a real tripletd: GET /v1/stats after known traffic. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static h_server S;

/* Sleep until the wall-clock second changes, so what was sent is in a complete second. */
static void next_second(void) {
    time_t t0 = time(NULL);
    while (time(NULL) == t0) usleep(20000);
}

static const cJSON *route_of(const cJSON *stats, const char *route) {
    const cJSON *r;
    cJSON_ArrayForEach(r, h_jget(stats, "routes")) {
        const char *name = h_jstr(r, "route");
        if (name && strcmp(name, route) == 0) return r;
    }
    return NULL;
}

static void test_stats(void) {
    h_resp r;
    char body[256];
    /* triplets on given 2-d vectors, margin 0.2: easy (loss 0), semi-hard (0.1), hard (1.1) */
    static const char *const TRIPLETS[] = {"[[0,0]],\"positives\":[[0.1,0]],\"negatives\":[[1,0]]",
                                           "[[0,0]],\"positives\":[[0.5,0]],\"negatives\":[[0.6,0]]",
                                           "[[0,0]],\"positives\":[[1,0]],\"negatives\":[[0.1,0]]"};
    for (int i = 0; i < 25; i++) {
        h_get(&S, "/v1/model", &r);
        CHECK_EQ_INT(r.status, 200, "GET /v1/model");
        h_resp_free(&r);
    }
    for (int i = 0; i < 4; i++) {
        h_get(&S, "/v1/no-such-route", &r);
        h_resp_free(&r);
    }
    for (int i = 0; i < 3; i++) {
        snprintf(body, sizeof body,
                 "{\"anchors\":%s,\"embed\":false,\"metric\":\"euclidean\",\"margin\":0.2}", TRIPLETS[i]);
        h_post(&S, "/v1/loss/triplet", body, &r);
        CHECK_EQ_INT(r.status, 200, "POST /v1/loss/triplet");
        h_resp_free(&r);
    }
    next_second();
    h_get(&S, "/v1/stats?window=600", &r);
    if (!CHECK_EQ_INT(r.status, 200, "GET /v1/stats") || !CHECK(r.json != NULL, "stats: not JSON")) {
        h_resp_free(&r);
        return;
    }
    const cJSON *o = r.json, *m = route_of(o, "/v1/model"), *t = route_of(o, "/v1/loss/triplet");
    CHECK_EQ_INT(h_jnum(o, "window_seconds"), 600, "stats window_seconds");
    CHECK_EQ_INT(h_jnum(o, "span_seconds"), 600, "stats span_seconds");
    CHECK(m != NULL && t != NULL, "stats: routes lack /v1/model or /v1/loss/triplet");
    if (m) CHECK_EQ_INT(h_jnum(m, "requests"), 25, "stats /v1/model requests");
    if (m) CHECK(h_jnum(m, "p50_ms") > 0 && h_jnum(m, "p99_ms") >= h_jnum(m, "p50_ms"), "stats /v1/model p50 <= p99");
    if (t) CHECK_EQ_INT(h_jnum(t, "requests"), 3, "stats /v1/loss/triplet requests");
    const cJSON *other = route_of(o, "other");
    CHECK(other && h_jnum(other, "errors") == 4, "stats: 4 errors on route other");
    CHECK_EQ_INT(h_jnum(o, "status.404"), 4, "stats status 404");
    CHECK(h_jnum(o, "errors") >= 4, "stats errors >= 4");
    CHECK_EQ_INT(h_jnum(o, "triplets.easy"), 1, "stats triplets easy");
    CHECK_EQ_INT(h_jnum(o, "triplets.semi_hard"), 1, "stats triplets semi_hard");
    CHECK_EQ_INT(h_jnum(o, "triplets.hard"), 1, "stats triplets hard");
    /* losses 0, 0.1 and 1.1: bins le 0, le 0.1 and the open one */
    const cJSON *lh = h_jget(o, "triplets.loss_histogram");
    CHECK(cJSON_GetArraySize(lh) == 22, "loss histogram: 22 bins");
    CHECK_EQ_INT(h_jnum(cJSON_GetArrayItem(lh, 0), "count"), 1, "loss bin le 0");
    CHECK_EQ_INT(h_jnum(cJSON_GetArrayItem(lh, 2), "count"), 1, "loss bin le 0.1");
    CHECK_EQ_INT(h_jnum(cJSON_GetArrayItem(lh, 21), "count"), 1, "loss bin open");
    CHECK_EQ_INT(h_jnum(o, "batch.vectors"), 3, "stats batch vectors (one per triplet field 0)");
    /* the series holds every counted request: the total equals requests */
    double sum = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, h_jget(o, "series.requests")) sum += v->valuedouble;
    CHECK_EQ_INT(cJSON_GetArraySize(h_jget(o, "series.requests")), 600, "series length");
    CHECK_EQ_INT(sum, h_jnum(o, "requests"), "series sum = requests");
    CHECK(h_jnum(o, "requests") >= 32, "stats requests >= 32 (25 + 4 + 3)");
    h_resp_free(&r);

    h_get(&S, "/v1/stats?window=0", &r);
    CHECK_ERROR(&r, 422, "invalid_input", "window", "stats window=0");
    h_resp_free(&r);
    h_get(&S, "/v1/stats?window=abc", &r);
    CHECK_ERROR(&r, 422, "invalid_input", "window", "stats window=abc");
    h_resp_free(&r);
}

int main(void) {
    const char *args[] = {"--threads", "2", NULL};
    if (h_server_start(&S, args) != 0) h_die("tripletd did not start");
    test_stats();
    int st = h_server_stop(&S, SIGTERM, h_slow() ? 30 : 10);
    CHECK(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0, "tripletd did not exit 0 after SIGTERM (status %d)", st);
    if (h_failures) h_server_log_tail(&S, 10);
    return h_report("e2e_console");
}
