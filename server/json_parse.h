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

#endif
