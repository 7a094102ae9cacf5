/* membuf.h - a growable byte buffer kept NUL-terminated: HTTP bodies, files written to memory. */
#ifndef MEMBUF_H
#define MEMBUF_H

#include <stddef.h>

/* p: n bytes (they may hold NULs) and a NUL after them once anything was added; cap bytes
 * allocated. Zero-initialise; free(p) when done. */
typedef struct {
    char *p;
    size_t n, cap;
} membuf;

/* Append n bytes of data, doubling the allocation (from 4 KiB) as it grows. TR_OK; TR_ELIMIT when
 * the buffer would hold more than max bytes (0: no limit) or TR_ENOMEM, the buffer unchanged. */
int membuf_add(membuf *b, const void *data, size_t n, size_t max);

#endif
