/* png_write.c - 8-bit grey/RGB/RGBA pixels to a PNG in memory with libpng's write callbacks. */
#include "png_write.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "membuf.h"

typedef struct {
    membuf b;
    int oom;
} png_out;

static void on_write(png_structp png, png_bytep data, png_size_t n) {
    png_out *o = png_get_io_ptr(png);
    if (!o->oom && membuf_add(&o->b, data, n, 0) != TR_OK) o->oom = 1;
}

static void on_flush(png_structp png) {
    (void)png;
}

int png_write_mem(const uint8_t *px, size_t w, size_t h, int c, uint8_t **out, size_t *len, tr_err *err) {
    static const int TYPES[5] = {0, PNG_COLOR_TYPE_GRAY, 0, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGBA};
    png_out o = {{0}, 0};
    png_structp png = NULL;
    png_infop info = NULL;
    png_bytep *rows = NULL;
    *out = NULL;
    *len = 0;
    if (w < 1 || h < 1 || w > 65535 || h > 65535 || c < 1 || c > 4 || c == 2)
        return tr_seterr(err, TR_EINVAL, "image", "png: %zu x %zu pixels of %d channels (1, 3 or 4; sides 1..65535)", w,
                         h, c);
    if (!(rows = malloc(h * sizeof *rows))) return tr_seterr(err, TR_ENOMEM, "image", "png: out of memory");
    for (size_t y = 0; y < h; y++) rows[y] = (png_bytep)(px + y * w * (size_t)c);
    png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    if (png) info = png_create_info_struct(png);
    if (!png || !info) {
        png_destroy_write_struct(&png, &info);
        free(rows);
        return tr_seterr(err, TR_ENOMEM, "image", "png: out of memory");
    }
    if (setjmp(png_jmpbuf(png))) { /* libpng reports its failures by longjmp */
        png_destroy_write_struct(&png, &info);
        free(rows);
        free(o.b.p);
        return tr_seterr(err, TR_EINTERNAL, "image", "png: libpng failed to encode %zu x %zu", w, h);
    }
    png_set_write_fn(png, &o, on_write, on_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, TYPES[c], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_set_rows(png, info, rows);
    png_write_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    if (o.oom) {
        free(o.b.p);
        return tr_seterr(err, TR_ENOMEM, "image", "png: out of memory");
    }
    *out = (uint8_t *)o.b.p;
    *len = o.b.n;
    return TR_OK;
}
