/* gallery.h - galleries of embeddings on disk (proto/gallery-format.md). */
#ifndef GALLERY_H
#define GALLERY_H

#include <stddef.h>
#include <stdint.h>

#include "tr_err.h"

typedef struct gal_gallery {
    size_t n, dim;
    float *emb;        /* n x dim, F32 */
    float *sqnorm;     /* n, |emb_i|^2, precomputed for search */
    int64_t *labels;   /* n, or NULL */
    char **ids;        /* n strings, or NULL */
    char model_sha256[65]; /* of the model the gallery was built with, or "" */
    char sha256[65];       /* of the gallery file */
} gal_gallery;

/* Load and validate a gallery file (as strictly as model files). */
int gal_load(const char *path, gal_gallery **out, tr_err *err);
void gal_free(gal_gallery *g); /* NULL is a no-op */

/* Write a gallery file atomically. labels and ids may be NULL. */
int gal_save(const char *path, const float *emb, size_t n, size_t dim, const int64_t *labels, const char *const *ids,
             const char *model_sha256, tr_err *err);

#endif
