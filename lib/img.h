/* img.h - image inputs: decode PNG and JPEG, convert colours and resize as PIL does (proto/images.md). */
#ifndef IMG_H
#define IMG_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "model.h"
#include "tr_err.h"

#define IMG_DEFAULT_MAX_PIXELS (16u * 1024u * 1024u)

/* 8-bit pixels, interleaved (HWC), channels 1 (grey) or 3 (RGB). */
typedef struct {
    int width, height, channels;
    uint8_t *px;
} img_u8;

/* 1 when buf starts like a PNG or JPEG file. */
int img_sniff(const uint8_t *buf, size_t len);

/* Decode a PNG or JPEG file in memory into channels (1 or 3) as PIL's
 * Image.open(f).convert("L" or "RGB") gives them. The declared size is
 * checked against max_pixels before any pixel is decoded. Errors name the
 * problem, never bytes of the file. Free out->px with free(). */
int img_decode(const uint8_t *buf, size_t len, size_t max_pixels, int channels, img_u8 *out, tr_err *err);

/* Resize to width x height as PIL's Image.resize((width, height),
 * Image.BILINEAR) does (antialiased when shrinking, 8-bit fixed point).
 * out->px is new; in is unchanged. */
int img_resize(const img_u8 *in, int width, int height, img_u8 *out, tr_err *err);

/* A file in memory into a model's input: decode as im->channels, resize to
 * im->width x im->height, then CHW floats 0..255 into out (channels x
 * height x width values). */
int img_to_input(const uint8_t *buf, size_t len, const mdl_image *im, size_t max_pixels, float *out, tr_err *err);

/* A folder of images as a data set (lib/img_dir.c): one subfolder per class
 * (labels 0, 1, ... in name order), its *.png / *.jpg / *.jpeg files in
 * name order, each decoded, converted and resized for im (the rule above);
 * ids are "class/file"; limit 0 keeps all. Errors name the file. */
int dat_load_image_dir(const char *dir, const mdl_image *im, size_t max_pixels, size_t limit, dat_set **out,
                       tr_err *err);

#endif
