/* test_srv_json.c - json_io: vectors (arrays, base64, single, ragged, limits), scalars, enums, labels, fields;
 * json_parse: refusals, values, exact numbers, packed number arrays. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "json_io.h"
#include "json_parse.h"
#include "../json_same.h"

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
    {"{\"v\":[[1,2],7]}", 0, 8, 422, "v[1]", "v[1]: expected a vector (array of numbers or base64 string), got number",
     0, 0, 0},
    {"{\"v\":[[1e39,2]]}", 0, 8, 422, "v[0][0]", "v[0][0]: number is out of the float32 range", 0, 0, 0},
    {"{\"v\":[[1e999,2]]}", 0, 8, 422, "v[0][0]", "v[0][0]: number is out of the float32 range", 0, 0, 0},
    {"{\"v\":[[1],[2],[3]]}", 0, 2, 422, "v", "v: 3 vectors, over the limit of 2 (--max-batch)", 0, 0, 0},
    {"{\"v\":[{\"image\":\"iVBORw0KGgo=\"}]}", 0, 4, 422, "v[0].image",
     "v[0].image: this model takes no images (its file has no \"image\" metadata)", 0, 0, 0},
    {"{\"v\":{\"image\":\"AAAA\",\"x\":1}}", 0, 4, 422, "v.image",
     "v.image: an image element has only the key \"image\"", 0, 0, 0},
    {"{\"v\":[{\"img\":1}]}", 0, 4, 422, "v[0]",
     "v[0]: expected a vector (array of numbers or base64 string) or {\"image\": ...}", 0, 0, 0},
    {"{\"v\":\"AADAfw==\"}", 0, 8, 422, "v[0]", "v[0]: not a finite number (base64 float32)", 0, 0, 0},
    {"{\"v\":\"AAAAQAAAQEAAAIBA\"}", 2, 8, 422, "v", "v: expected 2 numbers, got 3 (base64 float32)", 0, 0, 0},
    {"{\"v\":\"AA*A\"}", 0, 8, 422, "v",
     "v: invalid base64 character"
     "; a string vector must be base64 of little-endian float32 (text input is not supported: this model embeds "
     "vectors of numbers)",
     0, 0, 0},
    {"{\"v\":\"AAA\"}", 0, 8, 422, "v",
     "v: base64 data is not a whole number of float32 values (4 bytes each)"
     "; a string vector must be base64 of little-endian float32 (text input is not supported: this model embeds "
     "vectors of numbers)",
     0, 0, 0},
    {"{\"v\":\"A\"}", 0, 8, 422, "v",
     "v: truncated base64 (length is 1 mod 4)"
     "; a string vector must be base64 of little-endian float32 (text input is not supported: this model embeds "
     "vectors of numbers)",
     0, 0, 0},
    {"{\"v\":\"\"}", 0, 8, 422, "v",
     "v: empty base64 string"
     "; a string vector must be base64 of little-endian float32 (text input is not supported: this model embeds "
     "vectors of numbers)",
     0, 0, 0},
    /* every path again with rows that pack (all numbers) next to rows that do not */
    {"{\"v\":[1,2,1e39]}", 0, 8, 422, "v[2]", "v[2]: number is out of the float32 range", 0, 0, 0},
    {"{\"v\":[1,2,-1e999]}", 3, 8, 422, "v[2]", "v[2]: number is out of the float32 range", 0, 0, 0},
    {"{\"v\":[1,2,3,1e39]}", 3, 8, 422, "v", "v: expected 3 numbers, got 4", 0, 0, 0}, /* past dim: only counted */
    {"{\"v\":[[1,2],[3,1e999]]}", 0, 8, 422, "v[1][1]", "v[1][1]: number is out of the float32 range", 0, 0, 0},
    {"{\"v\":[[1,2],[true,1]]}", 0, 8, 422, "v[1][0]", "v[1][0]: expected a number, got boolean", 0, 0, 0},
    {"{\"v\":[[1,2],[1,null]]}", 0, 8, 422, "v[1][1]", "v[1][1]: expected a number, got null", 0, 0, 0},
    {"{\"v\":[[1,2],[1,2,[3]]]}", 0, 8, 422, "v[1]", "v[1]: expected 2 numbers, got 3", 0, 0, 0},
    {"{\"v\":[[1,2],[1,[3]]]}", 0, 8, 422, "v[1][1]", "v[1][1]: expected a number, got array", 0, 0, 0},
    {"{\"v\":[null,1]}", 0, 8, 422, "v[0]", "v[0]: expected a number, got null", 0, 0, 0},
    {"{\"v\":[[1,2],\"AACAPwAAAEA=\",[-0,3.5]]}", 0, 8, 0, "", "", 3, 2, 9.5},
    {"{\"v\":[[1,2],[3,4]]}", 0, 1, 422, "v", "v: 2 vectors, over the limit of 1 (--max-batch)", 0, 0, 0},
    {"{\"v\":[1,2,3,4,5,6,7,8,9]}", 0, 1, 0, "", "", 1, 9, 45}, /* a single vector is one however long */
};

/* The same text through cJSON_Parse (0), srv_json_parse (1) and
 * srv_json_parse_packed (2): json_io must answer all three alike. */
static cJSON *parse_as(const char *text, int mode) {
    char why[96];
    size_t at;
    if (mode == 0) return cJSON_Parse(text);
    return (mode == 1 ? srv_json_parse : srv_json_parse_packed)(text, strlen(text), why, sizeof why, &at);
}

static void test_vectors_table(void **state) {
    (void)state;
    tr_scratch s = {0};
    for (size_t k = 0; k < 3 * (sizeof VEC_CASES / sizeof VEC_CASES[0]); k++) {
        size_t i = k / 3;
        const vec_case *c = &VEC_CASES[i];
        cJSON *body = parse_as(c->body, (int)(k % 3));
        srv_reply out;
        size_t n = 0, dim = c->dim_in;
        assert_non_null(body);
        srv_reply_init(&out);
        int rc = jio_vectors(body, "v", c->max_n, NULL, &s, &n, &dim, &out);
        if (rc != c->status)
            fail_msg("case %zu parser %zu %s: status %d, want %d (%s)", i, k % 3, c->body, rc, c->status, out.err_msg);
        if (c->status) {
            if (strcmp(out.err_field, c->field) != 0)
                fail_msg("case %zu parser %zu: field \"%s\", want \"%s\"", i, k % 3, out.err_field, c->field);
            if (strcmp(out.err_msg, c->msg) != 0)
                fail_msg("case %zu parser %zu: message \"%s\", want \"%s\"", i, k % 3, out.err_msg, c->msg);
            assert_string_equal(out.err_type, "invalid_input");
        } else {
            double sum = 0;
            assert_int_equal(n, c->n);
            assert_int_equal(dim, c->dim);
            for (size_t j = 0; j < n * dim; j++) sum += s.p[j];
            if (sum != c->sum) fail_msg("case %zu parser %zu: sum %g, want %g", i, k % 3, sum, c->sum);
        }
        cJSON_Delete(body);
    }
    tr_scratch_free(&s);
}

static void test_base64_roundtrip(void **state) {
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

/* The server's base64 and the library's SHA-256 against OpenSSL's (an independent implementation
 * the daemon does not link): RFC 4648's vectors, then every length 0-300 of varied bytes both ways
 * (with and without the padding) and the digests of the same buffers. */
static void test_base64_sha256_vs_openssl(void **state) {
    (void)state;
    static const char *const rfc[][2] = {{"f", "Zg=="},        {"fo", "Zm8="},        {"foo", "Zm9v"},
                                         {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    char enc[512], ref[512];
    for (size_t i = 0; i < 6; i++) {
        jio_b64_encode_raw(enc, (const unsigned char *)rfc[i][0], strlen(rfc[i][0]));
        assert_string_equal(enc, rfc[i][1]);
    }
    unsigned char buf[300], md[32], mdref[EVP_MAX_MD_SIZE];
    for (size_t i = 0; i < sizeof buf; i++) buf[i] = (unsigned char)(i * 167u + (i >> 3) * 29u);
    for (size_t n = 0; n <= sizeof buf; n++) {
        size_t len = jio_b64_encode_raw(enc, buf, n);
        int rlen = EVP_EncodeBlock((unsigned char *)ref, buf, (int)n);
        assert_int_equal(len, (size_t)rlen);
        assert_string_equal(enc, ref);
        for (int strip = 0; strip < 2 && n > 0; strip++) {
            if (strip)
                while (len > 0 && enc[len - 1] == '=') enc[--len] = 0;
            const char *why = NULL;
            size_t got = 0;
            unsigned char *back = jio_b64_bytes(enc, &got, &why);
            assert_non_null(back);
            assert_int_equal(got, n);
            assert_memory_equal(back, buf, n);
            free(back);
        }
        unsigned mdlen = 0;
        tr_sha256(buf, n, md);
        assert_true(EVP_Digest(buf, n, mdref, &mdlen, EVP_sha256(), NULL) && mdlen == 32);
        assert_memory_equal(md, mdref, 32);
    }
}

static void test_scalars(void **state) {
    (void)state;
    cJSON *b =
        cJSON_Parse("{\"t\":true,\"x\":0.5,\"big\":5,\"s\":\"cosine\",\"bad\":\"l3\",\"i\":3,\"f\":2.5,\"n\":null}");
    srv_reply out;
    srv_reply_init(&out);
    int flag = 0;
    double x = 9;
    size_t i = 0;
    int e = DIST_SQEUCLIDEAN;
    static const jio_choice NAMES[] = {{"sqeuclidean", DIST_SQEUCLIDEAN}, {"cosine", DIST_COSINE}, {NULL, 0}};
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
    assert_int_equal(e, DIST_COSINE);
    assert_int_equal(jio_enum(b, "bad", NAMES, &e, &out), 422);
    assert_string_equal(out.err_msg, "bad: unknown value \"l3\" (expected one of: sqeuclidean, cosine)");
    assert_string_equal(out.err_field, "bad");
    cJSON_Delete(b);
}

static void test_fields_and_labels(void **state) {
    (void)state;
    static const char *const ALLOWED[] = {"a", "labels", NULL};
    for (int mode = 0; mode < 3; mode++) {
        cJSON *b = parse_as("{\"a\":1,\"labels\":[1,0,1],\"extra\":2}", mode);
        cJSON *ok = parse_as("{\"a\":1,\"labels\":[1,0,true]}", mode);
        cJSON *bad = parse_as("{\"labels\":[1,2.5,1]}", mode);
        cJSON *two = parse_as("{\"labels\":[1,2,1]}", mode);
        cJSON *odd =
            parse_as("{\"labels\":[0,1,\"1\"],\"big\":[1,9007199254740994],\"inf\":[1e400],\"neg\":[-3,-0]}", mode);
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
        assert_int_equal(jio_labels(b, "labels", 2, 0, &lab, &out), 422);
        assert_string_equal(out.err_msg, "labels: expected 2 labels (one per vector), got 3");
        assert_int_equal(jio_labels(bad, "labels", 3, 0, &lab, &out), 422);
        assert_string_equal(out.err_field, "labels[1]");
        assert_string_equal(out.err_msg, "labels[1]: expected an integer label");
        assert_int_equal(jio_labels(two, "labels", 3, 0, &lab, &out), 0);
        assert_int_equal(lab[1], 2);
        free(lab);
        assert_int_equal(jio_labels(two, "labels", 3, 1, &lab, &out), 422);
        assert_string_equal(out.err_msg, "labels[1]: expected 1 (similar) or 0 (dissimilar), got 2");
        assert_null(lab);
        assert_int_equal(jio_labels(odd, "labels", 3, 0, &lab, &out), 422);
        assert_string_equal(out.err_msg, "labels[2]: expected an integer label, got string");
        assert_int_equal(jio_labels(odd, "big", 2, 0, &lab, &out), 422);
        assert_string_equal(out.err_msg, "big[1]: expected an integer label");
        assert_int_equal(jio_labels(odd, "inf", 1, 0, &lab, &out), 422);
        assert_string_equal(out.err_msg, "inf[0]: expected an integer label");
        assert_int_equal(jio_labels(odd, "neg", 2, 0, &lab, &out), 0);
        assert_true(lab[0] == -3 && lab[1] == 0);
        free(lab);
        assert_int_equal(jio_labels(odd, "neg", 2, 1, &lab, &out), 422);
        assert_string_equal(out.err_msg, "neg[0]: expected 1 (similar) or 0 (dissimilar), got -3");
        assert_int_equal(jio_labels(odd, "a", 2, 0, &lab, &out), 422);
        assert_string_equal(out.err_msg, "a: required field is missing");
        cJSON_Delete(b);
        cJSON_Delete(ok);
        cJSON_Delete(bad);
        cJSON_Delete(two);
        cJSON_Delete(odd);
    }
}

/* Parser refusals: text (length from sizeof, so NULs count), reason, offset. */
typedef struct {
    const char *text;
    size_t len;
    const char *why;
    size_t at;
} parse_bad;

#define PB(t, w, a)                                                                                                    \
    { t, sizeof(t) - 1, w, a }
static const parse_bad PARSE_BAD[] = {
    PB("", "unexpected end of input", 0),
    PB("   ", "unexpected end of input", 3),
    PB("{\"a\":1,}", "expected a string key", 7),
    PB("[1,2,]", "unexpected character", 5),
    PB("[01]", "leading zero in a number", 2),
    PB("[1.]", "expected a digit after the decimal point", 3),
    PB("[1e]", "expected a digit in the exponent", 3),
    PB("[-]", "expected a digit", 2),
    PB("[.5]", "unexpected character", 1),
    PB("[+1]", "unexpected character", 1),
    PB("[NaN]", "unexpected character", 1),
    PB("[Infinity]", "unexpected character", 1),
    PB("[nan]", "invalid literal", 1),
    PB("[tru]", "invalid literal", 1),
    PB("{\"a\" 1}", "expected ':'", 5),
    PB("{\"a\":1 \"b\":2}", "expected ',' or '}'", 7),
    PB("[1 2]", "expected ',' or ']'", 3),
    PB("\"abc", "unterminated string", 4),
    PB("\"abc\\", "unterminated string", 5), /* fuzz_json: was accepted as "abc" */
    PB("\"a\\qb\"", "bad escape in a string", 3),
    PB("\"\\u12G4\"", "bad \\u escape", 3),
    PB("\"\\ud800\"", "unpaired UTF-16 surrogate in a \\u escape", 7),
    PB("\"\\udc00\"", "unpaired UTF-16 surrogate in a \\u escape", 7),
    PB("\"\\u0000\"", "NUL character in a string", 7),
    PB("\"a\tb\"", "control character in a string", 2),
    PB("\"\xff\"", "invalid UTF-8 in a string", 1),
    PB("\"\xc0\xaf\"", "invalid UTF-8 in a string", 1),
    PB("{\"a\":1,\"a\":2}", "duplicate key in an object", 7),
    PB("{} x", "unexpected data after the JSON value", 3),
    PB("{}\0", "unexpected data after the JSON value", 2),
    PB("[1,\0 2]", "unexpected character", 3),
    /* arrays of numbers that go wrong part way (srv_json_parse_packed gives up packing and must report the same) */
    PB("[1,2,01]", "leading zero in a number", 6),
    PB("[1,2,-]", "expected a digit", 6),
    PB("[1,2,1.]", "expected a digit after the decimal point", 7),
    PB("[1,2,1e+]", "expected a digit in the exponent", 8),
    PB("[1,2", "expected ',' or ']'", 4),
    PB("[1,2,", "unexpected end of input", 5),
    PB("[1 2]", "expected ',' or ']'", 3),
    PB("[1,]", "unexpected character", 3),
    PB("[1,,2]", "unexpected character", 3),
    PB("[1;2]", "expected ',' or ']'", 2),
    PB("[1,2,\"x]", "unterminated string", 8),
    PB("[1,2,\"\xff\"]", "invalid UTF-8 in a string", 6),
    PB("[1,2,tru]", "invalid literal", 5),
    PB("[1,2,[3,]]", "unexpected character", 8),
    PB("[[1,2],[3 4]]", "expected ',' or ']'", 10),
    PB("[1,2]]", "unexpected data after the JSON value", 5),
    PB("[1,2] 3", "unexpected data after the JSON value", 6),
    PB("{\"a\":[1,2],\"a\":[3]}", "duplicate key in an object", 11),
    PB("{\"a\":[1,2}", "expected ',' or ']'", 9),
};

static void test_parse_refusals(void **state) {
    (void)state;
    for (size_t k = 0; k < 2 * (sizeof PARSE_BAD / sizeof PARSE_BAD[0]); k++) {
        const parse_bad *c = &PARSE_BAD[k / 2];
        char why[96] = "";
        size_t at = 999;
        cJSON *v = (k % 2 ? srv_json_parse_packed : srv_json_parse)(c->text, c->len, why, sizeof why, &at);
        if (v) fail_msg("case %zu (%s, %s): accepted", k / 2, c->text, k % 2 ? "packed" : "plain");
        if (strcmp(why, c->why) != 0 || at != c->at)
            fail_msg("case %zu (%s, %s): \"%s\" at %zu, want \"%s\" at %zu", k / 2, c->text, k % 2 ? "packed" : "plain",
                     why, at, c->why, c->at);
    }
    /* nesting: 64 levels parse, 65 do not, with or without a number array innermost */
    char deep[200];
    for (int k = 0; k < 8; k++) {
        int d = 64 + k % 2, num = k / 2 % 2, packed = k / 4;
        size_t len = 0;
        memset(deep, '[', (size_t)d);
        len = (size_t)d;
        if (num) deep[len++] = '7';
        memset(deep + len, ']', (size_t)d);
        len += (size_t)d;
        char why[96] = "";
        size_t at = 0;
        cJSON *v = (packed ? srv_json_parse_packed : srv_json_parse)(deep, len, why, sizeof why, &at);
        if (d == 64) {
            assert_non_null(v);
            const cJSON *in = v;
            for (int i = 1; i < d; i++) in = in->child;
            size_t n = 0;
            assert_true(cJSON_IsArray(in));
            assert_int_equal(srv_json_array_len(in), num);
            assert_int_equal(srv_json_packed(in, &n) != NULL, num && packed);
        } else {
            assert_null(v);
            assert_string_equal(why, "nesting deeper than 64 levels");
            assert_int_equal(at, 64);
        }
        cJSON_Delete(v);
    }
}

/* Both parses of text: same refusal (why, offset) or trees json_same_packed accepts. */
static void check_packed_text(const char *text, size_t len) {
    char why[96] = "", pwhy[96] = "";
    size_t at = 0, pat = 0;
    cJSON *plain = srv_json_parse(text, len, why, sizeof why, &at);
    cJSON *packed = srv_json_parse_packed(text, len, pwhy, sizeof pwhy, &pat);
    if ((plain == NULL) != (packed == NULL))
        fail_msg("%.*s: plain %s, packed %s", (int)len, text, plain ? "accepts" : why, packed ? "accepts" : pwhy);
    if (!plain && (strcmp(why, pwhy) != 0 || at != pat))
        fail_msg("%.*s: plain \"%s\" at %zu, packed \"%s\" at %zu", (int)len, text, why, at, pwhy, pat);
    if (plain && !json_same_packed(packed, plain)) fail_msg("%.*s: packed tree differs", (int)len, text);
    cJSON_Delete(plain);
    cJSON_Delete(packed);
}

static const cJSON *packed_member(const cJSON *o, const char *name, size_t want_n) {
    size_t n = 99;
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, name);
    if (!srv_json_packed(a, &n) || n != want_n) fail_msg("%s: not packed with %zu values (%zu)", name, want_n, n);
    return a;
}

/* A random array of numbers, with now and then a literal, a string or a
 * nested array, into t (room for cap + 128 bytes: a started element and the
 * closing brackets may pass cap). */
static void gen_array(char *t, size_t *len, size_t cap, uint64_t *x, int depth) {
    static const char *const NUM[] = {"0", "-1", "2.5", "1e3", "-0.0", "1E-2", "123456789012345678901", "1e999"};
    static const char *const OTHER[] = {"true", "false", "null", "\"s\"", "[]"};
    t[(*len)++] = '[';
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    int n = (int)(*x % 6), mixed = (*x >> 3) % 4 == 0;
    for (int i = 0; i < n && *len < cap; i++) {
        *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
        if (i) *len += (size_t)sprintf(t + *len, "%s", (*x >> 50) % 4 ? "," : " ,\n");
        if (depth < 3 && (*x >> 4) % 4 == 0)
            gen_array(t, len, cap, x, depth + 1);
        else if (mixed && (*x >> 6) % 3 == 0)
            *len += (size_t)sprintf(t + *len, "%s", OTHER[(*x >> 8) % 5]);
        else
            *len += (size_t)sprintf(t + *len, "%s", NUM[(*x >> 8) % 8]);
    }
    t[(*len)++] = ']';
}

/* Short decimals ([-]digits[.digits], up to 17 digits, leading zeros in
 * fractions): the packed parse's short path must give strtod's double. */
static void test_packed_short_numbers(void **state) {
    (void)state;
    uint64_t x = 88172645463325252ull;
    char t[64 * 40 + 16], why[96];
    size_t at, n;
    for (int round = 0; round < 3000; round++) {
        size_t len = 0;
        char nums[64][40];
        t[len++] = '[';
        for (int i = 0; i < 64; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            int ni = (int)(x % 9), nf = (int)((x >> 8) % 10) - 1, k = 0; /* nf -1: no fraction */
            char *o = nums[i];
            if (x >> 63) o[k++] = '-';
            o[k++] = ni ? (char)('1' + (x >> 16) % 9) : '0';
            for (int j = 1; j < ni; j++) o[k++] = (char)('0' + (x >> (20 + 3 * j)) % 10);
            if (nf >= 0) {
                o[k++] = '.';
                for (int j = 0; j <= nf; j++) o[k++] = (char)('0' + ((x >> (3 * j)) ^ (uint64_t)round) % 10);
            }
            o[k] = 0;
            len += (size_t)sprintf(t + len, "%s%s", i ? "," : "", o);
        }
        t[len++] = ']';
        cJSON *v = srv_json_parse_packed(t, len, why, sizeof why, &at);
        const double *d = v ? srv_json_packed(v, &n) : NULL;
        if (!d || n != 64) fail_msg("not packed: %.200s (%s)", t, v ? "tree" : why);
        for (int i = 0; i < 64; i++) {
            double want = strtod(nums[i], NULL);
            if (memcmp(&d[i], &want, sizeof want) != 0) fail_msg("%s: packed %.17g, strtod %.17g", nums[i], d[i], want);
        }
        cJSON_Delete(v);
    }
}

static void test_parse_packed(void **state) {
    (void)state;
    static const char *const NUMS[] = {"-0",
                                       "1e400",
                                       "-2.5E-3",
                                       "12345678901234567890",
                                       "3.14159265358979323846264338327950288419716939937510",
                                       "4.9406564584124654e-324",
                                       "-1e-400",
                                       "1.7976931348623157e308",
                                       "9007199254740993",
                                       "0.1000000000000000055511151231257827",
                                       "2e22",
                                       "1E23",
                                       "7"};
    const size_t nn = sizeof NUMS / sizeof NUMS[0];
    char t[1024], why[96];
    size_t len = 0, at = 0, n = 0;
    len += (size_t)sprintf(t + len, "{\"n\":[");
    for (size_t i = 0; i < nn; i++)
        len += (size_t)sprintf(t + len, "%s%s", i ? (i % 3 ? "," : " ,\n\t") : " ", NUMS[i]);
    len += (size_t)sprintf(t + len, " ],\"m\":[1,true],\"s\":[1,\"x\"],\"z\":[1,null],\"a\":[[1,2],[3,4,5],[]],"
                                    "\"e\":[],\"o\":[{\"x\":1}],\"d\":[[[0.5]]],\"k\":3}");
    check_packed_text(t, len);
    cJSON *v = srv_json_parse_packed(t, len, why, sizeof why, &at);
    assert_non_null(v);
    /* the values: what srv_json_parse and strtod give, bit for bit */
    const cJSON *a = packed_member(v, "n", nn);
    const double *d = srv_json_packed(a, &n);
    for (size_t i = 0; i < nn; i++) {
        double want = strtod(NUMS[i], NULL);
        if (memcmp(&d[i], &want, sizeof want) != 0) fail_msg("%s: packed %.17g, strtod %.17g", NUMS[i], d[i], want);
    }
    assert_true(signbit(d[0]) && isinf(d[1]) && d[3] == 12345678901234567890.0 && d[6] == 0 && signbit(d[6]));
    /* a packed node is an array to cJSON and to us, with no children (documented) */
    assert_true(cJSON_IsArray(a));
    assert_string_equal(jio_type_name(a), "array");
    assert_null(a->child);
    assert_int_equal(cJSON_GetArraySize(a), 0);
    assert_int_equal(srv_json_array_len(a), nn);
    char *printed = cJSON_PrintUnformatted(a);
    assert_string_equal(printed, "[]");
    free(printed);
    /* mixed and empty arrays stay trees; rows of numbers pack one by one */
    static const char *const TREES[] = {"m", "s", "z", "a", "e", "o", "d"};
    for (size_t i = 0; i < sizeof TREES / sizeof TREES[0]; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(v, TREES[i]);
        assert_true(cJSON_IsArray(x));
        assert_null(srv_json_packed(x, &n));
        assert_int_equal(n, 0);
        assert_int_equal(srv_json_array_len(x), (size_t)cJSON_GetArraySize(x));
    }
    const cJSON *rows = cJSON_GetObjectItemCaseSensitive(v, "a");
    assert_non_null(srv_json_packed(cJSON_GetArrayItem(rows, 0), &n));
    assert_int_equal(n, 2);
    assert_non_null(srv_json_packed(cJSON_GetArrayItem(rows, 1), &n));
    assert_int_equal(n, 3);
    assert_int_equal(srv_json_array_len(cJSON_GetArrayItem(rows, 2)), 0);
    d = srv_json_packed(cJSON_GetObjectItemCaseSensitive(v, "d")->child->child, &n);
    assert_true(d && n == 1 && d[0] == 0.5);
    assert_int_equal(srv_json_array_len(cJSON_GetObjectItemCaseSensitive(v, "k")), 0);
    assert_int_equal(srv_json_array_len(NULL), 0);
    cJSON_Delete(v);
    /* a packed root, whitespace everywhere */
    const char *ws = " [ 1 ,\t2\n,\r3 ] ";
    v = srv_json_parse_packed(ws, strlen(ws), why, sizeof why, &at);
    d = srv_json_packed(v, &n);
    assert_true(d && n == 3 && d[0] == 1 && d[1] == 2 && d[2] == 3);
    cJSON_Delete(v);

    /* long rows (the scratch grows) equal the plain parse and strtod */
    size_t big = 100000;
    char *b = malloc(big * 26 + 16);
    uint64_t x = 88172645463325252ull;
    assert_non_null(b);
    len = 0;
    b[len++] = '[';
    for (size_t i = 0; i < big; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double r;
        uint64_t bits = x & 0x7FEFFFFFFFFFFFFFull; /* finite */
        memcpy(&r, &bits, sizeof r);
        len += (size_t)(i % 4 == 0 ? sprintf(b + len, "%s%.17g", i ? "," : "", (x & 1) ? -r : r)
                                   : sprintf(b + len, "%s%d", i ? "," : "", (int)(x % 512) - 256));
    }
    b[len++] = ']';
    check_packed_text(b, len);
    v = srv_json_parse_packed(b, len, why, sizeof why, &at);
    d = srv_json_packed(v, &n);
    assert_non_null(d);
    assert_int_equal(n, big);
    cJSON_Delete(v);
    free(b);

    /* random documents of nested arrays (mostly numbers, some literals and
     * strings), well formed or with one mangled spot: both parsers agree */
    int accepted = 0;
    char r[2048];
    for (int i = 0; i < 20000; i++) {
        static const char *const BAD[] = {"01", "-", "1.",      "1e", "nul", "\"",      "[",
                                          "]",  ",", "{\"k\":", "}",  ";",   "\"\xff\""};
        len = 0;
        gen_array(r, &len, sizeof r - 256, &x, 0);
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        if (x % 3 == 0) { /* insert a bad token */
            size_t pos = (size_t)(x >> 8) % (len + 1);
            const char *bad = BAD[(x >> 40) % (sizeof BAD / sizeof BAD[0])];
            size_t bl = strlen(bad);
            memmove(r + pos + bl, r + pos, len - pos);
            memcpy(r + pos, bad, bl);
            len += bl;
        } else if (x % 3 == 1)
            len -= (size_t)(x >> 8) % (len + 1) / 4; /* cut */
        check_packed_text(r, len);
        cJSON *p = srv_json_parse(r, len, why, sizeof why, &at);
        accepted += p != NULL;
        cJSON_Delete(p);
    }
    assert_true(accepted > 5000 && accepted < 15000);
}

/* Objects past the key-by-key duplicate check: a repeated key is still found
 * at its own offset, and many distinct keys parse in linear-ish time (a
 * search per key took minutes for an 8 MiB body). */
static void test_parse_large_objects(void **state) {
    (void)state;
    size_t n = 200000, len = 0, dup_at = 0;
    char *b = malloc(n * 16 + 64), why[96] = "";
    assert_non_null(b);
    b[len++] = '{';
    for (size_t i = 0; i < 40; i++) len += (size_t)sprintf(b + len, "%s\"k%zu\":%zu", i ? "," : "", i, i);
    dup_at = len + 1;
    len += (size_t)sprintf(b + len, ",\"k7\":1,\"k40\":2,\"k7\":3}");
    size_t at = 0;
    cJSON *v = srv_json_parse(b, len, why, sizeof why, &at);
    assert_null(v);
    assert_string_equal(why, "duplicate key in an object");
    assert_int_equal(at, dup_at);
    len = 0;
    b[len++] = '{';
    for (size_t i = 0; i < n; i++) len += (size_t)sprintf(b + len, "%s\"k%zu\":0", i ? "," : "", i);
    b[len++] = '}';
    clock_t t0 = clock();
    v = srv_json_parse(b, len, why, sizeof why, &at);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_non_null(v);
    assert_int_equal(cJSON_GetArraySize(v), (int)n);
    if (secs > 5.0) fail_msg("200000 distinct keys took %.1f s to parse", secs);
    cJSON_Delete(v);
    free(b);
}

static void test_parse_values(void **state) {
    (void)state;
    const char *t =
        " {\"s\":\"a\\u00e9\\ud83d\\ude00\\n\\\"\\/\",\"n\":[-0,1e400,-2.5E-3,12345678901234567890,true,false,null],"
        "\"o\":{}} ";
    char why[96];
    size_t at;
    cJSON *v = srv_json_parse(t, strlen(t), why, sizeof why, &at);
    assert_non_null(v);
    assert_string_equal(cJSON_GetObjectItem(v, "s")->valuestring, "a\xc3\xa9\xf0\x9f\x98\x80\n\"/");
    cJSON *n = cJSON_GetObjectItem(v, "n");
    assert_int_equal(cJSON_GetArraySize(n), 7);
    assert_true(cJSON_GetArrayItem(n, 0)->valuedouble == 0 && signbit(cJSON_GetArrayItem(n, 0)->valuedouble));
    assert_true(isinf(cJSON_GetArrayItem(n, 1)->valuedouble));
    assert_true(cJSON_GetArrayItem(n, 2)->valuedouble == -2.5e-3);
    assert_true(cJSON_GetArrayItem(n, 3)->valuedouble == 12345678901234567890.0);
    assert_true(cJSON_IsTrue(cJSON_GetArrayItem(n, 4)) && cJSON_IsFalse(cJSON_GetArrayItem(n, 5)));
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(n, 6)));
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(v, "o")));
    cJSON_Delete(v);
}

/* The fast number path must equal strtod (correct rounding) bit for bit. */
static void test_parse_numbers_exact(void **state) {
    (void)state;
    uint64_t x = 88172645463325252ull;
    char text[64];
    int tested = 0, fast = 0;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        int digits = 1 + (int)(x % 20), point = (int)((x >> 8) % 22), e = (int)((x >> 16) % 61) - 30;
        uint64_t m = x >> 20;
        char ds[32];
        snprintf(ds, sizeof ds, "%llu", (unsigned long long)m);
        ds[digits < (int)strlen(ds) ? digits : (int)strlen(ds)] = 0;
        size_t nd = strlen(ds);
        if ((size_t)point >= nd) point = 0;
        if (point)
            snprintf(text, sizeof text, "%s%.*s.%s%s%d", (x & 1) ? "-" : "", point, ds, ds + point, (x & 2) ? "e" : "E",
                     e);
        else
            snprintf(text, sizeof text, "%s%se%d", (x & 1) ? "-" : "", ds, e);
        if (ds[0] == '0' && nd > 1 && (point == 0 || point > 1)) continue; /* leading zero: not JSON */
        char why[96];
        size_t at;
        cJSON *v = srv_json_parse(text, strlen(text), why, sizeof why, &at);
        if (!v) fail_msg("%s: refused (%s)", text, why);
        double want = strtod(text, NULL);
        if (memcmp(&v->valuedouble, &want, sizeof want) != 0)
            fail_msg("%s: got %.17g, strtod %.17g", text, v->valuedouble, want);
        cJSON_Delete(v);
        tested++;
        fast += nd <= 15 && e >= -22 + point - (int)nd && e <= 22 - (int)nd; /* roughly: the fast path's range */
    }
    assert_true(tested > 100000);
    assert_true(fast > 10000);
}

/* Replies print float32 in 9 significant digits: every finite float must
 * come back bit-identical through strtof, and be valid JSON. */
static void test_format_float(void **state) {
    (void)state;
    static const struct {
        float f;
        const char *want;
    } FIXED[] = {{0.0f, "0"},
                 {-0.0f, "-0"},
                 {1.0f, "1"},
                 {-2.5f, "-2.5"},
                 {0.1f, "0.100000001"},
                 {100.0f, "100"},
                 {123456789.0f, "123456792"},
                 {1e9f, "1e9"},
                 {1e-5f, "9.99999975e-6"},
                 {0.0001f, "9.99999975e-5"},
                 {0.001f, "0.00100000005"},
                 {3.4028235e38f, "3.40282347e38"},
                 {1.4e-45f, "1.40129846e-45"}};
    char buf[32];
    for (size_t i = 0; i < sizeof FIXED / sizeof FIXED[0]; i++) {
        jio_format_float(buf, FIXED[i].f);
        if (strcmp(buf, FIXED[i].want) != 0)
            fail_msg("%.9g: \"%s\", want \"%s\"", (double)FIXED[i].f, buf, FIXED[i].want);
    }
    assert_int_equal(jio_format_float(buf, NAN), 4);
    uint32_t x = 2463534242u;
    for (int i = 0; i < 1000000; i++) {
        x ^= x << 13, x ^= x >> 17, x ^= x << 5; /* xorshift32: all bit patterns */
        float f;
        memcpy(&f, &x, 4);
        if (!isfinite(f)) continue;
        size_t n = jio_format_float(buf, f);
        assert_int_equal(n, strlen(buf));
        float back = strtof(buf, NULL);
        if (memcmp(&back, &f, 4) != 0)
            fail_msg("%08x (%.9g): \"%s\" reads back as %.9g", x, (double)f, buf, (double)back);
        if (i % 64 == 0) {
            char why[96];
            size_t at;
            cJSON *v = srv_json_parse(buf, n, why, sizeof why, &at);
            if (!v || (float)v->valuedouble != f) fail_msg("\"%s\": not the JSON number of %.9g", buf, (double)f);
            cJSON_Delete(v);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_table),
        cmocka_unit_test(test_base64_roundtrip),
        cmocka_unit_test(test_base64_sha256_vs_openssl),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_fields_and_labels),
        cmocka_unit_test(test_parse_refusals),
        cmocka_unit_test(test_parse_large_objects),
        cmocka_unit_test(test_parse_values),
        cmocka_unit_test(test_parse_packed),
        cmocka_unit_test(test_packed_short_numbers),
        cmocka_unit_test(test_parse_numbers_exact),
        cmocka_unit_test(test_format_float),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
