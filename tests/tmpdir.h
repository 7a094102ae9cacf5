/* tmpdir.h - shared by tests/unit, tests/fuzz and the e2e harness (header only): where tests put temporary files. */
#ifndef TESTS_TMPDIR_H
#define TESTS_TMPDIR_H

#include <stdlib.h>

/* $TMPDIR when set and not empty, else /tmp. */
static inline const char *test_tmpdir(void) {
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

#endif
