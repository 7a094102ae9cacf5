/* fmap.h - read-only shared file mappings that outlive a writer of the file (read leases). */
#ifndef FMAP_H
#define FMAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "tr_err.h"

typedef struct fmap fmap;

/* Leases are off until this call. From then on fmap_open takes a read lease
 * on each file it maps, and when another process opens that file for writing
 * or truncates it, the kernel sends sig (a real-time signal, so that siginfo
 * carries si_fd and signals queue) to thread tid, which must block sig, take
 * it with sigwaitinfo and pass si_fd to fmap_lease_break; the writer waits
 * until then (at most /proc/sys/fs/lease-break-time). Process-wide; sig 0
 * turns leases off for later opens. */
void fmap_lease_setup(int sig, pid_t tid);

/* Map path read-only and shared (processes mapping a file share its pages)
 * and, when leases are set up, take a read lease on it. *out is the
 * caller's (fmap_close). TR_EIO when path cannot be opened, is not a regular
 * file or cannot be mapped; TR_ELIMIT when it is too large to map. */
int fmap_open(const char *path, fmap **out, tr_err *err);
void fmap_close(fmap *m); /* NULL is a no-op; releases the lease */

/* The mapped bytes (NULL for an empty file) and their count in *len. */
const uint8_t *fmap_data(const fmap *m, size_t *len);

/* NULL when m took a read lease (or maps nothing: an empty file); else why
 * it has none (leases not set up, the file belongs to another user, is open
 * for writing, or lives on a filesystem without leases): then the file must
 * not be truncated or rewritten while mapped (a truncation faults readers
 * with SIGBUS). */
const char *fmap_lease_note(const fmap *m);

/* The lease signal arrived for fd (si_fd), or fd is -1 (SIGIO: the signal
 * queue overflowed; check every leased mapping). Each mapping whose lease is
 * being broken is copied into private memory, which is moved over the file
 * mapping's address in one step (mremap), so every pointer into it stays
 * valid and reads the same bytes; then the lease is released and the writer
 * proceeds. A mapping whose lease is not being broken (a stale signal) is left
 * alone. moved receives the paths of the files moved, ", "-separated ("" for
 * none; cap bytes at most). TR_ENOMEM/TR_EIO when a copy failed (err names
 * the file; that mapping stays on the file, its lease released all the same). */
int fmap_lease_break(int fd, char *moved, size_t cap, tr_err *err);

#endif
