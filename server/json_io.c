/* json_io.c - cJSON <-> float vectors, labels, scalars and enums, with errors naming the field path. */
#include "json_io.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nettle/base64.h>

#include "img.h"
#include "json_parse.h"
#include "model.h"

const char *jio_type_name(const cJSON *item) {
    if (!item) return "nothing";
    if (cJSON_IsNumber(item)) return "number";
    if (cJSON_IsString(item)) return "string";
    if (cJSON_IsArray(item)) return "array";
    if (cJSON_IsObject(item)) return "object";
    if (cJSON_IsBool(item)) return "boolean";
    if (cJSON_IsNull(item)) return "null";
    return "invalid";
}

/* Copy at most cap-1 bytes of s, cut at a UTF-8 character boundary, so a
 * client's string quoted in a message stays valid UTF-8. */
static const char *clip(char *dst, size_t cap, const char *s) {
    size_t n = strlen(s);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80) n--; /* s[n] starts the first dropped char */
    }
    memcpy(dst, s, n);
    dst[n] = 0;
    return dst;
}

/* Present and not null. */
static const cJSON *member(const cJSON *obj, const char *name) {
    const cJSON *it = obj ? cJSON_GetObjectItemCaseSensitive(obj, name) : NULL;
    return (it && !cJSON_IsNull(it)) ? it : NULL;
}

int jio_check_fields(const cJSON *obj, const char *const *allowed, srv_reply *out) {
    const cJSON *it;
    cJSON_ArrayForEach(it, obj) {
        int ok = 0;
        for (size_t i = 0; allowed[i] && !ok; i++) ok = it->string && strcmp(it->string, allowed[i]) == 0;
        if (!ok) {
            char list[384] = "";
            size_t len = 0;
            for (size_t i = 0; allowed[i] && len < sizeof list - 1; i++)
                len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", allowed[i]);
            char name[101], field[101];
            clip(name, sizeof name, it->string ? it->string : "?");
            return srv_fail(out, 422, clip(field, sizeof field, it->string ? it->string : ""),
                            "%s: unknown field (expected one of: %s)", name, list);
        }
    }
    return 0;
}

/* Each byte's base64 value, -1 for a character outside the alphabet (an image body is decoded
 * per request: a table, not a chain of tests). */
static const signed char B64_VAL[256] = {
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 62, -1, -1, -1, 63, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
    -1, -1, -1, -1, -1, -1, -1, 0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
    22, 23, 24, 25, -1, -1, -1, -1, -1, -1, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44,
    45, 46, 47, 48, 49, 50, 51, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
    -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
};

static int b64_val(unsigned char c) {
    return B64_VAL[c];
}

/* Why c is refused, with the fix for the two encodings clients most often send by mistake:
 * line-wrapped base64 (coreutils `base64` wraps at 76 columns; RFC 4648 lets a decoder refuse
 * it) and the URL-safe alphabet. */
static const char *b64_bad_char(char c) {
    if (c == '\n' || c == '\r')
        return "invalid base64 character (a line break: line breaks are not allowed, encode without wrapping, "
               "e.g. `base64 -w0`)";
    if (c == '-' || c == '_')
        return "invalid base64 character (the URL-safe alphabet's '-' or '_': use the standard alphabet, '+' and "
               "'/')";
    return "invalid base64 character";
}

unsigned char *jio_b64_bytes(const char *s, size_t *n, const char **why) {
    size_t len = strlen(s), pad = 0, nbytes;
    unsigned char *out = NULL;
    *n = 0;
    while (len > 0 && s[len - 1] == '=' && pad < 2) len--, pad++;
    if (len == 0) {
        *why = "empty base64 string";
        goto fail;
    }
    for (size_t i = 0; i < len; i++)
        if (b64_val((unsigned char)s[i]) < 0) {
            *why = b64_bad_char(s[i]);
            goto fail;
        }
    if (len % 4 == 1) {
        *why = "truncated base64 (length is 1 mod 4)";
        goto fail;
    }
    if (pad && (len + pad) % 4 != 0) {
        *why = "wrong base64 padding";
        goto fail;
    }
    nbytes = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    out = malloc(nbytes ? nbytes : 1);
    if (!out) {
        *why = "out of memory";
        goto fail;
    }
    /* every character is valid (checked above); nettle decodes them, a tail of 2 or 3 making 1 or 2 bytes */
    struct base64_decode_ctx ctx;
    size_t got = 0;
    base64_decode_init(&ctx);
    if (!base64_decode_update(&ctx, &got, out, len, s) || got != nbytes) {
        *why = "invalid base64";
        goto fail;
    }
    *n = nbytes;
    return out;
fail:
    free(out);
    return NULL;
}

size_t jio_b64_encode_raw(char *dst, const unsigned char *src, size_t n) {
    base64_encode_raw(dst, n, src);
    dst[BASE64_ENCODE_RAW_LENGTH(n)] = 0;
    return BASE64_ENCODE_RAW_LENGTH(n);
}

float *jio_b64_decode(const char *s, size_t *n, const char **why) {
    size_t nbytes;
    *n = 0;
    unsigned char *bytes = jio_b64_bytes(s, &nbytes, why);
    if (!bytes) return NULL;
    if (nbytes % 4 != 0) {
        *why = "base64 data is not a whole number of float32 values (4 bytes each)";
        free(bytes);
        return NULL;
    }
    float *v = malloc(nbytes ? nbytes : 1);
    if (!v) {
        *why = "out of memory";
        free(bytes);
        return NULL;
    }
    for (size_t i = 0; i < nbytes / 4; i++) {
        uint32_t u = (uint32_t)bytes[4 * i] | (uint32_t)bytes[4 * i + 1] << 8 | (uint32_t)bytes[4 * i + 2] << 16 |
                     (uint32_t)bytes[4 * i + 3] << 24;
        memcpy(&v[i], &u, 4);
    }
    free(bytes);
    *n = nbytes / 4;
    return v;
}

char *jio_b64_encode(const float *v, size_t n) {
    size_t nbytes, outlen;
    unsigned char *bytes = NULL;
    char *s = NULL;
    if (!tr_size_mul(n, 4, &nbytes) || nbytes > (size_t)1 << 30) goto fail;
    outlen = (nbytes + 2) / 3 * 4;
    bytes = malloc(nbytes ? nbytes : 1);
    s = malloc(outlen + 1);
    if (!bytes || !s) goto fail;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        bytes[4 * i] = (unsigned char)u, bytes[4 * i + 1] = (unsigned char)(u >> 8);
        bytes[4 * i + 2] = (unsigned char)(u >> 16), bytes[4 * i + 3] = (unsigned char)(u >> 24);
    }
    jio_b64_encode_raw(s, bytes, nbytes);
    free(bytes);
    return s;
fail:
    free(bytes);
    free(s);
    return NULL;
}

/* A string vector that is not base64: most often text sent to an
 * OpenAI-style client, so say what a string must be. */
static int b64_fail(const char *path, const char *why, srv_reply *out) {
    return srv_fail(out, 422, path,
                    "%s: %s; a string vector must be base64 of little-endian float32 (text input is not supported: "
                    "this model embeds vectors of numbers)",
                    path, why);
}

/* The path errors of an image element name: "<path>.image", or "body" for a raw image body. */
static const char *image_path(const char *path, const jio_images *img, char *ip, size_t cap) {
    snprintf(ip, cap, "%s%s", img && img->raw_body ? "body" : path, img && img->raw_body ? "" : ".image");
    return ip;
}

/* An {"image": "<base64 PNG or JPEG>"} element: its key set, and whether the model takes images. */
static int image_check(const cJSON *el, const char *path, const jio_images *img, srv_reply *out) {
    const cJSON *b = cJSON_GetObjectItemCaseSensitive(el, "image");
    if (!b)
        return srv_fail(out, 422, path, "%s: expected a vector (array of numbers or base64 string) or {\"image\": ...}",
                        path);
    char ip[192];
    image_path(path, img, ip, sizeof ip);
    for (const cJSON *k = el->child; k; k = k->next)
        if (k != b) return srv_fail(out, 422, ip, "%s: an image element has only the key \"image\"", ip);
    if (img && img->embeddings)
        return srv_fail(out, 422, ip,
                        "%s: with \"embed\": false the elements are embeddings (vectors of numbers), and an image "
                        "cannot be one; send images with \"embed\": true (the default) to embed them",
                        ip);
    if (!img || !img->im)
        return srv_fail(out, 422, ip, "%s: this model takes no images (its file has no \"image\" metadata)", ip);
    if (!cJSON_IsString(b))
        return srv_fail(out, 422, ip, "%s: expected a base64 string of a PNG or JPEG file, got %s", ip,
                        jio_type_name(b));
    return 0;
}

/* Values per image for the model: channels x height x width. */
static size_t image_values(const jio_images *img) {
    return (size_t)img->im->channels * (size_t)img->im->height * (size_t)img->im->width;
}

/* Decode, convert and resize an image element that passed image_check into dst (the model's C x H x W inputs). */
static int image_fill(const cJSON *el, const char *path, const jio_images *img, float *dst, srv_reply *out) {
    const char *why = NULL;
    char ip[192];
    size_t len;
    tr_err err;
    int rc;
    image_path(path, img, ip, sizeof ip);
    unsigned char *bytes = jio_b64_bytes(cJSON_GetObjectItemCaseSensitive(el, "image")->valuestring, &len, &why);
    if (!bytes) return srv_fail(out, strcmp(why, "out of memory") ? 422 : 503, ip, "%s: %s", ip, why);
    tr_clearerr(&err);
    rc = img_to_input(bytes, len, img->im, img->max_pixels, dst, &err);
    free(bytes);
    if (rc) return srv_fail(out, rc == TR_ENOMEM ? 503 : 422, ip, "%s: %s", ip, err.msg);
    return 0;
}

/* Length (in float32 values) of one vector element, or an error. */
static int vec_len(const cJSON *el, const char *path, const jio_images *img, size_t *len, srv_reply *out) {
    if (cJSON_IsObject(el)) {
        int rc = image_check(el, path, img, out);
        if (rc) return rc;
        *len = image_values(img);
        return 0;
    }
    if (cJSON_IsArray(el)) {
        *len = srv_json_array_len(el);
        if (*len == 0) return srv_fail(out, 422, path, "%s: empty vector", path);
        return 0;
    }
    if (cJSON_IsString(el)) { /* decode once for the exact count (and the first error) */
        const char *why = NULL;
        float *v = jio_b64_decode(el->valuestring, len, &why);
        if (!v) return b64_fail(path, why, out);
        free(v);
        return 0;
    }
    return srv_fail(out, 422, path, "%s: expected a vector (array of numbers or base64 string), got %s", path,
                    jio_type_name(el));
}

/* Element j of a vector of numbers into *dst: the item x, or (x NULL) the
 * packed value d. */
static int vec_number(const cJSON *x, double d, const char *path, size_t j, float *dst, srv_reply *out) {
    if (x) d = cJSON_IsNumber(x) ? x->valuedouble : 0;
    if ((x && !cJSON_IsNumber(x)) || !tr_f32_ok(d)) {
        char ep[192];
        snprintf(ep, sizeof ep, "%s[%zu]", path, j);
        if (x && !cJSON_IsNumber(x))
            return srv_fail(out, 422, ep, "%s: expected a number, got %s", ep, jio_type_name(x));
        return srv_fail(out, 422, ep, "%s: number is out of the float32 range", ep);
    }
    *dst = (float)d;
    return 0;
}

/* Parse one vector element into dst[0..dim). */
static int vec_fill(const cJSON *el, const char *path, const jio_images *img, size_t dim, float *dst, srv_reply *out) {
    if (cJSON_IsObject(el)) {
        int rc = image_check(el, path, img, out);
        if (rc) return rc;
        size_t d = image_values(img);
        if (d != dim) return srv_fail(out, 422, path, "%s: an image gives %zu values, expected %zu", path, d, dim);
        return image_fill(el, path, img, dst, out);
    }
    if (cJSON_IsString(el)) {
        const char *why = NULL;
        size_t got;
        float *v = jio_b64_decode(el->valuestring, &got, &why);
        if (!v) return b64_fail(path, why, out);
        if (got != dim) {
            free(v);
            return srv_fail(out, 422, path, "%s: expected %zu numbers, got %zu (base64 float32)", path, dim, got);
        }
        for (size_t j = 0; j < dim; j++) {
            if (!isfinite(v[j])) {
                char ep[192];
                free(v);
                snprintf(ep, sizeof ep, "%s[%zu]", path, j);
                return srv_fail(out, 422, ep, "%s: not a finite number (base64 float32)", ep);
            }
        }
        memcpy(dst, v, dim * sizeof *dst);
        free(v);
        return 0;
    }
    /* the first dim elements are checked in order before the count */
    size_t j = 0, got;
    int rc;
    const double *pk = srv_json_packed(el, &got);
    if (pk) {
        for (; j < got && j < dim; j++)
            if ((rc = vec_number(NULL, pk[j], path, j, dst + j, out))) return rc;
    } else {
        const cJSON *x = el->child;
        for (; x && j < dim; x = x->next, j++)
            if ((rc = vec_number(x, 0, path, j, dst + j, out))) return rc;
        got = x == NULL && j == dim ? dim : srv_json_array_len(el);
    }
    if (got != dim) return srv_fail(out, 422, path, "%s: expected %zu numbers, got %zu", path, dim, got);
    return 0;
}

int jio_vectors(const cJSON *obj, const char *name, size_t max_n, const jio_images *img, tr_scratch *dst, size_t *n,
                size_t *dim, srv_reply *out) {
    const cJSON *it = member(obj, name);
    char path[160];
    size_t count, d, total, np;
    int single;
    if (!it) return srv_fail(out, 422, name, "%s: required field is missing", name);
    if (cJSON_IsString(it) || (cJSON_IsObject(it) && cJSON_GetObjectItemCaseSensitive(it, "image")))
        single = 1;
    else if (!cJSON_IsArray(it))
        return srv_fail(out, 422, name, "%s: expected an array of vectors, got %s", name, jio_type_name(it));
    else if (srv_json_array_len(it) == 0)
        return srv_fail(out, 422, name, "%s: empty array", name);
    else /* a packed array's elements are numbers */
        single =
            srv_json_packed(it, &np) || cJSON_IsNumber(it->child) || cJSON_IsBool(it->child) || cJSON_IsNull(it->child);
    count = single ? 1 : srv_json_array_len(it);
    if (count > max_n)
        return srv_fail(out, 422, name, "%s: %zu vectors, over the limit of %zu (--max-batch)", name, count, max_n);
    /* the first vector fixes the dimension unless the caller did */
    const cJSON *first = single ? it : it->child;
    if (single)
        snprintf(path, sizeof path, "%s", name);
    else
        snprintf(path, sizeof path, "%s[0]", name);
    int rc = vec_len(first, path, img, &d, out);
    if (rc) return rc;
    if (*dim == 0) {
        if (d == 0) return srv_fail(out, 422, path, "%s: empty vector", path);
        if (d > MDL_MAX_VECTOR)
            return srv_fail(out, 422, path, "%s: %zu values, over the limit of %d", path, d, MDL_MAX_VECTOR);
        *dim = d;
    }
    if (!tr_size_mul(count, *dim, &total) || total > (size_t)1 << 28)
        return srv_fail(out, 422, name, "%s: %zu x %zu values is too large", name, count, *dim);
    if (tr_scratch_reserve(dst, total) != TR_OK) return srv_fail(out, 503, name, "%s: out of memory", name);
    if (single) {
        *n = 1;
        return vec_fill(it, path, img, *dim, dst->p, out);
    }
    size_t i = 0;
    const cJSON *el;
    cJSON_ArrayForEach(el, it) {
        snprintf(path, sizeof path, "%s[%zu]", name, i);
        if (!cJSON_IsArray(el) && !cJSON_IsString(el) && !cJSON_IsObject(el)) return vec_len(el, path, img, &d, out);
        rc = vec_fill(el, path, img, *dim, dst->p + i * *dim, out);
        if (rc) return rc;
        i++;
    }
    *n = count;
    return 0;
}

int jio_bool(const cJSON *obj, const char *name, int *val, srv_reply *out) {
    const cJSON *it = member(obj, name);
    if (!it) return 0;
    if (!cJSON_IsBool(it))
        return srv_fail(out, 422, name, "%s: expected true or false, got %s", name, jio_type_name(it));
    *val = cJSON_IsTrue(it) ? 1 : 0;
    return 0;
}

int jio_number(const cJSON *obj, const char *name, double lo, double hi, int lo_open, double *val, srv_reply *out) {
    const cJSON *it = member(obj, name);
    if (!it) return 0;
    if (!cJSON_IsNumber(it)) return srv_fail(out, 422, name, "%s: expected a number, got %s", name, jio_type_name(it));
    double v = it->valuedouble;
    if (!isfinite(v)) return srv_fail(out, 422, name, "%s: not a finite number", name);
    if ((lo_open ? !(v > lo) : !(v >= lo)) || !(v <= hi))
        return srv_fail(out, 422, name, "%s: %g is out of range (must be %s %g and <= %g)", name, v,
                        lo_open ? ">" : ">=", lo, hi);
    *val = v;
    return 0;
}

int jio_size(const cJSON *obj, const char *name, size_t lo, size_t hi, size_t *val, srv_reply *out) {
    const cJSON *it = member(obj, name);
    if (!it) return 0;
    if (!cJSON_IsNumber(it))
        return srv_fail(out, 422, name, "%s: expected an integer, got %s", name, jio_type_name(it));
    double v = it->valuedouble;
    if (!isfinite(v) || v != floor(v)) return srv_fail(out, 422, name, "%s: expected an integer", name);
    if (v < (double)lo || v > (double)hi)
        return srv_fail(out, 422, name, "%s: %.0f is out of range (%zu..%zu)", name, v, lo, hi);
    *val = (size_t)v;
    return 0;
}

int jio_string(const cJSON *obj, const char *name, const char **val, srv_reply *out) {
    const cJSON *it = member(obj, name);
    if (!it) return 0;
    if (!cJSON_IsString(it)) return srv_fail(out, 422, name, "%s: expected a string, got %s", name, jio_type_name(it));
    *val = it->valuestring;
    return 0;
}

int jio_enum(const cJSON *obj, const char *name, const jio_choice *choices, int *val, srv_reply *out) {
    const char *s = NULL;
    int rc = jio_string(obj, name, &s, out);
    if (rc || !s) return rc;
    for (size_t i = 0; choices[i].name; i++)
        if (strcmp(s, choices[i].name) == 0) {
            *val = choices[i].value;
            return 0;
        }
    char list[256] = "";
    size_t len = 0;
    for (size_t i = 0; choices[i].name && len < sizeof list - 1; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i ? ", " : "", choices[i].name);
    char shown[65];
    return srv_fail(out, 422, name, "%s: unknown value \"%s\" (expected one of: %s)", name,
                    clip(shown, sizeof shown, s), list);
}

int jio_is_int53(double d) {
    return isfinite(d) && d == floor(d) && fabs(d) <= 9007199254740992.0;
}

/* Label i: the item x, or (x NULL) the packed value d. */
static int label_at(const cJSON *x, double d, const char *name, size_t i, int binary, int64_t *dst, srv_reply *out) {
    char path[160];
    if (x && binary && cJSON_IsBool(x)) {
        *dst = cJSON_IsTrue(x) ? 1 : 0;
        return 0;
    }
    snprintf(path, sizeof path, "%s[%zu]", name, i);
    if (x && !cJSON_IsNumber(x))
        return srv_fail(out, 422, path, "%s: expected an integer label, got %s", path, jio_type_name(x));
    if (x) d = x->valuedouble;
    if (!jio_is_int53(d)) return srv_fail(out, 422, path, "%s: expected an integer label", path);
    if (binary && d != 0 && d != 1)
        return srv_fail(out, 422, path, "%s: expected 1 (similar) or 0 (dissimilar), got %g", path, d);
    *dst = (int64_t)d;
    return 0;
}

int jio_labels(const cJSON *obj, const char *name, size_t n, int binary, int64_t **dst, srv_reply *out) {
    const cJSON *it = member(obj, name), *x;
    size_t i = 0, got;
    int64_t *v = NULL;
    int rc = 0;
    *dst = NULL;
    if (!it) return srv_fail(out, 422, name, "%s: required field is missing", name);
    if (!cJSON_IsArray(it))
        return srv_fail(out, 422, name, "%s: expected an array of integers, got %s", name, jio_type_name(it));
    if ((got = srv_json_array_len(it)) != n)
        return srv_fail(out, 422, name, "%s: expected %zu labels (one per vector), got %zu", name, n, got);
    v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return srv_fail(out, 503, name, "%s: out of memory", name);
    const double *pk = srv_json_packed(it, &got);
    if (pk)
        for (; i < n && !rc; i++) rc = label_at(NULL, pk[i], name, i, binary, v + i, out);
    else
        for (x = it->child; x && !rc; x = x->next, i++) rc = label_at(x, 0, name, i, binary, v + i, out);
    if (rc) {
        free(v);
        return rc;
    }
    *dst = v;
    return 0;
}

static double g_p10[110]; /* 10^(i-50) */
static pthread_once_t g_p10_once = PTHREAD_ONCE_INIT;

static void p10_init(void) {
    for (int i = 0; i < 110; i++) g_p10[i] = pow(10.0, i - 50);
}

/* "00" .. "99": two digits per table lookup */
static const char DIG2[201] = "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
                              "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
                              "8081828384858687888990919293949596979899";

size_t jio_format_float(char *o, float f) {
    char d[12];
    size_t n = 0;
    uint32_t u;
    memcpy(&u, &f, 4);
    unsigned biased = (u >> 23) & 0xff;
    if (biased == 0xff) return (size_t)(memcpy(o, "null", 4), 4);
    if (u >> 31) o[n++] = '-';
    if ((u & 0x7fffffffu) == 0) return o[n++] = '0', o[n] = 0, n;
    double x = fabs((double)f);
    pthread_once(&g_p10_once, p10_init);
    /* 9 significant digits round-trip a float32. m is within one unit of the
     * exact rounding: an error of 1e-8 relative at most, under half a float
     * ulp (>= 3e-8 relative), so the digits still name the same float. */
    /* e = floor(log10(x)): 2^(k-1) <= x < 2^k (k from the exponent bits;
     * frexp for subnormals) bounds it to floor((k-1)*log10(2)), which
     * ((k-1)*1233)>>12 equals for every k here, or one more; one exact
     * comparison decides. Finite floats give k-1 in [-149, 127], so
     * e + 1 + 50 stays in [5, 90]. */
    int k;
    if (biased)
        k = (int)biased - 126;
    else
        (void)frexp(x, &k);
    int e = ((k - 1) * 1233) >> 12;
    if (x >= g_p10[e + 1 + 50]) e++;
    uint64_t m = (uint64_t)(x * g_p10[8 - e + 50] + 0.5);
    if (m >= 1000000000u) m = (m + 5) / 10, e++;
    if (m < 100000000u) m *= 10, e--;
    uint32_t m32 = (uint32_t)m;
    d[8] = (char)('0' + m32 % 10);
    m32 /= 10;
    for (int i = 6; i >= 0; i -= 2) {
        memcpy(d + i, DIG2 + 2 * (m32 % 100), 2);
        m32 /= 100;
    }
    int nd = 9;
    while (nd > 1 && d[nd - 1] == '0') nd--;
    if (e >= -4 && e < 9) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++) o[n++] = i < nd ? d[i] : '0';
            if (nd > e + 1) {
                o[n++] = '.';
                for (int i = e + 1; i < nd; i++) o[n++] = d[i];
            }
        } else {
            o[n++] = '0', o[n++] = '.';
            for (int i = -1; i > e; i--) o[n++] = '0';
            for (int i = 0; i < nd; i++) o[n++] = d[i];
        }
    } else {
        o[n++] = d[0];
        if (nd > 1) {
            o[n++] = '.';
            for (int i = 1; i < nd; i++) o[n++] = d[i];
        }
        n += (size_t)sprintf(o + n, "e%d", e);
    }
    o[n] = 0;
    return n;
}

cJSON *jio_floats(const float *v, size_t n) {
    /* one pre-rendered node instead of n, in 9 significant digits */
    size_t cap;
    char *buf;
    if (!tr_size_mul(n, 18, &cap) || !tr_size_add(cap, 4, &cap) || !(buf = malloc(cap))) return NULL;
    size_t pos = 0;
    buf[pos++] = '[';
    for (size_t i = 0; i < n; i++) {
        if (i) buf[pos++] = ',';
        pos += jio_format_float(buf + pos, v[i]);
    }
    buf[pos++] = ']';
    buf[pos] = 0;
    cJSON *a = cJSON_CreateRaw(buf);
    free(buf);
    return a;
}

cJSON *jio_doubles(const double *v, size_t n) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < n; i++) {
        cJSON *x = cJSON_CreateNumber(v[i]);
        if (!x) {
            cJSON_Delete(a);
            return NULL;
        }
        cJSON_AddItemToArray(a, x);
    }
    return a;
}
