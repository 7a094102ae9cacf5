/* test_img.c - lib/img.c against PIL: every committed image and target size of tests/golden/gen_images.py
 * (convert + resize BILINEAR, bit for bit), and the hostile-image table with its exact errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "img.h"

static char dir[900];

static uint8_t *slurp(const char *name, size_t *len) {
    char path[1200];
    uint8_t *b;
    tr_err err;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (tr_read_file(path, SIZE_MAX, &b, len, &err) != TR_OK) fail_msg("%s", err.msg);
    return b;
}

static void test_pil_cases(void **state) {
    (void)state;
    char path[1200], line[512];
    snprintf(path, sizeof path, "%s/cases.txt", dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int cases = 0, kinds_png = 0, kinds_jpg = 0;
    while (fgets(line, sizeof line, f)) {
        char file[256], exp[256];
        mdl_image im = {0};
        if (line[0] == '#') continue;
        assert_int_equal(sscanf(line, "%255s %d %d %d %255s", file, &im.channels, &im.height, &im.width, exp), 5);
        size_t len, elen, n = (size_t)im.channels * (size_t)im.height * (size_t)im.width;
        uint8_t *buf = slurp(file, &len), *want = slurp(exp, &elen);
        float *got = malloc(n * sizeof *got);
        tr_err err = {0};
        assert_int_equal(elen, n);
        if (img_to_input(buf, len, &im, IMG_DEFAULT_MAX_PIXELS, got, &err) != TR_OK)
            fail_msg("%s as %dx%dx%d: %s", file, im.channels, im.height, im.width, err.msg);
        size_t off = 0;
        for (size_t i = 0; i < n; i++)
            if (got[i] != (float)want[i]) off++;
        if (off)
            fail_msg("%s as %dx%dx%d: %zu of %zu pixels differ from PIL (first at %zu)", file, im.channels, im.height,
                     im.width, off, n, off);
        kinds_png += strstr(file, ".png") != NULL;
        kinds_jpg += strstr(file, ".jpg") != NULL;
        cases++;
        free(buf), free(want), free(got);
    }
    fclose(f);
    assert_true(cases >= 50 && kinds_png > 0 && kinds_jpg > 0);
}

static void test_hostile(void **state) {
    (void)state;
    static const struct {
        const char *file;
        int code;
        const char *msg;
    } T[] = {
        {"bad_truncated.png", TR_EFORMAT, "truncated PNG data (the file ends after 1488 bytes)"},
        {"bad_truncated.jpg", TR_EFORMAT, "truncated JPEG data (the file ends after 640 bytes)"},
        {"bad_bomb.png", TR_ELIMIT, "image is 100000 x 100000 = 10000000000 pixels, over the 16777216-pixel limit"},
        {"bad_zero.png", TR_EFORMAT, "image has no pixels (0 x 5)"},
        {"bad_zero.jpg", TR_EFORMAT, "image has no pixels or an impossible size in its JPEG header"},
        {"bad_12bit.jpg", TR_EFORMAT, "12-bit JPEG images are not supported (8-bit only)"},
        {"bad_empty.png", TR_EFORMAT, "empty image data (0 bytes)"},
        {"bad_crc.png", TR_EFORMAT, "corrupt PNG data"},
        {"bad_cmyk.jpg", TR_EFORMAT, "CMYK JPEG images are not supported: convert the image to RGB"},
        {"bad_garbage.png", TR_EFORMAT, "corrupt PNG data"},
        {"bad_text.jpg", TR_EFORMAT, "not a PNG or JPEG image"},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        size_t len;
        uint8_t *buf = slurp(T[i].file, &len);
        img_u8 out;
        tr_err err = {0};
        int rc = img_decode(buf, len, IMG_DEFAULT_MAX_PIXELS, 3, &out, &err);
        if (rc != T[i].code || strcmp(err.msg, T[i].msg) != 0)
            fail_msg("%s: %d \"%s\", want %d \"%s\"", T[i].file, rc, err.msg, T[i].code, T[i].msg);
        assert_null(out.px);
        free(buf);
    }
    /* a limit below the image's size refuses it before decoding; an empty buffer is no image */
    size_t len;
    uint8_t *buf = slurp("big.png", &len);
    img_u8 out;
    tr_err err = {0};
    assert_int_equal(img_decode(buf, len, 1000, 1, &out, &err), TR_ELIMIT);
    assert_string_equal(err.msg, "image is 160 x 200 = 32000 pixels, over the 1000-pixel limit");
    assert_int_equal(img_decode(buf, 0, 1000, 1, &out, &err), TR_EFORMAT);
    free(buf);
}

int main(void) {
    const char *r = getenv("TRIPLET_ROOT");
    snprintf(dir, sizeof dir, "%s/tests/data/images", r ? r : ".");
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_pil_cases), cmocka_unit_test(test_hostile)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
