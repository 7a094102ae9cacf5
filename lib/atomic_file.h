/* atomic_file.h - write a file so that readers see the old or the new content, never a torn one. */
#ifndef ATOMIC_FILE_H
#define ATOMIC_FILE_H

#include <stdio.h>

#include "tr_err.h"

/* A file being written: fp writes to a temporary file in the target's folder
 * (".NAME.tmp-XXXXXX", hidden, mode 0644), which af_commit renames over the
 * target. A writer killed before that leaves the target as it was (and at
 * worst a stale hidden temporary file, which nothing loads). */
typedef struct {
    FILE *fp;
    char *tmp;  /* the temporary file's path */
    char *path; /* the target */
} af_file;

/* Create the temporary file for path; f->fp is open for writing. TR_OK,
 * TR_EIO (message names the folder and the reason) or TR_ENOMEM. */
int af_open(af_file *f, const char *path, tr_err *err);
/* Flush, fsync and close the temporary file, rename it over the target and
 * fsync the folder. On failure the temporary file is removed and the target
 * is untouched; f is released either way. TR_OK or TR_EIO. */
int af_commit(af_file *f, tr_err *err);
/* Close and remove the temporary file; a no-op on a zeroed or released f. */
void af_abort(af_file *f);
/* A whole buffer written to path through af_open and af_commit. */
int af_write(const char *path, const void *buf, size_t len, tr_err *err);

#endif
