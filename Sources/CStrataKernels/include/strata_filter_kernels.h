// Strata filtered-scan kernels: PQ distances of many scattered rows through a uint8-quantised
// look-up table (the exact plan of filtered search, Sources/Strata/Query/FilteredSearch.swift).
//
// Same conventions as strata_kernels.h: an AVX-512 VBMI variant, used at the dispatcher's avx512
// level when the CPU also has VBMI (strata_dispatch.h), a scalar fallback with identical results,
// no compiler flags. The Swift
// reference (FilterKernelTests) checks the kernel against a plain sum.
#ifndef STRATA_FILTER_KERNELS_H
#define STRATA_FILTER_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// out[i] = sum over s < m of lut[s * 256 + codes[ids[i] * m + s]] (exact integer sums, uint16:
/// the caller keeps m * 255 < 65536). Requires ids[i] * m + m <= 2^31 for the vector path (the
/// scalar path is used otherwise). Vector path: 64 rows at a time; codes fetched 4 sub-spaces x 16
/// rows per dword gather, transposed to sub-space-major with byte permutes, looked up with two
/// 128-entry byte permutes (VBMI) and widened into 16-bit sums.
void strata_pq_scan_u8(const uint8_t *lut, const uint8_t *codes, size_t m,
                       const uint32_t *ids, size_t n, uint16_t *out);

/// As strata_pq_scan_u8 over the first `m` sub-spaces of codes whose rows are `stride` bytes
/// (m <= stride): partial sums for a first, cheaper pass.
void strata_pq_scan_u8_partial(const uint8_t *lut, const uint8_t *codes, size_t stride, size_t m,
                               const uint32_t *ids, size_t n, uint16_t *out);

/// Quantises a float ADC table (m x 256) to uint8 with one scale for all sub-spaces:
/// lut[s*256+c] = round((table[s*256+c] - min_s) * 255 / max_s(max_s - min_s)), so that the integer
/// sums rank rows like the float sums up to rounding. Returns the scale (float units per step).
float strata_pq_lut_u8(const float *table, size_t m, uint8_t *lut);

/// Indices (into sums[0..<n]) of at least min(keep, n) smallest sums, written to `out` (room for n):
/// every sum below the returned set's largest is included, ties at the boundary may add more.
/// Two passes over a 512-bucket histogram of the high bits; O(n). Returns the count written.
size_t strata_select_smallest_u16(const uint16_t *sums, size_t n, size_t keep, uint32_t *out);

/// 2 when the VBMI path runs (the dispatcher's level is avx512 and the CPU has VBMI), else 0.
/// Follows STRATA_KERNELS and strata_kernels_force like every kernel family.
int strata_pq_scan_u8_isa(void);

#ifdef __cplusplus
}
#endif
#endif
