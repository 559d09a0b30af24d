// Strata kernel dispatch: which instruction-set level every kernel family (distances, index, filter)
// uses, chosen once per process (see strata_dispatch.c).
#ifndef STRATA_DISPATCH_H
#define STRATA_DISPATCH_H

#ifdef __cplusplus
extern "C" {
#endif

/// Name of the instruction-set level the dispatcher picked ("avx512", "avx2", "scalar"), for
/// dump/bench output. Every kernel family runs at this level (or, where a family has no variant for
/// it, at the best one below: see strata_index_kernels_isa and strata_pq_scan_u8_isa).
const char *strata_kernels_isa(void);

/// Forces the instruction-set level of every kernel family for the whole process, for tests and
/// benchmarks.
///
/// isa is "scalar", "avx2" or "avx512"; a level the CPU lacks falls back to the best one below it.
/// NULL restores the default choice (the best level, capped by the STRATA_KERNELS environment
/// variable, which takes the same names). Returns the name of the level now in use, or NULL (and
/// changes nothing) if isa is not one of the names. Thread-safe; calls already running finish on
/// the level they started with.
const char *strata_kernels_force(const char *isa);

#ifdef __cplusplus
}
#endif
#endif
