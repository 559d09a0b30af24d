// Strata index kernels: product-quantisation tables, nearest-centroid search and ADC look-ups.
//
// Same conventions as strata_kernels.h: each kernel has an AVX-512 (and where it pays, AVX2)
// variant compiled with __attribute__((target(...))), plus a scalar fallback, and runs the level
// the dispatcher chose for every family (strata_dispatch.h); no compiler flags. Every kernel has a Swift
// reference implementation (ReferenceKernels in Sources/StrataTestSupport) that the tests compare against.
#ifndef STRATA_INDEX_KERNELS_H
#define STRATA_INDEX_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Squared L2 distances from `x` (d floats) to `k` centroids stored transposed: `ct[j * k + c]` is
/// coordinate j of centroid c. Writes `out[c]` for c < k.
void strata_l2_to_transposed_f32(const float *x, const float *ct, size_t d, size_t k, float *out);

/// Squared L2 distances from `n` rows to `k` columns stored transposed (`qt[j * k + c]` is coordinate j
/// of column c): row r starts at `x + r * xstride` (d floats; `xstride >= d` lets rows sit inside
/// fvecs records), and `out[r * k + c]` receives its distance to column c. `k` must be a multiple of 16
/// (pad the columns). Each distance is summed over j in order with the same operations whatever `n`,
/// so splitting rows into blocks or threads does not change any result. For exact ground truth.
void strata_l2_block_transposed_f32(const float *x, size_t xstride, size_t n, const float *qt, size_t d,
                                    size_t k, float *out);

/// Index of the centroid nearest to `x` (squared L2) among `k` transposed centroids (layout as above);
/// ties go to the lowest index. Writes the distance to `*dist` when `dist` is not NULL. k >= 1.
uint32_t strata_nearest_transposed_f32(const float *x, const float *ct, size_t d, size_t k, float *dist);

/// Per-query ADC table for product quantisation with 256 centroids per sub-space.
/// `ct` holds m sub-spaces, each `dsub x 256` transposed (`ct[(s * dsub + j) * 256 + c]`).
/// kind 0: table[s*256+c] = |q_s - c|^2 (squared L2); kind 1: table[s*256+c] = -<q_s, c> (negated dot).
void strata_pq_table_f32(const float *q, const float *ct, size_t m, size_t dsub, int kind, float *table);

/// ADC distances for `n` rows: out[i] = sum_s table[s*256 + codes[ids[i]*m + s]].
/// `codes` holds one m-byte code per row; ids must be in range (the caller checks).
void strata_pq_adc_f32(const float *table, const uint8_t *codes, size_t m,
                       const uint32_t *ids, size_t n, float *out);

/// Returns freed heap memory to the kernel (glibc `malloc_trim(0)`); 1 if any was released, else 0.
/// Not a kernel: the one libc call Swift's Glibc module does not expose.
int strata_trim_heap(void);

/// Name of the instruction set these kernels use ("avx512", "avx2", "scalar"): the dispatcher's
/// level, as strata_kernels_isa (at "avx2", nearest centroid and ADC run their scalar code).
const char *strata_index_kernels_isa(void);

/// Hints the CPU to bring the cache line holding `p` into all cache levels (no fault on bad addresses).
static inline void strata_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// Prefetches `bytes` bytes starting at `p`, one hint per 64-byte line.
static inline void strata_prefetch_range(const void *p, size_t bytes) {
    const char *c = (const char *)p;
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 3);
}

/// Prefetches `bytes` bytes starting at `p` into the L2 cache (not L1), one hint per 64-byte line:
/// for many rows requested at once, so that their DRAM reads overlap without evicting L1.
static inline void strata_prefetch_range_l2(const void *p, size_t bytes) {
    const char *c = (const char *)p;
    for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(c + off, 0, 2);
}

#ifdef __cplusplus
}
#endif
#endif
