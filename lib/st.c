/* st.c - safetensors reader and writer: validate the whole header before trusting a byte. */
#include "st.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "fmap.h"

struct st_file {
    uint8_t *owned;     /* file image when st_open read it */
    fmap *fm;           /* file image when st_map mapped it */
    const uint8_t *buf; /* whole image */
    size_t len;
    const uint8_t *data; /* data section */
    size_t data_len;
    st_tensor *t; /* header order */
    size_t n;
    char **meta; /* key, value, key, value ... */
    size_t n_meta;
};

static const struct {
    const char *name;
    size_t size;
} dtypes[ST_DTYPE_COUNT] = {
    [ST_F32] = {"F32", 4},   [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_F64] = {"F64", 8},
    [ST_I32] = {"I32", 4},   [ST_I64] = {"I64", 8}, [ST_U8] = {"U8", 1},     [ST_I8] = {"I8", 1},
    [ST_BOOL] = {"BOOL", 1}, [ST_I16] = {"I16", 2}, [ST_U16] = {"U16", 2},   [ST_U32] = {"U32", 4},
    [ST_U64] = {"U64", 8},
};

const char *st_dtype_name(st_dtype d) {
    return (unsigned)d < ST_DTYPE_COUNT ? dtypes[d].name : "?";
}
size_t st_dtype_size(st_dtype d) {
    return (unsigned)d < ST_DTYPE_COUNT ? dtypes[d].size : 0;
}

int st_dtype_parse(const char *s, st_dtype *out) {
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (strcmp(s, dtypes[i].name) == 0) {
            *out = (st_dtype)i;
            return 0;
        }
    return -1;
}

static uint64_t rd_le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* A JSON number that is an exact non-negative integer below 2^53. */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return 0;
    double d = j->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || floor(d) != d) return 0;
    *out = (uint64_t)d;
    return 1;
}

static void free_parts(st_file *f) {
    for (size_t i = 0; i < f->n; i++) free(f->t[i].name);
    free(f->t);
    for (size_t i = 0; i < 2 * f->n_meta; i++) free(f->meta[i]);
    free(f->meta);
}

void st_close(st_file *f) {
    if (f == NULL) return;
    free_parts(f);
    free(f->owned);
    fmap_close(f->fm);
    free(f);
}

static int by_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int parse_meta(st_file *f, const cJSON *m, tr_err *err) {
    if (!cJSON_IsObject(m)) return tr_seterr(err, TR_EFORMAT, "__metadata__", "__metadata__: expected an object");
    size_t n = (size_t)cJSON_GetArraySize(m);
    f->meta = calloc(2 * n + 1, sizeof(char *));
    if (f->meta == NULL) return tr_seterr(err, TR_ENOMEM, "__metadata__", "__metadata__: out of memory");
    for (const cJSON *e = m->child; e; e = e->next) {
        if (!cJSON_IsString(e))
            return tr_seterr(err, TR_EFORMAT, "__metadata__", "__metadata__ \"%s\": value must be a string", e->string);
        f->meta[2 * f->n_meta] = strdup(e->string);
        f->meta[2 * f->n_meta + 1] = strdup(e->valuestring);
        f->n_meta++;
        if (!f->meta[2 * f->n_meta - 2] || !f->meta[2 * f->n_meta - 1])
            return tr_seterr(err, TR_ENOMEM, "__metadata__", "__metadata__: out of memory");
    }
    /* duplicate keys: readers differ on which one wins (cJSON keeps both, Python the last), so refuse */
    const char **keys = malloc((f->n_meta + 1) * sizeof *keys);
    if (keys == NULL) return tr_seterr(err, TR_ENOMEM, "__metadata__", "__metadata__: out of memory");
    for (size_t i = 0; i < f->n_meta; i++) keys[i] = f->meta[2 * i];
    qsort(keys, f->n_meta, sizeof *keys, by_str);
    int rc = TR_OK;
    for (size_t i = 1; i < f->n_meta && rc == TR_OK; i++)
        if (strcmp(keys[i], keys[i - 1]) == 0)
            rc = tr_seterr(err, TR_EFORMAT, "__metadata__", "__metadata__ \"%s\": key appears twice", keys[i]);
    free(keys);
    return rc;
}

static int parse_tensor(st_tensor *t, const cJSON *e, size_t data_len, tr_err *err) {
    const char *nm = e->string;
    if (!cJSON_IsObject(e)) return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": entry must be an object", nm);
    static const char *const keys[3] = {"dtype", "shape", "data_offsets"};
    int seen[3] = {0, 0, 0};
    for (const cJSON *k = e->child; k; k = k->next) {
        int j = 0;
        while (j < 3 && strcmp(k->string, keys[j]) != 0) j++;
        if (j == 3) return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": unknown key \"%s\"", nm, k->string);
        if (seen[j]++) return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": key \"%s\" appears twice", nm, k->string);
    }
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(e, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
    if (!cJSON_IsString(dt)) return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": missing or non-string dtype", nm);
    if (st_dtype_parse(dt->valuestring, &t->dtype) != 0)
        return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": unsupported dtype \"%s\"", nm, dt->valuestring);
    if (!cJSON_IsArray(sh)) return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": missing or non-array shape", nm);
    int nd = cJSON_GetArraySize(sh);
    if (nd > ST_MAX_DIMS)
        return tr_seterr(err, TR_ELIMIT, nm, "tensor \"%s\": %d dimensions, limit %d", nm, nd, ST_MAX_DIMS);
    t->ndim = nd;
    size_t nelem = 1;
    int i = 0;
    for (const cJSON *d = sh->child; d; d = d->next, i++) {
        uint64_t v;
        if (!json_uint(d, &v))
            return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": shape[%d] is not a non-negative integer", nm, i);
        t->shape[i] = (int64_t)v;
        if (!tr_size_mul(nelem, (size_t)v, &nelem))
            return tr_seterr(err, TR_ELIMIT, nm, "tensor \"%s\": shape overflows the element count", nm);
    }
    t->nelem = nelem;
    size_t bytes;
    if (!tr_size_mul(nelem, st_dtype_size(t->dtype), &bytes))
        return tr_seterr(err, TR_ELIMIT, nm, "tensor \"%s\": shape overflows the byte size", nm);
    uint64_t b, en;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2 || !json_uint(of->child, &b) ||
        !json_uint(of->child->next, &en))
        return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": data_offsets must be [begin, end] integers", nm);
    if (b > en)
        return tr_seterr(err, TR_EFORMAT, nm, "tensor \"%s\": data_offsets begin %llu > end %llu", nm,
                         (unsigned long long)b, (unsigned long long)en);
    if (en > data_len)
        return tr_seterr(err, TR_EFORMAT, nm,
                         "tensor \"%s\": data_offsets end %llu is past the data section (%zu bytes)", nm,
                         (unsigned long long)en, data_len);
    if (en - b != bytes)
        return tr_seterr(err, TR_EFORMAT, nm,
                         "tensor \"%s\": data_offsets [%llu,%llu] hold %llu bytes, shape x %s needs %zu", nm,
                         (unsigned long long)b, (unsigned long long)en, (unsigned long long)(en - b),
                         st_dtype_name(t->dtype), bytes);
    t->off = (size_t)b;
    t->len = bytes;
    return TR_OK;
}

static int by_offset(const void *a, const void *b) {
    const st_tensor *x = *(const st_tensor *const *)a, *y = *(const st_tensor *const *)b;
    if (x->off != y->off) return x->off < y->off ? -1 : 1;
    return x->len < y->len ? -1 : x->len > y->len;
}

static int by_name(const void *a, const void *b) {
    return strcmp((*(const st_tensor *const *)a)->name, (*(const st_tensor *const *)b)->name);
}

/* safetensors rule: tensors tile the data section exactly, no overlap, no holes. */
static int check_layout(st_file *f, tr_err *err) {
    int rc = TR_OK;
    const st_tensor **s = malloc((f->n + 1) * sizeof *s);
    if (s == NULL) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < f->n; i++) s[i] = &f->t[i];
    qsort(s, f->n, sizeof *s, by_name);
    for (size_t i = 1; i < f->n; i++)
        if (strcmp(s[i]->name, s[i - 1]->name) == 0) {
            rc = tr_seterr(err, TR_EFORMAT, s[i]->name, "tensor \"%s\": appears twice in the header", s[i]->name);
            goto done;
        }
    qsort(s, f->n, sizeof *s, by_offset);
    size_t end = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (s[i]->off < end) {
            rc = tr_seterr(err, TR_EFORMAT, s[i]->name, "tensor \"%s\": data [%zu,%zu] overlaps tensor \"%s\"",
                           s[i]->name, s[i]->off, s[i]->off + s[i]->len, s[i - 1]->name);
            goto done;
        }
        if (s[i]->off > end) {
            rc = tr_seterr(err, TR_EFORMAT, s[i]->name,
                           "tensor \"%s\": data starts at byte %zu, leaving a hole after byte %zu", s[i]->name,
                           s[i]->off, end);
            goto done;
        }
        end = s[i]->off + s[i]->len;
    }
    if (end != f->data_len)
        rc = tr_seterr(err, TR_EFORMAT, "", "data section has %zu bytes after the last tensor", f->data_len - end);
done:
    free(s);
    return rc;
}

int st_open_mem(const uint8_t *buf, size_t len, st_file **out, tr_err *err) {
    int rc = TR_OK;
    cJSON *root = NULL;
    st_file *f = NULL;
    *out = NULL;
    if (len < 8)
        return tr_seterr(err, TR_EFORMAT, "header", "file is %zu bytes, shorter than the 8-byte header length", len);
    uint64_t hlen = rd_le64(buf);
    if (hlen > ST_MAX_HEADER)
        return tr_seterr(err, TR_ELIMIT, "header",
                         "not a safetensors file (the 8-byte header length is over the %u-byte limit)", ST_MAX_HEADER);
    if (hlen > len - 8)
        return tr_seterr(err, TR_EFORMAT, "header",
                         "not a safetensors file (the 8-byte header length is larger than the file)");
    if (hlen == 0) return tr_seterr(err, TR_EFORMAT, "header", "header is empty");
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts((const char *)buf + 8, (size_t)hlen, &end, 0);
    if (root == NULL) {
        /* cJSON sets end to the error position on failure (its global error pointer is not thread-safe) */
        size_t at = end ? (size_t)(end - ((const char *)buf + 8)) : 0;
        return tr_seterr(err, TR_EFORMAT, "header", "header is not valid JSON (near byte %zu of the header)", at);
    }
    for (const char *p = end; p < (const char *)buf + 8 + hlen; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') {
            rc = tr_seterr(err, TR_EFORMAT, "header", "header has bytes after its JSON value");
            goto fail;
        }
    if (!cJSON_IsObject(root)) {
        rc = tr_seterr(err, TR_EFORMAT, "header", "header must be a JSON object");
        goto fail;
    }
    size_t n_entries = (size_t)cJSON_GetArraySize(root);
    size_t n_tensors = n_entries - (cJSON_GetObjectItemCaseSensitive(root, "__metadata__") != NULL);
    if (n_tensors > ST_MAX_TENSORS) {
        rc = tr_seterr(err, TR_ELIMIT, "header", "header lists %zu tensors, limit %d", n_tensors, ST_MAX_TENSORS);
        goto fail;
    }
    f = calloc(1, sizeof *f);
    if (f == NULL || (f->t = calloc(n_entries + 1, sizeof *f->t)) == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "", "out of memory");
        goto fail;
    }
    f->buf = buf;
    f->len = len;
    f->data = buf + 8 + hlen;
    f->data_len = len - 8 - (size_t)hlen;
    int seen_meta = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            if (seen_meta++) {
                rc = tr_seterr(err, TR_EFORMAT, "__metadata__", "__metadata__ appears twice");
                goto fail;
            }
            if ((rc = parse_meta(f, e, err))) goto fail;
            continue;
        }
        st_tensor *t = &f->t[f->n];
        if ((t->name = strdup(e->string)) == NULL) {
            rc = tr_seterr(err, TR_ENOMEM, "", "out of memory");
            goto fail;
        }
        f->n++;
        if ((rc = parse_tensor(t, e, f->data_len, err))) goto fail;
    }
    if ((rc = check_layout(f, err))) goto fail;
    cJSON_Delete(root);
    *out = f;
    return TR_OK;
fail:
    cJSON_Delete(root);
    if (f) free_parts(f);
    free(f);
    return rc;
}

int st_open(const char *path, st_file **out, tr_err *err) {
    uint8_t *buf;
    size_t len;
    *out = NULL;
    int rc = tr_read_file(path, SIZE_MAX, &buf, &len, err);
    if (rc) return rc;
    if ((rc = st_open_mem(buf, len, out, err))) {
        free(buf);
        return rc;
    }
    (*out)->owned = buf;
    return TR_OK;
}

int st_map(const char *path, st_file **out, tr_err *err) {
    static const uint8_t empty[1];
    fmap *m;
    size_t len;
    *out = NULL;
    int rc = fmap_open(path, &m, err);
    if (rc != TR_OK) return rc;
    const uint8_t *buf = fmap_data(m, &len);
    if ((rc = st_open_mem(buf ? buf : empty, len, out, err)) != TR_OK) {
        fmap_close(m);
        return rc;
    }
    (*out)->fm = m;
    return TR_OK;
}

const char *st_lease_note(const st_file *f) {
    return f->fm ? fmap_lease_note(f->fm) : NULL;
}

size_t st_count(const st_file *f) {
    return f->n;
}
const st_tensor *st_at(const st_file *f, size_t i) {
    return i < f->n ? &f->t[i] : NULL;
}
const uint8_t *st_data(const st_file *f, const st_tensor *t) {
    return f->data + t->off;
}

const st_tensor *st_find(const st_file *f, const char *name) {
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->t[i].name, name) == 0) return &f->t[i];
    return NULL;
}

const uint8_t *st_bytes(const st_file *f, size_t *len) {
    *len = f->len;
    return f->buf;
}

const char *st_meta(const st_file *f, const char *key) {
    for (size_t i = 0; i < f->n_meta; i++)
        if (strcmp(f->meta[2 * i], key) == 0) return f->meta[2 * i + 1];
    return NULL;
}

size_t st_meta_count(const st_file *f) {
    return f->n_meta;
}

void st_meta_at(const st_file *f, size_t i, const char **key, const char **val) {
    *key = f->meta[2 * i];
    *val = f->meta[2 * i + 1];
}

static float half_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        float v = ldexpf((float)man, -24); /* zero or subnormal */
        return sign ? -v : v;
    }
    if (exp == 31)
        bits = sign | 0x7f800000u | (man << 13);
    else
        bits = sign | ((exp + 112) << 23) | (man << 13);
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

int st_to_f32(const st_file *f, const st_tensor *t, float *dst, tr_err *err) {
    const uint8_t *p = st_data(f, t);
    for (size_t i = 0; i < t->nelem; i++) {
        float v;
        switch (t->dtype) {
        case ST_F32:
            memcpy(&v, p + 4 * i, 4);
            break;
        case ST_F64: {
            double d;
            memcpy(&d, p + 8 * i, 8);
            v = (float)d;
            if (isfinite(d) && !isfinite(v))
                return tr_seterr(err, TR_EFORMAT, t->name, "tensor \"%s\": element %zu is out of float32 range",
                                 t->name, i);
            break;
        }
        case ST_F16: {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            v = half_to_f32(h);
            break;
        }
        case ST_BF16: {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&v, &bits, 4);
            break;
        }
        default:
            return tr_seterr(err, TR_EFORMAT, t->name,
                             "tensor \"%s\": dtype %s is not a float type (F32, F16, BF16, F64)", t->name,
                             st_dtype_name(t->dtype));
        }
        if (!isfinite(v))
            return tr_seterr(err, TR_EFORMAT, t->name, "tensor \"%s\": element %zu is %s", t->name, i,
                             isnan(v) ? "NaN" : "infinite");
        dst[i] = v;
    }
    return TR_OK;
}

int st_to_i64(const st_file *f, const st_tensor *t, int64_t *dst, tr_err *err) {
    const uint8_t *p = st_data(f, t);
    size_t sz = st_dtype_size(t->dtype);
    for (size_t i = 0; i < t->nelem; i++) {
        const uint8_t *q = p + sz * i;
        switch (t->dtype) {
        case ST_I64:
            memcpy(&dst[i], q, 8);
            break;
        case ST_U64: {
            uint64_t u;
            memcpy(&u, q, 8);
            if (u > INT64_MAX)
                return tr_seterr(err, TR_EFORMAT, t->name, "tensor \"%s\": element %zu is over the int64 range",
                                 t->name, i);
            dst[i] = (int64_t)u;
            break;
        }
        case ST_I32: {
            int32_t v;
            memcpy(&v, q, 4);
            dst[i] = v;
            break;
        }
        case ST_U32: {
            uint32_t v;
            memcpy(&v, q, 4);
            dst[i] = v;
            break;
        }
        case ST_I16: {
            int16_t v;
            memcpy(&v, q, 2);
            dst[i] = v;
            break;
        }
        case ST_U16: {
            uint16_t v;
            memcpy(&v, q, 2);
            dst[i] = v;
            break;
        }
        case ST_I8:
            dst[i] = (int8_t)q[0];
            break;
        case ST_U8:
        case ST_BOOL:
            dst[i] = q[0];
            break;
        default:
            return tr_seterr(err, TR_EFORMAT, t->name, "tensor \"%s\": dtype %s is not an integer type", t->name,
                             st_dtype_name(t->dtype));
        }
    }
    return TR_OK;
}

/* The JSON header of a safetensors file with tensors t (data laid out in
 * order) and the metadata pairs, into *hdr (malloc'd). */
static int st_header(const st_wtensor *t, size_t n, const char *const *meta, size_t n_meta, char **hdr, tr_err *err) {
    int rc = TR_OK;
    cJSON *root = cJSON_CreateObject(), *m = NULL;
    size_t off = 0;
    if (root == NULL) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    if (n_meta) {
        if ((m = cJSON_AddObjectToObject(root, "__metadata__")) == NULL) goto nomem;
        for (size_t i = 0; i < n_meta; i++)
            if (!cJSON_AddStringToObject(m, meta[2 * i], meta[2 * i + 1])) goto nomem;
    }
    for (size_t i = 0; i < n; i++) {
        size_t nelem = 1, bytes;
        if (t[i].ndim < 0 || t[i].ndim > ST_MAX_DIMS) {
            rc = tr_seterr(err, TR_EINVAL, t[i].name, "tensor \"%s\": %d dimensions", t[i].name, t[i].ndim);
            goto fail;
        }
        double shp[ST_MAX_DIMS];
        for (int d = 0; d < t[i].ndim; d++) {
            if (t[i].shape[d] < 0 || !tr_size_mul(nelem, (size_t)t[i].shape[d], &nelem)) {
                rc = tr_seterr(err, TR_EINVAL, t[i].name, "tensor \"%s\": bad shape", t[i].name);
                goto fail;
            }
            shp[d] = (double)t[i].shape[d];
        }
        if (!tr_size_mul(nelem, st_dtype_size(t[i].dtype), &bytes)) {
            rc = tr_seterr(err, TR_EINVAL, t[i].name, "tensor \"%s\": too large", t[i].name);
            goto fail;
        }
        double offs[2] = {(double)off, (double)(off + bytes)};
        cJSON *e = cJSON_AddObjectToObject(root, t[i].name);
        if (!e || !cJSON_AddStringToObject(e, "dtype", st_dtype_name(t[i].dtype)) ||
            !cJSON_AddItemToObject(e, "shape", cJSON_CreateDoubleArray(shp, t[i].ndim)) ||
            !cJSON_AddItemToObject(e, "data_offsets", cJSON_CreateDoubleArray(offs, 2)))
            goto nomem;
        off += bytes;
    }
    if ((*hdr = cJSON_PrintUnformatted(root)) == NULL) goto nomem;
    cJSON_Delete(root);
    return TR_OK;
nomem:
    rc = tr_seterr(err, TR_ENOMEM, "", "out of memory");
fail:
    cJSON_Delete(root);
    return rc;
}

int st_write(const char *path, const st_wtensor *t, size_t n, const char *const *meta, size_t n_meta, tr_err *err) {
    char *hdr = NULL;
    af_file f;
    int rc = st_header(t, n, meta, n_meta, &hdr, err);
    if (rc != TR_OK) return rc;
    if ((rc = af_open(&f, path, err)) != TR_OK) {
        free(hdr);
        return rc;
    }
    size_t hlen = strlen(hdr), pad = (8 - hlen % 8) % 8;
    uint8_t lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (uint8_t)(((uint64_t)(hlen + pad)) >> (8 * i));
    int ok = fwrite(lenb, 1, 8, f.fp) == 8 && fwrite(hdr, 1, hlen, f.fp) == hlen;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f.fp) != EOF;
    for (size_t i = 0; ok && i < n; i++) {
        size_t bytes = st_dtype_size(t[i].dtype);
        for (int d = 0; d < t[i].ndim; d++) bytes *= (size_t)t[i].shape[d];
        ok = bytes == 0 || fwrite(t[i].data, 1, bytes, f.fp) == bytes;
    }
    free(hdr);
    if (!ok) {
        rc = tr_seterr(err, TR_EIO, "", "%s: write failed: %s", path, strerror(errno));
        af_abort(&f);
        return rc;
    }
    return af_commit(&f, err);
}
