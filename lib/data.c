/* data.c - labelled datasets: IDX (gzip or raw), CSV and JSON-lines readers. */
#include "data.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>
#include <zlib.h>

#include "rng.h"

void dat_opts_default(dat_opts *o) {
    o->split = "train";
    o->scale = 0;
    o->limit = 0;
    o->format = DAT_AUTO;
}

static const dat_opts *opts_or_default(const dat_opts *o, dat_opts *tmp) {
    if (o != NULL) return o;
    dat_opts_default(tmp);
    return tmp;
}

void dat_free(dat_set *d) {
    if (d == NULL) return;
    if (d->ids != NULL)
        for (size_t i = 0; i < d->n; i++) free(d->ids[i]);
    free(d->ids);
    free(d->x);
    free(d->labels);
    free(d);
}

/* A dataset of n x dim with room for ids when with_ids; sizes checked. */
static int dat_alloc(size_t n, size_t dim, int with_ids, const char *name, dat_set **out, tr_err *err) {
    size_t nv, bx, bl, bi;
    dat_set *d = NULL;
    if (dim == 0 || dim > DAT_MAX_DIM)
        return tr_seterr(err, dim == 0 ? TR_EFORMAT : TR_ELIMIT, "", "%s: %zu features per row (limit 1..%zu)", name,
                         dim, DAT_MAX_DIM);
    if (!tr_size_mul(n, dim, &nv) || nv > DAT_MAX_VALUES)
        return tr_seterr(err, TR_ELIMIT, "", "%s: %zu rows x %zu features is over the limit of %zu values", name, n, dim,
                         DAT_MAX_VALUES);
    if (!tr_size_mul(nv ? nv : 1, sizeof(float), &bx) || !tr_size_mul(n ? n : 1, sizeof(int64_t), &bl) ||
        !tr_size_mul(n ? n : 1, sizeof(char *), &bi))
        return tr_seterr(err, TR_ELIMIT, "", "%s: dataset size overflows", name);
    d = calloc(1, sizeof *d);
    if (d == NULL) goto fail;
    d->x = malloc(bx);
    d->labels = malloc(bl);
    if (with_ids) d->ids = calloc(n ? n : 1, sizeof(char *));
    if (d->x == NULL || d->labels == NULL || (with_ids && d->ids == NULL)) goto fail;
    d->n = n;
    d->dim = dim;
    d->pre_mean = 0.0;
    d->pre_scale = 1.0;
    snprintf(d->source, sizeof d->source, "%s", name);
    *out = d;
    return TR_OK;
fail:
    if (d != NULL) d->n = 0;
    dat_free(d);
    return tr_seterr(err, TR_ENOMEM, "", "%s: out of memory for %zu x %zu dataset", name, n, dim);
}

void dat_preprocess(dat_set *d, double mean, double scale) {
    size_t nv = d->n * d->dim;
    for (size_t i = 0; i < nv; i++) d->x[i] = (float)(((double)d->x[i] - mean) * scale);
    /* compose with what was there: x'' = ((raw - m0) * s0 - m) * s */
    d->pre_mean = d->pre_mean + mean / d->pre_scale;
    d->pre_scale = d->pre_scale * scale;
}

static void apply_opts(dat_set *d, const dat_opts *o) {
    if (o->scale) dat_preprocess(d, 0.0, 1.0 / 255.0);
}

/* ------------------------------------------------------------ files */

int dat_read_file(const char *path, uint8_t **buf, size_t *len, tr_err *err) {
    struct stat sb;
    gzFile gz = NULL;
    uint8_t *p = NULL;
    size_t n = 0, cap;
    int rc;
    if (stat(path, &sb) != 0) {
        rc = tr_seterr(err, errno == ENOENT ? TR_ENOTFOUND : TR_EIO, "", "%s: %s", path, strerror(errno));
        goto fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        rc = tr_seterr(err, TR_EINVAL, "", "%s: not a regular file", path);
        goto fail;
    }
    gz = gzopen(path, "rb");
    if (gz == NULL) {
        rc = tr_seterr(err, TR_EIO, "", "%s: %s", path, errno ? strerror(errno) : "cannot open");
        goto fail;
    }
    gzbuffer(gz, 1 << 17);
    cap = (size_t)sb.st_size + 1;
    if (cap < 4096) cap = 4096;
    if (cap > DAT_MAX_BYTES + 1) cap = DAT_MAX_BYTES + 1;
    p = malloc(cap);
    if (p == NULL) goto nomem;
    for (;;) {
        if (n == cap) {
            if (cap > DAT_MAX_BYTES) {
                rc = tr_seterr(err, TR_ELIMIT, "", "%s: more than %zu bytes (decompressed)", path, DAT_MAX_BYTES);
                goto fail;
            }
            size_t ncap = cap * 2 > DAT_MAX_BYTES + 1 ? DAT_MAX_BYTES + 1 : cap * 2;
            uint8_t *q = realloc(p, ncap);
            if (q == NULL) goto nomem;
            p = q;
            cap = ncap;
        }
        size_t want = cap - n;
        if (want > (1u << 30)) want = 1u << 30;
        int got = gzread(gz, p + n, (unsigned)want), zerr;
        /* a cut stream ends with Z_BUF_ERROR set and got == 0, not -1 */
        const char *msg = gzerror(gz, &zerr);
        if (got < 0 || (got == 0 && zerr != Z_OK)) {
            size_t pl = strlen(path);
            if (strncmp(msg, path, pl) == 0 && strncmp(msg + pl, ": ", 2) == 0) msg += pl + 2;
            rc = tr_seterr(err, zerr == Z_ERRNO ? TR_EIO : TR_EFORMAT, "", "%s: bad gzip data after %zu bytes: %s",
                           path, n, zerr == Z_ERRNO ? strerror(errno) : msg);
            goto fail;
        }
        if (got == 0) break;
        n += (size_t)got;
    }
    gzclose(gz);
    *buf = p;
    *len = n;
    return TR_OK;
nomem:
    rc = tr_seterr(err, TR_ENOMEM, "", "%s: out of memory reading the file", path);
fail:
    if (gz != NULL) gzclose(gz);
    free(p);
    return rc;
}

/* ------------------------------------------------------------ IDX */

typedef struct {
    uint8_t code;
    uint8_t size;
    const char *name;
    int integral;
    double max; /* raw_max */
} idx_type;

static const idx_type idx_types[] = {
    {0x08, 1, "ubyte", 1, 255.0}, {0x09, 1, "byte", 1, 127.0},  {0x0B, 2, "short", 1, 32767.0},
    {0x0C, 4, "int", 1, 0.0},     {0x0D, 4, "float", 0, 0.0},   {0x0E, 8, "double", 0, 0.0},
};

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* Element i of an IDX payload as double. */
static double idx_value(const idx_type *t, const uint8_t *p, size_t i) {
    p += i * t->size;
    switch (t->code) {
    case 0x08: return (double)p[0];
    case 0x09: return (double)(int8_t)p[0];
    case 0x0B: return (double)(int16_t)(uint16_t)((unsigned)p[0] << 8 | p[1]);
    case 0x0C: return (double)(int32_t)be32(p);
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
        return tr_seterr(err, TR_EFORMAT, "", "%s: IDX rank %d at byte offset 3 is not supported (1..3)", name, h->rank);
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
    const dat_opts *o = opts_or_default(opts, &tmp);
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
    apply_opts(d, o);
    *out = d;
    return TR_OK;
fail:
    dat_free(d);
    return rc;
}

/* ------------------------------------------------------------ text helpers */

/* Rows accumulated by the text parsers, grown geometrically. */
typedef struct {
    size_t n, cap, dim;
    float *x;
    int64_t *labels;
    char **ids;
    int with_ids;
} rowbuf;

static void rowbuf_free(rowbuf *r) {
    if (r->ids != NULL)
        for (size_t i = 0; i < r->n; i++) free(r->ids[i]);
    free(r->ids);
    free(r->x);
    free(r->labels);
    memset(r, 0, sizeof *r);
}

/* Room for one more row; the row's floats are at r->x + r->n * dim. */
static int rowbuf_grow(rowbuf *r, const char *name, tr_err *err) {
    if (r->n < r->cap) return TR_OK;
    size_t ncap = r->cap ? r->cap * 2 : 256, nv, bx;
    if (!tr_size_mul(ncap, r->dim, &nv) || nv > DAT_MAX_VALUES) {
        ncap = DAT_MAX_VALUES / r->dim;
        if (ncap <= r->n)
            return tr_seterr(err, TR_ELIMIT, "", "%s: more than %zu values (limit)", name, DAT_MAX_VALUES);
    }
    if (!tr_size_mul(ncap * r->dim, sizeof(float), &bx)) return tr_seterr(err, TR_ELIMIT, "", "%s: too big", name);
    float *x = realloc(r->x, bx);
    if (x == NULL) goto nomem;
    r->x = x;
    int64_t *l = realloc(r->labels, ncap * sizeof *l);
    if (l == NULL) goto nomem;
    r->labels = l;
    if (r->with_ids) {
        char **ids = realloc(r->ids, ncap * sizeof *ids);
        if (ids == NULL) goto nomem;
        r->ids = ids;
    }
    r->cap = ncap;
    return TR_OK;
nomem:
    return tr_seterr(err, TR_ENOMEM, "", "%s: out of memory after %zu rows", name, r->n);
}

/* Move the rows into a dataset (r is emptied). */
static int rowbuf_finish(rowbuf *r, const char *name, const dat_opts *o, dat_set **out, tr_err *err) {
    if (r->n == 0) {
        rowbuf_free(r);
        return tr_seterr(err, TR_EFORMAT, "", "%s: no data rows", name);
    }
    dat_set *d = calloc(1, sizeof *d);
    if (d == NULL) {
        rowbuf_free(r);
        return tr_seterr(err, TR_ENOMEM, "", "%s: out of memory", name);
    }
    d->n = r->n;
    d->dim = r->dim;
    d->x = r->x;
    d->labels = r->labels;
    d->ids = r->ids;
    d->pre_mean = 0.0;
    d->pre_scale = 1.0;
    snprintf(d->source, sizeof d->source, "%s", name);
    memset(r, 0, sizeof *r);
    apply_opts(d, o);
    *out = d;
    return TR_OK;
}

/* Parse s[0..len) (trimmed of spaces) as a finite number. 0 = ok,
 * -1 = not a number, -2 = not finite. */
static int parse_num(const char *s, size_t len, double *v) {
    char tmp[128];
    while (len > 0 && isspace((unsigned char)*s)) s++, len--;
    while (len > 0 && isspace((unsigned char)s[len - 1])) len--;
    if (len == 0 || len >= sizeof tmp) return -1;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    errno = 0;
    double x = strtod(tmp, &end);
    if (end != tmp + len) return -1;
    /* strtod accepts "nan", "inf", hex floats; refuse the non-finite ones */
    if (!tr_f32_ok(x)) return -2;
    *v = x;
    return 0;
}

/* A finite integral double in the exactly representable range. */
static int as_label(double v, int64_t *out) {
    if (v != floor(v) || fabs(v) > 9007199254740992.0) return -1;
    *out = (int64_t)v;
    return 0;
}

/* A field as a printable, bounded quote for error messages. */
static void quote_field(char *buf, size_t cap, const char *s, size_t len) {
    while (len > 0 && isspace((unsigned char)*s)) s++, len--;
    while (len > 0 && isspace((unsigned char)s[len - 1])) len--;
    size_t k = 0;
    for (size_t i = 0; i < len && k + 4 < cap; i++) buf[k++] = isprint((unsigned char)s[i]) ? s[i] : '?';
    if (len > 0 && k + 4 >= cap) buf[k++] = '.', buf[k++] = '.', buf[k++] = '.';
    buf[k] = '\0';
}

static char *dup_bounded(const char *s, size_t len) {
    char *p = malloc(len + 1);
    if (p == NULL) return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* The next line of text[*pos..len): start and length without "\n"/"\r\n". */
static int next_line(const char *text, size_t len, size_t *pos, const char **line, size_t *llen) {
    if (*pos >= len) return 0;
    const char *s = text + *pos;
    const char *nl = memchr(s, '\n', len - *pos);
    size_t l = nl ? (size_t)(nl - s) : len - *pos;
    *pos += l + (nl ? 1 : 0);
    if (l > 0 && s[l - 1] == '\r') l--;
    *line = s;
    *llen = l;
    return 1;
}

static int is_blank(const char *s, size_t len) {
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)s[i])) return 0;
    return 1;
}

/* ------------------------------------------------------------ CSV */

/* Split a line at commas into at most cap fields; returns the count (may
 * exceed cap: then only cap are stored). */
static size_t csv_split(const char *s, size_t len, const char **f, size_t *fl, size_t cap) {
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || s[i] == ',') {
            if (k < cap) {
                f[k] = s + start;
                fl[k] = i - start;
            }
            k++;
            start = i + 1;
        }
    }
    return k;
}

int dat_parse_csv(const char *text, size_t len, const char *name, const dat_opts *opts, dat_set **out, tr_err *err) {
    dat_opts tmp;
    const dat_opts *o = opts_or_default(opts, &tmp);
    rowbuf r = {0};
    const char **f = NULL;
    size_t *fl = NULL, ncols = 0, pos = 0, lineno = 0, header_line = 0, first_line = 0;
    int id_col = 0, rc;
    const char *line;
    size_t llen;
    char q[64];
    while (next_line(text, len, &pos, &line, &llen)) {
        lineno++;
        if (is_blank(line, llen)) continue;
        if (o->limit && r.n >= o->limit) break;
        if (ncols == 0) {
            /* first non-blank line: fixes the column count, maybe a header */
            size_t nf = csv_split(line, llen, NULL, NULL, 0);
            if (nf > DAT_MAX_DIM + 2) {
                rc = tr_seterr(err, TR_ELIMIT, "", "%s:%zu: %zu fields (limit %zu)", name, lineno, nf, DAT_MAX_DIM + 2);
                goto fail;
            }
            f = malloc(nf * sizeof *f);
            fl = malloc(nf * sizeof *fl);
            if (f == NULL || fl == NULL) goto nomem;
            csv_split(line, llen, f, fl, nf);
            ncols = nf;
            first_line = lineno;
            int header = 0;
            double v;
            for (size_t c = 0; c < nf; c++)
                if (parse_num(f[c], fl[c], &v) != 0) header = 1;
            if (header) {
                quote_field(q, sizeof q, f[0], fl[0]);
                id_col = strcasecmp(q, "id") == 0;
                header_line = lineno;
            }
            if (ncols < (size_t)(2 + id_col)) {
                rc = tr_seterr(err, TR_EFORMAT, "",
                               "%s:%zu: %zu field(s); need at least one feature and the label (last column)", name,
                               lineno, ncols);
                goto fail;
            }
            r.dim = ncols - 1 - (size_t)id_col;
            r.with_ids = id_col;
            if (header) continue;
        }
        size_t nf = csv_split(line, llen, f, fl, ncols);
        if (nf != ncols) {
            rc = tr_seterr(err, TR_EFORMAT, "", "%s:%zu: %zu fields, expected %zu (as on line %zu)", name, lineno, nf,
                           ncols, first_line);
            goto fail;
        }
        if ((rc = rowbuf_grow(&r, name, err)) != TR_OK) goto fail;
        float *row = r.x + r.n * r.dim;
        for (size_t c = (size_t)id_col; c < ncols; c++) {
            double v;
            int pr = parse_num(f[c], fl[c], &v);
            if (pr != 0) {
                quote_field(q, sizeof q, f[c], fl[c]);
                rc = tr_seterr(err, TR_EFORMAT, "", "%s:%zu, column %zu: \"%s\" is not a %s", name, lineno, c + 1, q,
                               pr == -2 ? "finite number" : "number");
                goto fail;
            }
            if (c + 1 < ncols) {
                row[c - (size_t)id_col] = (float)v;
            } else if (as_label(v, &r.labels[r.n]) != 0) {
                quote_field(q, sizeof q, f[c], fl[c]);
                rc = tr_seterr(err, TR_EFORMAT, "", "%s:%zu, column %zu: label \"%s\" is not an integer", name, lineno,
                               c + 1, q);
                goto fail;
            }
        }
        if (id_col) {
            const char *s = f[0];
            size_t l = fl[0];
            while (l > 0 && isspace((unsigned char)*s)) s++, l--;
            while (l > 0 && isspace((unsigned char)s[l - 1])) l--;
            if (l == 0 || l >= DAT_MAX_ID) {
                rc = tr_seterr(err, TR_EFORMAT, "", "%s:%zu, column 1: id is empty or longer than %d bytes", name,
                               lineno, DAT_MAX_ID - 1);
                goto fail;
            }
            if (memchr(s, '\0', l) != NULL) {
                rc = tr_seterr(err, TR_EFORMAT, "", "%s:%zu, column 1: id contains a NUL byte", name, lineno);
                goto fail;
            }
            if ((r.ids[r.n] = dup_bounded(s, l)) == NULL) goto nomem;
        }
        r.n++;
    }
    (void)header_line;
    free(f);
    free(fl);
    return rowbuf_finish(&r, name, o, out, err);
nomem:
    rc = tr_seterr(err, TR_ENOMEM, "", "%s: out of memory at line %zu", name, lineno);
fail:
    free(f);
    free(fl);
    rowbuf_free(&r);
    return rc;
}

/* ------------------------------------------------------------ JSON lines */

int dat_parse_jsonl(const char *text, size_t len, const char *name, const dat_opts *opts, dat_set **out,
                    tr_err *err) {
    dat_opts tmp;
    const dat_opts *o = opts_or_default(opts, &tmp);
    rowbuf r = {0};
    cJSON *j = NULL;
    size_t pos = 0, lineno = 0, first_line = 0;
    int rc;
    const char *line;
    size_t llen;
    while (next_line(text, len, &pos, &line, &llen)) {
        lineno++;
        if (is_blank(line, llen)) continue;
        if (o->limit && r.n >= o->limit) break;
        const char *end = NULL;
        j = cJSON_ParseWithLengthOpts(line, llen, &end, 0);
        if (j == NULL) {
            size_t col = end != NULL && end >= line && end <= line + llen ? (size_t)(end - line) + 1 : 1;
            rc = tr_seterr(err, TR_EFORMAT, "", "%s:%zu, column %zu: invalid JSON", name, lineno, col);
            goto fail;
        }
        while (end < line + llen && isspace((unsigned char)*end)) end++;
        if (end < line + llen) {
            rc = tr_seterr(err, TR_EFORMAT, "", "%s:%zu, column %zu: text after the JSON value", name, lineno,
                           (size_t)(end - line) + 1);
            goto fail;
        }
        if (!cJSON_IsObject(j)) {
            rc = tr_seterr(err, TR_EFORMAT, "", "%s:%zu: expected an object {\"x\": [...], \"label\": L}", name, lineno);
            goto fail;
        }
        const char *key = "x";
        cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "x");
        if (x == NULL) x = cJSON_GetObjectItemCaseSensitive(j, key = "features");
        if (!cJSON_IsArray(x)) {
            rc = tr_seterr(err, TR_EFORMAT, x ? key : "x", "%s:%zu: %s", name, lineno,
                           x ? "\"features\" is not an array" : "missing \"x\" (an array of numbers)");
            goto fail;
        }
        size_t nx = (size_t)cJSON_GetArraySize(x);
        cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
        if (r.dim == 0) {
            if (nx == 0 || nx > DAT_MAX_DIM) {
                rc = tr_seterr(err, nx ? TR_ELIMIT : TR_EFORMAT, key, "%s:%zu: \"%s\" has %zu numbers (limit 1..%zu)",
                               name, lineno, key, nx, DAT_MAX_DIM);
                goto fail;
            }
            r.dim = nx;
            r.with_ids = id != NULL;
            first_line = lineno;
        } else if (nx != r.dim) {
            rc = tr_seterr(err, TR_EFORMAT, key, "%s:%zu: \"%s\" has %zu numbers, expected %zu (as on line %zu)", name,
                           lineno, key, nx, r.dim, first_line);
            goto fail;
        }
        if ((id != NULL) != r.with_ids) {
            rc = tr_seterr(err, TR_EFORMAT, "id", "%s:%zu: %s \"id\" (line %zu %s one)", name, lineno,
                           id ? "unexpected" : "missing", first_line, id ? "had no" : "had");
            goto fail;
        }
        if ((rc = rowbuf_grow(&r, name, err)) != TR_OK) goto fail;
        float *row = r.x + r.n * r.dim;
        size_t c = 0;
        const cJSON *e;
        cJSON_ArrayForEach(e, x) {
            if (!cJSON_IsNumber(e) || !tr_f32_ok(e->valuedouble)) {
                char field[48];
                snprintf(field, sizeof field, "%s[%zu]", key, c);
                rc = tr_seterr(err, TR_EFORMAT, field, "%s:%zu: %s is not a finite number", name, lineno, field);
                goto fail;
            }
            row[c++] = (float)e->valuedouble;
        }
        cJSON *lab = cJSON_GetObjectItemCaseSensitive(j, "label");
        if (lab == NULL || !cJSON_IsNumber(lab) || as_label(lab->valuedouble, &r.labels[r.n]) != 0) {
            rc = tr_seterr(err, TR_EFORMAT, "label", "%s:%zu: %s", name, lineno,
                           lab ? "\"label\" is not an integer" : "missing \"label\"");
            goto fail;
        }
        if (id != NULL) {
            char buf[DAT_MAX_ID];
            if (cJSON_IsString(id) && id->valuestring[0] != '\0' && strlen(id->valuestring) < DAT_MAX_ID) {
                snprintf(buf, sizeof buf, "%s", id->valuestring);
            } else if (cJSON_IsNumber(id) && id->valuedouble == floor(id->valuedouble) &&
                       fabs(id->valuedouble) <= 9007199254740992.0) {
                snprintf(buf, sizeof buf, "%.0f", id->valuedouble);
            } else {
                rc = tr_seterr(err, TR_EFORMAT, "id", "%s:%zu: \"id\" must be a non-empty string (< %d bytes) or an integer",
                               name, lineno, DAT_MAX_ID);
                goto fail;
            }
            if ((r.ids[r.n] = dup_bounded(buf, strlen(buf))) == NULL) {
                rc = tr_seterr(err, TR_ENOMEM, "", "%s: out of memory at line %zu", name, lineno);
                goto fail;
            }
        }
        r.n++;
        cJSON_Delete(j);
        j = NULL;
    }
    return rowbuf_finish(&r, name, o, out, err);
fail:
    cJSON_Delete(j);
    rowbuf_free(&r);
    return rc;
}

/* ------------------------------------------------------------ dat_load */

static int is_file(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int ends_with(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcasecmp(s + a - b, suffix) == 0;
}

/* Find PREFIX + one of the pattern suffixes (+ optional ".gz") -> path. */
static int find_with_suffix(const char *prefix, const char *const *suffixes, size_t ns, char *path, size_t cap) {
    static const char *const gz[] = {"", ".gz"};
    for (size_t i = 0; i < ns; i++)
        for (size_t g = 0; g < 2; g++) {
            int k = snprintf(path, cap, "%s%s%s", prefix, suffixes[i], gz[g]);
            if (k > 0 && (size_t)k < cap && is_file(path)) return 1;
        }
    return 0;
}

static const char *const img_suffixes[] = {"-images-idx3-ubyte", "-images.idx3-ubyte"};
static const char *const lab_suffixes[] = {"-labels-idx1-ubyte", "-labels.idx1-ubyte"};

/* Replace the first occurrence of a by b in s, into out; 0 if absent. */
static int replace_once(const char *s, const char *a, const char *b, char *out, size_t cap) {
    const char *p = strstr(s, a);
    if (p == NULL) return 0;
    int k = snprintf(out, cap, "%.*s%s%s", (int)(p - s), s, b, p + strlen(a));
    return k > 0 && (size_t)k < cap;
}

static int load_idx_pair(const char *img_path, const char *lab_path, const dat_opts *o, dat_set **out, tr_err *err) {
    uint8_t *ib = NULL, *lb = NULL;
    size_t il, ll;
    int rc = dat_read_file(img_path, &ib, &il, err);
    if (rc == TR_OK) rc = dat_read_file(lab_path, &lb, &ll, err);
    if (rc == TR_OK) rc = dat_parse_idx(ib, il, img_path, lb, ll, lab_path, o, out, err);
    free(ib);
    free(lb);
    return rc;
}

/* Labels file next to an IDX images file, by name. */
static int idx_labels_for(const char *img, char *lab, size_t cap) {
    char a[1024], b[1024];
    const char *base = strrchr(img, '/'), *s;
    base = base ? base + 1 : img; /* rename the file, never a directory */
    s = base;
    if (replace_once(s, "images", "labels", a, sizeof a)) s = a;
    if (replace_once(s, "idx3", "idx1", b, sizeof b)) s = b;
    if (strcmp(s, base) == 0) return 0;
    int k = snprintf(lab, cap, "%.*s%s", (int)(base - img), img, s);
    if (k < 0 || (size_t)k >= cap) return 0;
    if (is_file(lab)) return 1;
    /* the other compression state */
    size_t l = strlen(lab);
    if (ends_with(lab, ".gz")) {
        lab[l - 3] = '\0';
    } else if (l + 4 <= cap) {
        memcpy(lab + l, ".gz", 4);
    }
    return is_file(lab);
}

int dat_load(const char *spec, const dat_opts *opts, dat_set **out, tr_err *err) {
    dat_opts tmp;
    const dat_opts *o = opts_or_default(opts, &tmp);
    char img[1024], lab[1024], prefix[1024];
    uint8_t *buf = NULL;
    size_t len;
    int rc;
    struct stat sb;
    if (spec == NULL || spec[0] == '\0') return tr_seterr(err, TR_EINVAL, "data", "no data given");
    const char *split = o->split && o->split[0] ? o->split : "train";
    dat_format fmt = o->format;
    int exists = stat(spec, &sb) == 0;
    if (exists && S_ISDIR(sb.st_mode)) {
        /* a directory of IDX pairs; "test" also finds MNIST's "t10k" */
        const char *splits[2] = {strcmp(split, "test") == 0 ? "t10k" : split, split};
        for (int s = 0; s < 2; s++) {
            snprintf(prefix, sizeof prefix, "%s/%s", spec, splits[s]);
            if (find_with_suffix(prefix, img_suffixes, 2, img, sizeof img)) {
                if (!find_with_suffix(prefix, lab_suffixes, 2, lab, sizeof lab))
                    return tr_seterr(err, TR_ENOTFOUND, "data", "%s: has %s but no %s-labels-idx1-ubyte[.gz]", spec,
                                     img, prefix);
                return load_idx_pair(img, lab, o, out, err);
            }
        }
        return tr_seterr(err, TR_ENOTFOUND, "data", "%s: no IDX files for split \"%s\" (%s-images-idx3-ubyte[.gz])",
                         spec, split, splits[0]);
    }
    if (!exists) {
        /* an IDX prefix like "dir/train" */
        if (find_with_suffix(spec, img_suffixes, 2, img, sizeof img)) {
            if (!find_with_suffix(spec, lab_suffixes, 2, lab, sizeof lab))
                return tr_seterr(err, TR_ENOTFOUND, "data", "%s: has %s but no labels file %s-labels-idx1-ubyte[.gz]",
                                 spec, img, spec);
            return load_idx_pair(img, lab, o, out, err);
        }
        return tr_seterr(err, TR_ENOTFOUND, "data", "%s: %s (nor an IDX prefix with %s-images-idx3-ubyte[.gz])", spec,
                         strerror(errno), spec);
    }
    if (fmt == DAT_AUTO) {
        if (ends_with(spec, ".csv") || ends_with(spec, ".csv.gz"))
            fmt = DAT_CSV;
        else if (ends_with(spec, ".jsonl") || ends_with(spec, ".jsonl.gz") || ends_with(spec, ".ndjson") ||
                 ends_with(spec, ".ndjson.gz"))
            fmt = DAT_JSONL;
        else if (strstr(spec, "idx") != NULL)
            fmt = DAT_IDX;
        else
            return tr_seterr(err, TR_EINVAL, "data",
                             "%s: unknown data format (expected a directory or prefix of IDX files, an IDX images "
                             "file, .csv[.gz] or .jsonl[.gz])",
                             spec);
    }
    if (fmt == DAT_IDX) {
        if (!idx_labels_for(spec, lab, sizeof lab))
            return tr_seterr(err, TR_ENOTFOUND, "data", "%s: no labels file next to it (images->labels, idx3->idx1)",
                             spec);
        return load_idx_pair(spec, lab, o, out, err);
    }
    if ((rc = dat_read_file(spec, &buf, &len, err)) != TR_OK) return rc;
    if (fmt == DAT_CSV)
        rc = dat_parse_csv((const char *)buf, len, spec, o, out, err);
    else
        rc = dat_parse_jsonl((const char *)buf, len, spec, o, out, err);
    free(buf);
    return rc;
}

/* ------------------------------------------------------------ default dataset */

/* Where the Debian package dataset-fashion-mnist installs the files, then
 * the same under /usr/local and the repository's own data/ folder. */
static const char *const default_dirs[] = {
    "/usr/share/datasets/fashion-mnist",
    "/usr/local/share/datasets/fashion-mnist",
    "data/fashion-mnist",
};

size_t dat_default_dirs(const char *dir, const char **dirs, size_t cap) {
    if (dir != NULL && dir[0] != '\0') {
        if (cap > 0) dirs[0] = dir;
        return 1;
    }
    size_t n = sizeof default_dirs / sizeof default_dirs[0];
    for (size_t i = 0; i < n && i < cap; i++) dirs[i] = default_dirs[i];
    return n;
}

int dat_find_default(const char *dir, char *path, size_t cap, tr_err *err) {
    const char *dirs[8];
    char prefix[1024], probe[1100], searched[768] = "";
    size_t n = dat_default_dirs(dir, dirs, 8), used = 0;
    if (n > 8) n = 8;
    for (size_t i = 0; i < n; i++) {
        snprintf(prefix, sizeof prefix, "%s/train", dirs[i]);
        if (find_with_suffix(prefix, img_suffixes, 2, probe, sizeof probe)) {
            if (snprintf(path, cap, "%s", dirs[i]) >= (int)cap)
                return tr_seterr(err, TR_ELIMIT, "data", "dataset path too long: %s", dirs[i]);
            return TR_OK;
        }
        int k = snprintf(searched + used, sizeof searched - used, "%s%s", i ? ", " : "", dirs[i]);
        if (k > 0 && used + (size_t)k < sizeof searched) used += (size_t)k;
    }
    return tr_seterr(err, TR_ENOTFOUND, "data",
                     "no Fashion-MNIST IDX files (train-images-idx3-ubyte[.gz]) in %s; give --data, set TRIPLET_DATA, "
                     "or apt-get install dataset-fashion-mnist",
                     searched);
}

/* ------------------------------------------------------------ subsets */

/* A new dataset of the rows with sel[i] != 0 of d (count of them: m). */
static int dat_select(const dat_set *d, const unsigned char *sel, size_t m, dat_set **out, tr_err *err) {
    dat_set *s = NULL;
    int rc = dat_alloc(m, d->dim, d->ids != NULL, d->source, &s, err);
    if (rc != TR_OK) return rc;
    size_t k = 0;
    for (size_t i = 0; i < d->n; i++) {
        if (!sel[i]) continue;
        memcpy(s->x + k * d->dim, d->x + i * d->dim, d->dim * sizeof(float));
        s->labels[k] = d->labels[i];
        if (d->ids != NULL && (s->ids[k] = dup_bounded(d->ids[i], strlen(d->ids[i]))) == NULL) {
            s->n = k;
            dat_free(s);
            return tr_seterr(err, TR_ENOMEM, "", "%s: out of memory", d->source);
        }
        k++;
    }
    s->pre_mean = d->pre_mean;
    s->pre_scale = d->pre_scale;
    s->raw_max = d->raw_max;
    s->height = d->height;
    s->width = d->width;
    *out = s;
    return TR_OK;
}

int dat_filter_classes(const dat_set *d, const int64_t *classes, size_t nc, int keep, dat_set **out, tr_err *err) {
    unsigned char *sel = malloc(d->n ? d->n : 1);
    size_t m = 0;
    int rc;
    if (sel == NULL) return tr_seterr(err, TR_ENOMEM, "", "out of memory");
    for (size_t i = 0; i < d->n; i++) {
        int hit = 0;
        for (size_t c = 0; c < nc; c++) hit |= d->labels[i] == classes[c];
        sel[i] = (unsigned char)(keep ? hit : !hit);
        m += sel[i];
    }
    if (m == 0)
        rc = tr_seterr(err, TR_EINVAL, "classes", "%s: no rows %s the %zu given class(es)", d->source,
                       keep ? "with" : "outside", nc);
    else
        rc = dat_select(d, sel, m, out, err);
    free(sel);
    return rc;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int dat_classes(const dat_set *d, int64_t **classes, size_t **counts, size_t *n_classes, tr_err *err) {
    int64_t *s = malloc((d->n ? d->n : 1) * sizeof *s);
    size_t *cnt = NULL, k = 0;
    if (s == NULL) goto nomem;
    memcpy(s, d->labels, d->n * sizeof *s);
    qsort(s, d->n, sizeof *s, cmp_i64);
    cnt = calloc(d->n ? d->n : 1, sizeof *cnt);
    if (cnt == NULL) goto nomem;
    for (size_t i = 0; i < d->n; i++) {
        if (k == 0 || s[k - 1] != s[i]) s[k++] = s[i];
        cnt[k - 1]++;
    }
    *classes = s;
    *n_classes = k;
    if (counts != NULL)
        *counts = cnt;
    else
        free(cnt);
    return TR_OK;
nomem:
    free(s);
    free(cnt);
    return tr_seterr(err, TR_ENOMEM, "", "out of memory");
}

int dat_split_holdout(const dat_set *d, double frac, uint64_t seed, dat_set **train, dat_set **test, tr_err *err) {
    int64_t *classes = NULL;
    size_t *counts = NULL, nc = 0, *idx = NULL, m = 0;
    unsigned char *sel = NULL;
    int rc;
    if (!(frac > 0.0 && frac < 1.0))
        return tr_seterr(err, TR_EINVAL, "test_fraction", "test fraction %g is not in (0, 1)", frac);
    if ((rc = dat_classes(d, &classes, &counts, &nc, err)) != TR_OK) return rc;
    sel = calloc(d->n ? d->n : 1, 1);
    idx = malloc((d->n ? d->n : 1) * sizeof *idx);
    if (sel == NULL || idx == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "", "out of memory");
        goto done;
    }
    uint64_t state = seed;
    for (size_t c = 0; c < nc; c++) {
        size_t k = 0;
        for (size_t i = 0; i < d->n; i++)
            if (d->labels[i] == classes[c]) idx[k++] = i;
        for (size_t i = k; i > 1; i--) { /* Fisher-Yates */
            size_t j = (size_t)(rng_splitmix64(&state) % i);
            size_t t = idx[i - 1];
            idx[i - 1] = idx[j];
            idx[j] = t;
        }
        size_t take = (size_t)floor(frac * (double)k + 0.5);
        if (k >= 2 && take == 0) take = 1;
        if (k >= 2 && take >= k) take = k - 1;
        if (k < 2) take = 0;
        for (size_t i = 0; i < take; i++) sel[idx[i]] = 1;
        m += take;
    }
    if (m == 0 || m == d->n) {
        rc = tr_seterr(err, TR_EINVAL, "test_fraction", "%s: a %g split leaves an empty side", d->source, frac);
        goto done;
    }
    if ((rc = dat_select(d, sel, m, test, err)) != TR_OK) goto done;
    for (size_t i = 0; i < d->n; i++) sel[i] = !sel[i];
    if ((rc = dat_select(d, sel, d->n - m, train, err)) != TR_OK) {
        dat_free(*test);
        *test = NULL;
    }
done:
    free(classes);
    free(counts);
    free(idx);
    free(sel);
    return rc;
}
