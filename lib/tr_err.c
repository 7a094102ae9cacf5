/* tr_err.c - error records, status names, checked sizes and floats, SHA-256 hex, whole-file reads and atomic writes,
 * scratch buffers. */
#include "tr_err.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <nettle/sha2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int tr_seterr(tr_err *err, int code, const char *field, const char *fmt, ...) {
    if (err == NULL) return code;
    err->code = code;
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void tr_clearerr(tr_err *err) {
    if (err == NULL) return;
    err->code = TR_OK;
    err->field[0] = '\0';
    err->msg[0] = '\0';
}

const char *tr_strerror(int code) {
    static const struct {
        int code;
        const char *name;
    } names[] = {
        {TR_OK, "ok"},
        {TR_EINVAL, "invalid input"},
        {TR_EFORMAT, "bad format"},
        {TR_ELIMIT, "over a limit"},
        {TR_EDIM, "dimension mismatch"},
        {TR_ENOMEM, "out of memory"},
        {TR_EIO, "i/o error"},
        {TR_ENOTFOUND, "not found"},
        {TR_EINTERNAL, "internal error"},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].code == code) return names[i].name;
    return "unknown error";
}

int tr_size_mul(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

int tr_sha256_hex(const void *buf, size_t len, char hex[65], tr_err *err) {
    (void)err; /* nettle's SHA-256 cannot fail */
    unsigned char md[SHA256_DIGEST_SIZE];
    tr_sha256(buf, len, md);
    for (unsigned i = 0; i < SHA256_DIGEST_SIZE; i++) snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return TR_OK;
}

void tr_sha256(const void *buf, size_t len, unsigned char md[32]) {
    struct sha256_ctx c;
    sha256_init(&c);
    sha256_update(&c, len, buf);
    sha256_digest(&c, SHA256_DIGEST_SIZE, md);
}

int tr_f32_ok(double d) {
    /* FLT_MAX + half an ulp (2^103): from there on, rounding gives infinity */
    return fabs(d) < 0x1.ffffffp127;
}

int tr_size_add(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}

int tr_scratch_reserve(tr_scratch *s, size_t n) {
    if (n <= s->cap) return TR_OK;
    size_t bytes;
    if (!tr_size_mul(n, sizeof(float), &bytes)) return TR_ENOMEM;
    float *p = realloc(s->p, bytes);
    if (p == NULL) return TR_ENOMEM;
    s->p = p;
    s->cap = n;
    return TR_OK;
}

void tr_scratch_free(tr_scratch *s) {
    if (s == NULL) return;
    free(s->p);
    s->p = NULL;
    s->cap = 0;
}

int tr_read_file(const char *path, size_t max, uint8_t **bufp, size_t *lenp, tr_err *err) {
    struct stat st;
    uint8_t *buf = NULL;
    int rc = TR_OK;
    *bufp = NULL;
    *lenp = 0;
    /* O_NONBLOCK: a FIFO put in the file's place must not block the open; it is refused below */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f = fd < 0 ? NULL : fdopen(fd, "rb");
    if (!f) {
        rc = tr_seterr(err, TR_EIO, "", "cannot open %s: %s", path, strerror(errno));
        if (fd >= 0) close(fd);
        return rc;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode))
        rc = tr_seterr(err, TR_EIO, "", "%s is not a regular file", path);
    else if ((uint64_t)st.st_size > max)
        rc = tr_seterr(err, TR_ELIMIT, "", "%s is %lld bytes; the limit is %zu", path, (long long)st.st_size, max);
    else if ((buf = malloc(st.st_size ? (size_t)st.st_size : 1)) == NULL)
        rc = tr_seterr(err, TR_ENOMEM, "", "out of memory reading %s", path);
    else if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        rc = tr_seterr(err, TR_EIO, "", "short read on %s", path);
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    *bufp = buf;
    *lenp = (size_t)st.st_size;
    return TR_OK;
}

const char *tr_printable(const char *s, char *buf, size_t cap) {
    size_t j = 0;
    if (!s) s = "";
    for (size_t i = 0; s[i] && j + 1 < cap; i++) {
        if (j + 4 >= cap && s[i + 1]) { /* leave room for "..." */
            while (j + 4 > cap) j--;
            memcpy(buf + j, "...", 3);
            j += 3;
            break;
        }
        unsigned char ch = (unsigned char)s[i];
        buf[j++] = (ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\') ? (char)ch : '?';
    }
    buf[j] = 0;
    return buf;
}

const char *tr_shortest(double v, int as_float, char *buf, size_t cap) {
    for (int d = 6; d <= (as_float ? 9 : 17); d++) {
        snprintf(buf, cap, "%.*g", d, v);
        if (as_float ? strtof(buf, NULL) == (float)v : strtod(buf, NULL) == v) break;
    }
    return buf;
}
