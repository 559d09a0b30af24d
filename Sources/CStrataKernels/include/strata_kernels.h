// Strata distance kernels: the few loops that need AVX2/AVX-512, chosen once at run time.
//
// Every function has a scalar fallback; the variant that runs is the level chosen by the dispatcher
// (strata_dispatch.h: CPU features, STRATA_KERNELS, strata_kernels_force), so the package needs no
// compiler flags and links on any x86-64 (and on non-x86 via the scalar path).
// Each kernel has a Swift reference implementation that the tests compare against.
#ifndef STRATA_KERNELS_H
#define STRATA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "strata_dispatch.h"

#ifdef __cplusplus
extern "C" {
#endif

/// Inner product of two float32 vectors of length n.
float strata_dot_f32(const float *a, const float *b, size_t n);
/// Squared Euclidean distance of two float32 vectors of length n.
float strata_l2sq_f32(const float *a, const float *b, size_t n);
/// Inner product of a float32 query and a float16 (IEEE binary16, raw bits) vector of length n.
float strata_dot_f16(const float *a, const uint16_t *b, size_t n);
/// Squared Euclidean distance of a float32 query and a float16 vector of length n.
float strata_l2sq_f16(const float *a, const uint16_t *b, size_t n);
/// Converts n float16 values (raw bits) to float32.
void strata_f16_to_f32(const uint16_t *src, float *dst, size_t n);
/// Converts n float32 values to float16 (raw bits), round to nearest even.
void strata_f32_to_f16(const float *src, uint16_t *dst, size_t n);

/// Converts one float16 value (raw bits) to float32; exact, the same at every level (no dispatch).
float strata_half_to_float(uint16_t h);
/// Converts one float32 value to float16 (raw bits), round to nearest even; the same at every level.
uint16_t strata_float_to_half(float f);

#ifdef __cplusplus
}
#endif
#endif
