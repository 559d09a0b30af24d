// The one run-time CPU dispatcher of the kernel families (strata_kernels.c: distances and float16
// conversion; strata_index_kernels.c: PQ tables, ADC, nearest centroid; strata_filter_kernels.c:
// quantised scans).
//
// Why one: the families are compiled for several instruction sets with per-function
// `__attribute__((target(...)))` (so the package needs no compiler flags), and which variant runs
// must be one decision per process, so that STRATA_KERNELS and strata_kernels_force reach every
// family alike (tests compare levels; benchmarks pin one).
//
// The level is chosen once, in a constructor or on first use: the best one the CPU and OS support
// (`__builtin_cpu_supports` also checks that the OS saves the YMM/ZMM state), capped by the
// environment variable STRATA_KERNELS=scalar|avx2|avx512; a level the CPU lacks falls back to the
// best one below it. It is kept as a C11 atomic int that the families read on every call.

#include "strata_dispatch.h"
#include "strata_dispatch_internal.h"

#include <stdlib.h>
#include <string.h>

#if STRATA_X86
#include <cpuid.h>
#endif

_Atomic int strata_dispatch_active_level = -1;

static const char *const level_names[STRATA_LEVEL_COUNT] = {"scalar", "avx2", "avx512"};

/// CPU features, detected once: bit 0..1 the best level, bit 2 AVX-512 VBMI. -1 until detected;
/// racing first calls compute and store the same value.
static _Atomic int cpu_features = -1;

static int detect_cpu_features(void) {
#if STRATA_X86
    __builtin_cpu_init();  // needed when we run before the constructors that set up the CPU model
    // F16C is read from CPUID directly: __builtin_cpu_supports("f16c") reads __cpu_features2, which
    // older libgcc versions lack (a link error) or number differently. AVX2 passing implies that the
    // OS saves the YMM state, which is all F16C needs.
    unsigned eax, ebx, ecx, edx;
    int f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
    int avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
    if (!avx2) return STRATA_LEVEL_SCALAR;
    if (!(__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
          __builtin_cpu_supports("avx512bw"))) {
        return STRATA_LEVEL_AVX2;
    }
    int vbmi = __builtin_cpu_supports("avx512vbmi") ? 4 : 0;
    return STRATA_LEVEL_AVX512 | vbmi;
#else
    return STRATA_LEVEL_SCALAR;
#endif
}

static int features(void) {
    int f = atomic_load_explicit(&cpu_features, memory_order_relaxed);
    if (f < 0) {
        f = detect_cpu_features();
        atomic_store_explicit(&cpu_features, f, memory_order_relaxed);
    }
    return f;
}

/// The highest level this CPU and OS support.
static int best_supported_level(void) { return features() & 3; }

int strata_cpu_has_avx512vbmi(void) { return (features() & 4) != 0; }

/// The level named `name` ("scalar", "avx2", "avx512"), or -1.
static int level_named(const char *name) {
    if (name == NULL) return -1;
    for (int level = 0; level < STRATA_LEVEL_COUNT; level++) {
        if (strcmp(name, level_names[level]) == 0) return level;
    }
    return -1;
}

/// The default choice: the best supported level, capped by STRATA_KERNELS if it names a level.
static int default_level(void) {
    int level = best_supported_level();
    int cap = level_named(getenv("STRATA_KERNELS"));
    if (cap >= 0 && cap < level) level = cap;
    return level;
}

int strata_dispatch_resolve(void) {
    int expected = -1;
    int chosen = default_level();
    // Keep whatever another thread (or strata_kernels_force) stored first.
    if (!atomic_compare_exchange_strong_explicit(&strata_dispatch_active_level, &expected, chosen,
                                                 memory_order_relaxed, memory_order_relaxed)) {
        return expected;
    }
    return chosen;
}

__attribute__((constructor)) static void strata_dispatch_constructor(void) {
    (void)strata_dispatch_resolve();
}

const char *strata_kernels_isa(void) { return level_names[strata_dispatch_level()]; }

const char *strata_kernels_force(const char *isa) {
    int level;
    if (isa == NULL) {
        level = default_level();
    } else {
        level = level_named(isa);
        if (level < 0) return NULL;
        int best = best_supported_level();
        if (level > best) level = best;
    }
    atomic_store_explicit(&strata_dispatch_active_level, level, memory_order_relaxed);
    return level_names[level];
}
