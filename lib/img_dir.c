/* img_dir.c - a folder of PNG/JPEG files as a data set: one subfolder per class, labels in name order. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data.h"
#include "img.h"

#define IMG_DIR_MAX_FILES 10000000

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_image_name(const char *n) {
    const char *dot = strrchr(n, '.');
    return dot && (strcasecmp(dot, ".png") == 0 || strcasecmp(dot, ".jpg") == 0 || strcasecmp(dot, ".jpeg") == 0);
}

/* Sorted names in dir that are folders (want_dir) or image files; *n of them. NULL with n 0 when none. */
static char **list(const char *dir, int want_dir, size_t *n, tr_err *err) {
    DIR *d = opendir(dir);
    char **v = NULL, path[4096];
    size_t cap = 0;
    struct dirent *e;
    struct stat sb;
    *n = 0;
    if (!d) {
        tr_seterr(err, TR_EIO, "", "%s: cannot open the folder", dir);
        return NULL;
    }
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &sb) != 0 ||
            (want_dir ? !S_ISDIR(sb.st_mode) : !S_ISREG(sb.st_mode) || !is_image_name(e->d_name)))
            continue;
        if (*n == cap) {
            char **nv = realloc(v, sizeof *v * (cap = cap ? 2 * cap : 64));
            if (!nv || *n >= IMG_DIR_MAX_FILES) goto oom;
            v = nv;
        }
        if ((v[*n] = strdup(e->d_name)) == NULL) goto oom;
        ++*n;
    }
    closedir(d);
    if (*n) qsort(v, *n, sizeof *v, by_name);
    return v;
oom:
    closedir(d);
    for (size_t i = 0; i < *n; i++) free(v[i]);
    free(v);
    *n = 0;
    tr_seterr(err, TR_ENOMEM, "", "%s: out of memory listing the folder", dir);
    return NULL;
}

static void free_list(char **v, size_t n) {
    for (size_t i = 0; i < n; i++) free(v[i]);
    free(v);
}

int dat_load_image_dir(const char *dir, const mdl_image *im, size_t max_pixels, size_t limit, dat_set **out,
                       tr_err *err) {
    size_t n_cls = 0, total = 0, dim = (size_t)im->channels * (size_t)im->height * (size_t)im->width, row = 0;
    char **cls = list(dir, 1, &n_cls, err), path[4096];
    dat_set *d = NULL;
    int rc = TR_OK;
    *out = NULL;
    if (!cls)
        return n_cls == 0 && err && err->code ? err->code
                                              : tr_seterr(err, TR_EFORMAT, "", "%s: no class subfolders", dir);
    char ***files = calloc(n_cls, sizeof *files);
    size_t *nf = calloc(n_cls, sizeof *nf);
    if (!files || !nf) goto oom;
    for (size_t c = 0; c < n_cls; c++) {
        snprintf(path, sizeof path, "%s/%s", dir, cls[c]);
        files[c] = list(path, 0, &nf[c], err);
        if (!files[c] && err && err->code == TR_ENOMEM) goto oom;
        total += nf[c];
    }
    if (limit && total > limit) total = limit;
    if (total == 0) {
        rc = tr_seterr(err, TR_EFORMAT, "", "%s: no PNG or JPEG files in its class subfolders", dir);
        goto done;
    }
    if (!(d = calloc(1, sizeof *d)) || !(d->x = malloc(total * dim * sizeof *d->x)) ||
        !(d->labels = malloc(total * sizeof *d->labels)) || !(d->ids = calloc(total, sizeof *d->ids)))
        goto oom;
    d->n = total, d->dim = dim, d->pre_scale = 1, d->raw_max = 255;
    if (im->channels == 1) d->height = im->height, d->width = im->width;
    snprintf(d->source, sizeof d->source, "%s", dir);
    for (size_t c = 0; c < n_cls && row < total; c++)
        for (size_t i = 0; i < nf[c] && row < total; i++, row++) {
            uint8_t *buf;
            size_t len;
            snprintf(path, sizeof path, "%s/%s/%s", dir, cls[c], files[c][i]);
            if ((rc = dat_read_file(path, &buf, &len, err))) goto done;
            rc = img_to_input(buf, len, im, max_pixels, d->x + row * dim, err);
            free(buf);
            if (rc) {
                char why[sizeof err->msg];
                snprintf(why, sizeof why, "%s", err ? err->msg : "bad image");
                tr_seterr(err, rc, "", "%s: %s", path, why);
                goto done;
            }
            d->labels[row] = (int64_t)c;
            snprintf(path, sizeof path, "%s/%s", cls[c], files[c][i]);
            if (!(d->ids[row] = strdup(path))) goto oom;
        }
    goto done;
oom:
    rc = tr_seterr(err, TR_ENOMEM, "", "%s: out of memory", dir);
done:
    for (size_t c = 0; files && c < n_cls; c++) free_list(files[c], nf[c]);
    free(files);
    free(nf);
    free_list(cls, n_cls);
    if (rc)
        dat_free(d);
    else
        *out = d;
    return rc;
}
