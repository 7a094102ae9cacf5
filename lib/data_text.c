/* data_text.c - the text formats: CSV and JSON lines, one labelled row per line. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "data_impl.h"

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
    dat_apply_opts(d, o);
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

/* One CSV data row (ncols fields f/fl) appended to r: features, the label
 * (last column) and the id (first column when id_col). */
static int csv_row(rowbuf *r, const char **f, const size_t *fl, size_t ncols, int id_col, const char *name,
                   size_t lineno, tr_err *err) {
    float *row = r->x + r->n * r->dim;
    for (size_t c = (size_t)id_col; c < ncols; c++) {
        double v;
        int pr = parse_num(f[c], fl[c], &v);
        if (pr != 0) {
            /* the cell's text is not repeated: errors never echo a file's bytes */
            return tr_seterr(err, TR_EFORMAT, "", "%s:%zu, column %zu: not a %s", name, lineno, c + 1,
                             pr == -2 ? "finite number" : "number");
        }
        if (c + 1 < ncols) {
            row[c - (size_t)id_col] = (float)v;
        } else if (as_label(v, &r->labels[r->n]) != 0) {
            return tr_seterr(err, TR_EFORMAT, "", "%s:%zu, column %zu: the label is not an integer", name, lineno,
                             c + 1);
        }
    }
    if (id_col) {
        const char *s = f[0];
        size_t l = fl[0];
        while (l > 0 && isspace((unsigned char)*s)) s++, l--;
        while (l > 0 && isspace((unsigned char)s[l - 1])) l--;
        if (l == 0 || l >= DAT_MAX_ID) {
            return tr_seterr(err, TR_EFORMAT, "", "%s:%zu, column 1: id is empty or longer than %d bytes", name, lineno,
                             DAT_MAX_ID - 1);
        }
        if (memchr(s, '\0', l) != NULL) {
            return tr_seterr(err, TR_EFORMAT, "", "%s:%zu, column 1: id contains a NUL byte", name, lineno);
        }
        if ((r->ids[r->n] = dup_bounded(s, l)) == NULL)
            return tr_seterr(err, TR_ENOMEM, "", "%s: out of memory at line %zu", name, lineno);
    }
    return TR_OK;
}

int dat_parse_csv(const char *text, size_t len, const char *name, const dat_opts *opts, dat_set **out, tr_err *err) {
    dat_opts tmp;
    const dat_opts *o = dat_opts_or_default(opts, &tmp);
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
        if ((rc = csv_row(&r, f, fl, ncols, id_col, name, lineno, err)) != TR_OK) goto fail;
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

/* The row's "id" (a string or an integer) into r->ids[r->n]. */
static int jsonl_id(rowbuf *r, const cJSON *id, const char *name, size_t lineno, tr_err *err) {
    char buf[DAT_MAX_ID];
    if (cJSON_IsString(id) && id->valuestring[0] != '\0' && strlen(id->valuestring) < DAT_MAX_ID) {
        snprintf(buf, sizeof buf, "%s", id->valuestring);
    } else if (cJSON_IsNumber(id) && id->valuedouble == floor(id->valuedouble) &&
               fabs(id->valuedouble) <= 9007199254740992.0) {
        snprintf(buf, sizeof buf, "%.0f", id->valuedouble);
    } else
        return tr_seterr(err, TR_EFORMAT, "id", "%s:%zu: \"id\" must be a non-empty string (< %d bytes) or an integer",
                         name, lineno, DAT_MAX_ID);
    if ((r->ids[r->n] = dup_bounded(buf, strlen(buf))) == NULL)
        return tr_seterr(err, TR_ENOMEM, "", "%s: out of memory at line %zu", name, lineno);
    return TR_OK;
}

/* One JSON-lines object {"x"|"features": [...], "label": L, "id"?} into the
 * next row of r (r->n is not advanced); the first row fixes dim and ids. */
static int jsonl_row(rowbuf *r, const cJSON *j, const char *name, size_t lineno, size_t *first_line, tr_err *err) {
    int rc;
    const char *key = "x";
    cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "x");
    if (x == NULL) x = cJSON_GetObjectItemCaseSensitive(j, key = "features");
    if (!cJSON_IsArray(x))
        return tr_seterr(err, TR_EFORMAT, x ? key : "x", "%s:%zu: %s", name, lineno,
                         x ? "\"features\" is not an array" : "missing \"x\" (an array of numbers)");
    size_t nx = (size_t)cJSON_GetArraySize(x);
    cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "id");
    if (r->dim == 0) {
        if (nx == 0 || nx > DAT_MAX_DIM)
            return tr_seterr(err, nx ? TR_ELIMIT : TR_EFORMAT, key, "%s:%zu: \"%s\" has %zu numbers (limit 1..%zu)",
                             name, lineno, key, nx, DAT_MAX_DIM);
        r->dim = nx;
        r->with_ids = id != NULL;
        *first_line = lineno;
    } else if (nx != r->dim)
        return tr_seterr(err, TR_EFORMAT, key, "%s:%zu: \"%s\" has %zu numbers, expected %zu (as on line %zu)", name,
                         lineno, key, nx, r->dim, *first_line);
    if ((id != NULL) != r->with_ids)
        return tr_seterr(err, TR_EFORMAT, "id", "%s:%zu: %s \"id\" (line %zu %s one)", name, lineno,
                         id ? "unexpected" : "missing", *first_line, id ? "had no" : "had");
    if ((rc = rowbuf_grow(r, name, err)) != TR_OK) return rc;
    float *row = r->x + r->n * r->dim;
    size_t c = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, x) {
        if (!cJSON_IsNumber(e) || !tr_f32_ok(e->valuedouble)) {
            char field[48];
            snprintf(field, sizeof field, "%s[%zu]", key, c);
            rc = tr_seterr(err, TR_EFORMAT, field, "%s:%zu: %s is not a finite number", name, lineno, field);
            return rc;
        }
        row[c++] = (float)e->valuedouble;
    }
    cJSON *lab = cJSON_GetObjectItemCaseSensitive(j, "label");
    if (lab == NULL || !cJSON_IsNumber(lab) || as_label(lab->valuedouble, &r->labels[r->n]) != 0)
        return tr_seterr(err, TR_EFORMAT, "label", "%s:%zu: %s", name, lineno,
                         lab ? "\"label\" is not an integer" : "missing \"label\"");
    return id ? jsonl_id(r, id, name, lineno, err) : TR_OK;
}

int dat_parse_jsonl(const char *text, size_t len, const char *name, const dat_opts *opts, dat_set **out, tr_err *err) {
    dat_opts tmp;
    const dat_opts *o = dat_opts_or_default(opts, &tmp);
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
            rc =
                tr_seterr(err, TR_EFORMAT, "", "%s:%zu: expected an object {\"x\": [...], \"label\": L}", name, lineno);
            goto fail;
        }
        if ((rc = jsonl_row(&r, j, name, lineno, &first_line, err)) != TR_OK) goto fail;
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
