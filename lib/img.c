/* img.c - decode PNG (libpng) and JPEG (libjpeg-turbo) into grey or RGB as PIL does. */
#include "img.h"

#include <stdio.h> /* before jpeglib.h, which uses FILE */

#include <jpeglib.h>
#include <jerror.h> /* after jpeglib.h: the message codes */
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

int img_sniff(const uint8_t *buf, size_t len) {
    static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    if (len >= 8 && memcmp(buf, png_sig, 8) == 0) return 1;
    return len >= 3 && buf[0] == 0xff && buf[1] == 0xd8 && buf[2] == 0xff;
}

/* Width x height against the limit, before anything is decoded. */
static int check_size(size_t w, size_t h, size_t max_pixels, tr_err *err) {
    if (w == 0 || h == 0) return tr_seterr(err, TR_EFORMAT, "image", "image has no pixels (%zu x %zu)", w, h);
    if (w * h > max_pixels)
        return tr_seterr(err, TR_ELIMIT, "image", "image is %zu x %zu = %zu pixels, over the %zu-pixel limit", w, h,
                         w * h, max_pixels);
    if (w > 65535 || h > 65535)
        return tr_seterr(err, TR_ELIMIT, "image", "image is %zu x %zu: each side must be at most 65535 pixels", w, h);
    return TR_OK;
}

/* PIL's RGB -> L: ITU-R 601-2 luma in 16-bit fixed point, rounded. */
static uint8_t luma(const uint8_t *p) {
    return (uint8_t)((p[0] * 19595u + p[1] * 38470u + p[2] * 7471u + 0x8000u) >> 16);
}

/* Interleaved src of sc channels (1 or 3) into dst of dc channels (1 or 3). */
static void convert(const uint8_t *src, int sc, uint8_t *dst, int dc, size_t n) {
    if (sc == dc)
        memcpy(dst, src, n * (size_t)sc);
    else if (sc == 3)
        for (size_t i = 0; i < n; i++) dst[i] = luma(src + 3 * i);
    else
        for (size_t i = 0; i < n; i++) dst[3 * i] = dst[3 * i + 1] = dst[3 * i + 2] = src[i];
}

/* out: the decoded w x h image raw of sc channels, converted into out->px (allocated for it). */
static void set_pixels(img_u8 *out, const uint8_t *raw, int sc, size_t w, size_t h, int channels) {
    convert(raw, sc, out->px, channels, w * h);
    out->width = (int)w, out->height = (int)h, out->channels = channels;
}

/* ---- PNG ---- */

typedef struct {
    const uint8_t *buf;
    size_t len, pos;
    int truncated;
} png_src;

static void png_read_mem(png_structp p, png_bytep out, size_t n) {
    png_src *s = png_get_io_ptr(p);
    if (n > s->len - s->pos) {
        s->truncated = 1;
        png_error(p, "truncated");
    }
    memcpy(out, s->buf + s->pos, n);
    s->pos += n;
}

/* libpng reports through these; the library never prints, and its texts can quote chunk bytes. */
static void png_on_error(png_structp p, png_const_charp msg) {
    (void)msg;
    png_longjmp(p, 1);
}
static void png_on_warning(png_structp p, png_const_charp msg) {
    (void)p, (void)msg;
}

static int decode_png(const uint8_t *buf, size_t len, size_t max_pixels, int channels, img_u8 *out, tr_err *err) {
    png_src src = {buf, len, 0, 0};
    /* The size from IHDR (always the first chunk) before libpng sees it: libpng's own
     * refusal of a zero width would not say so, and a bomb costs nothing here. */
    if (len >= 24 && memcmp(buf + 12, "IHDR", 4) == 0) {
        size_t w = (size_t)buf[16] << 24 | (size_t)buf[17] << 16 | (size_t)buf[18] << 8 | buf[19];
        size_t h = (size_t)buf[20] << 24 | (size_t)buf[21] << 16 | (size_t)buf[22] << 8 | buf[23];
        int rc0 = check_size(w, h, max_pixels, err);
        if (rc0) return rc0;
    }
    png_structp p = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, png_on_error, png_on_warning);
    png_infop info = p ? png_create_info_struct(p) : NULL;
    uint8_t *volatile raw = NULL, **volatile rows = NULL;
    volatile int rc = TR_OK;
    if (!p || !info) {
        png_destroy_read_struct(&p, NULL, NULL);
        return tr_seterr(err, TR_ENOMEM, "image", "out of memory");
    }
    if (setjmp(png_jmpbuf(p))) {
        if (rc == TR_OK)
            rc = src.truncated
                     ? tr_seterr(err, TR_EFORMAT, "image", "truncated PNG data (the file ends after %zu bytes)", len)
                     : tr_seterr(err, TR_EFORMAT, "image", "corrupt PNG data");
        goto done;
    }
    png_set_read_fn(p, &src, png_read_mem);
    png_set_user_limits(p, 0x7fffffff, 0x7fffffff); /* check_size refuses big images with their size */
    png_read_info(p, info);
    png_uint_32 w = png_get_image_width(p, info), h = png_get_image_height(p, info);
    int depth = png_get_bit_depth(p, info), type = png_get_color_type(p, info);
    if ((rc = check_size(w, h, max_pixels, err))) goto done;
    /* PIL opens 16-bit grey as mode "I" and its convert clips to 255; every other 16-bit
     * image keeps the high byte of each sample (what png_set_strip_16 does). */
    int grey16 = depth == 16 && type == PNG_COLOR_TYPE_GRAY;
    if (!grey16) png_set_strip_16(p);
    png_set_palette_to_rgb(p);
    png_set_expand_gray_1_2_4_to_8(p);
    png_set_strip_alpha(p);
    png_set_interlace_handling(p);
    png_read_update_info(p, info);
    size_t rowbytes = png_get_rowbytes(p, info);
    int sc = png_get_channels(p, info);
    if ((sc != 1 && sc != 3) || rowbytes != (size_t)w * (size_t)sc * (grey16 ? 2 : 1)) {
        rc = tr_seterr(err, TR_EFORMAT, "image", "unsupported PNG layout");
        goto done;
    }
    raw = malloc(rowbytes * h);
    rows = malloc(sizeof *rows * h);
    out->px = malloc((size_t)w * h * (size_t)channels);
    if (!raw || !rows || !out->px) {
        rc = tr_seterr(err, TR_ENOMEM, "image", "out of memory for a %u x %u image", (unsigned)w, (unsigned)h);
        goto done;
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = raw + y * rowbytes;
    png_read_image(p, rows);
    if (grey16)
        for (size_t i = 0; i < (size_t)w * h; i++) {
            unsigned v = (unsigned)raw[2 * i] << 8 | raw[2 * i + 1];
            raw[i] = (uint8_t)(v > 255 ? 255 : v);
        }
    set_pixels(out, raw, sc, w, h, channels);
done:
    free(raw);
    free(rows);
    png_destroy_read_struct(&p, &info, NULL);
    return rc;
}

/* ---- JPEG ---- */

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jmp;
    int warnings, truncated;
} jpg_err;

static void jpg_on_error(j_common_ptr c) {
    longjmp(((jpg_err *)c->err)->jmp, 1);
}
/* Warnings (a premature end of data, corrupt entropy data) make the pixels made up: refuse them. */
static void jpg_on_message(j_common_ptr c, int level) {
    jpg_err *e = (jpg_err *)c->err;
    if (level >= 0) return;
    e->warnings++;
    if (e->base.msg_code == JWRN_JPEG_EOF) e->truncated = 1;
}

/* The refusal for a decoder error or warning: truncation, an empty image, or corruption. */
static int jpg_fail(const jpg_err *je, size_t len, tr_err *err) {
    if (je->truncated)
        return tr_seterr(err, TR_EFORMAT, "image", "truncated JPEG data (the file ends after %zu bytes)", len);
    if (je->base.msg_code == JERR_EMPTY_IMAGE || je->base.msg_code == JERR_IMAGE_TOO_BIG)
        return tr_seterr(err, TR_EFORMAT, "image", "image has no pixels or an impossible size in its JPEG header");
    if (je->base.msg_code == JERR_BAD_PRECISION)
        return tr_seterr(err, TR_EFORMAT, "image", "%d-bit JPEG images are not supported (8-bit only)",
                         je->base.msg_parm.i[0]);
    return tr_seterr(err, TR_EFORMAT, "image", "corrupt JPEG data");
}

static int decode_jpeg(const uint8_t *buf, size_t len, size_t max_pixels, int channels, img_u8 *out, tr_err *err) {
    struct jpeg_decompress_struct d;
    jpg_err je;
    uint8_t *volatile raw = NULL;
    volatile int rc = TR_OK;
    memset(&d, 0, sizeof d);
    d.err = jpeg_std_error(&je.base);
    je.base.error_exit = jpg_on_error;
    je.base.emit_message = jpg_on_message;
    je.warnings = je.truncated = 0;
    if (setjmp(je.jmp)) {
        if (rc == TR_OK) rc = jpg_fail(&je, len, err);
        goto done;
    }
    jpeg_create_decompress(&d);
    jpeg_mem_src(&d, buf, (unsigned long)len);
    jpeg_read_header(&d, TRUE);
    if ((rc = check_size(d.image_width, d.image_height, max_pixels, err))) goto done;
    if (d.jpeg_color_space == JCS_CMYK || d.jpeg_color_space == JCS_YCCK) {
        rc = tr_seterr(err, TR_EFORMAT, "image", "CMYK JPEG images are not supported: convert the image to RGB");
        goto done;
    }
    int grey = d.jpeg_color_space == JCS_GRAYSCALE;
    d.out_color_space = grey ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&d);
    int sc = d.output_components;
    size_t w = d.output_width, h = d.output_height, stride = w * (size_t)sc;
    if (sc != (grey ? 1 : 3)) {
        rc = tr_seterr(err, TR_EFORMAT, "image", "unsupported JPEG layout");
        goto done;
    }
    raw = malloc(stride * h);
    out->px = malloc(w * h * (size_t)channels);
    if (!raw || !out->px) {
        rc = tr_seterr(err, TR_ENOMEM, "image", "out of memory for a %zu x %zu image", w, h);
        goto done;
    }
    while (d.output_scanline < d.output_height) {
        JSAMPROW row = raw + d.output_scanline * stride;
        jpeg_read_scanlines(&d, &row, 1);
    }
    jpeg_finish_decompress(&d);
    if (je.warnings) {
        rc = jpg_fail(&je, len, err);
        goto done;
    }
    set_pixels(out, raw, sc, w, h, channels);
done:
    free(raw);
    jpeg_destroy_decompress(&d);
    return rc;
}

int img_decode(const uint8_t *buf, size_t len, size_t max_pixels, int channels, img_u8 *out, tr_err *err) {
    memset(out, 0, sizeof *out);
    if (channels != 1 && channels != 3)
        return tr_seterr(err, TR_EINVAL, "image", "channels %d is not 1 or 3", channels);
    if (len == 0) return tr_seterr(err, TR_EFORMAT, "image", "empty image data (0 bytes)");
    int rc;
    if (len >= 8 && buf[0] == 0x89) {
        if (!img_sniff(buf, len)) return tr_seterr(err, TR_EFORMAT, "image", "not a PNG or JPEG image");
        rc = decode_png(buf, len, max_pixels, channels, out, err);
    } else if (img_sniff(buf, len))
        rc = decode_jpeg(buf, len, max_pixels, channels, out, err);
    else
        return tr_seterr(err, TR_EFORMAT, "image", "not a PNG or JPEG image");
    if (rc != TR_OK) { /* a refused image leaves no pixels, whichever decoder gave up where */
        free(out->px);
        out->px = NULL;
    }
    return rc;
}
