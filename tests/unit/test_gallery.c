/* test_gallery.c - gallery files: round trip, F16/I32 inputs, and a
 * corrupt-file table with one case per refusal and its exact error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tmpdir.h"
#include "gallery.h"

static char tmpdir[200];

#define EMB_OK "\"embeddings\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]}"

static void path_of(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

/* Write a safetensors file from a header JSON and raw data bytes. */
static void write_st(const char *path, const char *header, const void *data, size_t len) {
    size_t hl = strlen(header), pad = (8 - hl % 8) % 8;
    uint8_t n8[8];
    uint64_t h = hl + pad;
    for (int i = 0; i < 8; i++) n8[i] = (uint8_t)(h >> (8 * i));
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fwrite(n8, 1, 8, f);
    fwrite(header, 1, hl, f);
    for (size_t i = 0; i < pad; i++) fputc(' ', f);
    if (len) fwrite(data, 1, len, f);
    fclose(f);
}

static void test_round_trip(void **state) {
    (void)state;
    char p[256];
    path_of(p, sizeof p, "rt.safetensors");
    float emb[3 * 4] = {1, 2, 3, 4, 0, 0, 0, 0, -1.5f, 0.25f, 8, -9};
    int64_t lab[3] = {7, -2, 7};
    const char *ids[3] = {"first", "z\xc3\xa9ro", "\xe2\x82\xac-3"};
    const char *sha = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    tr_err err;
    if (gal_save(p, emb, 3, 4, lab, ids, sha, &err) != TR_OK) fail_msg("gal_save: %s", err.msg);
    gal_gallery *g = NULL;
    if (gal_load(p, &g, &err) != TR_OK) fail_msg("gal_load: %s", err.msg);
    assert_int_equal(g->n, 3);
    assert_int_equal(g->dim, 4);
    assert_memory_equal(g->emb, emb, sizeof emb);
    assert_memory_equal(g->labels, lab, sizeof lab);
    assert_int_equal(g->n_classes, 2);
    for (int i = 0; i < 3; i++) assert_string_equal(g->ids[i], ids[i]);
    assert_true(g->sqnorm[0] == 30.0f && g->sqnorm[1] == 0.0f);
    assert_string_equal(g->model_sha256, sha);
    assert_string_equal(g->path, p);
    /* sha256 is that of the file bytes */
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    uint8_t buf[4096];
    size_t len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    unsigned char md[32];
    unsigned mdlen;
    char hex[65];
    EVP_Digest(buf, len, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(gal_sha256(g), hex);
    /* model check */
    assert_int_equal(gal_check_model(g, sha, 4, 0, &err), TR_OK);
    assert_int_equal(gal_check_model(g, "ff", 4, 0, &err), TR_EINVAL);
    assert_string_equal(err.field, "model_sha256");
    assert_int_equal(gal_check_model(g, "ff", 4, 1, &err), TR_OK);
    assert_int_equal(gal_check_model(g, sha, 5, 0, &err), TR_EDIM);
    assert_string_equal(err.field, "embeddings");
    gal_free(g);
    /* no labels, no ids, no model */
    if (gal_save(p, emb, 3, 4, NULL, NULL, NULL, &err) != TR_OK) fail_msg("gal_save: %s", err.msg);
    assert_int_equal(gal_load(p, &g, &err), TR_OK);
    assert_null(g->labels);
    assert_null(g->ids);
    assert_string_equal(g->model_sha256, "");
    assert_int_equal(gal_check_model(g, sha, 4, 0, &err), TR_EINVAL);
    gal_free(g);
    gal_free(NULL);
    unlink(p);
}

/* F16 embeddings and I32 labels, as a Python writer may produce them. */
/* ids with and without a NUL after the last one load alike. */
static void test_ids_layouts(void **state) {
    (void)state;
    static const char *const layouts[] = {"x\0yy\0zzz", "x\0yy\0zzz\0"};
    for (int t = 0; t < 2; t++) {
        char p[256], header[256];
        path_of(p, sizeof p, "ids.safetensors");
        uint8_t data[24 + 16];
        float emb[6] = {1, 2, 3, 4, 5, 6};
        size_t il = 8 + (size_t)t;
        memcpy(data, emb, sizeof emb);
        memcpy(data + 24, layouts[t], il);
        snprintf(header, sizeof header,
                 "{" EMB_OK ",\"ids\":{\"dtype\":\"U8\",\"shape\":[%zu],\"data_offsets\":[24,%zu]}}", il, 24 + il);
        write_st(p, header, data, 24 + il);
        gal_gallery *g = NULL;
        tr_err err;
        if (gal_load(p, &g, &err) != TR_OK) fail_msg("layout %d: %s", t, err.msg);
        assert_string_equal(g->ids[0], "x");
        assert_string_equal(g->ids[1], "yy");
        assert_string_equal(g->ids[2], "zzz");
        gal_free(g);
        unlink(p);
    }
}

static void test_f16_i32(void **state) {
    (void)state;
    char p[256];
    path_of(p, sizeof p, "f16.safetensors");
    uint8_t data[2 * 2 * 2 + 2 * 4] = {0x00, 0x3C, 0x00, 0xC0, 0x00, 0x38, 0x00, 0x00,  /* 1 -2 0.5 0 */
                                       5,    0,    0,    0,    0xff, 0xff, 0xff, 0xff}; /* 5 -1 */
    write_st(p,
             "{\"embeddings\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]},"
             "\"labels\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
             data, sizeof data);
    gal_gallery *g = NULL;
    tr_err err;
    if (gal_load(p, &g, &err) != TR_OK) fail_msg("gal_load: %s", err.msg);
    assert_true(g->emb[0] == 1.0f && g->emb[1] == -2.0f && g->emb[2] == 0.5f && g->emb[3] == 0.0f);
    assert_true(g->labels[0] == 5 && g->labels[1] == -1);
    gal_free(g);
    unlink(p);
}

/* One corrupt file per refusal: header tensors, data, expected field and a
 * substring of the message. The base has 3 embeddings of dim 2 (F32, 24 bytes). */
typedef struct {
    const char *what;
    const char *tensors; /* header entries after the embeddings entry */
    const char *emb;     /* embeddings entry, NULL for the default */
    const char *meta;    /* __metadata__ object or NULL */
    const char *tail;    /* bytes appended after the 24 embedding bytes */
    size_t tail_len;
    int code;
    const char *field;
    const char *msg;
} corrupt_case;

static const corrupt_case cases[] = {
    {"no embeddings", "\"labels\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,24]}", "", NULL, NULL, 0,
     TR_EFORMAT, "embeddings", "no \"embeddings\" tensor"},
    {"embeddings I32", "", "\"embeddings\":{\"dtype\":\"I32\",\"shape\":[3,2],\"data_offsets\":[0,24]}", NULL, NULL, 0,
     TR_EFORMAT, "embeddings", "embeddings: dtype I32, expected F32 or F16"},
    {"embeddings F64", "", "\"embeddings\":{\"dtype\":\"F64\",\"shape\":[3,1],\"data_offsets\":[0,24]}", NULL, NULL, 0,
     TR_EFORMAT, "embeddings", "embeddings: dtype F64, expected F32 or F16"},
    {"embeddings 1-D", "", "\"embeddings\":{\"dtype\":\"F32\",\"shape\":[6],\"data_offsets\":[0,24]}", NULL, NULL, 0,
     TR_EFORMAT, "embeddings", "embeddings: 1 dimensions, expected 2 [N, D]"},
    {"embeddings 3-D", "", "\"embeddings\":{\"dtype\":\"F32\",\"shape\":[3,2,1],\"data_offsets\":[0,24]}", NULL, NULL,
     0, TR_EFORMAT, "embeddings", "embeddings: 3 dimensions, expected 2 [N, D]"},
    {"embeddings empty", "", "\"embeddings\":{\"dtype\":\"F32\",\"shape\":[0,2],\"data_offsets\":[0,0]}", NULL, NULL, 0,
     TR_EFORMAT, "embeddings", "embeddings: shape [0, 2] is empty"},
    {"embeddings NaN", "", NULL, NULL, NULL, 0, TR_EFORMAT, "embeddings", "element 3 is"},
    {"labels F32", ",\"labels\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}", NULL, NULL,
     "\0\0\0\0\0\0\0\0\0\0\0\0", 12, TR_EFORMAT, "labels", "labels: dtype F32, expected I32 or I64"},
    {"labels too few", ",\"labels\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[24,40]}", NULL, NULL,
     "\1\0\0\0\0\0\0\0\2\0\0\0\0\0\0\0", 16, TR_EFORMAT, "labels",
     "labels: 2 values in 1 dimensions for 3 embeddings, expected [3]"},
    {"labels too many", ",\"labels\":{\"dtype\":\"I32\",\"shape\":[4],\"data_offsets\":[24,40]}", NULL, NULL,
     "\1\0\0\0\2\0\0\0\3\0\0\0\4\0\0\0", 16, TR_EFORMAT, "labels",
     "labels: 4 values in 1 dimensions for 3 embeddings, expected [3]"},
    {"labels 2-D", ",\"labels\":{\"dtype\":\"I32\",\"shape\":[3,1],\"data_offsets\":[24,36]}", NULL, NULL,
     "\1\0\0\0\2\0\0\0\3\0\0\0", 12, TR_EFORMAT, "labels", "labels: 3 values in 2 dimensions for 3 embeddings"},
    {"ids I8", ",\"ids\":{\"dtype\":\"I8\",\"shape\":[6],\"data_offsets\":[24,30]}", NULL, NULL, "a\0b\0c\0", 6,
     TR_EFORMAT, "ids", "ids: dtype I8, expected U8"},
    {"ids 2-D", ",\"ids\":{\"dtype\":\"U8\",\"shape\":[3,2],\"data_offsets\":[24,30]}", NULL, NULL, "a\0b\0c\0", 6,
     TR_EFORMAT, "ids", "ids: 2 dimensions, expected 1"},
    {"ids too few", ",\"ids\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[24,28]}", NULL, NULL, "a\0b\0", 4,
     TR_EFORMAT, "ids", "ids: 2 NUL-separated ids for 3 embeddings"},
    {"ids too few, no trailing NUL", ",\"ids\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[24,27]}", NULL, NULL,
     "a\0b", 3, TR_EFORMAT, "ids", "ids: 2 NUL-separated ids for 3 embeddings"},
    {"ids too many", ",\"ids\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[24,32]}", NULL, NULL, "a\0b\0c\0d\0",
     8, TR_EFORMAT, "ids", "ids: 4 NUL-separated ids for 3 embeddings"},
    {"ids two trailing NULs", ",\"ids\":{\"dtype\":\"U8\",\"shape\":[7],\"data_offsets\":[24,31]}", NULL, NULL,
     "a\0b\0c\0\0", 7, TR_EFORMAT, "ids", "ids: 4 NUL-separated ids for 3 embeddings"},
    {"ids empty tensor", ",\"ids\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[24,24]}", NULL, NULL, NULL, 0,
     TR_EFORMAT, "ids", "ids: empty tensor for 3 embeddings"},
    {"ids empty id", ",\"ids\":{\"dtype\":\"U8\",\"shape\":[5],\"data_offsets\":[24,29]}", NULL, NULL, "a\0\0c\0", 5,
     TR_EFORMAT, "ids", "ids: id 1 is empty"},
    {"ids bad byte", ",\"ids\":{\"dtype\":\"U8\",\"shape\":[6],\"data_offsets\":[24,30]}", NULL, NULL, "a\0\xff\0c\0",
     6, TR_EFORMAT, "ids", "ids: id 1 is not valid UTF-8 (byte 0)"},
    {"ids truncated sequence", ",\"ids\":{\"dtype\":\"U8\",\"shape\":[7],\"data_offsets\":[24,31]}", NULL, NULL,
     "a\0b\0x\xe2\0", 7, TR_EFORMAT, "ids", "ids: id 2 is not valid UTF-8 (byte 1)"},
    {"ids overlong", ",\"ids\":{\"dtype\":\"U8\",\"shape\":[7],\"data_offsets\":[24,31]}", NULL, NULL,
     "\xc0\xaf\0b\0c\0", 7, TR_EFORMAT, "ids", "ids: id 0 is not valid UTF-8 (byte 0)"},
    {"ids surrogate", ",\"ids\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[24,32]}", NULL, NULL,
     "a\0\xed\xa0\x80\0c\0", 8, TR_EFORMAT, "ids", "ids: id 1 is not valid UTF-8 (byte 0)"},
    {"images F32", ",\"images\":{\"dtype\":\"F32\",\"shape\":[3,1,1],\"data_offsets\":[24,36]}", NULL, NULL,
     "\0\0\0\0\0\0\0\0\0\0\0\0", 12, TR_EFORMAT, "images", "images: dtype F32, expected U8"},
    {"images 2-D", ",\"images\":{\"dtype\":\"U8\",\"shape\":[3,4],\"data_offsets\":[24,36]}", NULL, NULL,
     "\0\0\0\0\0\0\0\0\0\0\0\0", 12, TR_EFORMAT, "images", "images: 2 dimensions, expected [N, H, W] or [N, H, W, C]"},
    {"images too few", ",\"images\":{\"dtype\":\"U8\",\"shape\":[2,2,2],\"data_offsets\":[24,32]}", NULL, NULL,
     "\0\0\0\0\0\0\0\0", 8, TR_EFORMAT, "images", "images: 2 images for 3 embeddings"},
    {"images 2 channels", ",\"images\":{\"dtype\":\"U8\",\"shape\":[3,1,2,2],\"data_offsets\":[24,36]}", NULL, NULL,
     "\0\0\0\0\0\0\0\0\0\0\0\0", 12, TR_EFORMAT, "images", "images: 1 x 2 x 2 per image"},
    {"images side 0", ",\"images\":{\"dtype\":\"U8\",\"shape\":[3,0,2],\"data_offsets\":[24,24]}", NULL, NULL, NULL, 0,
     TR_EFORMAT, "images", "images: 0 x 2 x 1 per image"},
    {"unexpected tensor", ",\"norms\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}", NULL, NULL,
     "\0\0\0\0\0\0\0\0\0\0\0\0", 12, TR_EFORMAT, "norms", "unexpected tensor \"norms\""},
    {"wrong format", "", NULL, "{\"format\":\"something-else\"}", NULL, 0, TR_EFORMAT, "format",
     "metadata format is \"something-else\", expected \"tripletd-gallery\""},
    {"model sha not hex", "", NULL, "{\"model_sha256\":\"XYZ\"}", NULL, 0, TR_EFORMAT, "model_sha256",
     "metadata model_sha256 must be 64 lowercase hex digits"},
    {"data past header", "", NULL, NULL, "\0\0\0\0", 4, TR_EFORMAT, "", "after the last tensor"},
};

static void test_corrupt_table(void **state) {
    (void)state;
    char p[256], header[1024];
    path_of(p, sizeof p, "bad.safetensors");
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const corrupt_case *k = &cases[c];
        uint8_t data[64];
        float emb[6] = {1, 2, 3, 4, 5, 6};
        if (strcmp(k->what, "embeddings NaN") == 0) emb[3] = NAN;
        memcpy(data, emb, sizeof emb);
        const char *e = k->emb ? k->emb : EMB_OK;
        size_t len = strstr(e, "[0,0]") ? 0 : sizeof emb; /* an empty tensor has no bytes */
        if (k->tail) memcpy(data + len, k->tail, k->tail_len), len += k->tail_len;
        snprintf(header, sizeof header, "{%s%s%s%s%s}", k->meta ? "\"__metadata__\":" : "", k->meta ? k->meta : "",
                 k->meta ? "," : "", e, k->tensors);
        if (e[0] == '\0' && k->tensors[0] == ',') fail_msg("bad table row %s", k->what);
        write_st(p, header, data, len);
        gal_gallery *g = (gal_gallery *)1;
        tr_err err;
        int rc = gal_load(p, &g, &err);
        if (rc != k->code) fail_msg("%s: code %d, want %d (%s)", k->what, rc, k->code, rc ? err.msg : "loaded");
        assert_null(g);
        if (strcmp(err.field, k->field) != 0)
            fail_msg("%s: field \"%s\", want \"%s\" (%s)", k->what, err.field, k->field, err.msg);
        if (strstr(err.msg, k->msg) == NULL) fail_msg("%s: message \"%s\" lacks \"%s\"", k->what, err.msg, k->msg);
        if (strstr(err.msg, p) == NULL) fail_msg("%s: message does not name the file", k->what);
    }
    unlink(p);
    /* a missing file */
    gal_gallery *g;
    tr_err err;
    assert_int_equal(gal_load("/nonexistent/dir/g.safetensors", &g, &err), TR_EIO);
}

/* A valid gallery cut short at every kind of place (as a copy interrupted
 * by a full disk leaves it): each is refused naming the file and the problem. */
static void test_truncated(void **state) {
    (void)state;
    char p[256], q[256];
    path_of(p, sizeof p, "whole.safetensors");
    path_of(q, sizeof q, "cut.safetensors");
    float emb[4 * 3];
    int64_t lab[4] = {0, 1, 2, 1};
    const char *ids[4] = {"a", "b", "c", "d"};
    for (int i = 0; i < 12; i++) emb[i] = (float)i - 5.5f;
    tr_err err;
    if (gal_save(p, emb, 4, 3, lab, ids, NULL, &err) != TR_OK) fail_msg("gal_save: %s", err.msg);
    FILE *f = fopen(p, "rb");
    assert_non_null(f);
    uint8_t whole[4096];
    size_t len = fread(whole, 1, sizeof whole, f);
    fclose(f);
    uint64_t hl = 0;
    for (int i = 0; i < 8; i++) hl |= (uint64_t)whole[i] << (8 * i);
    const struct {
        size_t len;
        const char *field, *msg;
    } cuts[] = {
        {0, "header", "file is 0 bytes, shorter than the 8-byte header length"},
        {5, "header", "file is 5 bytes, shorter than the 8-byte header length"},
        {8 + (size_t)hl / 2, "header", "the 8-byte header length is larger than the file"},
        {8 + (size_t)hl + 20, "embeddings", "past the data section"},  /* inside the embeddings */
        {8 + (size_t)hl + 48 + 10, "labels", "past the data section"}, /* inside the labels */
        {len - 1, "ids", "past the data section"},                     /* the last byte */
    };
    for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
        f = fopen(q, "wb");
        assert_non_null(f);
        if (cuts[c].len) assert_int_equal(fwrite(whole, 1, cuts[c].len, f), cuts[c].len);
        fclose(f);
        gal_gallery *g = (gal_gallery *)1;
        int rc = gal_load(q, &g, &err);
        if (rc != TR_EFORMAT)
            fail_msg("cut at %zu of %zu: code %d (%s)", cuts[c].len, len, rc, rc ? err.msg : "loaded");
        assert_null(g);
        if (strcmp(err.field, cuts[c].field) != 0 || strstr(err.msg, cuts[c].msg) == NULL || strstr(err.msg, q) == NULL)
            fail_msg("cut at %zu: field \"%s\", message \"%s\"; want \"%s\", \"%s\"", cuts[c].len, err.field, err.msg,
                     cuts[c].field, cuts[c].msg);
    }
    unlink(q);
    unlink(p);
}

/* F32 embeddings and I64 labels are served from the file's mapping, not
 * copied; a header whose length leaves the data unaligned loads by a copy. */
static void test_mapped_in_place(void **state) {
    (void)state;
    char p[256];
    path_of(p, sizeof p, "map.safetensors");
    float emb[6] = {1, 2, 3, 4, 5, 6};
    int64_t lab[3] = {4, 5, 4};
    tr_err err;
    gal_gallery *g;
    if (gal_save(p, emb, 3, 2, lab, NULL, NULL, &err) != TR_OK) fail_msg("gal_save: %s", err.msg);
    assert_int_equal(gal_load(p, &g, &err), TR_OK);
    assert_null(g->emb_copy);
    assert_null(g->labels_copy);
    assert_memory_equal(g->emb, emb, sizeof emb);
    assert_memory_equal(g->labels, lab, sizeof lab);
    assert_int_equal(g->n_classes, 2);
    gal_free(g);
    /* a header of 8k + 2 bytes (no padding): the data starts 2 bytes off alignment */
    uint8_t data[24 + 24];
    memcpy(data, emb, 24);
    memcpy(data + 24, lab, 24);
    const char *h = "{" EMB_OK ",\"labels\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[24,48]}}";
    size_t hl = strlen(h) + (10 - strlen(h) % 8) % 8; /* hl % 8 == 2 */
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    for (int i = 0; i < 8; i++) fputc((int)((hl >> (8 * i)) & 0xff), f);
    fputs(h, f);
    for (size_t i = strlen(h); i < hl; i++) fputc(' ', f);
    fwrite(data, 1, sizeof data, f);
    fclose(f);
    if (gal_load(p, &g, &err) != TR_OK) fail_msg("unaligned gallery: %s", err.msg);
    assert_non_null(g->emb_copy);
    assert_non_null(g->labels_copy);
    assert_memory_equal(g->emb, emb, sizeof emb);
    assert_memory_equal(g->labels, lab, sizeof lab);
    assert_true(g->sqnorm[0] == 5.0f && g->sqnorm[2] == 61.0f);
    gal_free(g);
    unlink(p);
}

/* A loaded gallery keeps its own file when a new one is renamed over it (as
 * tripletctl index and a reload do): its values and its digest stay those of
 * the file it loaded, also when the digest is first asked for afterwards. */
static void test_replaced_by_rename(void **state) {
    (void)state;
    char p[256], q[256], want_a[65];
    path_of(p, sizeof p, "live.safetensors");
    path_of(q, sizeof q, "next.safetensors");
    float a[4] = {1, 2, 3, 4}, b[6] = {-1, -2, -3, -4, -5, -6};
    tr_err err;
    gal_gallery *ga, *gb, *gc;
    if (gal_save(p, a, 2, 2, NULL, NULL, NULL, &err) != TR_OK) fail_msg("gal_save: %s", err.msg);
    assert_int_equal(gal_load(p, &ga, &err), TR_OK);
    assert_int_equal(gal_load(p, &gc, &err), TR_OK); /* a second loader: the same file, computed now */
    snprintf(want_a, sizeof want_a, "%s", gal_sha256(gc));
    gal_free(gc);
    if (gal_save(q, b, 3, 2, NULL, NULL, NULL, &err) != TR_OK) fail_msg("gal_save: %s", err.msg);
    assert_int_equal(rename(q, p), 0);
    assert_int_equal(gal_load(p, &gb, &err), TR_OK);
    assert_int_equal(gb->n, 3);
    assert_memory_equal(gb->emb, b, sizeof b);
    assert_int_equal(ga->n, 2);
    assert_memory_equal(ga->emb, a, sizeof a);
    assert_string_equal(gal_sha256(ga), want_a);
    assert_string_not_equal(gal_sha256(gb), want_a);
    unlink(p); /* the mappings outlive the name */
    assert_memory_equal(ga->emb, a, sizeof a);
    assert_memory_equal(gb->emb, b, sizeof b);
    gal_free(ga);
    gal_free(gb);
}

static void test_images(void **state) {
    (void)state;
    char p[256];
    path_of(p, sizeof p, "img.safetensors");
    float emb[3 * 2] = {1, 2, 3, 4, 5, 6};
    uint8_t grey[3 * 2 * 3], rgb[3 * 2 * 3 * 3];
    for (size_t i = 0; i < sizeof grey; i++) grey[i] = (uint8_t)(i * 13);
    for (size_t i = 0; i < sizeof rgb; i++) rgb[i] = (uint8_t)(255 - i);
    tr_err err;
    gal_gallery *g;
    assert_int_equal(gal_save_images(p, emb, 3, 2, NULL, NULL, NULL, grey, 2, 3, 1, &err), TR_OK);
    assert_int_equal(gal_load(p, &g, &err), TR_OK);
    assert_non_null(g->images);
    assert_true(g->img_h == 2 && g->img_w == 3 && g->img_c == 1);
    assert_memory_equal(g->images, grey, sizeof grey);
    gal_free(g);
    assert_int_equal(gal_save_images(p, emb, 3, 2, NULL, NULL, NULL, rgb, 2, 3, 3, &err), TR_OK);
    assert_int_equal(gal_load(p, &g, &err), TR_OK);
    assert_true(g->img_h == 2 && g->img_w == 3 && g->img_c == 3);
    assert_memory_equal(g->images, rgb, sizeof rgb);
    gal_free(g);
    /* without images: still loads, no images */
    assert_int_equal(gal_save(p, emb, 3, 2, NULL, NULL, NULL, &err), TR_OK);
    assert_int_equal(gal_load(p, &g, &err), TR_OK);
    assert_null(g->images);
    gal_free(g);
    assert_int_equal(gal_save_images(p, emb, 3, 2, NULL, NULL, NULL, rgb, 2, 3, 2, &err), TR_EINVAL);
    assert_string_equal(err.field, "images");
    unlink(p);
}

static void test_save_refusals(void **state) {
    (void)state;
    char p[256];
    path_of(p, sizeof p, "refused.safetensors");
    float emb[4] = {1, 2, NAN, 4};
    const char *ids[2] = {"a", ""}, *bad_utf8[2] = {"a", "\xff"};
    tr_err err;
    assert_int_equal(gal_save(p, emb, 2, 2, NULL, NULL, NULL, &err), TR_EINVAL);
    assert_string_equal(err.field, "embeddings");
    emb[2] = 3;
    assert_int_equal(gal_save(p, emb, 0, 2, NULL, NULL, NULL, &err), TR_EINVAL);
    assert_int_equal(gal_save(p, emb, 2, 2, NULL, ids, NULL, &err), TR_EINVAL);
    assert_string_equal(err.field, "ids");
    assert_int_equal(gal_save(p, emb, 2, 2, NULL, bad_utf8, NULL, &err), TR_EINVAL);
    assert_int_equal(gal_save(p, emb, 2, 2, NULL, NULL, "abc", &err), TR_EINVAL);
    assert_string_equal(err.field, "model_sha256");
    assert_int_equal(access(p, F_OK), -1); /* nothing written */
}

static void test_utf8(void **state) {
    (void)state;
    size_t bad = 99;
    const char *ok = "plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80";
    assert_true(gal_utf8_valid((const uint8_t *)ok, strlen(ok), &bad));
    assert_false(gal_utf8_valid((const uint8_t *)"ab\xf4\x90\x80\x80", 6, &bad)); /* > U+10FFFF */
    assert_int_equal(bad, 2);
    assert_false(gal_utf8_valid((const uint8_t *)"\xe0\x80\x80", 3, &bad)); /* overlong */
    assert_false(gal_utf8_valid((const uint8_t *)"\x80", 1, &bad));         /* lone continuation */
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/test_gallery_XXXXXX", test_tmpdir());
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    const char *names[] = {"rt.safetensors",  "f16.safetensors",   "bad.safetensors", "refused.safetensors",
                           "ids.safetensors", "whole.safetensors", "cut.safetensors", "map.safetensors",
                           "img.safetensors", "live.safetensors",  "next.safetensors"};
    char p[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        path_of(p, sizeof p, names[i]);
        unlink(p);
    }
    return rmdir(tmpdir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_f16_i32),
        cmocka_unit_test(test_corrupt_table),
        cmocka_unit_test(test_save_refusals),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_ids_layouts),
        cmocka_unit_test(test_images),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_mapped_in_place),
        cmocka_unit_test(test_replaced_by_rename),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
