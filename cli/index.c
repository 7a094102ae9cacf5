/* index.c - `tripletctl index`: embed a data set with a model into a gallery file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "data.h"
#include "gallery.h"
#include "img.h"
#include "model.h"
#include "opt.h"

#define IX_DEFAULT_BATCH 1024
#define IX_MAX_BATCH 65536

typedef struct {
    const char *model, *data, *images, *out, *split;
    size_t batch, limit;
    int quiet, help, no_ids, keep_images;
} index_args;

static void usage(FILE *f) {
    fprintf(f,
            "usage: tripletctl index --model MODEL [--data DATA] --out GALLERY [options]\n"
            "\n"
            "Embed every row of a data set with the model and write a gallery file\n"
            "(proto/gallery-format.md): embeddings, the rows' labels, their ids when\n"
            "the data has them, and the model's sha256 in the metadata.\n"
            "\n"
            "  --model PATH     model file: safetensors, or ONNX when the name ends in .onnx\n"
            "  --data SPEC      IDX directory or prefix, .csv[.gz] or .jsonl[.gz]\n"
            "                   (default: the Fashion-MNIST training set)\n"
            "  --images DIR     a folder of PNG/JPEG files instead of --data: DIR/CLASS/FILE,\n"
            "                   one subfolder per class, one level deep (labels 0, 1, ... in\n"
            "                   the subfolders' name order; an empty subfolder keeps its\n"
            "                   label and adds no rows); files ending in .png, .jpg or .jpeg\n"
            "                   (any case), in name order; files directly in DIR, deeper\n"
            "                   folders and names starting with a dot are skipped; ids\n"
            "                   \"CLASS/FILE\"; needs a model with `image` metadata\n"
            "                   (proto/images.md)\n"
            "  --split NAME     IDX split (default train)\n"
            "  --out PATH       gallery file to write (atomically)\n"
            "  --batch N        rows per forward pass (default %d, at most %d)\n"
            "  --limit N        first N rows only\n"
            "  --no-ids         do not store the data's ids\n"
            "  --keep-images    store the source images too (uint8, as read; IDX ubyte\n"
            "                   images), for GET /v1/gallery/items/{index}/image\n"
            "  --quiet          no progress bar\n",
            IX_DEFAULT_BATCH, IX_MAX_BATCH);
}

#define A(f) offsetof(index_args, f)
static const cli_opt_def opts[] = {
    {"--model", NULL, CLI_OPT_STR, A(model), 0, 0, NULL},
    {"--data", NULL, CLI_OPT_STR, A(data), 0, 0, NULL},
    {"--images", NULL, CLI_OPT_STR, A(images), 0, 0, NULL},
    {"--out", NULL, CLI_OPT_STR, A(out), 0, 0, NULL},
    {"--split", NULL, CLI_OPT_STR, A(split), 0, 0, NULL},
    {"--batch", NULL, CLI_OPT_SIZE, A(batch), 0, IX_MAX_BATCH, NULL},
    {"--limit", NULL, CLI_OPT_SIZE, A(limit), 0, 0, NULL},
    {"--no-ids", NULL, CLI_OPT_SET, A(no_ids), 0, 0, NULL},
    {"--keep-images", NULL, CLI_OPT_SET, A(keep_images), 0, 0, NULL},
    {"--quiet", "-q", CLI_OPT_SET, A(quiet), 0, 0, NULL},
    {"--help", "-h", CLI_OPT_SET, A(help), 0, 0, NULL},
};
#define N_OPTS (sizeof opts / sizeof opts[0])

static int parse_args(int argc, char **argv, index_args *a) {
    memset(a, 0, sizeof *a);
    a->batch = IX_DEFAULT_BATCH;
    a->split = "train";
    if (cli_opts_parse("index", opts, N_OPTS, argc, argv, a, NULL)) return -1;
    if (a->help) return 0;
    if (a->model == NULL) {
        fprintf(stderr, "tripletctl index: --model is required\n");
        return -1;
    }
    if (a->out == NULL) {
        fprintf(stderr, "tripletctl index: --out is required\n");
        return -1;
    }
    return 0;
}
#undef OPT

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* One line redrawn in place: [#####.....] done/total rows, rate, ETA. */
static void progress(size_t done, size_t total, double t0) {
    const int width = 30;
    double el = now() - t0, rate = el > 0 ? (double)done / el : 0;
    int fill = total ? (int)((double)width * (double)done / (double)total) : width;
    char bar[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\rindex [%s] %zu/%zu rows  %.0f rows/s  ETA %.0fs ", bar, done, total, rate,
            rate > 0 ? (double)(total - done) / rate : 0.0);
    fflush(stderr);
}

/* The data's rows as uint8 grey images when they are exactly that (raw IDX
 * ubyte pixels of a rank-3 file): NULL otherwise or out of memory. */
static uint8_t *source_images(const dat_set *d) {
    if (d->height < 1 || d->width < 1 || (size_t)d->height * (size_t)d->width != d->dim || d->raw_max != 255 ||
        d->pre_mean != 0 || d->pre_scale != 1)
        return NULL;
    uint8_t *px = malloc(d->n * d->dim);
    for (size_t i = 0; px && i < d->n * d->dim; i++) {
        float v = d->x[i];
        if (!(v >= 0 && v <= 255) || v != (float)(int)v) {
            free(px);
            return NULL;
        }
        px[i] = (uint8_t)v;
    }
    return px;
}

/* The rows to index: --images (a folder of image files), --data or the
 * default dataset; 0, or -1 after printing why. */
static int load_rows(index_args *a, const mdl_model *m, char *dflt, size_t cap, dat_set **d) {
    tr_err err;
    *d = NULL;
    if (a->images) {
        if (a->data) {
            fprintf(stderr, "tripletctl index: --images and --data exclude each other\n");
            return -1;
        }
        if (!m->has_image) {
            fprintf(stderr, "tripletctl index: --images: %s takes no images (its file has no \"image\" metadata)\n",
                    a->model);
            return -1;
        }
        if (dat_load_image_dir(a->images, &m->image, IMG_DEFAULT_MAX_PIXELS, a->limit, d, &err) != TR_OK) {
            fprintf(stderr, "tripletctl index: %s\n", err.msg);
            return -1;
        }
    } else if (a->data == NULL) {
        if (dat_find_default(getenv("TRIPLET_DATA"), dflt, cap, &err) != TR_OK) {
            fprintf(stderr, "tripletctl index: %s\n", err.msg);
            return -1;
        }
        a->data = dflt;
    }
    dat_opts o;
    dat_opts_default(&o);
    o.split = a->split;
    o.limit = a->limit;
    if (!*d && dat_load(a->data, &o, d, &err) != TR_OK) {
        fprintf(stderr, "tripletctl index: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Embed d's rows in batches of --batch into *emb (malloc'd), with a progress
 * line on a terminal; 0, or -1 after printing why. */
static int embed_rows(const index_args *a, const mdl_model *m, const dat_set *d, float **emb) {
    size_t in = (size_t)mdl_input_dim(m), dim = (size_t)mdl_output_dim(m), bytes;
    mdl_ws ws = {0};
    tr_err err;
    int rc = -1;
    if (!tr_size_mul(d->n, dim, &bytes) || !tr_size_mul(bytes, sizeof(float), &bytes) ||
        (*emb = malloc(bytes)) == NULL) {
        fprintf(stderr, "tripletctl index: cannot allocate %zu x %zu embeddings\n", d->n, dim);
        goto fail;
    }
    int tty = !a->quiet && isatty(STDERR_FILENO);
    double t0 = now(), last = 0;
    for (size_t r = 0; r < d->n; r += a->batch) {
        size_t nb = d->n - r < a->batch ? d->n - r : a->batch;
        if (mdl_forward(m, d->x + r * in, nb, *emb + r * dim, -1, &ws, &err) != TR_OK) {
            if (tty) fputc('\n', stderr);
            fprintf(stderr, "tripletctl index: forward pass on rows %zu..%zu: %s\n", r, r + nb - 1, err.msg);
            goto fail;
        }
        if (tty && (now() - last > 0.1 || r + nb == d->n)) {
            progress(r + nb, d->n, t0);
            last = now();
        }
    }
    if (tty) fputc('\n', stderr);
    rc = 0;
fail:
    mdl_ws_free(&ws);
    return rc;
}

int cmd_index(int argc, char **argv) {
    index_args a;
    mdl_model *m = NULL;
    dat_set *d = NULL;
    float *emb = NULL;
    tr_err err;
    uint8_t *images = NULL;
    char dflt[4096];
    int rc = 1;
    if (parse_args(argc, argv, &a) != 0) return 2;
    if (a.help) {
        usage(stdout);
        return 0;
    }
    if (mdl_load(a.model, &m, &err) != TR_OK) {
        if (strstr(err.msg, a.model))
            fprintf(stderr, "tripletctl index: %s\n", err.msg);
        else
            fprintf(stderr, "tripletctl index: model %s: %s\n", a.model, err.msg);
        goto fail;
    }
    if (load_rows(&a, m, dflt, sizeof dflt, &d)) goto fail;
    size_t in = (size_t)mdl_input_dim(m), dim = (size_t)mdl_output_dim(m);
    if (d->dim != in) {
        fprintf(stderr, "tripletctl index: %s has %zu features per row, the model %s takes %zu\n", d->source, d->dim,
                a.model, in);
        goto fail;
    }
    double t0 = now();
    if (embed_rows(&a, m, d, &emb)) goto fail;
    const char *const *ids = a.no_ids ? NULL : (const char *const *)d->ids;
    if (a.keep_images && (images = source_images(d)) == NULL) {
        fprintf(stderr,
                "tripletctl index: --keep-images: %s holds no 8-bit images (IDX ubyte images of rank 3, "
                "read without scaling), or out of memory\n",
                d->source);
        goto fail;
    }
    if (gal_save_images(a.out, emb, d->n, dim, d->labels, ids, m->sha256, images, (size_t)d->height, (size_t)d->width,
                        1, &err) != TR_OK) {
        fprintf(stderr, "tripletctl index: %s\n", err.msg);
        goto fail;
    }
    if (!a.quiet)
        fprintf(stderr, "wrote %s: %zu x %zu embeddings, labels, %s%s, model %.12s... (%s), %.1fs\n", a.out, d->n, dim,
                ids ? "ids" : "no ids", images ? ", images" : "", m->sha256, a.model, now() - t0);
    rc = 0;
fail:
    free(images);
    free(emb);
    dat_free(d);
    mdl_free(m);
    return rc;
}
