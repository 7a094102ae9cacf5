/* fuzz_gallery.c - fuzz target: gallery files through gal_load (via an in-memory file), then gal_check_model. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz_common.h"
#include "gallery.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        if ((fd = memfd_create("gallery", MFD_CLOEXEC)) < 0) fz_fail("memfd_create", "cannot create the input file");
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) != 0 || (size && pwrite(fd, data, size, 0) != (ssize_t)size))
        fz_fail("pwrite", "cannot write");
    gal_gallery *g = NULL;
    tr_err err;
    int rc = gal_load(path, &g, &err);
    fz_check_status("gal_load", rc, &err);
    if (rc == TR_OK) {
        if (g->n < 1 || g->dim < 1 || g->emb == NULL || g->sqnorm == NULL) fz_fail("gal_load", "empty gallery");
        for (size_t i = 0; g->ids && i < g->n; i++)
            if (g->ids[i] == NULL || g->ids[i][0] == '\0' ||
                !gal_utf8_valid((const uint8_t *)g->ids[i], strlen(g->ids[i]), NULL))
                fz_fail("gal_load", "bad id accepted");
        rc = gal_check_model(g, g->model_sha256, g->dim, 0, &err);
        fz_check_status("gal_check_model", rc, &err);
        if ((rc == TR_OK) != (g->model_sha256[0] != '\0')) fz_fail("gal_check_model", "own digest and dim refused");
        rc = gal_check_model(g, NULL, g->dim + 1, 1, &err);
        if (rc != TR_OK) fz_fail("gal_check_model", "allow_mismatch refused");
        gal_free(g);
    } else if (g != NULL) {
        fz_fail("gal_load", "failure left *out set");
    }
    return 0;
}
