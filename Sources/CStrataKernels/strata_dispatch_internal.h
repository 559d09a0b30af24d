// The dispatcher's interface to the kernel families (not exported to Swift; the public part is
// include/strata_dispatch.h).
//
// Each family keeps its own kernels and selects among them by the level read here, so one choice
// (CPU features, capped by STRATA_KERNELS or strata_kernels_force) reaches every family.
#ifndef STRATA_DISPATCH_INTERNAL_H
#define STRATA_DISPATCH_INTERNAL_H

#include <stdatomic.h>

#if defined(__x86_64__)
#define STRATA_X86 1
#else
#define STRATA_X86 0
#endif

/// Instruction-set levels, in increasing order; each implies the ones below it.
///   scalar   baseline (portable C, SSE2 on x86-64)
///   avx2     AVX2 + FMA + F16C
///   avx512   AVX-512 F + VL + BW, with AVX2 + FMA + F16C
enum {
    STRATA_LEVEL_SCALAR = 0,
    STRATA_LEVEL_AVX2 = 1,
    STRATA_LEVEL_AVX512 = 2,
    STRATA_LEVEL_COUNT = 3,
};

/// The level in use, or -1 until the constructor (or the first call) resolves it. Only
/// strata_dispatch.c stores to it; the families read it through strata_dispatch_level().
extern _Atomic int strata_dispatch_active_level __attribute__((visibility("hidden")));

/// Resolves the level (best supported, capped by STRATA_KERNELS) if nothing has set it yet, and
/// returns the level in use. Slow path of strata_dispatch_level().
int strata_dispatch_resolve(void) __attribute__((visibility("hidden")));

/// Whether the CPU has AVX-512 VBMI (byte permutes), which the filter family's vector path needs on
/// top of the avx512 level.
int strata_cpu_has_avx512vbmi(void) __attribute__((visibility("hidden")));

/// The level every kernel family dispatches on: one relaxed load on the hot path (the level is a
/// plain value and the tables it selects are constant, so nothing else needs ordering).
static inline int strata_dispatch_level(void) {
    int level = atomic_load_explicit(&strata_dispatch_active_level, memory_order_relaxed);
    if (__builtin_expect(level < 0, 0)) level = strata_dispatch_resolve();
    return level;
}

#endif
