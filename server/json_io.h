/* json_io.h - cJSON <-> float vectors, labels, scalars and enums, with errors naming the field path. */
#ifndef JSON_IO_H
#define JSON_IO_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "errors.h"
#include "model.h"
#include "tr_err.h"

/* Every parser returns 0 on success, else the HTTP status after filling an
 * error in out (422 invalid_input, naming the field path like "anchors[3]").
 * A JSON null counts as absent for optional fields. Trees may come from
 * srv_json_parse_packed (json_parse.h): packed number arrays give the same
 * results and messages as the same arrays as cJSON trees. */

/* Name of a cJSON item's type for messages ("string", "number", ...). */
const char *jio_type_name(const cJSON *item);

/* Reject members of obj not in allowed (NULL-terminated). */
int jio_check_fields(const cJSON *obj, const char *const *allowed, srv_reply *out);

/* Images a vector field may hold as {"image": "<base64 PNG or JPEG>"}
 * elements: the model's `image` metadata (NULL: none) and the pixel limit;
 * embeddings: the elements are embeddings ("embed": false), which no image
 * can be; raw_body: the element is a raw image body, its errors name "body". */
typedef struct {
    const mdl_image *im;
    size_t max_pixels;
    int embeddings;
    int raw_body;
} jio_images;

/* Parse obj[name] as a batch of vectors: an array of vectors, or a single
 * vector (batch of one); a vector is an array of numbers, a base64 string
 * of little-endian float32, or (img set) an {"image": ...} element decoded
 * to the model's pixels (proto/images.md). On entry *dim is the required
 * dimension (0 = any, then set from the first vector and all must agree).
 * At most max_n vectors. Fills dst (n x dim floats, row-major) and *n. */
int jio_vectors(const cJSON *obj, const char *name, size_t max_n, const jio_images *img, tr_scratch *dst, size_t *n,
                size_t *dim, srv_reply *out);

/* Decode base64 (standard alphabet, padding optional) of float32 values
 * into a malloc'd array; returns NULL and sets why (static text) on error. */
float *jio_b64_decode(const char *s, size_t *n, const char **why);
/* Base64 (standard alphabet, padding optional) to *n bytes; NULL and *why on failure. Free the result. */
unsigned char *jio_b64_bytes(const char *s, size_t *n, const char **why);
/* Base64 of n float32 values (little-endian), malloc'd NUL-terminated. */
char *jio_b64_encode(const float *v, size_t n);
/* Standard padded base64 of n bytes into dst, which holds (n + 2) / 3 * 4 + 1
 * characters; NUL-terminated; returns the length without the NUL. */
size_t jio_b64_encode_raw(char *dst, const unsigned char *src, size_t n);

/* Optional scalars: *val holds the default on entry and is replaced when
 * present. jio_number accepts lo <= x <= hi (x > lo when lo_open). */
int jio_bool(const cJSON *obj, const char *name, int *val, srv_reply *out);
int jio_number(const cJSON *obj, const char *name, double lo, double hi, int lo_open, double *val, srv_reply *out);
int jio_size(const cJSON *obj, const char *name, size_t lo, size_t hi, size_t *val, srv_reply *out);
/* A string that must be one of the names of choices (ended by a NULL
 * name): *val receives that choice's value; it keeps the default when the
 * field is absent. */
typedef struct {
    const char *name;
    int value;
} jio_choice;
int jio_enum(const cJSON *obj, const char *name, const jio_choice *choices, int *val, srv_reply *out);
/* Optional string of any value. */
int jio_string(const cJSON *obj, const char *name, const char **val, srv_reply *out);

/* 1 when d is an integer that a double holds exactly (|d| <= 2^53): what
 * labels and other integer fields accept. */
int jio_is_int53(double d);

/* obj[name] as n integer labels (required). binary: only 0/1 (or
 * true/false). *dst is malloc'd. */
int jio_labels(const cJSON *obj, const char *name, size_t n, int binary, int64_t **dst, srv_reply *out);

/* Number arrays for replies (NULL on allocation failure). jio_floats is one
 * raw (pre-rendered) node: append it, do not walk it. */
cJSON *jio_floats(const float *v, size_t n);
/* Write f as a JSON number with 9 significant digits (which round-trip a
 * float32; "null" if not finite) into o (>= 18 bytes); returns the length. */
size_t jio_format_float(char *o, float f);
cJSON *jio_doubles(const double *v, size_t n);

#endif
