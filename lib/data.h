/* data.h - labelled datasets: IDX (gzip or raw), CSV and JSON-lines readers. */
#ifndef DATA_H
#define DATA_H

#include <stddef.h>
#include <stdint.h>

#include "tr_err.h"

#define DAT_MAX_BYTES ((size_t)4 << 30)  /* decompressed bytes of one file */
#define DAT_MAX_VALUES ((size_t)1 << 30) /* n * dim floats in one dataset */
#define DAT_MAX_DIM ((size_t)1 << 20)    /* features per row */
#define DAT_MAX_ID 256                   /* bytes of one id, NUL included */

/* A dataset: n rows of dim float32 features with an int64 label each.
 * x' = (raw - pre_mean) * pre_scale was applied at load (0 and 1 when the
 * data are raw), so a model trained on x' can record the same
 * preprocessing as input.mean / input.scale and take raw inputs. */
typedef struct {
    size_t n, dim;
    float *x;        /* n x dim, row-major */
    int64_t *labels; /* n */
    char **ids;      /* n strings, or NULL when the source had no ids */
    double pre_mean; /* preprocessing applied to x (see above) */
    double pre_scale;
    double raw_max;    /* largest value the source format can hold (255 for
                          IDX ubyte), 0 when unbounded (CSV, JSON lines) */
    int height, width; /* image shape for IDX rank-3 data, else 0 */
    char source[512];  /* what was read: "dir/train-images-idx3-ubyte.gz" */
} dat_set;

typedef enum { DAT_AUTO, DAT_IDX, DAT_CSV, DAT_JSONL } dat_format;

typedef struct {
    const char *split; /* IDX directory/prefix split: "train" (default),
                          "test" (= "t10k") or any file prefix */
    int scale;         /* 0: raw values (default); 1: x / 255 (records
                          pre_scale = 1/255) */
    size_t limit;      /* keep only the first limit rows (0: all) */
    dat_format format; /* DAT_AUTO: from the spec (see dat_load) */
} dat_opts;

/* Default options: split "train", raw, no limit, DAT_AUTO. */
void dat_opts_default(dat_opts *o);

/* Load a dataset. spec is one of
 *   a directory holding IDX pairs  SPLIT-images-idx3-ubyte[.gz] and
 *                                  SPLIT-labels-idx1-ubyte[.gz]
 *                                  (also SPLIT-images.idx3-ubyte),
 *   an IDX prefix "dir/train"     (the same names with that prefix),
 *   an IDX images file            (labels found by name: images->labels,
 *                                  idx3->idx1),
 *   NAME.csv[.gz]                 (CSV, see dat_parse_csv),
 *   NAME.jsonl[.gz] / .ndjson     (JSON lines, see dat_parse_jsonl).
 * opts may be NULL (defaults). *out is the caller's (dat_free). Errors
 * name the file and the line or byte offset. */
int dat_load(const char *spec, const dat_opts *opts, dat_set **out, tr_err *err);
void dat_free(dat_set *d); /* NULL is a no-op */

/* Read a whole file, gunzipping it when it starts with the gzip magic.
 * *buf is malloc'd (caller frees), at most DAT_MAX_BYTES. */
int dat_read_file(const char *path, uint8_t **buf, size_t *len, tr_err *err);

/* Parsers over bytes already in memory; name is used in error messages.
 * IDX: images of any rank >= 1 (row = product of the trailing dims) and
 * rank-1 labels; element types ubyte, byte, short, int, float, double
 * (big-endian, as the format says); labels must be integers; counts must
 * match and the payload must be exactly the size the header announces. */
int dat_parse_idx(const uint8_t *img, size_t img_len, const char *img_name, const uint8_t *lab, size_t lab_len,
                  const char *lab_name, const dat_opts *opts, dat_set **out, tr_err *err);
/* CSV: comma-separated numbers, label (an integer) in the last column, one
 * row per line, every row the same number of fields. The first line is a
 * header when any of its fields is not a number; a header whose first
 * column is "id" makes that column a string id. Blank lines, CRLF and
 * spaces around fields are accepted; nan/inf are not. */
int dat_parse_csv(const char *text, size_t len, const char *name, const dat_opts *opts, dat_set **out, tr_err *err);
/* JSON lines: one object per non-blank line,
 *   {"x": [numbers...], "label": integer, "id": "optional"}
 * ("features" is accepted for "x"; id may be a string or an integer);
 * every row the same length. */
int dat_parse_jsonl(const char *text, size_t len, const char *name, const dat_opts *opts, dat_set **out, tr_err *err);

/* Directories searched for the default dataset (Fashion-MNIST), in order:
 * dir when not NULL or empty (then only it; the CLI passes $TRIPLET_DATA),
 * else the Debian package dataset-fashion-mnist's location and its usual
 * alternatives. Fills at most cap entries of dirs and returns how many
 * there are in all. */
size_t dat_default_dirs(const char *dir, const char **dirs, size_t cap);
/* First of dat_default_dirs(dir) holding train-images-idx3-ubyte[.gz],
 * copied into path. TR_ENOTFOUND listing what was searched (and suggesting
 * `--data` / `apt-get install dataset-fashion-mnist`). */
int dat_find_default(const char *dir, char *path, size_t cap, tr_err *err);

/* A new dataset with the rows of d whose label is one of classes[0..nc)
 * (ids and preprocessing kept, order kept). keep = 0 inverts the test
 * (rows whose label is none of them). Empty result: TR_EINVAL. */
int dat_filter_classes(const dat_set *d, const int64_t *classes, size_t nc, int keep, dat_set **out, tr_err *err);

/* Deterministic stratified split: from every class, round(frac * count)
 * rows (at least 1 when the class has 2 or more) go to *test, the rest to
 * *train, chosen by a seeded shuffle. For CSV/JSON-lines data without a
 * separate test file. */
int dat_split_holdout(const dat_set *d, double frac, uint64_t seed, dat_set **train, dat_set **test, tr_err *err);

/* Distinct labels of d, ascending, into *classes (malloc'd, caller frees)
 * and their row counts into *counts (may be NULL). */
int dat_classes(const dat_set *d, int64_t **classes, size_t **counts, size_t *n_classes, tr_err *err);

/* Apply x' = (x - mean) * scale to every value and record it. */
void dat_preprocess(dat_set *d, double mean, double scale);

#endif
