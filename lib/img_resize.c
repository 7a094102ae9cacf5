/* img_resize.c - PIL's Image.resize(BILINEAR) for 8-bit images: separable, antialiased, fixed point. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "img.h"

/* Pillow's Resample.c: coefficients in 22-bit fixed point (32 - 8 - 2), rounded. */
#define PRECISION_BITS (32 - 8 - 2)

static double bilinear(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static uint8_t clip8(int v) {
    v >>= PRECISION_BITS; /* arithmetic shift, as Pillow's table lookup */
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* For each output position: the first input index, the count, and ksize fixed-point weights.
 * Returns ksize, or 0 on out of memory. */
static int coeffs(int in_size, int out_size, int **bounds, int **kk) {
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *k = malloc(sizeof *k * (size_t)ksize);
    *bounds = malloc(sizeof **bounds * 2 * (size_t)out_size);
    *kk = malloc(sizeof **kk * (size_t)out_size * (size_t)ksize);
    if (!k || !*bounds || !*kk) {
        free(k), free(*bounds), free(*kk);
        *bounds = *kk = NULL;
        return 0;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5), x;
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (x = 0; x < xmax; x++) {
            k[x] = bilinear((x + xmin - center + 0.5) * ss);
            ww += k[x];
        }
        for (x = 0; x < ksize; x++) {
            double w = x < xmax && ww != 0.0 ? k[x] / ww : x < xmax ? k[x] : 0.0;
            (*kk)[xx * ksize + x] =
                w < 0 ? (int)(-0.5 + w * (1 << PRECISION_BITS)) : (int)(0.5 + w * (1 << PRECISION_BITS));
        }
        (*bounds)[2 * xx] = xmin;
        (*bounds)[2 * xx + 1] = xmax;
    }
    free(k);
    return ksize;
}

int img_resize(const img_u8 *in, int width, int height, img_u8 *out, tr_err *err) {
    int c = in->channels, *hb = NULL, *hk = NULL, *vb = NULL, *vk = NULL, rc = TR_OK;
    uint8_t *tmp = NULL;
    memset(out, 0, sizeof *out);
    if (width < 1 || height < 1) return tr_seterr(err, TR_EINVAL, "image", "resize to %d x %d", width, height);
    int need_h = width != in->width, need_v = height != in->height;
    int kh = coeffs(in->width, width, &hb, &hk), kv = coeffs(in->height, height, &vb, &vk);
    out->px = malloc((size_t)width * (size_t)height * (size_t)c);
    if (!kh || !kv || !out->px) goto oom;
    /* the rows the vertical pass reads, as Pillow's horizontal pass computes only those */
    int y0 = vb[0], y1 = vb[2 * height - 2] + vb[2 * height - 1];
    const uint8_t *src = in->px;
    int src_w = in->width, src_y0 = 0;
    if (need_h) {
        if (!need_v) y0 = 0, y1 = in->height;
        if (!(tmp = malloc((size_t)width * (size_t)(y1 - y0) * (size_t)c))) goto oom;
        for (int y = y0; y < y1; y++) {
            const uint8_t *row = in->px + (size_t)y * (size_t)in->width * (size_t)c;
            uint8_t *o = tmp + (size_t)(y - y0) * (size_t)width * (size_t)c;
            for (int xx = 0; xx < width; xx++) {
                const int *k = hk + xx * kh, xmin = hb[2 * xx], xmax = hb[2 * xx + 1];
                for (int ch = 0; ch < c; ch++) {
                    int ss = 1 << (PRECISION_BITS - 1);
                    for (int x = 0; x < xmax; x++) ss += row[(size_t)(x + xmin) * (size_t)c + (size_t)ch] * k[x];
                    o[(size_t)xx * (size_t)c + (size_t)ch] = clip8(ss);
                }
            }
        }
        src = tmp, src_w = width, src_y0 = y0;
    }
    if (need_v) {
        for (int yy = 0; yy < height; yy++) {
            const int *k = vk + yy * kv, ymin = vb[2 * yy] - src_y0, ymax = vb[2 * yy + 1];
            uint8_t *o = out->px + (size_t)yy * (size_t)width * (size_t)c;
            for (int xx = 0; xx < width * c; xx++) {
                int ss = 1 << (PRECISION_BITS - 1);
                for (int y = 0; y < ymax; y++)
                    ss += src[(size_t)(y + ymin) * (size_t)src_w * (size_t)c + (size_t)xx] * k[y];
                o[xx] = clip8(ss);
            }
        }
    } else
        memcpy(out->px, src, (size_t)width * (size_t)height * (size_t)c);
    out->width = width, out->height = height, out->channels = c;
    goto done;
oom:
    rc = tr_seterr(err, TR_ENOMEM, "image", "out of memory resizing to %d x %d", width, height);
    free(out->px);
    out->px = NULL;
done:
    free(tmp), free(hb), free(hk), free(vb), free(vk);
    return rc;
}

int img_to_input(const uint8_t *buf, size_t len, const mdl_image *im, size_t max_pixels, float *out, tr_err *err) {
    img_u8 a, b;
    int rc = img_decode(buf, len, max_pixels, im->channels, &a, err);
    if (rc) return rc;
    const img_u8 *src = &a;
    b.px = NULL;
    if (a.width != im->width || a.height != im->height) {
        if ((rc = img_resize(&a, im->width, im->height, &b, err))) goto done;
        src = &b;
    }
    size_t plane = (size_t)im->width * (size_t)im->height;
    for (int c = 0; c < im->channels; c++)
        for (size_t i = 0; i < plane; i++) out[(size_t)c * plane + i] = src->px[i * (size_t)im->channels + (size_t)c];
done:
    free(a.px);
    free(b.px);
    return rc;
}
