// io_uring through raw system calls (see include/strata_uring.h). The rings are shared with the
// kernel: the submission tail and completion head are published with release stores, the kernel's
// indexes read with acquire loads (the memory-ordering rules of io_uring(7)).
#ifndef _GNU_SOURCE
#define _GNU_SOURCE   // O_DIRECT
#endif
#include "strata_uring.h"

#include <fcntl.h>

#include <errno.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#if defined(__linux__) && defined(__has_include)
#if __has_include(<linux/io_uring.h>)
#define STRATA_HAVE_URING 1
#endif
#endif

int strata_open_direct(const char *path) {
#if defined(__linux__) && defined(O_DIRECT)
    int fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC);
    return fd >= 0 ? fd : -errno;
#else
    (void)path;
    return -ENOSYS;
#endif
}

#ifdef STRATA_HAVE_URING
#include <linux/io_uring.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup 425
#endif
#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif

struct strata_uring {
    int fd;
    unsigned entries;
    // Submission ring.
    void *sq_map;
    size_t sq_map_bytes;
    unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
    struct io_uring_sqe *sqes;
    size_t sqes_bytes;
    unsigned queued;        // SQEs filled since the last submit
    // Completion ring.
    void *cq_map;
    size_t cq_map_bytes;
    unsigned *cq_head, *cq_tail, *cq_mask;
    struct io_uring_cqe *cqes;
};

strata_uring *strata_uring_create(unsigned entries) {
    if (entries == 0 || entries > 4096 || (entries & (entries - 1)) != 0) { errno = EINVAL; return NULL; }
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int fd = (int)syscall(__NR_io_uring_setup, entries, &p);
    if (fd < 0) return NULL;
    strata_uring *r = calloc(1, sizeof *r);
    if (!r) { close(fd); errno = ENOMEM; return NULL; }
    r->fd = fd;
    r->entries = p.sq_entries;
    r->sq_map_bytes = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    r->cq_map_bytes = p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe);
    int single = (p.features & IORING_FEAT_SINGLE_MMAP) != 0;
    if (single && r->cq_map_bytes > r->sq_map_bytes) r->sq_map_bytes = r->cq_map_bytes;
    r->sq_map = mmap(NULL, r->sq_map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
    if (r->sq_map == MAP_FAILED) goto fail;
    if (single) {
        r->cq_map = r->sq_map;
    } else {
        r->cq_map = mmap(NULL, r->cq_map_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
        if (r->cq_map == MAP_FAILED) { r->cq_map = NULL; goto fail; }
    }
    r->sqes_bytes = p.sq_entries * sizeof(struct io_uring_sqe);
    r->sqes = mmap(NULL, r->sqes_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
    if (r->sqes == MAP_FAILED) { r->sqes = NULL; goto fail; }
    char *sq = r->sq_map, *cq = r->cq_map;
    r->sq_head = (unsigned *)(sq + p.sq_off.head);
    r->sq_tail = (unsigned *)(sq + p.sq_off.tail);
    r->sq_mask = (unsigned *)(sq + p.sq_off.ring_mask);
    r->sq_array = (unsigned *)(sq + p.sq_off.array);
    r->cq_head = (unsigned *)(cq + p.cq_off.head);
    r->cq_tail = (unsigned *)(cq + p.cq_off.tail);
    r->cq_mask = (unsigned *)(cq + p.cq_off.ring_mask);
    r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    return r;
fail:
    {
        int saved = errno;
        strata_uring_destroy(r);
        errno = saved;
    }
    return NULL;
}

void strata_uring_destroy(strata_uring *r) {
    if (!r) return;
    if (r->sqes) munmap(r->sqes, r->sqes_bytes);
    if (r->cq_map && r->cq_map != r->sq_map) munmap(r->cq_map, r->cq_map_bytes);
    if (r->sq_map && r->sq_map != MAP_FAILED) munmap(r->sq_map, r->sq_map_bytes);
    close(r->fd);
    free(r);
}

int strata_uring_queue_read(strata_uring *r, int fd, void *buffer, uint32_t length, uint64_t offset, uint64_t tag) {
    unsigned head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
    unsigned tail = *r->sq_tail + r->queued;
    if (tail - head >= r->entries) return -EBUSY;
    unsigned index = tail & *r->sq_mask;
    struct io_uring_sqe *sqe = &r->sqes[index];
    memset(sqe, 0, sizeof *sqe);
    sqe->opcode = IORING_OP_READ;
    sqe->fd = fd;
    sqe->addr = (uint64_t)(uintptr_t)buffer;
    sqe->len = length;
    sqe->off = offset;
    sqe->user_data = tag;
    r->sq_array[index] = index;
    r->queued += 1;
    return 0;
}

int strata_uring_submit(strata_uring *r, unsigned wait) {
    if (r->queued > 0) {
        __atomic_store_n(r->sq_tail, *r->sq_tail + r->queued, __ATOMIC_RELEASE);
        r->queued = 0;
    }
    for (;;) {
        // Entries the kernel has not consumed yet (also those left by a failed earlier call).
        unsigned pending = *r->sq_tail - __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
        if (pending == 0 && wait == 0) return 0;
        int got = (int)syscall(__NR_io_uring_enter, r->fd, pending, wait, wait > 0 ? IORING_ENTER_GETEVENTS : 0, NULL, 0);
        if (got >= 0) return got;
        if (errno != EINTR) return -errno;
    }
}

int strata_uring_reap(strata_uring *r, uint64_t *tags, int32_t *results, unsigned max) {
    unsigned head = *r->cq_head;
    unsigned tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
    unsigned taken = 0;
    while (head != tail && taken < max) {
        struct io_uring_cqe *cqe = &r->cqes[head & *r->cq_mask];
        tags[taken] = cqe->user_data;
        results[taken] = cqe->res;
        taken += 1;
        head += 1;
    }
    __atomic_store_n(r->cq_head, head, __ATOMIC_RELEASE);
    return (int)taken;
}

#else

struct strata_uring { int unused; };

strata_uring *strata_uring_create(unsigned entries) { (void)entries; errno = ENOSYS; return NULL; }
void strata_uring_destroy(strata_uring *ring) { (void)ring; }
int strata_uring_queue_read(strata_uring *ring, int fd, void *buffer, uint32_t length, uint64_t offset, uint64_t tag) {
    (void)ring; (void)fd; (void)buffer; (void)length; (void)offset; (void)tag; return -ENOSYS;
}
int strata_uring_submit(strata_uring *ring, unsigned wait) { (void)ring; (void)wait; return -ENOSYS; }
int strata_uring_reap(strata_uring *ring, uint64_t *tags, int32_t *results, unsigned max) {
    (void)ring; (void)tags; (void)results; (void)max; return 0;
}

#endif
