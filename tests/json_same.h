/* json_same.h - shared by tests/unit and tests/fuzz (header only): is a
 * srv_json_parse_packed tree the srv_json_parse tree of the same text? */
#ifndef TESTS_JSON_SAME_H
#define TESTS_JSON_SAME_H

#include <string.h>

#include <cjson/cJSON.h>

#include "json_parse.h"

/* 1 when packed is plain with exactly its non-empty all-number arrays
 * packed, the same doubles bit for bit, everything else equal. */
static int json_same_packed(const cJSON *packed, const cJSON *plain) {
    for (; packed && plain; packed = packed->next, plain = plain->next) {
        size_t n = 0, i = 0;
        const double *v = srv_json_packed(packed, &n);
        const cJSON *x;
        int all_numbers = cJSON_IsArray(plain) && plain->child != NULL;
        cJSON_ArrayForEach(x, plain) all_numbers &= cJSON_IsNumber(x);
        if ((v != NULL) != all_numbers || (packed->type & 0xFF) != (plain->type & 0xFF) ||
            (packed->type & ~(0xFF | SRV_JSON_PACKED)) != 0)
            return 0;
        if ((packed->string == NULL) != (plain->string == NULL) ||
            (packed->string && strcmp(packed->string, plain->string) != 0))
            return 0;
        if (v) {
            if (packed->child || n != srv_json_array_len(plain) || n != (size_t)cJSON_GetArraySize(plain)) return 0;
            cJSON_ArrayForEach(x, plain) if (memcmp(&v[i++], &x->valuedouble, sizeof(double)) != 0) return 0;
            continue;
        }
        if (cJSON_IsString(packed) && strcmp(packed->valuestring, plain->valuestring) != 0) return 0;
        if (cJSON_IsNumber(packed) && memcmp(&packed->valuedouble, &plain->valuedouble, sizeof(double)) != 0) return 0;
        if (!json_same_packed(packed->child, plain->child)) return 0;
    }
    return packed == NULL && plain == NULL;
}

#endif
