/* tr_err.h - status codes and the error record every libtriplet call fills. */
#ifndef TR_ERR_H
#define TR_ERR_H

#include <stddef.h>
#include <stdint.h>

/* Library status codes: 0 is success, failures are negative. */
typedef enum {
    TR_OK = 0,
    TR_EINVAL = -1,    /* bad argument or input value (caller's mistake) */
    TR_EFORMAT = -2,   /* malformed file or data */
    TR_ELIMIT = -3,    /* a size or count is over a limit */
    TR_EDIM = -4,      /* dimensions do not match */
    TR_ENOMEM = -5,    /* allocation failed */
    TR_EIO = -6,       /* read/write/open failed */
    TR_ENOTFOUND = -7, /* a named thing does not exist */
    TR_EINTERNAL = -8  /* our own bug */
} tr_status;

/* Caller-owned error record. `field` names the culprit when there is one
 * (a tensor name, a JSON path like "anchors[3]"), else it is "". */
typedef struct {
    int code;
    char field[128];
    char msg[2048]; /* room for a refusal that lists the supported ONNX ops, behind a file name */
} tr_err;

/* Set err (may be NULL) and return code. The message is printf-formatted. */
int tr_seterr(tr_err *err, int code, const char *field, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Clear err to TR_OK / empty strings. */
void tr_clearerr(tr_err *err);
/* Short name of a status ("invalid input", "bad format", ...). */
const char *tr_strerror(int code);

/* Overflow-checked size arithmetic: return 1 and store the result when it
 * fits in size_t, else return 0. */
int tr_size_mul(size_t a, size_t b, size_t *out);
int tr_size_add(size_t a, size_t b, size_t *out);

/* 1 when d is a float32 value: finite and, rounded to the nearest float,
 * not infinite (so FLT_MAX printed as 3.4028235e38 passes, 1e39 does not).
 * The one range check for numbers read from JSON, CSV, IDX and requests. */
int tr_f32_ok(double d);

/* Lowercase hex SHA-256 of len bytes into hex[65] (file and gallery
 * digests). TR_OK or TR_EINTERNAL. */
int tr_sha256_hex(const void *buf, size_t len, char hex[65], tr_err *err);

/* The 32-byte SHA-256 of len bytes into md (nettle's, which GnuTLS loads
 * anyway: no second crypto library in the daemon). */
void tr_sha256(const void *buf, size_t len, unsigned char md[32]);

/* Read a whole regular file of at most max bytes into *buf (malloc'd, the
 * caller frees it; *buf NULL on failure). Opened non-blocking, so a FIFO in
 * the file's place is refused instead of hanging the caller. Messages name
 * the path. */
int tr_read_file(const char *path, size_t max, uint8_t **buf, size_t *len, tr_err *err);

/* A printable copy of a name from a file (for messages): non-printing
 * bytes, quotes and backslashes become '?', a name longer than cap - 1 is
 * cut with "...". Returns buf. */
const char *tr_printable(const char *s, char *buf, size_t cap);
/* v in the fewest significant digits ("%.*g", 6 at least) that read back as
 * the same double, or as the same float when as_float (0.286f gives "0.286",
 * not 0.28600001335144043). Returns buf. */
const char *tr_shortest(double v, int as_float, char *buf, size_t cap);

/* A growable scratch buffer of floats, owned by one thread at a time.
 * Reused across calls so hot paths do not fault in fresh pages. */
typedef struct {
    float *p;
    size_t cap; /* in floats */
} tr_scratch;

/* Ensure s->cap >= n floats (content not preserved). TR_OK or TR_ENOMEM. */
int tr_scratch_reserve(tr_scratch *s, size_t n);
void tr_scratch_free(tr_scratch *s);

#endif
