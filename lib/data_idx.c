/* data_idx.c - the IDX format (MNIST and Fashion-MNIST files): header checks and values. */
#include <stdio.h>
#include <string.h>

#include "data_impl.h"

typedef struct {
    uint8_t code;
    uint8_t size;
    const char *name;
    int integral;
    double max; /* raw_max */
} idx_type;

static const idx_type idx_types[] = {
    {0x08, 1, "ubyte", 1, 255.0}, {0x09, 1, "byte", 1, 127.0}, {0x0B, 2, "short", 1, 32767.0},
    {0x0C, 4, "int", 1, 0.0},     {0x0D, 4, "float", 0, 0.0},  {0x0E, 8, "double", 0, 0.0},
};

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Element i of an IDX payload as double. */
static double idx_value(const idx_type *t, const uint8_t *p, size_t i) {
    p += i * t->size;
    switch (t->code) {
    case 0x08:
        return (double)p[0];
    case 0x09:
        return (double)(int8_t)p[0];
    case 0x0B:
        return (double)(int16_t)(uint16_t)((unsigned)p[0] << 8 | p[1]);
    case 0x0C:
        return (double)(int32_t)be32(p);
    case 0x0D: {
        uint32_t u = be32(p);
        float f;
        memcpy(&f, &u, sizeof f);
        return (double)f;
    }
    default: {
        uint64_t u = (uint64_t)be32(p) << 32 | be32(p + 4);
        double f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    }
}

typedef struct {
    const idx_type *type;
    size_t count; /* dims[0] */
    size_t row;   /* product of dims[1..] (1 for rank 1) */
    uint32_t dims[3];
    int rank;
    size_t header;
} idx_header;

/* Validate the whole header and payload size before anything is trusted. */
static int idx_parse_header(const uint8_t *b, size_t len, const char *name, idx_header *h, tr_err *err) {
    if (len < 4)
        return tr_seterr(err, TR_EFORMAT, "", "%s: truncated IDX header: %zu bytes, need at least 4 (byte offset 0)",
                         name, len);
    if (b[0] != 0 || b[1] != 0)
        return tr_seterr(err, TR_EFORMAT, "",
                         "%s: bad IDX magic %02x %02x %02x %02x at byte offset 0, expected 00 00 <type> <rank>", name,
                         b[0], b[1], b[2], b[3]);
    h->type = NULL;
    for (size_t i = 0; i < sizeof idx_types / sizeof idx_types[0]; i++)
        if (idx_types[i].code == b[2]) h->type = &idx_types[i];
    if (h->type == NULL)
        return tr_seterr(err, TR_EFORMAT, "", "%s: unknown IDX element type 0x%02x at byte offset 2", name, b[2]);
    h->rank = b[3];
    if (h->rank < 1 || h->rank > 3)
        return tr_seterr(err, TR_EFORMAT, "", "%s: IDX rank %d at byte offset 3 is not supported (1..3)", name,
                         h->rank);
    h->header = 4 + 4 * (size_t)h->rank;
    if (len < h->header)
        return tr_seterr(err, TR_EFORMAT, "", "%s: truncated IDX header: %zu bytes, need %zu", name, len, h->header);
    h->row = 1;
    for (int i = 0; i < h->rank; i++) {
        h->dims[i] = be32(b + 4 + 4 * i);
        if (i > 0 && !tr_size_mul(h->row, h->dims[i], &h->row))
            return tr_seterr(err, TR_ELIMIT, "", "%s: IDX dimensions overflow", name);
    }
    h->count = h->dims[0];
    size_t need;
    if (!tr_size_mul(h->count, h->row, &need) || !tr_size_mul(need, h->type->size, &need))
        return tr_seterr(err, TR_ELIMIT, "", "%s: IDX dimensions overflow", name);
    if (len - h->header != need)
        return tr_seterr(err, TR_EFORMAT, "",
                         "%s: %s: header (rank %d, %zu x %zu %s) announces %zu data bytes after byte offset %zu, "
                         "file has %zu",
                         name, len - h->header < need ? "truncated" : "trailing bytes", h->rank, h->count, h->row,
                         h->type->name, need, h->header, len - h->header);
    return TR_OK;
}

int dat_parse_idx(const uint8_t *img, size_t img_len, const char *img_name, const uint8_t *lab, size_t lab_len,
                  const char *lab_name, const dat_opts *opts, dat_set **out, tr_err *err) {
    dat_opts tmp;
    const dat_opts *o = dat_opts_or_default(opts, &tmp);
    idx_header hi, hl;
    dat_set *d = NULL;
    int rc;
    if ((rc = idx_parse_header(img, img_len, img_name, &hi, err)) != TR_OK) return rc;
    if ((rc = idx_parse_header(lab, lab_len, lab_name, &hl, err)) != TR_OK) return rc;
    if (hl.rank != 1)
        return tr_seterr(err, TR_EFORMAT, "", "%s: labels must be an IDX rank-1 file, this one has rank %d", lab_name,
                         hl.rank);
    if (!hl.type->integral)
        return tr_seterr(err, TR_EFORMAT, "", "%s: labels must be integers, element type is %s", lab_name,
                         hl.type->name);
    if (hi.count != hl.count)
        return tr_seterr(err, TR_EFORMAT, "", "count mismatch: %s has %zu images, %s has %zu labels", img_name,
                         hi.count, lab_name, hl.count);
    if (hi.count == 0) return tr_seterr(err, TR_EFORMAT, "", "%s: no images", img_name);
    size_t n = o->limit && o->limit < hi.count ? o->limit : hi.count;
    if ((rc = dat_alloc(n, hi.row, 0, img_name, &d, err)) != TR_OK) return rc;
    const uint8_t *pi = img + hi.header;
    size_t nv = n * hi.row;
    if (hi.type->code == 0x08) {
        for (size_t i = 0; i < nv; i++) d->x[i] = (float)pi[i];
    } else {
        for (size_t i = 0; i < nv; i++) {
            double v = idx_value(hi.type, pi, i);
            if (!tr_f32_ok(v)) {
                rc = tr_seterr(err, TR_EFORMAT, "", "%s: value at byte offset %zu is not a finite float", img_name,
                               hi.header + i * hi.type->size);
                goto fail;
            }
            d->x[i] = (float)v;
        }
    }
    for (size_t i = 0; i < n; i++) d->labels[i] = (int64_t)idx_value(hl.type, lab + hl.header, i);
    d->raw_max = hi.type->max;
    if (hi.rank == 3) {
        d->height = (int)hi.dims[1];
        d->width = (int)hi.dims[2];
    }
    dat_apply_opts(d, o);
    *out = d;
    return TR_OK;
fail:
    dat_free(d);
    return rc;
}
