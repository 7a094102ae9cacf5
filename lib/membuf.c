/* membuf.c - a growable byte buffer kept NUL-terminated. */
#include "membuf.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tr_err.h"

int membuf_add(membuf *b, const void *data, size_t n, size_t max) {
    if (max && n > max - b->n) return TR_ELIMIT;
    if (n > SIZE_MAX / 2 - b->n) return TR_ENOMEM;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + n + 1) cap *= 2;
        char *q = realloc(b->p, cap);
        if (!q) return TR_ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
    return TR_OK;
}
