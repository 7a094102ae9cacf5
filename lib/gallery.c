/* gallery.c - load, validate and save galleries (proto/gallery-format.md). */
#include "gallery.h"

#include <math.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "st.h"

static const char *const gal_tensors[] = {"embeddings", "labels", "ids", "images"};

int gal_utf8_valid(const uint8_t *s, size_t n, size_t *bad) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F, min = 0x80;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F, min = 0x800;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07, min = 0x10000;
        } else {
            goto bad;
        }
        if (n - i < len) goto bad;
        for (size_t e = 1; e < len; e++) {
            if ((s[i + e] & 0xC0) != 0x80) goto bad;
            cp = (cp << 6) | (s[i + e] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) goto bad;
        i += len;
    }
    return 1;
bad:
    if (bad) *bad = i;
    return 0;
}

static int is_hex64(const char *s) {
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f'))) return 0;
    return n == 64;
}

struct gal_digest {
    pthread_mutex_t lock;
    int state; /* 0 not yet, 1 done, -1 failed */
    char hex[65];
};

void gal_free(gal_gallery *g) {
    if (g == NULL) return;
    free(g->emb_copy);
    free(g->sqnorm);
    free(g->labels_copy);
    if (g->ids) free(g->ids[0]); /* one block holds every string */
    free(g->ids);
    free(g->path);
    if (g->digest) pthread_mutex_destroy(&g->digest->lock);
    free(g->digest);
    st_close(g->file); /* unmaps: emb, labels and images may point into it */
    free(g);
}

const char *gal_sha256(const gal_gallery *g) {
    struct gal_digest *d = g->digest;
    size_t len;
    tr_err err;
    pthread_mutex_lock(&d->lock);
    if (d->state == 0) {
        const uint8_t *bytes = st_bytes(g->file, &len);
        d->state = tr_sha256_hex(bytes, len, d->hex, &err) == TR_OK ? 1 : -1;
        if (d->state < 0) d->hex[0] = '\0';
    }
    pthread_mutex_unlock(&d->lock);
    return d->hex;
}

/* Split the ids tensor into n strings separated by NUL bytes; a trailing
 * NUL after the last one is allowed (n NULs), else there are n - 1. Each id
 * is non-empty, valid UTF-8 and shorter than GAL_MAX_ID bytes. */
static int load_ids(const uint8_t *p, size_t len, size_t n, gal_gallery *g, tr_err *err) {
    size_t nul = 0, start = 0, bad, found;
    if (len == 0) return tr_seterr(err, TR_EFORMAT, "ids", "ids: empty tensor for %zu embeddings", n);
    for (size_t i = 0; i < len; i++) nul += p[i] == '\0';
    int trailing = p[len - 1] == '\0';
    found = trailing ? nul : nul + 1;
    if (found != n) return tr_seterr(err, TR_EFORMAT, "ids", "ids: %zu NUL-separated ids for %zu embeddings", found, n);
    char *block = malloc(len + 1); /* + a NUL ending the last id */
    g->ids = calloc(n, sizeof *g->ids);
    if (block == NULL || g->ids == NULL) {
        free(block);
        return tr_seterr(err, TR_ENOMEM, "ids", "ids: cannot allocate %zu bytes", len);
    }
    memcpy(block, p, len);
    block[len] = '\0';
    g->ids[0] = block;
    size_t end = trailing ? len - 1 : len; /* the last id ends here */
    for (size_t i = 0, r = 0; i <= end; i++) {
        if (i < end && p[i] != '\0') continue;
        size_t l = i - start;
        if (l == 0) return tr_seterr(err, TR_EFORMAT, "ids", "ids: id %zu is empty", r);
        if (l >= GAL_MAX_ID)
            return tr_seterr(err, TR_EFORMAT, "ids", "ids: id %zu is %zu bytes (max %d)", r, l, GAL_MAX_ID - 1);
        if (!gal_utf8_valid(p + start, l, &bad))
            return tr_seterr(err, TR_EFORMAT, "ids", "ids: id %zu is not valid UTF-8 (byte %zu)", r, bad);
        g->ids[r++] = block + start;
        start = i + 1;
    }
    return TR_OK;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Distinct labels: a bitmap when they are all small non-negative class
 * numbers (the usual case, one pass), else sort a copy. */
static int count_classes(gal_gallery *g, tr_err *err) {
    enum { SMALL = 1 << 16 };
    uint64_t seen[SMALL / 64] = {0};
    size_t i;
    g->n_classes = 0;
    for (i = 0; i < g->n && g->labels[i] >= 0 && g->labels[i] < SMALL; i++) {
        uint64_t l = (uint64_t)g->labels[i], bit = (uint64_t)1 << (l % 64);
        g->n_classes += (seen[l / 64] & bit) == 0;
        seen[l / 64] |= bit;
    }
    if (i == g->n) return TR_OK;
    int64_t *tmp = malloc(g->n * sizeof *tmp);
    if (tmp == NULL) return tr_seterr(err, TR_ENOMEM, "labels", "labels: cannot allocate");
    memcpy(tmp, g->labels, g->n * sizeof *tmp);
    qsort(tmp, g->n, sizeof *tmp, cmp_i64);
    g->n_classes = 0;
    for (i = 0; i < g->n; i++) g->n_classes += i == 0 || tmp[i] != tmp[i - 1];
    free(tmp);
    return TR_OK;
}

/* Each row's squared norm (summed in double, stored as float) and, in the
 * same pass, the check that every value is finite: a row's sum of squares
 * is finite exactly when all its values are (a float squared fits a double). */
static int row_norms(const float *e, size_t n, size_t dim, float *sqnorm, tr_err *err) {
    for (size_t i = 0; i < n; i++) {
        const float *r = e + i * dim;
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        size_t k = 0;
        for (; k + 4 <= dim; k += 4) {
            s0 += (double)r[k] * r[k];
            s1 += (double)r[k + 1] * r[k + 1];
            s2 += (double)r[k + 2] * r[k + 2];
            s3 += (double)r[k + 3] * r[k + 3];
        }
        for (; k < dim; k++) s0 += (double)r[k] * r[k];
        double s = (s0 + s1) + (s2 + s3);
        if (!isfinite(s)) {
            for (k = 0; isfinite(r[k]); k++) {
            }
            return tr_seterr(err, TR_EFORMAT, "embeddings", "tensor \"embeddings\": element %zu is %s", i * dim + k,
                             isnan(r[k]) ? "NaN" : "infinite");
        }
        sqnorm[i] = (float)s;
    }
    return TR_OK;
}

/* images: U8 [N, H, W] (grey) or [N, H, W, C] with C 1 or 3; sets the shape. */
static int check_images(const st_tensor *im, gal_gallery *g, tr_err *err) {
    if (im->dtype != ST_U8)
        return tr_seterr(err, TR_EFORMAT, "images", "images: dtype %s, expected U8", st_dtype_name(im->dtype));
    if (im->ndim != 3 && im->ndim != 4)
        return tr_seterr(err, TR_EFORMAT, "images", "images: %d dimensions, expected [N, H, W] or [N, H, W, C]",
                         im->ndim);
    if ((uint64_t)im->shape[0] != g->n)
        return tr_seterr(err, TR_EFORMAT, "images", "images: %lld images for %zu embeddings", (long long)im->shape[0],
                         g->n);
    int64_t h = im->shape[1], w = im->shape[2], c = im->ndim == 4 ? im->shape[3] : 1;
    if (h < 1 || w < 1 || h > GAL_MAX_IMAGE_SIDE || w > GAL_MAX_IMAGE_SIDE || (c != 1 && c != 3))
        return tr_seterr(err, TR_EFORMAT, "images",
                         "images: %lld x %lld x %lld per image (sides 1..%d, 1 or 3 channels)", (long long)h,
                         (long long)w, (long long)c, GAL_MAX_IMAGE_SIDE);
    if (im->len > GAL_MAX_IMAGE_BYTES)
        return tr_seterr(err, TR_ELIMIT, "images", "images: %zu bytes is over the limit", im->len);
    g->img_h = (size_t)h, g->img_w = (size_t)w, g->img_c = (size_t)c;
    return TR_OK;
}

/* The tensors' names, dtypes and shapes and the metadata; sets n and dim. */
static int check_header(const st_file *f, gal_gallery *g, tr_err *err) {
    const st_tensor *e = st_find(f, "embeddings"), *l = st_find(f, "labels"), *id = st_find(f, "ids"),
                    *im = st_find(f, "images");
    int rc;
    for (size_t i = 0; i < st_count(f); i++) {
        const st_tensor *t = st_at(f, i);
        int known = 0;
        for (size_t k = 0; k < sizeof gal_tensors / sizeof gal_tensors[0]; k++)
            known |= strcmp(t->name, gal_tensors[k]) == 0;
        if (!known)
            return tr_seterr(err, TR_EFORMAT, t->name,
                             "unexpected tensor \"%s\" (a gallery holds embeddings, labels, ids, images)", t->name);
    }
    if (e == NULL) return tr_seterr(err, TR_EFORMAT, "embeddings", "no \"embeddings\" tensor");
    if (e->dtype != ST_F32 && e->dtype != ST_F16)
        return tr_seterr(err, TR_EFORMAT, "embeddings", "embeddings: dtype %s, expected F32 or F16",
                         st_dtype_name(e->dtype));
    if (e->ndim != 2)
        return tr_seterr(err, TR_EFORMAT, "embeddings", "embeddings: %d dimensions, expected 2 [N, D]", e->ndim);
    if (e->shape[0] < 1 || e->shape[1] < 1)
        return tr_seterr(err, TR_EFORMAT, "embeddings", "embeddings: shape [%lld, %lld] is empty",
                         (long long)e->shape[0], (long long)e->shape[1]);
    if (e->shape[1] > GAL_MAX_DIM || (uint64_t)e->shape[0] > GAL_MAX_VALUES / (uint64_t)e->shape[1])
        return tr_seterr(err, TR_ELIMIT, "embeddings",
                         "embeddings: shape [%lld, %lld] is over the limit (D <= %d, N*D <= %zu)",
                         (long long)e->shape[0], (long long)e->shape[1], GAL_MAX_DIM, (size_t)GAL_MAX_VALUES);
    g->n = (size_t)e->shape[0];
    g->dim = (size_t)e->shape[1];
    if (l) {
        if (l->dtype != ST_I32 && l->dtype != ST_I64)
            return tr_seterr(err, TR_EFORMAT, "labels", "labels: dtype %s, expected I32 or I64",
                             st_dtype_name(l->dtype));
        if (l->ndim != 1 || (uint64_t)l->shape[0] != g->n)
            return tr_seterr(err, TR_EFORMAT, "labels",
                             "labels: %zu values in %d dimensions for %zu embeddings, expected [%zu]", l->nelem,
                             l->ndim, g->n, g->n);
    }
    if (id) {
        if (id->dtype != ST_U8)
            return tr_seterr(err, TR_EFORMAT, "ids", "ids: dtype %s, expected U8", st_dtype_name(id->dtype));
        if (id->ndim != 1) return tr_seterr(err, TR_EFORMAT, "ids", "ids: %d dimensions, expected 1", id->ndim);
    }
    if (im && (rc = check_images(im, g, err)) != TR_OK) return rc;
    const char *fmt = st_meta(f, "format"), *ms = st_meta(f, "model_sha256");
    if (fmt && strcmp(fmt, GAL_FORMAT) != 0)
        return tr_seterr(err, TR_EFORMAT, "format", "metadata format is \"%s\", expected \"%s\"", fmt, GAL_FORMAT);
    if (ms) {
        if (!is_hex64(ms))
            return tr_seterr(err, TR_EFORMAT, "model_sha256", "metadata model_sha256 must be 64 lowercase hex digits");
        memcpy(g->model_sha256, ms, 65);
    }

    return TR_OK;
}

/* Serve what the file holds in place when its dtype and alignment allow,
 * convert the rest; the row norms in the same pass as the finite check. */
static int map_data(const st_file *f, gal_gallery *g, tr_err *err) {
    const st_tensor *e = st_find(f, "embeddings"), *l = st_find(f, "labels"), *id = st_find(f, "ids"),
                    *im = st_find(f, "images");
    size_t bytes;
    int rc;
    if ((g->sqnorm = malloc(g->n * sizeof *g->sqnorm)) == NULL)
        return tr_seterr(err, TR_ENOMEM, "embeddings", "embeddings: cannot allocate %zu norms", g->n);
    const uint8_t *ep = st_data(f, e);
    if (e->dtype == ST_F32 && (uintptr_t)ep % alignof(float) == 0) {
        g->emb = (const float *)(const void *)ep;
    } else {
        bytes = g->n * g->dim * sizeof(float); /* bounded by GAL_MAX_VALUES */
        if ((g->emb_copy = malloc(bytes)) == NULL)
            return tr_seterr(err, TR_ENOMEM, "embeddings", "embeddings: cannot allocate %zu bytes", bytes);
        if ((rc = st_to_f32(f, e, g->emb_copy, err)) != TR_OK) return rc;
        g->emb = g->emb_copy;
    }
    if ((rc = row_norms(g->emb, g->n, g->dim, g->sqnorm, err)) != TR_OK) return rc;
    if (im) g->images = st_data(f, im);
    if (l) {
        const uint8_t *lp = st_data(f, l);
        if (l->dtype == ST_I64 && (uintptr_t)lp % alignof(int64_t) == 0) {
            g->labels = (const int64_t *)(const void *)lp;
        } else {
            if ((g->labels_copy = malloc(g->n * sizeof *g->labels_copy)) == NULL)
                return tr_seterr(err, TR_ENOMEM, "labels", "labels: cannot allocate");
            if ((rc = st_to_i64(f, l, g->labels_copy, err)) != TR_OK) return rc;
            g->labels = g->labels_copy;
        }
        if ((rc = count_classes(g, err)) != TR_OK) return rc;
    }
    if (id) return load_ids(st_data(f, id), id->len, g->n, g, err);
    return TR_OK;
}

static int gal_validate(const st_file *f, gal_gallery *g, tr_err *err) {
    int rc = check_header(f, g, err);
    return rc != TR_OK ? rc : map_data(f, g, err);
}

int gal_load(const char *path, gal_gallery **out, tr_err *err) {
    gal_gallery *g = NULL;
    int rc;
    *out = NULL;
    g = calloc(1, sizeof *g);
    if (g == NULL || (g->path = strdup(path)) == NULL || (g->digest = calloc(1, sizeof *g->digest)) == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "", "gallery: out of memory");
        goto fail;
    }
    if (pthread_mutex_init(&g->digest->lock, NULL) != 0) {
        free(g->digest);
        g->digest = NULL; /* gal_free destroys the lock of a digest it finds */
        rc = tr_seterr(err, TR_ENOMEM, "", "gallery: cannot create a lock");
        goto fail;
    }
    if ((rc = st_map(path, &g->file, err)) != TR_OK) goto fail;
    if ((rc = gal_validate(g->file, g, err)) != TR_OK) goto fail;
    *out = g;
    g = NULL;
fail:
    if (rc != TR_OK && err && strstr(err->msg, path) == NULL) {
        /* name the file so the message says which gallery was refused */
        char m[2 * sizeof err->msg + 64];
        if (snprintf(m, sizeof m, "gallery %s: %s", path, err->msg) < 0) m[0] = '\0';
        snprintf(err->msg, sizeof err->msg, "%.*s", (int)sizeof err->msg - 1, m);
    }
    gal_free(g);
    return rc;
}

const char *gal_lease_note(const gal_gallery *g) {
    return st_lease_note(g->file);
}

int gal_save(const char *path, const float *emb, size_t n, size_t dim, const int64_t *labels, const char *const *ids,
             const char *model_sha256, tr_err *err) {
    return gal_save_images(path, emb, n, dim, labels, ids, model_sha256, NULL, 0, 0, 0, err);
}

int gal_save_images(const char *path, const float *emb, size_t n, size_t dim, const int64_t *labels,
                    const char *const *ids, const char *model_sha256, const uint8_t *images, size_t h, size_t w,
                    size_t c, tr_err *err) {
    uint8_t *idbuf = NULL;
    size_t idlen = 0, bad;
    int rc = TR_OK;
    if (n == 0 || dim == 0) return tr_seterr(err, TR_EINVAL, "embeddings", "gallery: no embeddings to save");
    if (dim > GAL_MAX_DIM || n > GAL_MAX_VALUES / dim)
        return tr_seterr(err, TR_ELIMIT, "embeddings", "gallery: %zu x %zu embeddings are over the limit", n, dim);
    for (size_t i = 0; i < n * dim; i++)
        if (!isfinite(emb[i]))
            return tr_seterr(err, TR_EINVAL, "embeddings", "gallery: embedding %zu has a value that is not finite",
                             i / dim);
    if (model_sha256 && model_sha256[0] && !is_hex64(model_sha256))
        return tr_seterr(err, TR_EINVAL, "model_sha256", "gallery: model_sha256 must be 64 lowercase hex digits");
    if (ids) {
        for (size_t i = 0; i < n; i++) {
            size_t l = strlen(ids[i]);
            if (l == 0 || l >= GAL_MAX_ID || !gal_utf8_valid((const uint8_t *)ids[i], l, &bad))
                return tr_seterr(err, TR_EINVAL, "ids", "gallery: id %zu is empty, too long or not UTF-8", i);
            if (!tr_size_add(idlen, l + 1, &idlen)) return tr_seterr(err, TR_ELIMIT, "ids", "gallery: ids too large");
        }
        idbuf = malloc(idlen); /* holds a NUL after every id; the last one is not written */
        if (idbuf == NULL) return tr_seterr(err, TR_ENOMEM, "ids", "gallery: cannot allocate %zu bytes of ids", idlen);
        for (size_t i = 0, o = 0; i < n; i++) {
            size_t l = strlen(ids[i]) + 1;
            memcpy(idbuf + o, ids[i], l);
            o += l;
        }
        idlen--; /* NUL-separated: no NUL after the last id */
    }
    if (images && (h < 1 || w < 1 || h > GAL_MAX_IMAGE_SIDE || w > GAL_MAX_IMAGE_SIDE || (c != 1 && c != 3) ||
                   n > GAL_MAX_IMAGE_BYTES / (h * w * c))) {
        free(idbuf);
        return tr_seterr(err, TR_EINVAL, "images", "gallery: %zu images of %zu x %zu x %zu are not storable", n, h, w,
                         c);
    }
    st_wtensor t[4];
    size_t nt = 0;
    memset(t, 0, sizeof t);
    t[nt++] = (st_wtensor){
        .name = "embeddings", .dtype = ST_F32, .ndim = 2, .shape = {(int64_t)n, (int64_t)dim}, .data = emb};
    if (labels)
        t[nt++] = (st_wtensor){.name = "labels", .dtype = ST_I64, .ndim = 1, .shape = {(int64_t)n}, .data = labels};
    if (ids) t[nt++] = (st_wtensor){.name = "ids", .dtype = ST_U8, .ndim = 1, .shape = {(int64_t)idlen}, .data = idbuf};
    if (images) {
        t[nt] = (st_wtensor){.name = "images",
                             .dtype = ST_U8,
                             .ndim = c == 1 ? 3 : 4,
                             .shape = {(int64_t)n, (int64_t)h, (int64_t)w, (int64_t)c},
                             .data = images};
        nt++;
    }
    const char *meta[] = {"format", GAL_FORMAT, "format_version", "1", "model_sha256", model_sha256};
    size_t n_meta = model_sha256 && model_sha256[0] ? 3 : 2;
    rc = st_write(path, t, nt, meta, n_meta, err);
    free(idbuf);
    return rc;
}

int gal_check_model(const gal_gallery *g, const char *model_sha256, size_t model_dim, int allow_mismatch, tr_err *err) {
    if (allow_mismatch) return TR_OK;
    if (g->model_sha256[0] == '\0')
        return tr_seterr(err, TR_EINVAL, "model_sha256",
                         "the gallery does not name the model it was built with (metadata model_sha256); "
                         "rebuild it with `tripletctl index`");
    if (model_sha256 == NULL || strcmp(g->model_sha256, model_sha256) != 0)
        return tr_seterr(err, TR_EINVAL, "model_sha256",
                         "the gallery was built with model %.12s..., the loaded model is %.12s...; "
                         "rebuild it with `tripletctl index`",
                         g->model_sha256, model_sha256 ? model_sha256 : "(none)");
    if (g->dim != model_dim)
        return tr_seterr(err, TR_EDIM, "embeddings",
                         "the gallery holds %zu-dimensional embeddings, the model outputs %zu", g->dim, model_dim);
    return TR_OK;
}
