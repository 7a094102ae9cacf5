/* test_fmap.c - mapped files under read leases: a writer (O_TRUNC, truncation) waits while the mapping moves
 * to a private copy of the old bytes; stale signals, refused leases and close leave nothing behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../tmpdir.h"
#include "fmap.h"

#define LEN 20000 /* five pages and a bit: the last one partly past the end of the file */

static char tmpdir[200], path[256];
static int lease_sig;
static sigset_t lease_sigs;

static void fill(const char *p, uint8_t seed) {
    uint8_t buf[LEN];
    for (size_t i = 0; i < LEN; i++) buf[i] = (uint8_t)(seed + i * 7);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, LEN, f), LEN);
    assert_int_equal(fclose(f), 0);
}

static int is_old(const fmap *m) { /* does m hold the bytes fill(path, 1) wrote? */
    size_t n;
    const uint8_t *d = fmap_data(m, &n);
    for (size_t i = 0; i < n; i++)
        if (d[i] != (uint8_t)(1 + i * 7)) return 0;
    return n == LEN;
}

static int mapped(const char *p) { /* does /proc/self/maps list p? */
    char line[512];
    int found = 0;
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (strstr(line, p)) found = 1;
    fclose(f);
    return found;
}

/* Map the file with a lease, or skip when this machine refuses leases. */
static fmap *leased(void) {
    fmap *m;
    tr_err err;
    fill(path, 1);
    fmap_lease_setup(lease_sig, gettid());
    if (fmap_open(path, &m, &err) != TR_OK) fail_msg("fmap_open: %s", err.msg);
    if (fmap_lease_note(m)) {
        print_message("cannot take a read lease here: %s\n", fmap_lease_note(m));
        fmap_close(m);
        skip();
    }
    return m;
}

/* Wait for the lease signal (a guard against hanging, not a timing check). */
static int lease_signal(void) {
    siginfo_t si;
    struct timespec limit = {60, 0};
    int sig = sigtimedwait(&lease_sigs, &si, &limit);
    if (sig != lease_sig) fail_msg("no lease signal: %s", sig < 0 ? strerror(errno) : "another signal");
    assert_int_equal(si.si_code, POLL_MSG);
    return si.si_fd;
}

/* A child writes the file (mode: "cp" opens with O_TRUNC and writes new
 * bytes, "truncate" cuts it to 10 bytes); the parent is signalled while the
 * child waits, moves to its copy, and the child then finishes. */
static void writer_waits(const char *mode) {
    fmap *m = leased();
    size_t len;
    const uint8_t *d = fmap_data(m, &len);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        int fd = strcmp(mode, "cp") == 0 ? open(path, O_WRONLY | O_TRUNC) : open(path, O_RDWR);
        uint8_t b[LEN];
        memset(b, 0x5a, sizeof b);
        if (fd < 0) _exit(2);
        if (strcmp(mode, "cp") == 0 ? write(fd, b, sizeof b) != (ssize_t)sizeof b : ftruncate(fd, 10) != 0) _exit(3);
        _exit(close(fd) == 0 ? 0 : 4);
    }
    int fd = lease_signal(), status;
    assert_int_equal(waitpid(child, &status, WNOHANG), 0); /* the writer waits for the lease */
    char moved[300];
    tr_err err;
    assert_int_equal(fmap_lease_break(fd, moved, sizeof moved, &err), TR_OK);
    assert_string_equal(moved, path);
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t now;
    const uint8_t *d2 = fmap_data(m, &now);
    assert_ptr_equal(d2, d); /* pointers into the mapping stay valid */
    assert_int_equal(now, LEN);
    assert_true(is_old(m));     /* every byte, the pages past a truncated end too */
    assert_false(mapped(path)); /* private memory now, not the file */
    /* the writer did its work */
    FILE *f = fopen(path, "rb");
    uint8_t b[LEN + 1];
    size_t got = fread(b, 1, sizeof b, f);
    fclose(f);
    assert_int_equal(got, strcmp(mode, "cp") == 0 ? LEN : 10);
    assert_int_equal(b[0], strcmp(mode, "cp") == 0 ? 0x5a : 1);
    fmap_close(m);
}

static void test_rewritten(void **state) {
    (void)state;
    writer_waits("cp");
}

static void test_truncated(void **state) {
    (void)state;
    writer_waits("truncate");
}

/* A non-blocking writer (truncate(1) opens so) is refused with EAGAIN and
 * starts the break all the same; fd -1 finds the mapping being broken. */
static void test_nonblocking_writer(void **state) {
    (void)state;
    fmap *m = leased();
    int w = open(path, O_WRONLY | O_NONBLOCK);
    assert_int_equal(w, -1);
    assert_int_equal(errno, EWOULDBLOCK);
    (void)lease_signal();
    char moved[300];
    tr_err err;
    assert_int_equal(fmap_lease_break(-1, moved, sizeof moved, &err), TR_OK);
    assert_string_equal(moved, path);
    assert_true((w = open(path, O_WRONLY | O_NONBLOCK)) >= 0); /* the lease is gone */
    assert_int_equal(ftruncate(w, 0), 0);
    close(w);
    assert_true(is_old(m));
    fmap_close(m);
}

/* A signal for a lease that is not being broken moves nothing; fmap_close
 * releases the lease (a writer then opens at once) and unregisters it. */
static void test_stale_and_close(void **state) {
    (void)state;
    fmap *m = leased();
    char moved[300] = "x";
    tr_err err;
    assert_int_equal(fmap_lease_break(-1, moved, sizeof moved, &err), TR_OK);
    assert_string_equal(moved, "");
    assert_true(mapped(path));
    fmap_close(m);
    int w = open(path, O_WRONLY | O_NONBLOCK);
    assert_true(w >= 0);
    close(w);
    siginfo_t si;
    struct timespec none = {0, 0};
    assert_int_equal(sigtimedwait(&lease_sigs, &si, &none), -1); /* no break was started */
    assert_int_equal(fmap_lease_break(-1, moved, sizeof moved, &err), TR_OK);
    assert_string_equal(moved, "");
}

/* No lease: leases not set up, or the file open for writing; the mapping
 * works and the note says why. */
static void test_no_lease(void **state) {
    (void)state;
    fmap *m;
    tr_err err;
    fill(path, 1);
    fmap_lease_setup(0, 0);
    assert_int_equal(fmap_open(path, &m, &err), TR_OK);
    assert_non_null(fmap_lease_note(m));
    assert_non_null(strstr(fmap_lease_note(m), "not set up"));
    assert_true(is_old(m));
    fmap_close(m);
    fmap_lease_setup(lease_sig, gettid());
    int w = open(path, O_WRONLY);
    assert_true(w >= 0);
    assert_int_equal(fmap_open(path, &m, &err), TR_OK);
    close(w);
    assert_non_null(fmap_lease_note(m));
    assert_non_null(strstr(fmap_lease_note(m), "open for writing"));
    assert_true(is_old(m));
    fmap_close(m);
}

static void test_open_errors(void **state) {
    (void)state;
    fmap *m;
    tr_err err;
    char p[300];
    snprintf(p, sizeof p, "%s/missing", tmpdir);
    assert_int_equal(fmap_open(p, &m, &err), TR_EIO);
    assert_null(m);
    assert_non_null(strstr(err.msg, "cannot open"));
    assert_int_equal(fmap_open(tmpdir, &m, &err), TR_EIO);
    assert_non_null(strstr(err.msg, "is not a regular file"));
    fmap_close(NULL);
}

static int setup(void **state) {
    (void)state;
    lease_sig = SIGRTMIN + 1;
    sigemptyset(&lease_sigs);
    sigaddset(&lease_sigs, lease_sig);
    sigprocmask(SIG_BLOCK, &lease_sigs, NULL);
    snprintf(tmpdir, sizeof tmpdir, "%s/test_fmap_XXXXXX", test_tmpdir());
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(path, sizeof path, "%s/f.bin", tmpdir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(path);
    return rmdir(tmpdir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rewritten),          cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_nonblocking_writer), cmocka_unit_test(test_stale_and_close),
        cmocka_unit_test(test_no_lease),           cmocka_unit_test(test_open_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
