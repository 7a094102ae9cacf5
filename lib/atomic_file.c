/* atomic_file.c - temporary file in the same folder, fsync, rename: the one way libtriplet writes files. */
#include "atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void af_release(af_file *f, int remove_tmp) {
    if (f->fp) fclose(f->fp);
    if (remove_tmp && f->tmp) unlink(f->tmp);
    free(f->tmp);
    free(f->path);
    memset(f, 0, sizeof *f);
}

void af_abort(af_file *f) {
    if (f) af_release(f, 1);
}

/* Length of path's folder part ("" -> 0, "a/b" -> 1, "/b" -> 1 so it stays "/"). */
static size_t dir_len(const char *path) {
    const char *slash = strrchr(path, '/');
    if (!slash) return 0;
    return slash == path ? 1 : (size_t)(slash - path);
}

int af_open(af_file *f, const char *path, tr_err *err) {
    int fd = -1;
    memset(f, 0, sizeof *f);
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
    if (*base == '\0') return tr_seterr(err, TR_EIO, "", "%s: not a file name", path);
    if ((f->path = strdup(path)) == NULL || (f->tmp = malloc(strlen(path) + 16)) == NULL) goto nomem;
    /* same folder, so the rename stays within one file system and is atomic */
    sprintf(f->tmp, "%.*s.%s.tmp-XXXXXX", (int)(base - path), path, base);
    if ((fd = mkstemp(f->tmp)) < 0) {
        int e = errno;
        free(f->tmp);
        f->tmp = NULL;
        af_release(f, 0);
        return tr_seterr(err, TR_EIO, "", "%s: cannot create a temporary file next to it: %s", path, strerror(e));
    }
    /* mkstemp makes 0600; models and galleries are read by other users (containers) */
    if (fchmod(fd, 0644) != 0 || (f->fp = fdopen(fd, "wb")) == NULL) {
        int e = errno;
        close(fd);
        af_release(f, 1);
        return tr_seterr(err, TR_EIO, "", "%s: %s", path, strerror(e));
    }
    return TR_OK;
nomem:
    af_release(f, 0);
    return tr_seterr(err, TR_ENOMEM, "", "out of memory");
}

/* fsync the folder so the rename itself survives a power cut; best effort
 * (some file systems refuse fsync on a directory). */
static void sync_dir(const char *path) {
    size_t dl = dir_len(path);
    char *dir = dl ? strndup(path, dl) : strdup(".");
    int fd = dir ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int af_commit(af_file *f, tr_err *err) {
    int rc = TR_OK;
    const char *what = "write";
    if (ferror(f->fp) || fflush(f->fp) != 0 || (what = "fsync", fsync(fileno(f->fp)) != 0)) goto fail;
    what = "close";
    int c = fclose(f->fp);
    f->fp = NULL;
    if (c != 0) goto fail;
    what = "rename";
    if (rename(f->tmp, f->path) != 0) goto fail;
    sync_dir(f->path);
    af_release(f, 0);
    return TR_OK;
fail:
    rc = tr_seterr(err, TR_EIO, "", "%s: %s failed: %s", f->path, what, errno ? strerror(errno) : "stream error");
    af_release(f, 1);
    return rc;
}

int af_write(const char *path, const void *buf, size_t len, tr_err *err) {
    af_file f;
    int rc = af_open(&f, path, err);
    if (rc != TR_OK) return rc;
    if (len > 0) (void)fwrite(buf, 1, len, f.fp); /* a short write sets the stream's error, which af_commit reports */
    return af_commit(&f, err);
}
