/* data.c - labelled datasets: the dataset object, file reading, dat_load by name, the default dataset, subsets. */
#include "data_impl.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <zlib.h>

#include "rng.h"

void dat_opts_default(dat_opts *o) {
    o->split = "train";
    o->scale = 0;
    o->limit = 0;
    o->format = DAT_AUTO;
}

const dat_opts *dat_opts_or_default(const dat_opts *o, dat_opts *tmp) {
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
int dat_alloc(size_t n, size_t dim, int with_ids, const char *name, dat_set **out, tr_err *err) {
    size_t nv, bx, bl, bi;
    dat_set *d = NULL;
    if (dim == 0 || dim > DAT_MAX_DIM)
        return tr_seterr(err, dim == 0 ? TR_EFORMAT : TR_ELIMIT, "", "%s: %zu features per row (limit 1..%zu)", name,
                         dim, DAT_MAX_DIM);
    if (!tr_size_mul(n, dim, &nv) || nv > DAT_MAX_VALUES)
        return tr_seterr(err, TR_ELIMIT, "", "%s: %zu rows x %zu features is over the limit of %zu values", name, n,
                         dim, DAT_MAX_VALUES);
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

void dat_apply_opts(dat_set *d, const dat_opts *o) {
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
    const dat_opts *o = dat_opts_or_default(opts, &tmp);
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
        if (d->ids != NULL && (s->ids[k] = strdup(d->ids[i])) == NULL) {
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
