/* confine.c - files a reload names: only paths relative to --model-dir, checked before any is opened. */
#include "confine.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* 1 when some '/'-separated component of p is "..". */
static int has_dotdot(const char *p) {
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.') return 1;
        c += n;
        while (*c == '/') c++;
    }
    return 0;
}

int srv_confine(const char *dir, const char *field, const char *rel, char **resolved, srv_reply *out) {
    char root[PATH_MAX], joined[2 * PATH_MAX + 2], *real = NULL;
    struct stat sb;
    int rc;
    *resolved = NULL;
    if (rel[0] == '\0' || rel[0] == '/')
        return srv_fail(out, 403, field, "%s: only a path relative to --model-dir is allowed (%s)", field,
                        rel[0] ? "absolute paths are refused" : "the path is empty");
    if (has_dotdot(rel))
        return srv_fail(out, 403, field, "%s: \"..\" is refused: name a file inside --model-dir by a relative path",
                        field);
    if (realpath(dir, root) == NULL)
        return srv_fail(out, 503, field, "%s: --model-dir is not reachable: %s", field, strerror(errno));
    snprintf(joined, sizeof joined, "%s/%s", root, rel);
    if ((real = realpath(joined, NULL)) == NULL) {
        rc = errno;
        return srv_fail(out, 422, field, "%s: %s in --model-dir", field, rc == ENOENT ? "no such file" : strerror(rc));
    }
    size_t n = strlen(root);
    if (strncmp(real, root, n) != 0 || (real[n] != '/' && real[n] != '\0' && !(n == 1 && root[0] == '/'))) {
        free(real);
        return srv_fail(out, 403, field,
                        "%s: the path resolves outside --model-dir (a symlink out of the folder is refused)", field);
    }
    if (stat(real, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        free(real);
        return srv_fail(out, 422, field, "%s: not a regular file (a folder, FIFO or device is refused)", field);
    }
    *resolved = real;
    return 0;
}
