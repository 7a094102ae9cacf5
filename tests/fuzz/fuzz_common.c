/* fuzz_common.c - invariant checks shared by the fuzz targets. */
#include "fuzz_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fz_fail(const char *what, const char *msg) {
    fprintf(stderr, "FUZZ FINDING in %s: %s\n", what, msg);
    abort();
}

void fz_check_status(const char *what, int rc, const tr_err *err) {
    char m[160];
    if (rc > 0 || rc < TR_EINTERNAL) {
        snprintf(m, sizeof m, "unknown status %d", rc);
        fz_fail(what, m);
    }
    if (rc == TR_OK) return;
    if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "%s: %s [%s] %s\n", what, tr_strerror(rc), err->field, err->msg);
    if (rc == TR_EINTERNAL) fz_fail(what, err->msg); /* input must never trigger our own fault */
    if (err->code != rc) {
        snprintf(m, sizeof m, "returned %d but err->code is %d", rc, err->code);
        fz_fail(what, m);
    }
    if (err->msg[0] == '\0') fz_fail(what, "failure without an error message");
    if (memchr(err->msg, '\0', sizeof err->msg) == NULL || memchr(err->field, '\0', sizeof err->field) == NULL)
        fz_fail(what, "error record not NUL-terminated");
}

uint8_t *fz_dup(const uint8_t *data, size_t n) {
    uint8_t *p = malloc(n ? n : 1);
    if (p == NULL) abort();
    if (n) memcpy(p, data, n);
    return p;
}

void fz_exercise_dataset(const dat_set *d) {
    tr_err err;
    int64_t *classes = NULL;
    size_t *counts = NULL, nc = 0, total = 0;
    if (d->n == 0 || d->dim == 0 || d->x == NULL || d->labels == NULL)
        fz_fail("dataset", "empty dataset returned as success");
    for (size_t i = 0; i < d->n * d->dim; i++)
        if (!isfinite(d->x[i])) fz_fail("dataset", "non-finite feature accepted");
    if (d->ids)
        for (size_t i = 0; i < d->n; i++)
            if (d->ids[i] == NULL || d->ids[i][0] == '\0') fz_fail("dataset", "missing or empty id");
    int rc = dat_classes(d, &classes, &counts, &nc, &err);
    fz_check_status("dat_classes", rc, &err);
    if (rc != TR_OK) fz_fail("dat_classes", err.msg);
    for (size_t c = 0; c < nc; c++) {
        if (c && classes[c - 1] >= classes[c]) fz_fail("dat_classes", "classes not strictly ascending");
        total += counts[c];
    }
    if (total != d->n) fz_fail("dat_classes", "class counts do not add up to n");
    dat_set *kept = NULL, *rest = NULL, *tr = NULL, *te = NULL;
    rc = dat_filter_classes(d, classes, 1, 1, &kept, &err);
    fz_check_status("dat_filter_classes", rc, &err);
    if (rc == TR_OK && kept->n != counts[0]) fz_fail("dat_filter_classes", "kept rows differ from the class count");
    rc = dat_filter_classes(d, classes, 1, 0, &rest, &err);
    fz_check_status("dat_filter_classes", rc, &err);
    if (rc == TR_OK && rest->n != d->n - counts[0]) fz_fail("dat_filter_classes", "dropped rows differ");
    rc = dat_split_holdout(d, 0.25, 7, &tr, &te, &err);
    fz_check_status("dat_split_holdout", rc, &err);
    if (rc == TR_OK && tr->n + te->n != d->n) fz_fail("dat_split_holdout", "split loses rows");
    dat_free(kept);
    dat_free(rest);
    dat_free(tr);
    dat_free(te);
    free(classes);
    free(counts);
}
