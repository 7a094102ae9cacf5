/* test_srv_json.c - json_io: vectors (arrays, base64, single, ragged, limits), scalars, enums, labels, fields. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_io.h"

/* One row per accepted or refused vector field: the body, *dim on entry,
 * max vectors, expected status, field, message (exact), n, dim and sum. */
typedef struct {
    const char *body;
    size_t dim_in, max_n;
    int status;
    const char *field, *msg;
    size_t n, dim;
    double sum;
} vec_case;

/* "AACAPwAAAEA=" is float32 [1, 2]; "AADAfw==" is NaN; "AAAAQAAAQEAAAIBA" is [2, 3, 4]. */
static const vec_case VEC_CASES[] = {
    {"{\"v\":[[1,2],[3,4]]}", 0, 8, 0, "", "", 2, 2, 10},
    {"{\"v\":[1,2,3]}", 0, 8, 0, "", "", 1, 3, 6},
    {"{\"v\":[1.5,-2.5]}", 2, 8, 0, "", "", 1, 2, -1},
    {"{\"v\":\"AACAPwAAAEA=\"}", 0, 8, 0, "", "", 1, 2, 3},
    {"{\"v\":[\"AACAPwAAAEA=\",[5,6]]}", 0, 8, 0, "", "", 2, 2, 14},
    {"{\"v\":[\"AACAPwAAAEA\"]}", 0, 8, 0, "", "", 1, 2, 3}, /* unpadded */
    {"{\"v\":[[1,2],[3,4]]}", 3, 8, 422, "v[0]", "v[0]: expected 3 numbers, got 2", 0, 0, 0},
    {"{\"v\":[[1,2],[3,4,5]]}", 0, 8, 422, "v[1]", "v[1]: expected 2 numbers, got 3", 0, 0, 0},
    {"{\"v\":[[1,2],[3]]}", 0, 8, 422, "v[1]", "v[1]: expected 2 numbers, got 1", 0, 0, 0},
    {"{\"v\":[]}", 0, 8, 422, "v", "v: empty array", 0, 0, 0},
    {"{\"v\":[[]]}", 0, 8, 422, "v[0]", "v[0]: empty vector", 0, 0, 0},
    {"{}", 0, 8, 422, "v", "v: required field is missing", 0, 0, 0},
    {"{\"v\":null}", 0, 8, 422, "v", "v: required field is missing", 0, 0, 0},
    {"{\"v\":3}", 0, 8, 422, "v", "v: expected an array of vectors, got number", 0, 0, 0},
    {"{\"v\":{\"a\":1}}", 0, 8, 422, "v", "v: expected an array of vectors, got object", 0, 0, 0},
    {"{\"v\":[[1,\"2\"]]}", 0, 8, 422, "v[0][1]", "v[0][1]: expected a number, got string", 0, 0, 0},
    {"{\"v\":[1,true]}", 0, 8, 422, "v[1]", "v[1]: expected a number, got boolean", 0, 0, 0},
    {"{\"v\":[[1,2],7]}", 0, 8, 422, "v[1]", "v[1]: expected a vector (array of numbers or base64 string), got number", 0, 0, 0},
    {"{\"v\":[[1e39,2]]}", 0, 8, 422, "v[0][0]", "v[0][0]: number is out of the float32 range", 0, 0, 0},
    {"{\"v\":[[1e999,2]]}", 0, 8, 422, "v[0][0]", "v[0][0]: number is out of the float32 range", 0, 0, 0},
    {"{\"v\":[[1],[2],[3]]}", 0, 2, 422, "v", "v: 3 vectors, over the limit of 2 (--max-batch)", 0, 0, 0},
    {"{\"v\":\"AADAfw==\"}", 0, 8, 422, "v[0]", "v[0]: not a finite number (base64 float32)", 0, 0, 0},
    {"{\"v\":\"AAAAQAAAQEAAAIBA\"}", 2, 8, 422, "v", "v: expected 2 numbers, got 3 (base64 float32)", 0, 0, 0},
    {"{\"v\":\"AA*A\"}", 0, 8, 422, "v", "v: invalid base64 character", 0, 0, 0},
    {"{\"v\":\"AAA\"}", 0, 8, 422, "v", "v: base64 data is not a whole number of float32 values (4 bytes each)", 0, 0, 0},
    {"{\"v\":\"A\"}", 0, 8, 422, "v", "v: truncated base64 (length is 1 mod 4)", 0, 0, 0},
    {"{\"v\":\"\"}", 0, 8, 422, "v", "v: empty base64 string", 0, 0, 0},
};

static void test_vectors_table(void **state)
{
    (void)state;
    tr_scratch s = {0};
    for (size_t i = 0; i < sizeof VEC_CASES / sizeof VEC_CASES[0]; i++) {
        const vec_case *c = &VEC_CASES[i];
        cJSON *body = cJSON_Parse(c->body);
        srv_reply out;
        size_t n = 0, dim = c->dim_in;
        assert_non_null(body);
        srv_reply_init(&out);
        int rc = jio_vectors(body, "v", c->max_n, &s, &n, &dim, &out);
        if (rc != c->status) fail_msg("case %zu %s: status %d, want %d (%s)", i, c->body, rc, c->status, out.err_msg);
        if (c->status) {
            if (strcmp(out.err_field, c->field) != 0) fail_msg("case %zu: field \"%s\", want \"%s\"", i, out.err_field, c->field);
            if (strcmp(out.err_msg, c->msg) != 0) fail_msg("case %zu: message \"%s\", want \"%s\"", i, out.err_msg, c->msg);
            assert_string_equal(out.err_type, "invalid_input");
        } else {
            double sum = 0;
            assert_int_equal(n, c->n);
            assert_int_equal(dim, c->dim);
            for (size_t j = 0; j < n * dim; j++) sum += s.p[j];
            if (sum != c->sum) fail_msg("case %zu: sum %g, want %g", i, sum, c->sum);
        }
        cJSON_Delete(body);
    }
    tr_scratch_free(&s);
}

static void test_base64_roundtrip(void **state)
{
    (void)state;
    float v[7] = {0.0f, -1.5f, 3.25e-20f, 1e30f, -0.0f, 0.1f, 7.0f};
    for (size_t n = 1; n <= 7; n++) { /* every length mod 3 */
        char *s = jio_b64_encode(v, n);
        const char *why = NULL;
        size_t got = 0;
        assert_non_null(s);
        assert_int_equal(strlen(s), (4 * n + 2) / 3 * 4);
        float *back = jio_b64_decode(s, &got, &why);
        assert_non_null(back);
        assert_int_equal(got, n);
        assert_memory_equal(back, v, n * sizeof(float));
        free(back);
        free(s);
    }
    /* little-endian: 1.0f is 00 00 80 3f */
    float one = 1.0f;
    char *s = jio_b64_encode(&one, 1);
    assert_string_equal(s, "AACAPw==");
    free(s);
}

static void test_scalars(void **state)
{
    (void)state;
    cJSON *b = cJSON_Parse("{\"t\":true,\"x\":0.5,\"big\":5,\"s\":\"cosine\",\"bad\":\"l3\",\"i\":3,\"f\":2.5,\"n\":null}");
    srv_reply out;
    srv_reply_init(&out);
    int flag = 0;
    double x = 9;
    size_t i = 0;
    const char *e = "sqeuclidean";
    static const char *const NAMES[] = {"sqeuclidean", "cosine", NULL};
    assert_int_equal(jio_bool(b, "t", &flag, &out), 0);
    assert_int_equal(flag, 1);
    assert_int_equal(jio_bool(b, "x", &flag, &out), 422);
    assert_string_equal(out.err_msg, "x: expected true or false, got number");
    assert_int_equal(jio_number(b, "x", 0, 1, 0, &x, &out), 0);
    assert_true(x == 0.5);
    assert_int_equal(jio_number(b, "n", 0, 1, 0, &x, &out), 0); /* null = absent */
    assert_true(x == 0.5);
    assert_int_equal(jio_number(b, "big", 0, 1, 0, &x, &out), 422);
    assert_string_equal(out.err_field, "big");
    assert_int_equal(jio_number(b, "s", 0, 1, 0, &x, &out), 422);
    assert_int_equal(jio_size(b, "i", 0, 10, &i, &out), 0);
    assert_int_equal(i, 3);
    assert_int_equal(jio_size(b, "f", 0, 10, &i, &out), 422);
    assert_string_equal(out.err_msg, "f: expected an integer");
    assert_int_equal(jio_enum(b, "s", NAMES, &e, &out), 0);
    assert_string_equal(e, "cosine");
    assert_int_equal(jio_enum(b, "bad", NAMES, &e, &out), 422);
    assert_string_equal(out.err_msg, "bad: unknown value \"l3\" (expected one of: sqeuclidean, cosine)");
    assert_string_equal(out.err_field, "bad");
    cJSON_Delete(b);
}

static void test_fields_and_labels(void **state)
{
    (void)state;
    static const char *const ALLOWED[] = {"a", "labels", NULL};
    cJSON *b = cJSON_Parse("{\"a\":1,\"labels\":[1,0,1],\"extra\":2}");
    cJSON *ok = cJSON_Parse("{\"a\":1,\"labels\":[1,0,true]}");
    cJSON *bad = cJSON_Parse("{\"labels\":[1,2.5,1]}");
    cJSON *two = cJSON_Parse("{\"labels\":[1,2,1]}");
    srv_reply out;
    int64_t *lab = NULL;
    srv_reply_init(&out);
    assert_int_equal(jio_check_fields(b, ALLOWED, &out), 422);
    assert_string_equal(out.err_field, "extra");
    assert_string_equal(out.err_msg, "extra: unknown field (expected one of: a, labels)");
    assert_int_equal(jio_check_fields(ok, ALLOWED, &out), 0);
    assert_int_equal(jio_labels(ok, "labels", 3, 1, &lab, &out), 0);
    assert_int_equal(lab[2], 1);
    free(lab);
    assert_int_equal(jio_labels(ok, "labels", 4, 1, &lab, &out), 422);
    assert_string_equal(out.err_msg, "labels: expected 4 labels (one per vector), got 3");
    assert_int_equal(jio_labels(bad, "labels", 3, 0, &lab, &out), 422);
    assert_string_equal(out.err_field, "labels[1]");
    assert_int_equal(jio_labels(two, "labels", 3, 0, &lab, &out), 0);
    assert_int_equal(lab[1], 2);
    free(lab);
    assert_int_equal(jio_labels(two, "labels", 3, 1, &lab, &out), 422);
    assert_string_equal(out.err_msg, "labels[1]: expected 1 (similar) or 0 (dissimilar), got 2");
    assert_null(lab);
    cJSON_Delete(b);
    cJSON_Delete(ok);
    cJSON_Delete(bad);
    cJSON_Delete(two);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_table),
        cmocka_unit_test(test_base64_roundtrip),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_fields_and_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
