/* test_st.c - safetensors reader: a table of generated corrupt files (one per failure mode, exact
 * messages), float conversions (F16/BF16/F64 incl. subnormals), and writer round trips. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../tmpdir.h"
#include "st.h"

#define NO_LEN UINT64_MAX

/* File image: 8-byte little-endian header length, header, data_len bytes of 0x11. When hlen is
 * not NO_LEN it replaces the real header length; total, when non-zero, truncates the image. */
static uint8_t *image(const char *hdr, uint64_t hlen, size_t data_len, size_t total, size_t *len) {
    size_t h = hdr ? strlen(hdr) : 0;
    *len = 8 + h + data_len;
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    uint64_t v = hlen == NO_LEN ? h : hlen;
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
    if (h) memcpy(b + 8, hdr, h);
    memset(b + 8 + h, 0x11, data_len);
    if (total) *len = total;
    return b;
}

typedef struct {
    const char *what; /* failure mode */
    const char *hdr;  /* header JSON */
    uint64_t hlen;    /* header length field override, or NO_LEN */
    size_t data_len;  /* bytes after the header */
    size_t total;     /* truncate the image to this many bytes (0: whole) */
    int code;
    const char *field; /* expected err.field */
    const char *msg;   /* expected substring of err.msg */
} corrupt_case;

#define T1(dt, shape, offs) "{\"t\":{\"dtype\":\"" dt "\",\"shape\":" shape ",\"data_offsets\":" offs "}}"

static const corrupt_case CORRUPT[] = {
    {"short file", "{}", NO_LEN, 0, 5, TR_EFORMAT, "header", "file is 5 bytes, shorter than the 8-byte header length"},
    {"header length past the file", "{}", 1000, 0, 0, TR_EFORMAT, "header",
     "not a safetensors file (the 8-byte header length is larger than the file)"},
    {"header over 100 MiB", "{}", 100u * 1024u * 1024u + 1u, 0, 0, TR_ELIMIT, "header",
     "not a safetensors file (the 8-byte header length is over the 104857600-byte limit)"},
    {"empty header", "", NO_LEN, 4, 0, TR_EFORMAT, "header", "header is empty"},
    {"not JSON", "{\"t\": nope}", NO_LEN, 0, 0, TR_EFORMAT, "header",
     "header is not valid JSON (near byte 6 of the header)"},
    {"JSON not an object", "[1, 2]", NO_LEN, 0, 0, TR_EFORMAT, "header", "header must be a JSON object"},
    {"bytes after the JSON", "{}  x", NO_LEN, 0, 0, TR_EFORMAT, "header", "header has bytes after its JSON value"},
    {"metadata not an object", "{\"__metadata__\":[\"a\"]}", NO_LEN, 0, 0, TR_EFORMAT, "__metadata__",
     "__metadata__: expected an object"},
    {"metadata value not a string", "{\"__metadata__\":{\"margin\":0.2}}", NO_LEN, 0, 0, TR_EFORMAT, "__metadata__",
     "__metadata__ \"margin\": value must be a string"},
    {"metadata twice", "{\"__metadata__\":{},\"__metadata__\":{}}", NO_LEN, 0, 0, TR_EFORMAT, "__metadata__",
     "__metadata__ appears twice"},
    {"metadata key twice", "{\"__metadata__\":{\"margin\":\"0.2\",\"name\":\"a\",\"margin\":\"9\"}}", NO_LEN, 0, 0,
     TR_EFORMAT, "__metadata__", "__metadata__ \"margin\": key appears twice"},
    {"tensor entry not an object", "{\"t\":[1]}", NO_LEN, 0, 0, TR_EFORMAT, "t",
     "tensor \"t\": entry must be an object"},
    {"unknown key in a tensor entry", "{\"t\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"x\":1}}", NO_LEN,
     4, 0, TR_EFORMAT, "t", "tensor \"t\": unknown key \"x\""},
    {"key twice in a tensor entry",
     "{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"dtype\":\"F16\",\"data_offsets\":[0,4]}}", NO_LEN, 4, 0, TR_EFORMAT,
     "t", "tensor \"t\": key \"dtype\" appears twice"},
    {"missing dtype", "{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", NO_LEN, 4, 0, TR_EFORMAT, "t",
     "tensor \"t\": missing or non-string dtype"},
    {"unknown dtype", T1("F8_E4M3", "[1]", "[0,1]"), NO_LEN, 1, 0, TR_EFORMAT, "t",
     "tensor \"t\": unsupported dtype \"F8_E4M3\""},
    {"missing shape", "{\"t\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", NO_LEN, 4, 0, TR_EFORMAT, "t",
     "tensor \"t\": missing or non-array shape"},
    {"negative shape", T1("F32", "[2,-1]", "[0,4]"), NO_LEN, 4, 0, TR_EFORMAT, "t",
     "tensor \"t\": shape[1] is not a non-negative integer"},
    {"non-integer shape", T1("F32", "[1.5]", "[0,4]"), NO_LEN, 4, 0, TR_EFORMAT, "t",
     "tensor \"t\": shape[0] is not a non-negative integer"},
    {"string in shape", T1("F32", "[\"4\"]", "[0,16]"), NO_LEN, 16, 0, TR_EFORMAT, "t",
     "tensor \"t\": shape[0] is not a non-negative integer"},
    {"too many dimensions", T1("F32", "[1,1,1,1,1,1,1,1,1]", "[0,4]"), NO_LEN, 4, 0, TR_ELIMIT, "t",
     "tensor \"t\": 9 dimensions, limit 8"},
    {"element count overflows", T1("F32", "[4503599627370496,4096,4]", "[0,4]"), NO_LEN, 4, 0, TR_ELIMIT, "t",
     "tensor \"t\": shape overflows the element count"},
    {"byte size overflows", T1("F64", "[2147483648,2147483648]", "[0,8]"), NO_LEN, 8, 0, TR_ELIMIT, "t",
     "tensor \"t\": shape overflows the byte size"},
    {"offsets not a pair", T1("F32", "[1]", "[0]"), NO_LEN, 4, 0, TR_EFORMAT, "t",
     "tensor \"t\": data_offsets must be [begin, end] integers"},
    {"offsets not integers", T1("F32", "[1]", "[0,\"4\"]"), NO_LEN, 4, 0, TR_EFORMAT, "t",
     "tensor \"t\": data_offsets must be [begin, end] integers"},
    {"begin after end", T1("F32", "[0]", "[4,0]"), NO_LEN, 4, 0, TR_EFORMAT, "t",
     "tensor \"t\": data_offsets begin 4 > end 0"},
    {"offsets past the data", T1("F32", "[2]", "[0,8]"), NO_LEN, 4, 0, TR_EFORMAT, "t",
     "tensor \"t\": data_offsets end 8 is past the data section (4 bytes)"},
    {"length does not match the shape", T1("F32", "[2]", "[0,4]"), NO_LEN, 4, 0, TR_EFORMAT, "t",
     "tensor \"t\": data_offsets [0,4] hold 4 bytes, shape x F32 needs 8"},
    {"overlapping tensors",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[2,6]}}",
     NO_LEN, 6, 0, TR_EFORMAT, "b", "tensor \"b\": data [2,6] overlaps tensor \"a\""},
    {"hole between tensors",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
     NO_LEN, 12, 0, TR_EFORMAT, "b", "tensor \"b\": data starts at byte 8, leaving a hole after byte 4"},
    {"hole before the first tensor", T1("F32", "[1]", "[4,8]"), NO_LEN, 8, 0, TR_EFORMAT, "t",
     "tensor \"t\": data starts at byte 4, leaving a hole after byte 0"},
    {"bytes after the last tensor", T1("F32", "[1]", "[0,4]"), NO_LEN, 8, 0, TR_EFORMAT, "",
     "data section has 4 bytes after the last tensor"},
    {"duplicate tensor name",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
     "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     NO_LEN, 8, 0, TR_EFORMAT, "a", "tensor \"a\": appears twice in the header"},
};

static void test_corrupt_table(void **state) {
    (void)state;
    size_t n = sizeof CORRUPT / sizeof CORRUPT[0];
    assert_true(n >= 20);
    for (size_t i = 0; i < n; i++) {
        const corrupt_case *c = &CORRUPT[i];
        size_t len;
        uint8_t *b = image(c->hdr, c->hlen, c->data_len, c->total, &len);
        st_file *f = (st_file *)b; /* must be reset to NULL by st_open_mem */
        tr_err err;
        tr_clearerr(&err);
        int rc = st_open_mem(b, len, &f, &err);
        if (rc != c->code || f != NULL || strstr(err.msg, c->msg) == NULL || strcmp(err.field, c->field) != 0)
            fail_msg("case %zu (%s): rc %d (want %d), field \"%s\" (want \"%s\"), msg \"%s\" (want \"%s\")", i, c->what,
                     rc, c->code, err.field, c->field, err.msg, c->msg);
        assert_int_equal(err.code, c->code);
        free(b);
    }
}

/* The same header accepted: the table's failures come from the named rule, not from a broken builder. */
static void test_valid_images(void **state) {
    (void)state;
    static const struct {
        const char *hdr;
        size_t data_len;
        size_t n;
    } ok[] = {
        {"{}", 0, 0},
        {"{\"__metadata__\":{\"k\":\"v\"}}   ", 0, 0},
        {T1("F32", "[2]", "[0,8]"), 8, 1},
        {T1("F32", "[]", "[0,4]"), 4, 1},    /* scalar */
        {T1("F32", "[0,3]", "[0,0]"), 0, 1}, /* empty */
        {"{\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         8, 2}, /* header order differs from data order */
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        size_t len;
        uint8_t *b = image(ok[i].hdr, NO_LEN, ok[i].data_len, 0, &len);
        st_file *f = NULL;
        tr_err err;
        tr_clearerr(&err);
        if (st_open_mem(b, len, &f, &err) != TR_OK) fail_msg("valid image %zu refused: %s", i, err.msg);
        assert_int_equal(st_count(f), ok[i].n);
        st_close(f);
        free(b);
    }
    st_close(NULL);
}

/* 4096 tensors load; 4097 are refused before any is parsed. */
static void test_tensor_limit(void **state) {
    (void)state;
    for (int n = ST_MAX_TENSORS; n <= ST_MAX_TENSORS + 1; n++) {
        size_t cap = (size_t)n * 64 + 16, hl = 0;
        char *h = malloc(cap);
        assert_non_null(h);
        hl += (size_t)snprintf(h, cap, "{");
        for (int i = 0; i < n; i++)
            hl +=
                (size_t)snprintf(h + hl, cap - hl, "%s\"t%d\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[0,0]}",
                                 i ? "," : "", i);
        snprintf(h + hl, cap - hl, "}");
        size_t len;
        uint8_t *b = image(h, NO_LEN, 0, 0, &len);
        st_file *f = NULL;
        tr_err err;
        tr_clearerr(&err);
        int rc = st_open_mem(b, len, &f, &err);
        if (n == ST_MAX_TENSORS) {
            if (rc != TR_OK) fail_msg("%d tensors refused: %s", n, err.msg);
            assert_int_equal(st_count(f), (size_t)n);
        } else {
            assert_int_equal(rc, TR_ELIMIT);
            assert_string_equal(err.msg, "header lists 4097 tensors, limit 4096");
        }
        st_close(f);
        free(b);
        free(h);
    }
}

static void test_meta_and_lookup(void **state) {
    (void)state;
    const char *hdr = "{\"__metadata__\":{\"name\":\"m\",\"normalize\":\"true\"},"
                      "\"w\":{\"dtype\":\"I32\",\"shape\":[2,1],\"data_offsets\":[0,8]}}";
    size_t len;
    uint8_t *b = image(hdr, NO_LEN, 8, 0, &len);
    int32_t vals[2] = {-7, 123456};
    memcpy(b + 8 + strlen(hdr), vals, 8);
    st_file *f = NULL;
    tr_err err;
    assert_int_equal(st_open_mem(b, len, &f, &err), TR_OK);
    assert_string_equal(st_meta(f, "name"), "m");
    assert_string_equal(st_meta(f, "normalize"), "true");
    assert_null(st_meta(f, "absent"));
    assert_int_equal(st_meta_count(f), 2);
    const st_tensor *t = st_find(f, "w");
    assert_non_null(t);
    assert_null(st_find(f, "x"));
    assert_int_equal(t->dtype, ST_I32);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->nelem, 2);
    int64_t iv[2];
    assert_int_equal(st_to_i64(f, t, iv, &err), TR_OK);
    assert_int_equal(iv[0], -7);
    assert_int_equal(iv[1], 123456);
    float fv[2];
    assert_int_equal(st_to_f32(f, t, fv, &err), TR_EFORMAT);
    assert_non_null(strstr(err.msg, "tensor \"w\": dtype I32 is not a float type"));
    size_t blen;
    assert_ptr_equal(st_bytes(f, &blen), b);
    assert_int_equal(blen, len);
    st_close(f);
    free(b);
}

/* One tensor of dtype dt holding raw little-endian bytes; returns st_to_f32's status. */
static int convert(const char *dt, size_t esize, const void *raw, size_t n, float *out, tr_err *err) {
    char hdr[160];
    snprintf(hdr, sizeof hdr, "{\"t\":{\"dtype\":\"%s\",\"shape\":[%zu],\"data_offsets\":[0,%zu]}}", dt, n, n * esize);
    size_t len;
    uint8_t *b = image(hdr, NO_LEN, n * esize, 0, &len);
    memcpy(b + 8 + strlen(hdr), raw, n * esize);
    st_file *f = NULL;
    assert_int_equal(st_open_mem(b, len, &f, err), TR_OK);
    int rc = st_to_f32(f, st_find(f, "t"), out, err);
    st_close(f);
    free(b);
    return rc;
}

static void test_f16(void **state) {
    (void)state;
    /* 1, -2, smallest subnormal 2^-24, largest subnormal 1023*2^-24, smallest normal 2^-14, max 65504, -0, 1/3 rounded
     */
    const uint16_t h[] = {0x3C00, 0xC000, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x8000, 0x3555};
    const float want[] = {1.0f,     -2.0f, 5.9604644775390625e-08f, 6.0975551605224609e-05f, 6.103515625e-05f,
                          65504.0f, -0.0f, 0.333251953125f};
    float out[8];
    tr_err err;
    assert_int_equal(convert("F16", 2, h, 8, out, &err), TR_OK);
    for (int i = 0; i < 8; i++) {
        if (out[i] != want[i]) fail_msg("F16 %04x: got %.9g want %.9g", h[i], out[i], want[i]);
    }
    assert_true(signbit(out[6]));
    const uint16_t inf[] = {0x3C00, 0x3C00, 0x7C00}, nan[] = {0x7E00};
    assert_int_equal(convert("F16", 2, inf, 3, out, &err), TR_EFORMAT);
    assert_string_equal(err.msg, "tensor \"t\": element 2 is infinite");
    assert_string_equal(err.field, "t");
    assert_int_equal(convert("F16", 2, nan, 1, out, &err), TR_EFORMAT);
    assert_string_equal(err.msg, "tensor \"t\": element 0 is NaN");
}

static void test_bf16(void **state) {
    (void)state;
    /* 1, -123.5, smallest bf16 subnormal 2^-133, largest finite 0x7F7F, 1/3 truncated */
    const uint16_t h[] = {0x3F80, 0xC2F7, 0x0001, 0x7F7F, 0x3EAA};
    const float want[] = {1.0f, -123.5f, 9.18354962e-41f, 3.38953139e38f, 0.33203125f};
    float out[5];
    tr_err err;
    assert_int_equal(convert("BF16", 2, h, 5, out, &err), TR_OK);
    for (int i = 0; i < 5; i++)
        if (out[i] != want[i]) fail_msg("BF16 %04x: got %.9g want %.9g", h[i], out[i], want[i]);
    assert_true(fpclassify(out[2]) == FP_SUBNORMAL);
    const uint16_t ninf[] = {0xFF80};
    assert_int_equal(convert("BF16", 2, ninf, 1, out, &err), TR_EFORMAT);
    assert_string_equal(err.msg, "tensor \"t\": element 0 is infinite");
}

static void test_f64(void **state) {
    (void)state;
    const double d[] = {3.5, -1e-3, 1e-40 /* float subnormal */, 1e-310 /* below float: 0 */, 0.1};
    float out[5];
    tr_err err;
    assert_int_equal(convert("F64", 8, d, 5, out, &err), TR_OK);
    for (int i = 0; i < 5; i++)
        if (out[i] != (float)d[i]) fail_msg("F64 %g: got %.9g want %.9g", d[i], out[i], (float)d[i]);
    assert_true(fpclassify(out[2]) == FP_SUBNORMAL);
    assert_true(out[3] == 0.0f);
    const double big[] = {1.0, 1e39};
    assert_int_equal(convert("F64", 8, big, 2, out, &err), TR_EFORMAT);
    assert_non_null(strstr(err.msg, "tensor \"t\": element 1 is out of float32 range"));
    const double nan[] = {NAN};
    assert_int_equal(convert("F64", 8, nan, 1, out, &err), TR_EFORMAT);
    assert_string_equal(err.msg, "tensor \"t\": element 0 is NaN");
    const float f[] = {1.0f, INFINITY};
    assert_int_equal(convert("F32", 4, f, 2, out, &err), TR_EFORMAT);
    assert_string_equal(err.msg, "tensor \"t\": element 1 is infinite");
}

static void tmp_path(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/test_st_%ld_%s", test_tmpdir(), (long)getpid(), name);
}

static void test_write_round_trip(void **state) {
    (void)state;
    char path[512];
    tmp_path(path, sizeof path, "rt.safetensors");
    const float w[6] = {1.5f, -2.25f, 3e-39f, 0.0f, 1e30f, -7.0f};
    const uint16_t h[3] = {0x3C00, 0x0001, 0xC000};
    const double d[2] = {0.1, -4.0};
    const int64_t iv[3] = {-1, 0, INT64_MAX};
    const st_wtensor ts[] = {
        {"0.weight", ST_F32, 2, {3, 2}, w}, {"half", ST_F16, 1, {3}, h},        {"dbl", ST_F64, 3, {1, 2, 1}, d},
        {"ids", ST_I64, 1, {3}, iv},        {"empty", ST_F32, 2, {0, 5}, NULL}, {"scalar", ST_F32, 0, {0}, w},
    };
    const char *meta[] = {"name", "round \"trip\"", "unicode", "caf\xc3\xa9", "empty", ""};
    tr_err err;
    if (st_write(path, ts, 6, meta, 3, &err) != TR_OK) fail_msg("st_write: %s", err.msg);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    st_file *f = NULL;
    if (st_open(path, &f, &err) != TR_OK) fail_msg("st_open: %s", err.msg);
    size_t len;
    const uint8_t *b = st_bytes(f, &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | b[i];
    assert_int_equal(hlen % 8, 0); /* data aligned as safetensors does */
    assert_int_equal(len, 8 + hlen + 24 + 6 + 16 + 24 + 0 + 4);
    assert_int_equal(st_count(f), 6);
    for (size_t i = 0; i < 6; i++) {
        const st_tensor *t = st_at(f, i);
        assert_string_equal(t->name, ts[i].name); /* header keeps the given order */
        assert_int_equal(t->dtype, ts[i].dtype);
        assert_int_equal(t->ndim, ts[i].ndim);
        for (int k = 0; k < t->ndim; k++) assert_int_equal(t->shape[k], ts[i].shape[k]);
        if (t->len) assert_memory_equal(st_data(f, t), ts[i].data, t->len);
    }
    assert_string_equal(st_meta(f, "name"), "round \"trip\"");
    assert_string_equal(st_meta(f, "unicode"), "caf\xc3\xa9");
    assert_string_equal(st_meta(f, "empty"), "");
    float out[6];
    assert_int_equal(st_to_f32(f, st_find(f, "0.weight"), out, &err), TR_OK);
    assert_memory_equal(out, w, sizeof w);
    assert_int_equal(st_to_f32(f, st_find(f, "half"), out, &err), TR_OK);
    assert_true(out[0] == 1.0f && out[1] == 5.9604644775390625e-08f && out[2] == -2.0f);
    st_close(f);
    /* Overwrite in place: the rename replaces the file; no temp files are left behind. */
    assert_int_equal(st_write(path, ts, 1, NULL, 0, &err), TR_OK);
    assert_int_equal(st_open(path, &f, &err), TR_OK);
    assert_int_equal(st_count(f), 1);
    assert_int_equal(st_meta_count(f), 0);
    st_close(f);
    unlink(path);
    /* Bad arguments and unwritable paths are refused with the culprit named. */
    const st_wtensor bad = {"neg", ST_F32, 1, {-3}, w};
    assert_int_equal(st_write(path, &bad, 1, NULL, 0, &err), TR_EINVAL);
    assert_string_equal(err.field, "neg");
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(st_write("/nonexistent-dir/x.safetensors", ts, 1, NULL, 0, &err), TR_EIO);
    assert_non_null(strstr(err.msg, "/nonexistent-dir/x.safetensors"));
}

static void test_open_errors(void **state) {
    (void)state;
    st_file *f = NULL;
    tr_err err;
    assert_int_equal(st_open("/nonexistent-dir/m.safetensors", &f, &err), TR_EIO);
    assert_non_null(strstr(err.msg, "No such file"));
    assert_null(f);
    assert_int_equal(st_open(".", &f, &err), TR_EIO);
    assert_non_null(strstr(err.msg, "not a regular file"));
    char path[512];
    tmp_path(path, sizeof path, "empty");
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fclose(fp);
    assert_int_equal(st_open(path, &f, &err), TR_EFORMAT);
    assert_non_null(strstr(err.msg, "file is 0 bytes"));
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corrupt_table), cmocka_unit_test(test_valid_images),
        cmocka_unit_test(test_tensor_limit),  cmocka_unit_test(test_meta_and_lookup),
        cmocka_unit_test(test_f16),           cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_f64),           cmocka_unit_test(test_write_round_trip),
        cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
