// A minimal io_uring of reads for the direct-I/O graph search: one ring per searcher thread, reads
// queued and submitted together, completions reaped as they arrive. Raw system calls (no liburing
// dependency); where io_uring is unavailable (old kernel, seccomp, non-Linux) `strata_uring_create`
// returns NULL and the caller reads synchronously instead.
#ifndef STRATA_URING_H
#define STRATA_URING_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Opens `path` read-only for direct I/O (O_DIRECT: reads bypass the page cache and must be aligned
/// to 4096 bytes in offset, length and buffer address). Returns the descriptor, or -errno (EINVAL
/// where the file system refuses O_DIRECT, ENOSYS off Linux).
int strata_open_direct(const char *path);

/// An io_uring instance (opaque).
typedef struct strata_uring strata_uring;

/// A ring with room for `entries` reads in flight (a power of two, 1...4096), or NULL with errno set
/// when the kernel does not offer io_uring (ENOSYS, EPERM under seccomp, ...).
strata_uring *strata_uring_create(unsigned entries);

/// Tears the ring down (reads in flight are waited for by the kernel).
void strata_uring_destroy(strata_uring *ring);

/// Queues a read of `length` bytes at `offset` of `fd` into `buffer`, tagged `tag`.
/// Returns 0, or -EBUSY when the submission queue is full (submit or reap first).
int strata_uring_queue_read(strata_uring *ring, int fd, void *buffer, uint32_t length, uint64_t offset, uint64_t tag);

/// Submits the queued reads and waits until at least `wait` completions are ready (0: do not
/// wait). Returns the number submitted, or -errno.
int strata_uring_submit(strata_uring *ring, unsigned wait);

/// Takes up to `max` ready completions: their tags and results (bytes read, or -errno).
/// Returns the number taken (0 when none is ready).
int strata_uring_reap(strata_uring *ring, uint64_t *tags, int32_t *results, unsigned max);

#ifdef __cplusplus
}
#endif

#endif
