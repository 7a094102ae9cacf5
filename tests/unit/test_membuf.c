/* test_membuf.c - lib/membuf.c: appends keep the bytes and a NUL after them, growth, the limit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "membuf.h"
#include "tr_err.h"

static void test_appends(void **state) {
    (void)state;
    membuf b = {0};
    assert_int_equal(membuf_add(&b, "", 0, 0), TR_OK); /* nothing added: still a string */
    assert_non_null(b.p);
    assert_int_equal(b.n, 0);
    assert_int_equal(b.p[0], '\0');
    assert_int_equal(membuf_add(&b, "ab\0c", 4, 0), TR_OK); /* NULs inside are kept */
    assert_int_equal(b.n, 4);
    assert_memory_equal(b.p, "ab\0c", 5);
    char big[10000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 26);
    for (int k = 0; k < 3; k++) assert_int_equal(membuf_add(&b, big, sizeof big, 0), TR_OK);
    assert_int_equal(b.n, 4 + 3 * sizeof big);
    assert_true(b.cap > b.n);
    assert_memory_equal(b.p + 4 + 2 * sizeof big, big, sizeof big);
    assert_int_equal(b.p[b.n], '\0');
    free(b.p);
}

static void test_limit(void **state) {
    (void)state;
    membuf b = {0};
    assert_int_equal(membuf_add(&b, "12345", 5, 8), TR_OK);
    assert_int_equal(membuf_add(&b, "6789", 4, 8), TR_ELIMIT); /* 9 bytes > 8: refused, unchanged */
    assert_int_equal(b.n, 5);
    assert_string_equal(b.p, "12345");
    assert_int_equal(membuf_add(&b, "678", 3, 8), TR_OK); /* exactly the limit */
    assert_string_equal(b.p, "12345678");
    assert_int_equal(membuf_add(&b, (const void *)"x", SIZE_MAX, 0), TR_ENOMEM); /* no overflow */
    assert_int_equal(b.n, 8);
    free(b.p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_appends),
        cmocka_unit_test(test_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
