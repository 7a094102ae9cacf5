/* json_parse.h - strict, fast JSON text -> cJSON tree for request bodies. */
#ifndef SRV_JSON_PARSE_H
#define SRV_JSON_PARSE_H

#include <stddef.h>

#include <cjson/cJSON.h>

#define SRV_JSON_MAX_DEPTH 64

/* Parse exactly buf[0..len) (RFC 8259: one value, surrounding whitespace
 * only; strings must be valid UTF-8; nesting at most SRV_JSON_MAX_DEPTH).
 * Numbers are converted exactly (correctly rounded doubles; an integer
 * mantissa with a small power of ten takes a fast path, the rest strtod),
 * which is what makes embedding requests cheap to parse. Returns the tree
 * (cJSON_Delete it) or NULL with the problem in why and its byte offset in
 * *at. Numbers out of the double range parse as +-inf (callers reject
 * non-finite values with a field path). */
cJSON *srv_json_parse(const char *buf, size_t len, char *why, size_t why_cap, size_t *at);

/* Type bit of a packed array (above cJSON's own bits: cJSON_IsArray tests
 * type & 0xFF, so a packed node still is an array to cJSON). */
#define SRV_JSON_PACKED (1 << 12)

/* srv_json_parse, except that every array of one or more elements that are
 * all numbers becomes ONE node: type cJSON_Array | SRV_JSON_PACKED, no
 * children, the element count in valuedouble (exact below 2^53), the values
 * as doubles (the same ones srv_json_parse would give) in a buffer on
 * valuestring, allocated through the cJSON hooks so cJSON_Delete frees it.
 * Accepts and refuses exactly the texts srv_json_parse does, with the same
 * why and offset. Such a tree is for reading with the accessors below only:
 * cJSON_GetArraySize and cJSON_ArrayForEach see a packed array as empty,
 * cJSON_Print prints it as [], and cJSON_Duplicate must not be used on it.
 * tripletd parses request bodies this way (dispatch.c). */
cJSON *srv_json_parse_packed(const char *buf, size_t len, char *why, size_t why_cap, size_t *at);

/* The values of a packed array and their count in *n, or NULL (*n = 0)
 * when a is not a packed array. */
const double *srv_json_packed(const cJSON *a, size_t *n);
/* Number of elements of an array, packed or not (0 for a non-array). */
size_t srv_json_array_len(const cJSON *a);

#endif
