/* test_atomic_file.c - lib/atomic_file.c: commit replaces the target whole, abort leaves it alone, no temporary file
 * stays. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "../tmpdir.h"
#include "atomic_file.h"

static char g_dir[512];

static int setup(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/test_atomic_file_%ld", test_tmpdir(), (long)getpid());
    return mkdir(g_dir, 0755);
}

/* Remove every file of the folder, then the folder. */
static int teardown(void **state) {
    (void)state;
    DIR *d = opendir(g_dir);
    struct dirent *e;
    char p[1024];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", g_dir, e->d_name);
        unlink(p);
    }
    if (d) closedir(d);
    return rmdir(g_dir);
}

/* Entries of the folder other than "." and "..". */
static int count_files(void) {
    DIR *d = opendir(g_dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)) != NULL) n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    if (d) closedir(d);
    return n;
}

static void read_back(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
}

static void test_commit_and_abort(void **state) {
    (void)state;
    char path[600], buf[64];
    af_file f;
    tr_err err;
    struct stat sb;
    snprintf(path, sizeof path, "%s/out.bin", g_dir);
    assert_int_equal(af_open(&f, path, &err), TR_OK);
    assert_non_null(strstr(f.tmp, "/.out.bin.tmp-")); /* hidden, same folder */
    fputs("old", f.fp);
    assert_int_equal(access(path, F_OK), -1); /* nothing at the target before the commit */
    assert_int_equal(af_commit(&f, &err), TR_OK);
    assert_null(f.fp);
    read_back(path, buf, sizeof buf);
    assert_string_equal(buf, "old");
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0644);
    assert_int_equal(count_files(), 1);

    /* an aborted write leaves the old file and no temporary file */
    assert_int_equal(af_open(&f, path, &err), TR_OK);
    fputs("new, but abandoned", f.fp);
    fflush(f.fp);
    assert_int_equal(count_files(), 2);
    af_abort(&f);
    af_abort(&f); /* released: a no-op */
    read_back(path, buf, sizeof buf);
    assert_string_equal(buf, "old");
    assert_int_equal(count_files(), 1);

    /* a second commit replaces the whole file */
    assert_int_equal(af_open(&f, path, &err), TR_OK);
    fputs("new", f.fp);
    assert_int_equal(af_commit(&f, &err), TR_OK);
    read_back(path, buf, sizeof buf);
    assert_string_equal(buf, "new");
    assert_int_equal(count_files(), 1);
}

static void test_refusals(void **state) {
    (void)state;
    char path[600];
    af_file f;
    tr_err err;
    snprintf(path, sizeof path, "%s/no-such-folder/out.bin", g_dir);
    assert_int_equal(af_open(&f, path, &err), TR_EIO);
    assert_null(f.fp);
    assert_non_null(strstr(err.msg, path));
    assert_non_null(strstr(err.msg, "cannot create a temporary file"));
    snprintf(path, sizeof path, "%s/", g_dir);
    assert_int_equal(af_open(&f, path, &err), TR_EIO);
    assert_non_null(strstr(err.msg, "not a file name"));
    /* renaming over a folder fails: the temporary file is removed, the folder stays */
    snprintf(path, sizeof path, "%s/sub", g_dir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(af_open(&f, path, &err), TR_OK);
    fputs("x", f.fp);
    assert_int_equal(af_commit(&f, &err), TR_EIO);
    assert_non_null(strstr(err.msg, "rename failed"));
    assert_int_equal(count_files(), 1);
    assert_int_equal(rmdir(path), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_commit_and_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
