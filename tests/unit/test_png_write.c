/* test_png_write.c - lib/png_write.c: PNGs that libpng reads back pixel for pixel; refused shapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <png.h>

#include "png_write.h"

/* Encode, read back with libpng's simplified API in the same format, compare. */
static void round_trip(size_t w, size_t h, int c, png_uint_32 format) {
    size_t n = w * h * (size_t)c, len;
    uint8_t *px = malloc(n), *png;
    tr_err err;
    for (size_t i = 0; i < n; i++) px[i] = (uint8_t)(i * 7 + i / 5);
    assert_int_equal(png_write_mem(px, w, h, c, &png, &len, &err), TR_OK);
    assert_true(len > 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_memory(&im, png, len));
    assert_int_equal(im.width, w);
    assert_int_equal(im.height, h);
    im.format = format;
    uint8_t *back = malloc(PNG_IMAGE_SIZE(im));
    assert_int_equal(PNG_IMAGE_SIZE(im), n);
    assert_true(png_image_finish_read(&im, NULL, back, 0, NULL));
    assert_memory_equal(back, px, n);
    free(back);
    free(png);
    free(px);
}

static void test_round_trips(void **state) {
    (void)state;
    round_trip(28, 28, 1, PNG_FORMAT_GRAY);
    round_trip(1, 1, 1, PNG_FORMAT_GRAY);
    round_trip(17, 5, 3, PNG_FORMAT_RGB);
    round_trip(3, 9, 4, PNG_FORMAT_RGBA);
}

static void test_refusals(void **state) {
    (void)state;
    uint8_t px[16] = {0}, *png = (uint8_t *)1;
    size_t len = 1;
    tr_err err;
    assert_int_equal(png_write_mem(px, 0, 2, 1, &png, &len, &err), TR_EINVAL);
    assert_null(png);
    assert_int_equal(len, 0);
    assert_int_equal(png_write_mem(px, 2, 2, 2, &png, &len, &err), TR_EINVAL);
    assert_int_equal(png_write_mem(px, 2, 2, 5, &png, &len, &err), TR_EINVAL);
    assert_int_equal(png_write_mem(px, 70000, 1, 1, &png, &len, &err), TR_EINVAL);
    assert_string_equal(err.field, "image");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
