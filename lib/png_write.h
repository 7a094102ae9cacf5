/* png_write.h - encode 8-bit pixels as PNG in memory (libpng). */
#ifndef PNG_WRITE_H
#define PNG_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "tr_err.h"

/* Encode h x w pixels of c channels (1 grey, 3 RGB, 4 RGBA; interleaved,
 * row-major, HWC) as an 8-bit PNG. *out is malloc'd (caller frees) and
 * holds *len bytes. TR_EINVAL on a bad shape, TR_ENOMEM, TR_EINTERNAL
 * when libpng fails. */
int png_write_mem(const uint8_t *px, size_t w, size_t h, int c, uint8_t **out, size_t *len, tr_err *err);

#endif
