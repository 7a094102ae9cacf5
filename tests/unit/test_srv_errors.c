/* test_srv_errors.c - the status -> HTTP code/type table, library status mapping and the JSON error body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "errors.h"

static void test_types(void **state) {
    (void)state;
    static const struct {
        int http;
        const char *type;
    } WANT[] = {{400, "invalid_json"},       {401, "unauthorized"},      {404, "not_found"},
                {405, "method_not_allowed"}, {413, "payload_too_large"}, {415, "unsupported_media_type"},
                {422, "invalid_input"},      {429, "too_many_requests"}, {500, "internal"},
                {503, "not_ready"}};
    for (size_t i = 0; i < sizeof WANT / sizeof WANT[0]; i++)
        assert_string_equal(srv_error_type(WANT[i].http), WANT[i].type);
}

/* The status list metrics and stats count by: ascending, 200 first, every
 * error status with its type (409 no_gallery too), the rest out of range. */
static void test_status_list(void **state) {
    (void)state;
    assert_int_equal(srv_status_at(0), 200);
    for (int i = 1; i < SRV_N_STATUS; i++) {
        assert_true(srv_status_at(i) > srv_status_at(i - 1));
        assert_true(srv_status_at(i) >= 400);
    }
    for (int i = 0; i < SRV_N_STATUS; i++) assert_int_equal(srv_status_index(srv_status_at(i)), i);
    assert_int_equal(srv_status_index(409), srv_status_index(405) + 1);
    assert_string_equal(srv_error_type(409), "no_gallery");
    assert_string_equal(srv_error_type(403), "forbidden");
    assert_int_equal(srv_status_index(418), SRV_N_STATUS);
    assert_int_equal(srv_status_index(0), SRV_N_STATUS);
    assert_int_equal(srv_status_at(SRV_N_STATUS), 0);
    assert_int_equal(srv_status_at(-1), 0);
    assert_string_equal(srv_error_type(418), "invalid_input");
    assert_string_equal(srv_error_type(502), "internal");
}

static void test_body(void **state) {
    (void)state;
    srv_reply r;
    srv_reply_init(&r);
    assert_int_equal(srv_fail(&r, 422, "anchors[3]", "anchors[3]: expected %d numbers, got %d", 784, 783), 422);
    cJSON *j = srv_error_json(&r);
    char *s = cJSON_PrintUnformatted(j);
    assert_string_equal(
        s, "{\"error\":{\"code\":422,\"type\":\"invalid_input\",\"message\":\"anchors[3]: expected 784 numbers, "
           "got 783\",\"field\":\"anchors[3]\"}}");
    free(s);
    cJSON_Delete(j);
    srv_reply_init(&r);
    srv_fail(&r, 404, NULL, "no route");
    j = srv_error_json(&r);
    assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "error"), "field")->valuestring, "");
    cJSON_Delete(j);
}

static void test_utf8_cut(void **state) {
    (void)state;
    srv_reply r;
    char big[sizeof r.err_msg + 100];
    size_t cap = sizeof r.err_msg;
    memset(big, 'a', sizeof big);
    memcpy(big + cap - 2, "\xc3\xa9", 2); /* an e-acute at the last two bytes: only its lead byte fits */
    big[cap] = 0;
    srv_reply_init(&r);
    srv_fail(&r, 422, "", "%s", big);
    assert_int_equal(strlen(r.err_msg), cap - 2); /* the lone lead byte is dropped */
    big[cap - 2] = 0;
    assert_string_equal(r.err_msg, big);
}

static void test_tr_mapping(void **state) {
    (void)state;
    static const struct {
        int status, http;
    } MAP[] = {{TR_EINVAL, 422}, {TR_EFORMAT, 422},   {TR_ELIMIT, 422}, {TR_EDIM, 422},
               {TR_EIO, 422},    {TR_ENOTFOUND, 422}, {TR_ENOMEM, 503}, {TR_EINTERNAL, 500}};
    for (size_t i = 0; i < sizeof MAP / sizeof MAP[0]; i++) {
        srv_reply r;
        tr_err e;
        srv_reply_init(&r);
        tr_seterr(&e, MAP[i].status, "2.weight", "tensor \"2.weight\": bad");
        assert_int_equal(srv_http_status(MAP[i].status), MAP[i].http);
        assert_int_equal(srv_fail_tr(&r, MAP[i].status, &e), MAP[i].http);
        assert_string_equal(r.err_field, "2.weight");
        assert_string_equal(r.err_msg, "tensor \"2.weight\": bad");
    }
}

static void test_headers(void **state) {
    (void)state;
    srv_reply r;
    srv_reply_init(&r);
    for (int i = 0; i < SRV_MAX_HEADERS + 2; i++) srv_reply_header(&r, "X-A", "1");
    assert_int_equal(r.n_headers, SRV_MAX_HEADERS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_types),      cmocka_unit_test(test_status_list), cmocka_unit_test(test_body),
        cmocka_unit_test(test_tr_mapping), cmocka_unit_test(test_utf8_cut),    cmocka_unit_test(test_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
