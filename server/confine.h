/* confine.h - files a reload names: only paths relative to --model-dir, checked before any is opened. */
#ifndef CONFINE_H
#define CONFINE_H

#include "errors.h"

/* Resolve rel (the request's field `field`) inside dir. On success *resolved
 * is the real path of a regular file inside dir (the caller frees it) and 0
 * is returned; else the reply is filled: 403 for an absolute path, a ".."
 * component or a path that resolves outside dir (a symlink), 422 for a file
 * that does not exist or is not a regular file. Nothing is opened. */
int srv_confine(const char *dir, const char *field, const char *rel, char **resolved, srv_reply *out);

#endif
