/* fuzz_json.c - fuzz target: the server's request JSON parser (server/json_parse.c), differentially against cJSON.
 * When both accept a text their trees must be equal (types, keys, strings, numbers bit for bit); every tree
 * srv_json_parse builds must print (cJSON) and parse back to itself (numbers within cJSON's printing
 * precision); refusals carry a reason and an offset in range. srv_json_parse_packed must accept and refuse
 * exactly what srv_json_parse does (same reason, same offset) and give the same tree, except that every
 * non-empty all-number array is one packed node holding the same numbers bit for bit. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "json_parse.h"
#include "../json_same.h"

#include <float.h>

/* Exact (bit for bit up to NaN), or, with loose, within cJSON's printing tolerance: it prints "%.15g" when
 * that reads back within DBL_EPSILON relative, so printed numbers may be off by about one unit in the last place. */
static int same_number(double a, double b, int loose) {
    if ((a == b && signbit(a) == signbit(b)) || (isnan(a) && isnan(b))) return 1;
    return loose && fabs(a - b) <= 2 * DBL_EPSILON * fmax(fabs(a), fabs(b));
}

/* 1 when a and b are equal trees; finite is cleared when a holds a non-finite number. */
static int same_tree(const cJSON *a, const cJSON *b, int loose, int *finite) {
    for (; a && b; a = a->next, b = b->next) {
        if ((a->type & 0xFF) != (b->type & 0xFF)) return 0;
        if ((a->string == NULL) != (b->string == NULL) || (a->string && strcmp(a->string, b->string) != 0)) return 0;
        if (cJSON_IsString(a) && strcmp(a->valuestring, b->valuestring) != 0) return 0;
        if (cJSON_IsNumber(a)) {
            if (!same_number(a->valuedouble, b->valuedouble, loose) || (!loose && a->valueint != b->valueint)) return 0;
            if (!isfinite(a->valuedouble)) *finite = 0;
        }
        if (!same_tree(a->child, b->child, loose, finite)) return 0;
    }
    return a == NULL && b == NULL;
}

/* The packed parse against the plain one: same acceptance, reason and offset, same tree but packed. */
static void check_packed(const char *buf, size_t size, const cJSON *plain, const char *why, size_t at) {
    char pwhy[96] = "";
    size_t pat = (size_t)-1;
    cJSON *packed = srv_json_parse_packed(buf, size, pwhy, sizeof pwhy, &pat);
    if ((packed == NULL) != (plain == NULL))
        fz_fail("srv_json_parse_packed", "accepts what srv_json_parse refuses or back");
    if (plain == NULL && (strcmp(pwhy, why) != 0 || pat != at)) {
        char m[300];
        snprintf(m, sizeof m, "refusal \"%s\" at %zu, srv_json_parse: \"%s\" at %zu", pwhy, pat, why, at);
        fz_fail("srv_json_parse_packed", m);
    }
    if (plain && !json_same_packed(packed, plain))
        fz_fail("srv_json_parse_packed", "tree differs from srv_json_parse's");
    cJSON_Delete(packed);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = (char *)fz_dup(data, size), why[96] = "";
    size_t at = (size_t)-1;
    cJSON *ours = srv_json_parse(buf, size, why, sizeof why, &at);
    check_packed(buf, size, ours, why, at);
    if (ours == NULL) {
        if (why[0] == '\0' || at > size)
            fz_fail("srv_json_parse", "refusal without a reason or with an offset past the end");
        free(buf);
        return 0;
    }
    /* cJSON itself as the reference parser: NUL-terminated copy, one value, nothing after it */
    char *z = malloc(size + 1);
    if (z == NULL) abort();
    memcpy(z, data, size);
    z[size] = '\0';
    const char *end = NULL;
    cJSON *ref = cJSON_ParseWithLengthOpts(z, size + 1, &end, 1);
    int finite = 1;
    if (ref && end == z + size && !same_tree(ours, ref, 0, &finite))
        fz_fail("srv_json_parse", "tree differs from cJSON's for the same text");
    /* print and parse back (cJSON prints non-finite numbers as null: skip those) */
    finite = 1;
    same_tree(ours, ours, 0, &finite);
    if (finite) {
        char *txt = cJSON_PrintUnformatted(ours);
        if (txt == NULL) abort();
        cJSON *back = srv_json_parse(txt, strlen(txt), why, sizeof why, &at);
        if (back == NULL) {
            char m[300];
            snprintf(m, sizeof m, "printed tree does not parse: %s at %zu of \"%.120s\"", why, at, txt);
            fz_fail("srv_json_parse", m);
        }
        if (!same_tree(ours, back, 1, &finite)) fz_fail("srv_json_parse", "printed tree parses to another tree");
        cJSON_Delete(back);
        free(txt);
    }
    cJSON_Delete(ref);
    cJSON_Delete(ours);
    free(z);
    free(buf);
    return 0;
}
