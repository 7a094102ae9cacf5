/* test_srv_dispatch.c - srv_dispatch without HTTP: body refusals, no snapshot, a handler's reply, its context. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "dispatch.h"
#include "routes.h"
#include "state.h"

static srv_config g_cfg;

static int route_of(const char *method, const char *path) {
    char allow[96];
    int known;
    int r = srv_route_find(method, path, &known, allow, sizeof allow);
    assert_true(r >= 0);
    return r;
}

/* Dispatch body (NULL: none) to method+path; the reply's status, its error message in msg. */
static int run(const char *method, const char *path, const char *body, int draining, srv_reply *out) {
    srv_request rq = {.route = route_of(method, path),
                      .body = body,
                      .len = body ? strlen(body) : 0,
                      .request_id = "test",
                      .in_flight = 1,
                      .draining = draining};
    srv_reply_init(out);
    int rc = srv_dispatch(&g_cfg, &rq, out);
    assert_int_equal(rc, out->status);
    return rc;
}

static void test_no_snapshot(void **state) {
    (void)state;
    srv_reply out;
    srv_state_install(NULL);
    assert_int_equal(run("GET", "/healthz", NULL, 0, &out), 503);
    assert_string_equal(out.err_msg, "no model loaded");
    srv_reply_clear(&out);
}

static void test_bodies(void **state) {
    (void)state;
    srv_reply out;
    assert_int_equal(run("POST", "/v1/embed", NULL, 0, &out), 400);
    assert_string_equal(out.err_msg, "request body is empty (expected a JSON object)");
    assert_int_equal(run("POST", "/v1/embed", "{\"inputs\":", 0, &out), 400);
    assert_string_equal(out.err_type, "invalid_json");
    assert_int_equal(run("POST", "/v1/embed", "[1,2]", 0, &out), 422);
    assert_string_equal(out.err_msg, "request body: expected a JSON object, got an array");
    assert_int_equal(run("POST", "/v1/embed", "\"x\"", 0, &out), 422);
    assert_string_equal(out.err_msg, "request body: expected a JSON object, got a string");
    srv_request img = {
        .route = route_of("POST", "/v1/embed"), .body = "", .len = 0, .request_id = "test", .image_body = 1};
    srv_reply_init(&out);
    assert_int_equal(srv_dispatch(&g_cfg, &img, &out), 422); /* the image data is the invalid input */
    assert_string_equal(out.err_type, "invalid_input");
    assert_string_equal(out.err_field, "body");
    assert_string_equal(out.err_msg, "body: empty image data (0 bytes; expected a PNG or JPEG file)");
    srv_reply_clear(&out);
    /* the body is read as len bytes: what follows is not looked at */
    srv_request rq = {.route = route_of("POST", "/v1/distance"),
                      .body = "{\"a\":[[1]],\"b\":[[2]],\"embed\":false}trailing",
                      .len = 35,
                      .request_id = "test"};
    srv_reply_init(&out);
    assert_int_equal(srv_dispatch(&g_cfg, &rq, &out), 200);
    char *s = cJSON_PrintUnformatted(out.body);
    assert_string_equal(s, "{\"metric\":\"sqeuclidean\",\"distances\":[1]}");
    free(s);
    srv_reply_clear(&out);
    /* a GET route ignores a body */
    assert_int_equal(run("GET", "/healthz", "not json", 0, &out), 200);
    srv_reply_clear(&out);
}

/* The handler sees what the caller passed: draining turns /readyz to 503. */
static void test_context(void **state) {
    (void)state;
    srv_reply out;
    assert_int_equal(run("GET", "/readyz", NULL, 0, &out), 200);
    srv_reply_clear(&out);
    assert_int_equal(run("GET", "/readyz", NULL, 1, &out), 503);
    assert_string_equal(out.err_msg, "draining: shutting down");
    srv_reply_clear(&out);
}

static int setup(void **state) {
    (void)state;
    const char *r = getenv("TRIPLET_ROOT");
    char model[1024];
    snprintf(model, sizeof model, "%s/tests/data/e2e-model.safetensors", r && *r ? r : ".");
    char *argv[] = {"tripletd", "--model", model, NULL};
    tr_err err;
    srv_state *st = NULL;
    if (srv_config_parse(&g_cfg, 3, argv, &err) != 0 || srv_state_load(&g_cfg, model, NULL, &st, &err) != TR_OK) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    srv_state_install(st);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    srv_state_install(NULL);
    srv_config_free(&g_cfg);
    return 0;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_context),
        cmocka_unit_test(test_no_snapshot),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
