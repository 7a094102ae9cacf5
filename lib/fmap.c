/* fmap.c - read-only shared file mappings; a read lease turns a writer of the file into a private copy. */
#include "fmap.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct fmap {
    void *map; /* len bytes; the file's pages, or the private copy after a lease break */
    size_t len;
    int fd;     /* holds the read lease; -1 when there is none (any more) */
    char *path; /* for fmap_lease_break's report */
    char note[200];
    fmap *next; /* in g_leased while fd >= 0 */
};

/* The leased mappings: the lease signal names a file descriptor, and this
 * list finds its mapping. g_lock also orders a break against fmap_close. */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static fmap *g_leased;
static int g_sig;
static pid_t g_tid;

void fmap_lease_setup(int sig, pid_t tid) {
    pthread_mutex_lock(&g_lock);
    g_sig = sig;
    g_tid = tid;
    pthread_mutex_unlock(&g_lock);
}

/* Under g_lock, so that a break of the new lease waits for the registration.
 * The owner is set before and after the lease: a kernel may make the lease's
 * taker the owner, and the signal must go to the thread that waits for it. */
static void take_lease(fmap *m, int fd) {
    struct f_owner_ex owner = {F_OWNER_TID, g_tid};
    if (g_sig == 0) {
        snprintf(m->note, sizeof m->note, "no read lease (leases are not set up in this process)");
        return;
    }
    if (m->len == 0) return; /* nothing mapped, nothing to lose */
    if (fcntl(fd, F_SETSIG, g_sig) == 0 && fcntl(fd, F_SETOWN_EX, &owner) == 0 && fcntl(fd, F_SETLEASE, F_RDLCK) == 0) {
        if (fcntl(fd, F_SETOWN_EX, &owner) == 0) {
            m->fd = fd;
            m->next = g_leased;
            g_leased = m;
            return;
        }
        int e = errno;
        (void)fcntl(fd, F_SETLEASE, F_UNLCK);
        errno = e;
    }
    int e = errno;
    snprintf(m->note, sizeof m->note, "no read lease (%s%s)", strerror(e),
             e == EACCES   ? ": the file belongs to another user and the process lacks CAP_LEASE"
             : e == EAGAIN ? ": the file is open for writing"
             : e == EINVAL ? ": the filesystem does not support leases"
                           : "");
}

int fmap_open(const char *path, fmap **out, tr_err *err) {
    struct stat sb;
    fmap *m = NULL;
    int rc;
    *out = NULL;
    /* O_NONBLOCK: a FIFO put in the file's place must not block the open; it is refused below */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return tr_seterr(err, TR_EIO, "", "cannot open %s: %s", path, strerror(errno));
    if ((m = calloc(1, sizeof *m)) == NULL || (m->path = strdup(path)) == NULL) {
        rc = tr_seterr(err, TR_ENOMEM, "", "%s: out of memory", path);
        goto fail;
    }
    m->fd = -1;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        rc = tr_seterr(err, TR_EIO, "", "%s is not a regular file", path);
        goto fail;
    }
    if ((uint64_t)sb.st_size > SIZE_MAX) {
        rc = tr_seterr(err, TR_ELIMIT, "", "%s is %lld bytes; too large to map", path, (long long)sb.st_size);
        goto fail;
    }
    m->len = (size_t)sb.st_size;
    /* MAP_POPULATE: callers validate every value anyway; map the whole
     * file in one call instead of faulting it in piece by piece */
    if (m->len > 0 && (m->map = mmap(NULL, m->len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0)) == MAP_FAILED) {
        m->map = NULL;
        rc = tr_seterr(err, TR_EIO, "", "cannot map %s: %s", path, strerror(errno));
        goto fail;
    }
    pthread_mutex_lock(&g_lock);
    take_lease(m, fd);
    pthread_mutex_unlock(&g_lock);
    if (m->fd < 0) close(fd); /* the mapping keeps the file (its inode) alive */
    *out = m;
    return TR_OK;
fail:
    close(fd);
    fmap_close(m);
    return rc;
}

void fmap_close(fmap *m) {
    if (m == NULL) return;
    pthread_mutex_lock(&g_lock);
    for (fmap **p = &g_leased; *p; p = &(*p)->next)
        if (*p == m) {
            *p = m->next;
            break;
        }
    int fd = m->fd;
    m->fd = -1;
    pthread_mutex_unlock(&g_lock);
    if (fd >= 0) close(fd); /* releases the lease */
    if (m->map) munmap(m->map, m->len);
    free(m->path);
    free(m);
}

const uint8_t *fmap_data(const fmap *m, size_t *len) {
    *len = m->len;
    return m->map;
}

const char *fmap_lease_note(const fmap *m) {
    return m->note[0] ? m->note : NULL;
}

/* Copy m's bytes into private memory and move it over the file mapping:
 * mremap replaces the pages at m->map in one step under the address space's
 * lock, so a reader sees the old bytes or the same bytes copied, never a hole.
 * The writer waits for the lease, so the file still holds what was mapped,
 * unless the kernel gave up on the lease first (then it may be shorter). */
static int move_to_copy(fmap *m, tr_err *err) {
    struct stat sb;
    void *copy = MAP_FAILED;
    int rc;
    if (fstat(m->fd, &sb) != 0 || (uint64_t)sb.st_size < m->len) {
        rc = tr_seterr(err, TR_EIO, "", "%s was truncated before its lease break was served: reload it now", m->path);
        goto fail;
    }
    /* MAP_POPULATE: one call allocates every page, instead of a fault per page in memcpy */
    copy = mmap(NULL, m->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (copy == MAP_FAILED) {
        rc = tr_seterr(err, TR_ENOMEM, "", "cannot copy %s (%zu bytes) before it is written: %s; reload it now",
                       m->path, m->len, strerror(errno));
        goto fail;
    }
    memcpy(copy, m->map, m->len);
    if (mprotect(copy, m->len, PROT_READ) != 0 ||
        mremap(copy, m->len, m->len, MREMAP_MAYMOVE | MREMAP_FIXED, m->map) == MAP_FAILED) {
        rc = tr_seterr(err, TR_EIO, "", "cannot move the copy of %s over its mapping: %s; reload it now", m->path,
                       strerror(errno));
        goto fail;
    }
    return TR_OK;
fail:
    if (copy != MAP_FAILED) munmap(copy, m->len);
    return rc;
}

int fmap_lease_break(int fd, char *moved, size_t cap, tr_err *err) {
    int rc = TR_OK;
    size_t used = 0;
    if (cap) moved[0] = '\0';
    pthread_mutex_lock(&g_lock);
    for (fmap **p = &g_leased; *p;) {
        fmap *m = *p;
        /* F_GETLEASE reports F_UNLCK while the read lease is being broken */
        if ((fd >= 0 && m->fd != fd) || fcntl(m->fd, F_GETLEASE) != F_UNLCK) {
            p = &m->next;
            continue;
        }
        int r = move_to_copy(m, err);
        if (r != TR_OK)
            rc = r;
        else if (used < cap) {
            int n = snprintf(moved + used, cap - used, "%s%s", used ? ", " : "", m->path);
            used = n < 0 ? used : used + (size_t)n < cap ? used + (size_t)n : cap;
        }
        (void)fcntl(m->fd, F_SETLEASE, F_UNLCK); /* the writer proceeds */
        close(m->fd);
        m->fd = -1;
        *p = m->next;
    }
    pthread_mutex_unlock(&g_lock);
    return rc;
}
