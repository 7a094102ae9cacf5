/* gallery.h - galleries of embeddings on disk (proto/gallery-format.md). */
#ifndef GALLERY_H
#define GALLERY_H

#include <stddef.h>
#include <stdint.h>

#include "tr_err.h"

#define GAL_FORMAT "tripletd-gallery" /* __metadata__ "format" */
#define GAL_MAX_DIM 65536
#define GAL_MAX_VALUES ((size_t)1 << 31)      /* N * D floats (8 GiB) */
#define GAL_MAX_ID 1024                       /* bytes of one id, NUL included */
#define GAL_MAX_IMAGE_SIDE 4096               /* pixels per image side */
#define GAL_MAX_IMAGE_BYTES ((size_t)1 << 32) /* all images together */

struct st_file;
struct gal_digest;

/* A loaded gallery. The file is mapped read-only and shared (processes that
 * load the same file share its pages); emb, labels and images point into the
 * mapping when the file stores them in the served type and alignment (F32,
 * I64), else at converted copies. With a read lease (st_map), a writer of the
 * file turns the mapping into a private copy of what was loaded; without one
 * (gal_lease_note), the file must be replaced by rename, never rewritten in
 * place, while it is loaded (tripletctl index renames). */
typedef struct gal_gallery {
    size_t n, dim;
    const float *emb;      /* n x dim, F32 */
    float *sqnorm;         /* n, |emb_i|^2, precomputed for search */
    const int64_t *labels; /* n, or NULL */
    size_t n_classes;      /* distinct labels (0 without labels) */
    char **ids;            /* n strings, or NULL */
    const uint8_t *images; /* n x img_h x img_w x img_c source pixels (HWC), or NULL */
    size_t img_h, img_w, img_c;
    char model_sha256[65]; /* of the model the gallery was built with, or "" */
    char *path;            /* as given to gal_load (NULL if not loaded) */
    /* private (gallery.c) */
    struct st_file *file;      /* the mapping emb/labels/images may point into */
    float *emb_copy;           /* emb when converted (F16, unaligned), else NULL */
    int64_t *labels_copy;      /* labels when converted (I32, unaligned), else NULL */
    struct gal_digest *digest; /* the file's SHA-256, computed on first use */
} gal_gallery;

/* Map and validate a gallery file (as strictly as model files) without
 * copying what it can serve in place: every refusal is TR_EFORMAT/TR_ELIMIT
 * naming the tensor or metadata key in err->field and the file in err->msg.
 * *out is the caller's (gal_free, which unmaps). */
int gal_load(const char *path, gal_gallery **out, tr_err *err);
void gal_free(gal_gallery *g); /* NULL is a no-op */
/* Why the gallery file holds no read lease (st_lease_note), or NULL. */
const char *gal_lease_note(const gal_gallery *g);

/* The gallery file's SHA-256 (64 lowercase hex digits), computed on the
 * first call (a pass over the whole file, kept off the start-up path) and
 * remembered; thread-safe. "" when the digest cannot be computed. */
const char *gal_sha256(const gal_gallery *g);

/* Write a gallery file atomically. labels and ids may be NULL; ids are n
 * non-empty UTF-8 strings; model_sha256 may be NULL or "" (then omitted). */
int gal_save(const char *path, const float *emb, size_t n, size_t dim, const int64_t *labels, const char *const *ids,
             const char *model_sha256, tr_err *err);

/* gal_save plus the source images: images holds n x h x w x c uint8
 * pixels (HWC, c = 1 grey or 3 RGB), stored as tensor "images" (NULL: none). */
int gal_save_images(const char *path, const float *emb, size_t n, size_t dim, const int64_t *labels,
                    const char *const *ids, const char *model_sha256, const uint8_t *images, size_t h, size_t w,
                    size_t c, tr_err *err);

/* May gallery g be served with the model whose file digest is model_sha256
 * and whose output has model_dim values? Refused (TR_EINVAL, field
 * "model_sha256") when the gallery names another model or none, and
 * (TR_EDIM, field "embeddings") when the dimensions differ, unless
 * allow_mismatch, which accepts both (searches then check dims per request). */
int gal_check_model(const gal_gallery *g, const char *model_sha256, size_t model_dim, int allow_mismatch, tr_err *err);

/* 1 when s[0..n) is valid UTF-8 (no overlongs, surrogates or code points
 * past U+10FFFF); else 0 and *bad (may be NULL) = offset of the bad byte. */
int gal_utf8_valid(const uint8_t *s, size_t n, size_t *bad);

#endif
