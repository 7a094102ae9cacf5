/* test_srv_routes.c - the route table's matcher: exact paths, {name} segments, 405 with Allow, HEAD. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "routes.h"

/* The path of the route method+path finds ("" for none), and whether the path is known. */
static const char *found(const char *method, const char *path, int *known, char *allow, size_t cap) {
    const srv_route *r = srv_route_at(srv_route_find(method, path, known, allow, cap));
    return r ? r->path : "";
}

static void test_patterns(void **state) {
    (void)state;
    static const struct {
        const char *method, *path, *want;
        int known;
    } CASES[] = {
        {"GET", "/", "/", 1},
        {"GET", "/v1/stats", "/v1/stats", 1},
        {"GET", "/v1/gallery/items/3", "/v1/gallery/items/{index}", 1},
        {"GET", "/v1/gallery/items/abc", "/v1/gallery/items/{index}", 1}, /* the handler refuses it: 422 */
        {"GET", "/v1/gallery/items/3/image", "/v1/gallery/items/{index}/image", 1},
        {"HEAD", "/v1/gallery/items/3/image", "/v1/gallery/items/{index}/image", 1},
        {"GET", "/v1/gallery/items/", "", 0},       /* empty segment */
        {"GET", "/v1/gallery/items//image", "", 0}, /* empty segment */
        {"GET", "/v1/gallery/items/3/", "", 0},     /* trailing slash */
        {"GET", "/v1/gallery/items/3/image/x", "", 0},
        {"GET", "/v1/gallery/items", "", 0},
        {"GET", "/v1/galleryx", "", 0},
        {"POST", "/v1/gallery/items/3", "", 1}, /* 405 */
    };
    for (size_t i = 0; i < sizeof CASES / sizeof CASES[0]; i++) {
        char allow[96];
        int known = -1;
        const char *got = found(CASES[i].method, CASES[i].path, &known, allow, sizeof allow);
        if (strcmp(got, CASES[i].want) != 0 || known != CASES[i].known)
            fail_msg("%s %s: route \"%s\" known %d, want \"%s\" known %d", CASES[i].method, CASES[i].path, got, known,
                     CASES[i].want, CASES[i].known);
    }
    char allow[96];
    int known;
    assert_int_equal(srv_route_find("POST", "/v1/gallery/items/3/image", &known, allow, sizeof allow), -1);
    assert_int_equal(known, 1);
    assert_string_equal(allow, "GET, HEAD");
}

static void test_labels(void **state) {
    (void)state;
    /* metrics and /v1/stats label a patterned route by its pattern, not by the request path */
    int known;
    char allow[96];
    int r = srv_route_find("GET", "/v1/gallery/items/12345/image", &known, allow, sizeof allow);
    assert_string_equal(srv_route_label(r), "/v1/gallery/items/{index}/image");
    assert_string_equal(srv_route_label(-1), "other");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_labels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
