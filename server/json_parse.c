/* json_parse.c - strict, fast JSON text -> cJSON tree for request bodies. */
#include "json_parse.h"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gallery.h" /* gal_utf8_valid */

typedef struct {
    const char *s, *end;
    const char *err_at;
    const char *why;
    int packed;   /* srv_json_parse_packed */
    double *vals; /* its scratch: the numbers of the array being packed */
    size_t cap;
} jp;

static int fail(jp *p, const char *at, const char *why) {
    if (!p->why) p->why = why, p->err_at = at;
    return -1;
}

static void skip_ws(jp *p, const char **c) {
    while (*c < p->end && (**c == ' ' || **c == '\t' || **c == '\n' || **c == '\r')) (*c)++;
}

static const double POW10[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* JSON number at *c. Exact: with at most 19 significant digits whose value
 * fits in 2^53 and a decimal exponent within +-22, m * 10^e (or m / 10^-e)
 * is one correctly rounded IEEE operation on exact operands (Clinger's fast
 * path); anything else goes to strtod. Inlined into both callers (the
 * tree and the packed array): it is the hot loop of an embedding body. */
static inline __attribute__((always_inline)) int parse_number(jp *p, const char **c, double *out) {
    const char *q = *c, *start = *c;
    uint64_t m = 0;
    int digits = 0, exp10 = 0, neg = 0, exact = 1;
    if (q < p->end && *q == '-') neg = 1, q++;
    if (q >= p->end || *q < '0' || *q > '9') return fail(p, q, "expected a digit");
    if (*q == '0') {
        q++;
        if (q < p->end && *q >= '0' && *q <= '9') return fail(p, q, "leading zero in a number");
    } else {
        for (; q < p->end && *q >= '0' && *q <= '9'; q++) {
            if (digits < 19)
                m = m * 10 + (uint64_t)(*q - '0'), digits += m != 0;
            else
                exact = 0, exp10++;
        }
    }
    if (q < p->end && *q == '.') {
        q++;
        if (q >= p->end || *q < '0' || *q > '9') return fail(p, q, "expected a digit after the decimal point");
        for (; q < p->end && *q >= '0' && *q <= '9'; q++) {
            if (digits < 19)
                m = m * 10 + (uint64_t)(*q - '0'), digits += m != 0, exp10--;
            else if (*q != '0')
                exact = 0;
        }
    }
    if (q < p->end && (*q == 'e' || *q == 'E')) {
        int eneg = 0, e = 0;
        q++;
        if (q < p->end && (*q == '+' || *q == '-')) eneg = *q == '-', q++;
        if (q >= p->end || *q < '0' || *q > '9') return fail(p, q, "expected a digit in the exponent");
        for (; q < p->end && *q >= '0' && *q <= '9'; q++)
            if (e < 100000) e = e * 10 + (*q - '0');
        exp10 += eneg ? -e : e;
    }
    *c = q;
    if (exact && m <= ((uint64_t)1 << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double)m;
        v = exp10 < 0 ? v / POW10[-exp10] : v * POW10[exp10];
        *out = neg ? -v : v;
        return 0;
    }
    char buf[64], *tmp = buf, *e = NULL;
    size_t n = (size_t)(q - start);
    if (n >= sizeof buf && !(tmp = malloc(n + 1))) return fail(p, start, "out of memory");
    memcpy(tmp, start, n);
    tmp[n] = 0;
    *out = strtod(tmp, &e); /* overflow gives +-HUGE_VAL (inf), underflow 0 */
    if (tmp != buf) free(tmp);
    return 0;
}

static int hex4(const char *q, unsigned *u) {
    *u = 0;
    for (int i = 0; i < 4; i++) {
        char h = q[i];
        unsigned d = h >= '0' && h <= '9'   ? (unsigned)(h - '0')
                     : h >= 'a' && h <= 'f' ? (unsigned)(h - 'a' + 10)
                     : h >= 'A' && h <= 'F' ? (unsigned)(h - 'A' + 10)
                                            : 16u;
        if (d > 15) return -1;
        *u = *u * 16 + d;
    }
    return 0;
}

/* String at *c (after the opening quote) into a malloc'd NUL-terminated copy. */
/* u (not 0, not a surrogate) as UTF-8 into enc; the byte count. */
static size_t utf8_put(unsigned u, char *enc) {
    if (u < 0x80) {
        enc[0] = (char)u;
        return 1;
    }
    if (u < 0x800) {
        enc[0] = (char)(0xC0 | u >> 6), enc[1] = (char)(0x80 | (u & 0x3F));
        return 2;
    }
    if (u < 0x10000) {
        enc[0] = (char)(0xE0 | u >> 12), enc[1] = (char)(0x80 | ((u >> 6) & 0x3F)), enc[2] = (char)(0x80 | (u & 0x3F));
        return 3;
    }
    enc[0] = (char)(0xF0 | u >> 18), enc[1] = (char)(0x80 | ((u >> 12) & 0x3F)),
    enc[2] = (char)(0x80 | ((u >> 6) & 0x3F)), enc[3] = (char)(0x80 | (u & 0x3F));
    return 4;
}

/* The \u escape at *q (after "\u"), a surrogate pair included, as UTF-8
 * into enc; *q moves past it. The byte count, or 0 after fail(). */
static size_t unescape_u(jp *p, const char **q, char *enc) {
    unsigned u, lo;
    if (p->end - *q < 4 || hex4(*q, &u)) {
        fail(p, *q, "bad \\u escape");
        return 0;
    }
    *q += 4;
    if (u >= 0xD800 && u <= 0xDBFF) {
        const char *r = *q;
        if (p->end - r < 6 || r[0] != '\\' || r[1] != 'u' || hex4(r + 2, &lo) || lo < 0xDC00 || lo > 0xDFFF) {
            fail(p, r, "unpaired UTF-16 surrogate in a \\u escape");
            return 0;
        }
        *q += 6;
        u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    } else if (u >= 0xDC00 && u <= 0xDFFF) {
        fail(p, *q, "unpaired UTF-16 surrogate in a \\u escape");
        return 0;
    }
    if (u == 0) {
        fail(p, *q, "NUL character in a string");
        return 0;
    }
    return utf8_put(u, enc);
}

/* The escape at *q (a backslash with at least one byte after it) into enc;
 * *q moves past it. The byte count, or 0 after fail(). */
static size_t unescape(jp *p, const char **q, char *enc) {
    static const char FROM[] = "\"\\/bfnrt", TO[] = "\"\\/\b\f\n\r\t";
    char e = (*q)[1];
    *q += 2;
    if (e == 'u') return unescape_u(p, q, enc);
    const char *k = e ? strchr(FROM, e) : NULL;
    if (k == NULL) {
        fail(p, *q - 1, "bad escape in a string");
        return 0;
    }
    enc[0] = TO[k - FROM];
    return 1;
}

static char *parse_string(jp *p, const char **c) {
    const char *q = *c, *run;
    size_t cap = 16, len = 0;
    char *o = NULL;
    for (run = q; run < p->end && *run != '"' && *run != '\\'; run++) {
        if ((unsigned char)*run < 0x20) {
            fail(p, run, "control character in a string");
            return NULL;
        }
    }
    cap = (size_t)(run - q) + 16;
    if (!(o = malloc(cap))) goto oom;
    while (q < p->end && *q != '"') {
        unsigned char ch = (unsigned char)*q;
        char enc[4];
        size_t n = 1;
        if (ch < 0x20) {
            fail(p, q, "control character in a string");
            goto bad;
        }
        if (ch != '\\') {
            enc[0] = (char)ch;
            q++;
        } else if (q + 1 >= p->end) {
            q = p->end; /* a backslash as the last byte: unterminated */
            break;
        } else if ((n = unescape(p, &q, enc)) == 0)
            goto bad;
        if (len + n + 1 > cap) {
            char *t = realloc(o, cap * 2 + n);
            if (!t) goto oom;
            o = t;
            cap = cap * 2 + n;
        }
        memcpy(o + len, enc, n);
        len += n;
    }
    if (q >= p->end) {
        fail(p, q, "unterminated string");
        goto bad;
    }
    o[len] = 0;
    size_t bad_at = 0;
    if (!gal_utf8_valid((const uint8_t *)o, len, &bad_at)) {
        fail(p, *c, "invalid UTF-8 in a string");
        goto bad;
    }
    *c = q + 1;
    return o;
oom:
    fail(p, q, "out of memory");
bad:
    free(o);
    return NULL;
}

static cJSON *parse_value(jp *p, const char **c, int depth);

/* Objects up to this many members are checked for a repeated key one key at
 * a time; larger ones record (key, offset) pairs and sort them when they
 * close, because a search per key made one 8 MiB body of distinct keys cost
 * minutes of CPU. */
#define JP_LINEAR_KEYS 32

typedef struct {
    const char *key;
    size_t at;
} jp_key;

static int by_key(const void *a, const void *b) {
    const jp_key *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : (x->at > y->at) - (x->at < y->at);
}

/* Record the newest member item of obj (at offset at); on the first call
 * also the members before it (offset 0: the linear check saw them). */
static int note_key(jp *p, const cJSON *obj, const cJSON *item, size_t at, jp_key **keys, size_t *n, size_t *cap) {
    const cJSON *from = *cap ? item : obj->child;
    for (const cJSON *it = from; it; it = it->next) {
        if (*n == *cap) {
            size_t nc = *cap ? 2 * *cap : 2 * JP_LINEAR_KEYS;
            jp_key *k = realloc(*keys, nc * sizeof *k);
            if (!k) return fail(p, p->s + at, "out of memory");
            *keys = k;
            *cap = nc;
        }
        (*keys)[(*n)++] = (jp_key){it->string, it == item ? at : 0};
    }
    return 0;
}

/* The offset of the first key that repeats an earlier one, or 0 when none does. */
static size_t repeated_key(jp_key *keys, size_t n) {
    size_t first = 0;
    qsort(keys, n, sizeof *keys, by_key);
    for (size_t i = 1; i < n; i++)
        if (strcmp(keys[i].key, keys[i - 1].key) == 0 && (first == 0 || keys[i].at < first)) first = keys[i].at;
    return first;
}

static cJSON *parse_container(jp *p, const char **c, int depth, int obj) {
    cJSON *v = obj ? cJSON_CreateObject() : cJSON_CreateArray();
    const char close = obj ? '}' : ']';
    jp_key *keys = NULL;
    size_t n_members = 0, n_keys = 0, keys_cap = 0;
    if (!v) {
        fail(p, *c, "out of memory");
        return NULL;
    }
    if (depth >= SRV_JSON_MAX_DEPTH) {
        fail(p, *c, "nesting deeper than 64 levels");
        goto bad;
    }
    (*c)++;
    skip_ws(p, c);
    if (*c < p->end && **c == close) {
        (*c)++;
        return v;
    }
    for (;;) {
        char *key = NULL;
        skip_ws(p, c);
        const char *key_at = *c;
        if (obj) {
            if (*c >= p->end || **c != '"') {
                fail(p, *c, "expected a string key");
                goto bad;
            }
            (*c)++;
            if (!(key = parse_string(p, c))) goto bad;
            skip_ws(p, c);
            if (*c >= p->end || **c != ':') {
                free(key);
                fail(p, *c, "expected ':'");
                goto bad;
            }
            (*c)++;
            skip_ws(p, c);
        }
        cJSON *item = parse_value(p, c, depth + 1);
        if (!item) {
            free(key);
            goto bad;
        }
        if (obj) {
            if (n_members < JP_LINEAR_KEYS && cJSON_GetObjectItemCaseSensitive(v, key)) {
                free(key);
                cJSON_Delete(item);
                fail(p, key_at, "duplicate key in an object");
                goto bad;
            }
            cJSON_AddItemToObject(v, key, item);
            free(key);
            if (++n_members > JP_LINEAR_KEYS &&
                note_key(p, v, item, (size_t)(key_at - p->s), &keys, &n_keys, &keys_cap))
                goto bad;
        } else
            cJSON_AddItemToArray(v, item);
        skip_ws(p, c);
        if (*c < p->end && **c == ',') {
            (*c)++;
            continue;
        }
        if (*c < p->end && **c == close) {
            size_t dup = n_keys ? repeated_key(keys, n_keys) : 0;
            if (dup) {
                fail(p, p->s + dup, "duplicate key in an object");
                goto bad;
            }
            (*c)++;
            free(keys);
            return v;
        }
        fail(p, *c, obj ? "expected ',' or '}'" : "expected ',' or ']'");
        goto bad;
    }
bad:
    free(keys);
    cJSON_Delete(v);
    return NULL;
}

/* The common number of an embedding body, [-]digits[.digits] with at most
 * 15 digits in all and no exponent: m < 10^15 and 10^frac are exact
 * doubles, so one division rounds correctly (the value parse_number gives).
 * Returns 0 for anything else, which parse_number then takes (and refuses
 * with its message when malformed). */
static inline int short_number(const char *q, const char *end, double *out, const char **next) {
    const char *s = q, *digits;
    uint64_t m = 0;
    unsigned d;
    int neg = s < end && *s == '-';
    s += neg;
    digits = s;
    if (s >= end || (d = (unsigned)(*s - '0')) > 9) return 0;
    if (d == 0) {
        if (++s < end && (unsigned)(*s - '0') <= 9) return 0; /* leading zero */
    } else
        for (; s < end && (d = (unsigned)(*s - '0')) <= 9; s++) m = m * 10 + d;
    ptrdiff_t nd = s - digits, frac = 0;
    if (nd > 15) return 0;
    if (s < end && *s == '.') {
        const char *f = ++s;
        for (; s < end && (d = (unsigned)(*s - '0')) <= 9 && s - f < 16; s++) m = m * 10 + d;
        frac = s - f;
        if (frac == 0 || nd + frac > 15) return 0;
    }
    if (s < end && (*s == 'e' || *s == 'E' || (unsigned)(*s - '0') <= 9)) return 0;
    double v = frac ? (double)m / POW10[frac] : (double)m;
    *out = neg ? -v : v;
    *next = s;
    return 1;
}

/* The array at *c ('[') as one packed node when its elements are all
 * numbers (at least one), with *c moved past it. Otherwise NULL, *c and the
 * recorded error untouched, and the caller parses it as a tree (which finds
 * the same errors at the same offsets); or NULL with p->why set when out of
 * memory. At most one extra pass over a mixed array's leading numbers. */
static cJSON *parse_packed(jp *p, const char **c) {
    const char *q = *c + 1, *why = p->why, *err_at = p->err_at;
    size_t n = 0;
    for (;;) {
        skip_ws(p, &q);
        if (q >= p->end || (*q != '-' && (*q < '0' || *q > '9'))) return NULL;
        if (n == p->cap) {
            size_t nc = p->cap ? 2 * p->cap : 1024;
            double *t = realloc(p->vals, nc * sizeof *t);
            if (!t) return NULL;
            p->vals = t, p->cap = nc;
        }
        if (!short_number(q, p->end, &p->vals[n], &q) && parse_number(p, &q, &p->vals[n])) {
            p->why = why, p->err_at = err_at;
            return NULL;
        }
        n++;
        skip_ws(p, &q);
        if (q < p->end && *q == ']') break;
        if (q >= p->end || *q != ',') return NULL;
        q++;
    }
    /* n < len / 2: the byte size cannot overflow */
    cJSON *v = cJSON_CreateArray();
    double *vals = v ? cJSON_malloc(n * sizeof *vals) : NULL;
    if (!vals) {
        cJSON_Delete(v);
        fail(p, *c, "out of memory");
        return NULL;
    }
    memcpy(vals, p->vals, n * sizeof *vals);
    v->type |= SRV_JSON_PACKED;
    v->valuestring = (char *)vals;
    v->valuedouble = (double)n;
    *c = q + 1;
    return v;
}

static int literal(jp *p, const char **c, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(p->end - *c) < n || memcmp(*c, word, n) != 0) return fail(p, *c, "invalid literal");
    *c += n;
    return 0;
}

static cJSON *parse_value(jp *p, const char **c, int depth) {
    cJSON *v = NULL;
    if (*c >= p->end) {
        fail(p, *c, "unexpected end of input");
        return NULL;
    }
    switch (**c) {
    case '{':
        return parse_container(p, c, depth, 1);
    case '[':
        if (p->packed && depth < SRV_JSON_MAX_DEPTH && ((v = parse_packed(p, c)) || p->why)) return v;
        return parse_container(p, c, depth, 0);
    case '"': {
        (*c)++;
        char *s = parse_string(p, c);
        if (!s) return NULL;
        v = cJSON_CreateString(s);
        free(s);
        break;
    }
    case 't':
        v = literal(p, c, "true") ? NULL : cJSON_CreateTrue();
        break;
    case 'f':
        v = literal(p, c, "false") ? NULL : cJSON_CreateFalse();
        break;
    case 'n':
        v = literal(p, c, "null") ? NULL : cJSON_CreateNull();
        break;
    default: {
        double d;
        if (**c != '-' && (**c < '0' || **c > '9')) {
            fail(p, *c, "unexpected character");
            return NULL;
        }
        if (parse_number(p, c, &d)) return NULL;
        v = cJSON_CreateNumber(d);
        break;
    }
    }
    if (!v) fail(p, *c, "out of memory");
    return v;
}

static cJSON *parse(const char *buf, size_t len, int packed, char *why, size_t why_cap, size_t *at) {
    jp p = {buf, buf + len, NULL, NULL, packed, NULL, 0};
    const char *c = buf;
    skip_ws(&p, &c);
    cJSON *v = parse_value(&p, &c, 0);
    if (v) {
        skip_ws(&p, &c);
        if (c != p.end) {
            fail(&p, c, "unexpected data after the JSON value");
            cJSON_Delete(v);
            v = NULL;
        }
    }
    if (!v) {
        if (!p.why) p.why = "invalid JSON", p.err_at = c;
        if (why_cap) snprintf(why, why_cap, "%s", p.why);
        if (at) *at = (size_t)(p.err_at - buf);
    }
    free(p.vals);
    return v;
}

cJSON *srv_json_parse(const char *buf, size_t len, char *why, size_t why_cap, size_t *at) {
    return parse(buf, len, 0, why, why_cap, at);
}

cJSON *srv_json_parse_packed(const char *buf, size_t len, char *why, size_t why_cap, size_t *at) {
    return parse(buf, len, 1, why, why_cap, at);
}

const double *srv_json_packed(const cJSON *a, size_t *n) {
    if (!a || (a->type & (0xFF | SRV_JSON_PACKED)) != (cJSON_Array | SRV_JSON_PACKED)) {
        *n = 0;
        return NULL;
    }
    *n = (size_t)a->valuedouble;
    return (const double *)(const void *)a->valuestring;
}

size_t srv_json_array_len(const cJSON *a) {
    size_t n;
    if (srv_json_packed(a, &n)) return n;
    return cJSON_IsArray(a) ? (size_t)cJSON_GetArraySize(a) : 0;
}
