/* test_data.c - dataset readers on generated IDX/CSV/JSON-lines files and a corrupt-input table. */
#include <float.h>
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
#include <zlib.h>

#include "../tmpdir.h"
#include "data.h"

static char tmpdir[256];

static void path_in(char *buf, size_t cap, const char *name) {
    snprintf(buf, cap, "%s/%s", tmpdir, name);
}

static void write_raw(const char *name, const void *p, size_t len) {
    char path[512];
    path_in(path, sizeof path, name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, len, f), len);
    fclose(f);
}

static void write_gz(const char *name, const void *p, size_t len) {
    char path[512];
    path_in(path, sizeof path, name);
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, p, (unsigned)len), (int)len);
    gzclose(g);
}

/* IDX bytes: header (type, rank, dims) then payload. */
static size_t make_idx(uint8_t *buf, uint8_t type, int rank, const uint32_t *dims, const void *payload, size_t plen) {
    buf[0] = buf[1] = 0;
    buf[2] = type;
    buf[3] = (uint8_t)rank;
    for (int i = 0; i < rank; i++) {
        buf[4 + 4 * i] = (uint8_t)(dims[i] >> 24);
        buf[5 + 4 * i] = (uint8_t)(dims[i] >> 16);
        buf[6 + 4 * i] = (uint8_t)(dims[i] >> 8);
        buf[7 + 4 * i] = (uint8_t)dims[i];
    }
    memcpy(buf + 4 + 4 * rank, payload, plen);
    return 4 + 4 * (size_t)rank + plen;
}

/* 5 images of 2x3 with pixel (i*6 + j) * 8, labels 3,1,4,1,5. */
static uint8_t img5[256], lab5[64];
static size_t img5_len, lab5_len;

static void make_fixture(void) {
    uint8_t px[30], lb[5] = {3, 1, 4, 1, 5};
    for (int i = 0; i < 30; i++) px[i] = (uint8_t)(i * 8);
    uint32_t di[3] = {5, 2, 3}, dl[1] = {5};
    img5_len = make_idx(img5, 0x08, 3, di, px, sizeof px);
    lab5_len = make_idx(lab5, 0x08, 1, dl, lb, sizeof lb);
}

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "%s/test_data.XXXXXX", test_tmpdir());
    if (mkdtemp(tmpdir) == NULL) return -1;
    make_fixture();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

static void check_fixture(const dat_set *d, size_t n, double scale) {
    assert_int_equal(d->n, n);
    assert_int_equal(d->dim, 6);
    assert_int_equal(d->height, 2);
    assert_int_equal(d->width, 3);
    assert_true(d->raw_max == 255.0);
    assert_null(d->ids);
    static const int64_t want[5] = {3, 1, 4, 1, 5};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(d->labels[i], want[i]);
        for (size_t j = 0; j < 6; j++) assert_true(d->x[i * 6 + j] == (float)((double)((i * 6 + j) * 8) * scale));
    }
    assert_true(d->pre_mean == 0.0);
    assert_true(d->pre_scale == scale);
}

static void test_idx_memory(void **state) {
    (void)state;
    dat_set *d = NULL;
    tr_err err;
    assert_int_equal(dat_parse_idx(img5, img5_len, "img", lab5, lab5_len, "lab", NULL, &d, &err), TR_OK);
    check_fixture(d, 5, 1.0);
    dat_free(d);
    dat_opts o;
    dat_opts_default(&o);
    o.scale = 1;
    o.limit = 3;
    assert_int_equal(dat_parse_idx(img5, img5_len, "img", lab5, lab5_len, "lab", &o, &d, &err), TR_OK);
    check_fixture(d, 3, 1.0 / 255.0);
    dat_free(d);
    dat_free(NULL);
}

static void test_idx_types(void **state) {
    (void)state;
    /* rank-1 float images (1 feature), big-endian -1.5 and 2.0; short labels */
    uint8_t img[64], lab[64];
    const uint8_t fl[8] = {0xBF, 0xC0, 0, 0, 0x40, 0, 0, 0};
    const uint8_t sh[4] = {0xFF, 0xFE, 0x01, 0x00}; /* -2, 256 */
    uint32_t d2[1] = {2};
    size_t il = make_idx(img, 0x0D, 1, d2, fl, sizeof fl), ll = make_idx(lab, 0x0B, 1, d2, sh, sizeof sh);
    dat_set *d = NULL;
    tr_err err;
    assert_int_equal(dat_parse_idx(img, il, "img", lab, ll, "lab", NULL, &d, &err), TR_OK);
    assert_int_equal(d->n, 2);
    assert_int_equal(d->dim, 1);
    assert_true(d->x[0] == -1.5f && d->x[1] == 2.0f);
    assert_int_equal(d->labels[0], -2);
    assert_int_equal(d->labels[1], 256);
    assert_int_equal(d->height, 0);
    dat_free(d);
}

static void test_load_specs(void **state) {
    (void)state;
    char dir[512], sub[512], spec[600];
    path_in(dir, sizeof dir, "idx");
    assert_int_equal(mkdir(dir, 0700), 0);
    write_gz("idx/train-images-idx3-ubyte.gz", img5, img5_len);
    write_gz("idx/train-labels-idx1-ubyte.gz", lab5, lab5_len);
    write_raw("idx/t10k-images-idx3-ubyte", img5, img5_len);
    write_raw("idx/t10k-labels-idx1-ubyte", lab5, lab5_len);
    dat_set *d = NULL;
    tr_err err;
    dat_opts o;
    dat_opts_default(&o);
    assert_int_equal(dat_load(dir, &o, &d, &err), TR_OK);
    check_fixture(d, 5, 1.0);
    assert_non_null(strstr(d->source, "train-images-idx3-ubyte.gz"));
    dat_free(d);
    o.split = "test";
    assert_int_equal(dat_load(dir, &o, &d, &err), TR_OK);
    check_fixture(d, 5, 1.0);
    assert_non_null(strstr(d->source, "t10k-images-idx3-ubyte"));
    dat_free(d);
    /* prefix and images-file forms */
    snprintf(spec, sizeof spec, "%s/t10k", dir);
    assert_int_equal(dat_load(spec, NULL, &d, &err), TR_OK);
    check_fixture(d, 5, 1.0);
    dat_free(d);
    snprintf(spec, sizeof spec, "%s/train-images-idx3-ubyte.gz", dir);
    assert_int_equal(dat_load(spec, NULL, &d, &err), TR_OK);
    check_fixture(d, 5, 1.0);
    dat_free(d);
    /* images file inside a directory whose name has "images" in it */
    char imgdir[512];
    path_in(imgdir, sizeof imgdir, "images-idx3");
    assert_int_equal(mkdir(imgdir, 0700), 0);
    write_raw("images-idx3/x-images-idx3-ubyte", img5, img5_len);
    write_gz("images-idx3/x-labels-idx1-ubyte.gz", lab5, lab5_len);
    snprintf(spec, sizeof spec, "%s/x-images-idx3-ubyte", imgdir);
    assert_int_equal(dat_load(spec, NULL, &d, &err), TR_OK);
    check_fixture(d, 5, 1.0);
    dat_free(d);
    /* a split that is not there */
    o.split = "valid";
    assert_int_equal(dat_load(dir, &o, &d, &err), TR_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no IDX files for split \"valid\""));
    /* images without labels */
    path_in(sub, sizeof sub, "idx/lonely-images-idx3-ubyte");
    write_raw("idx/lonely-images-idx3-ubyte", img5, img5_len);
    assert_int_equal(dat_load(sub, NULL, &d, &err), TR_ENOTFOUND);
    assert_non_null(strstr(err.msg, "no labels file next to it"));
    /* nothing at all */
    snprintf(spec, sizeof spec, "%s/nope", dir);
    assert_int_equal(dat_load(spec, NULL, &d, &err), TR_ENOTFOUND);
    assert_non_null(strstr(err.msg, "nope: No such file or directory"));
    write_raw("x.bin", "1,2\n", 4);
    path_in(spec, sizeof spec, "x.bin");
    assert_int_equal(dat_load(spec, NULL, &d, &err), TR_EINVAL);
    assert_non_null(strstr(err.msg, "unknown data format"));
    assert_int_equal(dat_load("", NULL, &d, &err), TR_EINVAL);
}

/* One corrupt IDX pair and the exact error. */
typedef struct {
    const char *what;
    int patch; /* which bytes to change: see corrupt_idx */
    int code;
    const char *msg;
} idx_case;

static void test_idx_corrupt(void **state) {
    (void)state;
    static const idx_case cases[] = {
        {"bad magic", 1, TR_EFORMAT, "img: bad IDX magic 01 00 08 03 at byte offset 0, expected 00 00 <type> <rank>"},
        {"unknown type", 2, TR_EFORMAT, "img: unknown IDX element type 0x07 at byte offset 2"},
        {"rank 0", 3, TR_EFORMAT, "img: IDX rank 0 at byte offset 3 is not supported (1..3)"},
        {"truncated payload", 4, TR_EFORMAT,
         "img: truncated: header (rank 3, 5 x 6 ubyte) announces 30 data bytes after byte offset 16, file has 29"},
        {"trailing bytes", 5, TR_EFORMAT,
         "img: trailing bytes: header (rank 3, 5 x 6 ubyte) announces 30 data bytes after byte offset 16, file has 31"},
        {"truncated header", 6, TR_EFORMAT, "img: truncated IDX header: 10 bytes, need 16"},
        {"tiny file", 7, TR_EFORMAT, "img: truncated IDX header: 2 bytes, need at least 4 (byte offset 0)"},
        {"count mismatch", 8, TR_EFORMAT, "count mismatch: img has 5 images, lab has 4 labels"},
        {"labels rank 2", 9, TR_EFORMAT, "lab: labels must be an IDX rank-1 file, this one has rank 2"},
        {"float labels", 10, TR_EFORMAT, "lab: labels must be integers, element type is float"},
        {"huge dims", 11, TR_ELIMIT, "img: IDX dimensions overflow"},
        {"no images", 12, TR_EFORMAT, "img: no images"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        uint8_t img[300], lab[100];
        memcpy(img, img5, img5_len);
        memcpy(lab, lab5, lab5_len);
        size_t il = img5_len, ll = lab5_len;
        switch (cases[c].patch) {
        case 1:
            img[0] = 1;
            break;
        case 2:
            img[2] = 7;
            break;
        case 3:
            img[3] = 0;
            break;
        case 4:
            il--;
            break;
        case 5:
            img[il++] = 0;
            break;
        case 6:
            il = 10;
            break;
        case 7:
            il = 2;
            break;
        case 8: {
            uint8_t lb[4] = {1, 2, 3, 4};
            uint32_t d4[1] = {4};
            ll = make_idx(lab, 0x08, 1, d4, lb, 4);
            break;
        }
        case 9: {
            uint8_t lb[5] = {0};
            uint32_t d2[2] = {5, 1};
            ll = make_idx(lab, 0x08, 2, d2, lb, 5);
            break;
        }
        case 10: {
            uint8_t lb[20] = {0};
            uint32_t d5[1] = {5};
            ll = make_idx(lab, 0x0D, 1, d5, lb, 20);
            break;
        }
        case 11: {
            uint32_t dh[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
            il = make_idx(img, 0x0E, 3, dh, "", 0);
            break;
        }
        case 12: {
            uint32_t d0[3] = {0, 2, 3}, l0[1] = {0};
            il = make_idx(img, 0x08, 3, d0, "", 0);
            ll = make_idx(lab, 0x08, 1, l0, "", 0);
            break;
        }
        }
        dat_set *d = NULL;
        tr_err err;
        tr_clearerr(&err);
        int rc = dat_parse_idx(img, il, "img", lab, ll, "lab", NULL, &d, &err);
        if (rc != cases[c].code || strcmp(err.msg, cases[c].msg) != 0)
            fail_msg("case %s: got %d \"%s\", want %d \"%s\"", cases[c].what, rc, err.msg, cases[c].code, cases[c].msg);
        assert_null(d);
    }
}

static void test_gzip_corrupt(void **state) {
    (void)state;
    char path[512];
    uint8_t *buf = NULL;
    size_t len = 0;
    tr_err err;
    /* gzip magic, then garbage */
    const uint8_t bad[] = {0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    write_raw("bad.gz", bad, sizeof bad);
    path_in(path, sizeof path, "bad.gz");
    assert_int_equal(dat_read_file(path, &buf, &len, &err), TR_EFORMAT);
    assert_non_null(strstr(err.msg, "bad.gz: bad gzip data after 0 bytes: "));
    /* a valid gzip stream cut short */
    uint8_t big[4000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (uint8_t)(i * 7919 >> 3);
    write_gz("whole.gz", big, sizeof big);
    path_in(path, sizeof path, "whole.gz");
    assert_int_equal(dat_read_file(path, &buf, &len, &err), TR_OK);
    assert_int_equal(len, sizeof big);
    assert_memory_equal(buf, big, sizeof big);
    free(buf);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t z[8000];
    size_t zl = fread(z, 1, sizeof z, f);
    fclose(f);
    write_raw("cut.gz", z, zl / 2);
    path_in(path, sizeof path, "cut.gz");
    assert_int_equal(dat_read_file(path, &buf, &len, &err), TR_EFORMAT);
    assert_non_null(strstr(err.msg, "cut.gz: bad gzip data after "));
    assert_non_null(strstr(err.msg, "unexpected end of file"));
    /* a gzip'd IDX pair whose labels file is corrupt fails naming it */
    char dir[512];
    path_in(dir, sizeof dir, "gzbad");
    assert_int_equal(mkdir(dir, 0700), 0);
    write_gz("gzbad/train-images-idx3-ubyte.gz", img5, img5_len);
    write_raw("gzbad/train-labels-idx1-ubyte.gz", bad, sizeof bad);
    dat_set *d = NULL;
    assert_int_equal(dat_load(dir, NULL, &d, &err), TR_EFORMAT);
    assert_non_null(strstr(err.msg, "train-labels-idx1-ubyte.gz: bad gzip data"));
    /* missing file and directory */
    path_in(path, sizeof path, "missing");
    assert_int_equal(dat_read_file(path, &buf, &len, &err), TR_ENOTFOUND);
    assert_int_equal(dat_read_file(tmpdir, &buf, &len, &err), TR_EINVAL);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

static void test_csv_good(void **state) {
    (void)state;
    const char *t = "f1, f2,label\r\n1,2.5,0\r\n\r\n  -3 ,4e1 , 7\n5,6,0.0\n";
    dat_set *d = NULL;
    tr_err err;
    assert_int_equal(dat_parse_csv(t, strlen(t), "t.csv", NULL, &d, &err), TR_OK);
    assert_int_equal(d->n, 3);
    assert_int_equal(d->dim, 2);
    const float want[6] = {1, 2.5f, -3, 40, 5, 6};
    assert_memory_equal(d->x, want, sizeof want);
    assert_int_equal(d->labels[0], 0);
    assert_int_equal(d->labels[1], 7);
    assert_int_equal(d->labels[2], 0);
    assert_null(d->ids);
    assert_true(d->raw_max == 0.0);
    dat_free(d);
    /* no header, id column, limit, scale */
    const char *u = "id,a,b,y\nr1,255,0,2\nr2,51,102,3\nr3,1,1,1\n";
    dat_opts o;
    dat_opts_default(&o);
    o.limit = 2;
    o.scale = 1;
    assert_int_equal(dat_parse_csv(u, strlen(u), "u.csv", &o, &d, &err), TR_OK);
    assert_int_equal(d->n, 2);
    assert_string_equal(d->ids[0], "r1");
    assert_string_equal(d->ids[1], "r2");
    assert_true(d->x[0] == (float)(255.0 / 255.0) && d->x[2] == (float)(51.0 / 255.0));
    assert_true(d->pre_scale == 1.0 / 255.0);
    dat_free(d);
    const char *v = "1,2,3\n4,5,6";
    assert_int_equal(dat_parse_csv(v, strlen(v), "v.csv", NULL, &d, &err), TR_OK);
    assert_int_equal(d->n, 2);
    assert_int_equal(d->labels[1], 6);
    dat_free(d);
    /* the float32 range: FLT_MAX as printed (3.4028235e38) and 3.4e38..FLT_MAX are floats, 3.4028236e38 is not */
    const char *big = "3.4028235e38,-3.40282e38,1\n";
    assert_int_equal(dat_parse_csv(big, strlen(big), "big.csv", NULL, &d, &err), TR_OK);
    assert_true(d->x[0] == FLT_MAX && d->x[1] == -3.40282e38f);
    dat_free(d);
    const char *over = "3.4028236e38,1,1\n";
    assert_int_equal(dat_parse_csv(over, strlen(over), "over.csv", NULL, &d, &err), TR_EFORMAT);
    assert_true(tr_f32_ok(FLT_MAX) && tr_f32_ok(-FLT_MAX) && !tr_f32_ok(1e39) && !tr_f32_ok(NAN) &&
                !tr_f32_ok(INFINITY));
    assert_true(!tr_f32_ok(0x1.ffffffp127) && tr_f32_ok(0x1.fffffefffffffp127));
    /* from a .csv.gz file through dat_load */
    char path[512];
    write_gz("w.csv.gz", v, strlen(v));
    path_in(path, sizeof path, "w.csv.gz");
    assert_int_equal(dat_load(path, NULL, &d, &err), TR_OK);
    assert_int_equal(d->n, 2);
    assert_true(d->x[3] == 5.0f);
    dat_free(d);
}

typedef struct {
    const char *text;
    int code;
    const char *msg;
} text_case;

static void run_text_cases(const text_case *cases, size_t n, int jsonl) {
    for (size_t c = 0; c < n; c++) {
        dat_set *d = NULL;
        tr_err err;
        tr_clearerr(&err);
        const char *t = cases[c].text;
        int rc = jsonl ? dat_parse_jsonl(t, strlen(t), "t.jsonl", NULL, &d, &err)
                       : dat_parse_csv(t, strlen(t), "t.csv", NULL, &d, &err);
        if (rc != cases[c].code || strcmp(err.msg, cases[c].msg) != 0)
            fail_msg("case %zu (%s): got %d \"%s\", want %d \"%s\"", c, t, rc, err.msg, cases[c].code, cases[c].msg);
        assert_null(d);
    }
}

static void test_csv_corrupt(void **state) {
    (void)state;
    static const text_case cases[] = {
        {"a,b,y\n1,2,0\n3,4\n", TR_EFORMAT, "t.csv:3: 2 fields, expected 3 (as on line 1)"},
        {"1,2,0\n3,4,5,6\n", TR_EFORMAT, "t.csv:2: 4 fields, expected 3 (as on line 1)"},
        {"a,b,y\n1,abc,0\n", TR_EFORMAT, "t.csv:2, column 2: not a number"},
        {"a,b,y\n1,,0\n", TR_EFORMAT, "t.csv:2, column 2: not a number"},
        {"a,b,y\n1,nan,0\n", TR_EFORMAT, "t.csv:2, column 2: not a finite number"},
        {"a,b,y\n1,1e400,0\n", TR_EFORMAT, "t.csv:2, column 2: not a finite number"},
        {"a,b,y\n1,2,0.5\n", TR_EFORMAT, "t.csv:2, column 3: the label is not an integer"},
        {"a,b,y\n\n", TR_EFORMAT, "t.csv: no data rows"},
        {"", TR_EFORMAT, "t.csv: no data rows"},
        {"label\n1\n", TR_EFORMAT, "t.csv:1: 1 field(s); need at least one feature and the label (last column)"},
        {"id,y\nr,1\n", TR_EFORMAT, "t.csv:1: 2 field(s); need at least one feature and the label (last column)"},
        {"id,a,y\n,1,1\n", TR_EFORMAT, "t.csv:2, column 1: id is empty or longer than 255 bytes"},
    };
    run_text_cases(cases, sizeof cases / sizeof cases[0], 0);
    /* bytes the C-string cases cannot hold */
    static const char nul_id[] = "id,a,y\nr\0s,1,1\n";
    static const char nul_num[] = "a,b,y\n1,2\0,0\n";
    dat_set *d = NULL;
    tr_err err;
    assert_int_equal(dat_parse_csv(nul_id, sizeof nul_id - 1, "t.csv", NULL, &d, &err), TR_EFORMAT);
    assert_string_equal(err.msg, "t.csv:2, column 1: id contains a NUL byte");
    assert_int_equal(dat_parse_csv(nul_num, sizeof nul_num - 1, "t.csv", NULL, &d, &err), TR_EFORMAT);
    assert_string_equal(err.msg, "t.csv:2, column 2: not a number");
    assert_null(d);
}

static void test_jsonl_good(void **state) {
    (void)state;
    const char *t = "{\"x\":[1,2.5],\"label\":3,\"id\":\"a\"}\n\n{\"features\":[-1,0],\"label\":4.0,\"id\":17}\r\n";
    dat_set *d = NULL;
    tr_err err;
    assert_int_equal(dat_parse_jsonl(t, strlen(t), "t.jsonl", NULL, &d, &err), TR_OK);
    assert_int_equal(d->n, 2);
    assert_int_equal(d->dim, 2);
    const float want[4] = {1, 2.5f, -1, 0};
    assert_memory_equal(d->x, want, sizeof want);
    assert_int_equal(d->labels[0], 3);
    assert_int_equal(d->labels[1], 4);
    assert_string_equal(d->ids[0], "a");
    assert_string_equal(d->ids[1], "17");
    dat_free(d);
    char path[512];
    const char *u = "{\"x\":[1],\"label\":0}\n{\"x\":[2],\"label\":1}\n";
    write_raw("u.jsonl", u, strlen(u));
    path_in(path, sizeof path, "u.jsonl");
    assert_int_equal(dat_load(path, NULL, &d, &err), TR_OK);
    assert_int_equal(d->n, 2);
    assert_null(d->ids);
    dat_free(d);
}

static void test_jsonl_corrupt(void **state) {
    (void)state;
    static const text_case cases[] = {
        {"{\"x\":[1],\"label\":0}\n{\"x\":[1,],\"label\":0}\n", TR_EFORMAT, "t.jsonl:2, column 9: invalid JSON"},
        {"[1,2,0]\n", TR_EFORMAT, "t.jsonl:1: expected an object {\"x\": [...], \"label\": L}"},
        {"{\"y\":[1],\"label\":0}\n", TR_EFORMAT, "t.jsonl:1: missing \"x\" (an array of numbers)"},
        {"{\"features\":3,\"label\":0}\n", TR_EFORMAT, "t.jsonl:1: \"features\" is not an array"},
        {"{\"x\":[1,\"a\"],\"label\":0}\n", TR_EFORMAT, "t.jsonl:1: x[1] is not a finite number"},
        {"{\"x\":[1,1e999],\"label\":0}\n", TR_EFORMAT, "t.jsonl:1: x[1] is not a finite number"},
        {"{\"x\":[1]}\n", TR_EFORMAT, "t.jsonl:1: missing \"label\""},
        {"{\"x\":[1],\"label\":1.5}\n", TR_EFORMAT, "t.jsonl:1: \"label\" is not an integer"},
        {"{\"x\":[1],\"label\":\"cat\"}\n", TR_EFORMAT, "t.jsonl:1: \"label\" is not an integer"},
        {"{\"x\":[1,2],\"label\":0}\n\n{\"x\":[1],\"label\":0}\n", TR_EFORMAT,
         "t.jsonl:3: \"x\" has 1 numbers, expected 2 (as on line 1)"},
        {"{\"x\":[],\"label\":0}\n", TR_EFORMAT, "t.jsonl:1: \"x\" has 0 numbers (limit 1..1048576)"},
        {"{\"x\":[1],\"label\":0,\"id\":\"a\"}\n{\"x\":[1],\"label\":0}\n", TR_EFORMAT,
         "t.jsonl:2: missing \"id\" (line 1 had one)"},
        {"{\"x\":[1],\"label\":0}\n{\"x\":[1],\"label\":0,\"id\":\"a\"}\n", TR_EFORMAT,
         "t.jsonl:2: unexpected \"id\" (line 1 had no one)"},
        {"{\"x\":[1],\"label\":0,\"id\":[]}\n", TR_EFORMAT,
         "t.jsonl:1: \"id\" must be a non-empty string (< 256 bytes) or an integer"},
        {"{\"x\":[1],\"label\":0} {}\n", TR_EFORMAT, "t.jsonl:1, column 21: text after the JSON value"},
        {"\n\n", TR_EFORMAT, "t.jsonl: no data rows"},
    };
    run_text_cases(cases, sizeof cases / sizeof cases[0], 1);
}

static dat_set *make_labelled(size_t n, const int64_t *labels) {
    dat_set *d = NULL;
    char *t = malloc(n * 32 + 1);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += (size_t)sprintf(t + k, "%zu,%lld\n", i, (long long)labels[i]);
    tr_err err;
    assert_int_equal(dat_parse_csv(t, k, "gen", NULL, &d, &err), TR_OK);
    free(t);
    return d;
}

static void test_subsets(void **state) {
    (void)state;
    int64_t lab[40];
    for (int i = 0; i < 40; i++) lab[i] = i < 20 ? i % 4 : (i % 2 ? 9 : 1); /* 0:5 1:15 2:5 3:5 9:10 */
    dat_set *d = make_labelled(40, lab), *a = NULL, *b = NULL;
    tr_err err;
    int64_t *cls = NULL;
    size_t *cnt = NULL, nc = 0;
    assert_int_equal(dat_classes(d, &cls, &cnt, &nc, &err), TR_OK);
    assert_int_equal(nc, 5);
    const int64_t wc[5] = {0, 1, 2, 3, 9};
    const size_t wn[5] = {5, 15, 5, 5, 10};
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(cls[i], wc[i]);
        assert_int_equal(cnt[i], wn[i]);
    }
    free(cls);
    free(cnt);
    /* open-set filter keeps order */
    const int64_t keep[2] = {2, 9};
    assert_int_equal(dat_filter_classes(d, keep, 2, 1, &a, &err), TR_OK);
    assert_int_equal(a->n, 15);
    for (size_t i = 0; i < a->n; i++) assert_true(a->labels[i] == 2 || a->labels[i] == 9);
    assert_true(a->x[0] == 2.0f);
    dat_free(a);
    assert_int_equal(dat_filter_classes(d, keep, 2, 0, &a, &err), TR_OK);
    assert_int_equal(a->n, 25);
    dat_free(a);
    const int64_t none[1] = {42};
    assert_int_equal(dat_filter_classes(d, none, 1, 1, &a, &err), TR_EINVAL);
    assert_string_equal(err.msg, "gen: no rows with the 1 given class(es)");
    /* stratified holdout: per class round(0.2 * count), disjoint, deterministic */
    assert_int_equal(dat_split_holdout(d, 0.2, 7, &a, &b, &err), TR_OK);
    assert_int_equal(b->n, 1 + 3 + 1 + 1 + 2);
    assert_int_equal(a->n + b->n, 40);
    unsigned seen[40] = {0};
    for (size_t i = 0; i < a->n; i++) seen[(int)a->x[i]]++;
    for (size_t i = 0; i < b->n; i++) seen[(int)b->x[i]]++;
    for (int i = 0; i < 40; i++) assert_int_equal(seen[i], 1);
    dat_set *a2 = NULL, *b2 = NULL;
    assert_int_equal(dat_split_holdout(d, 0.2, 7, &a2, &b2, &err), TR_OK);
    assert_memory_equal(b->x, b2->x, b->n * sizeof(float));
    dat_free(a2);
    dat_free(b2);
    assert_int_equal(dat_split_holdout(d, 0.2, 8, &a2, &b2, &err), TR_OK);
    assert_int_equal(b2->n, b->n);
    assert_true(memcmp(b->x, b2->x, b->n * sizeof(float)) != 0);
    dat_free(a2);
    dat_free(b2);
    dat_free(a);
    dat_free(b);
    assert_int_equal(dat_split_holdout(d, 1.0, 7, &a, &b, &err), TR_EINVAL);
    dat_free(d);
}

static void test_preprocess(void **state) {
    (void)state;
    const int64_t lab[2] = {0, 1};
    dat_set *d = make_labelled(2, lab); /* x = 0, 1 */
    dat_preprocess(d, 0.5, 2.0);        /* -1, 1 */
    dat_preprocess(d, 1.0, 0.25);       /* -0.5, 0 */
    assert_true(d->x[0] == -0.5f && d->x[1] == 0.0f);
    /* the recorded transform maps raw to the current values */
    for (int i = 0; i < 2; i++) assert_true((float)(((double)i - d->pre_mean) * d->pre_scale) == d->x[i]);
    dat_free(d);
}

static void test_find_default(void **state) {
    (void)state;
    char path[512], dir[512];
    tr_err err;
    const char *dirs[8];
    assert_int_equal(dat_default_dirs(tmpdir, dirs, 8), 1);
    assert_string_equal(dirs[0], tmpdir);
    assert_int_equal(dat_find_default(tmpdir, path, sizeof path, &err), TR_ENOTFOUND);
    assert_non_null(strstr(err.msg, tmpdir));
    assert_non_null(strstr(err.msg, "dataset-fashion-mnist"));
    path_in(dir, sizeof dir, "idx");
    assert_int_equal(dat_find_default(dir, path, sizeof path, &err), TR_OK);
    assert_string_equal(path, dir);
    size_t n = dat_default_dirs("", dirs, 8);
    assert_true(n >= 2);
    assert_string_equal(dirs[0], "/usr/share/datasets/fashion-mnist");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_memory),  cmocka_unit_test(test_idx_types),    cmocka_unit_test(test_load_specs),
        cmocka_unit_test(test_idx_corrupt), cmocka_unit_test(test_gzip_corrupt), cmocka_unit_test(test_csv_good),
        cmocka_unit_test(test_csv_corrupt), cmocka_unit_test(test_jsonl_good),   cmocka_unit_test(test_jsonl_corrupt),
        cmocka_unit_test(test_subsets),     cmocka_unit_test(test_preprocess),   cmocka_unit_test(test_find_default),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
