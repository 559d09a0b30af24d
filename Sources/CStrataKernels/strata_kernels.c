// Strata distance kernels with run-time CPU dispatch.
//
// Why C: a plain `swift build` targets baseline x86-64 (SSE2), where Swift's FMA becomes a libm call
// per lane and nothing wider than 128 bits is emitted (STYLE.md, practice 11). Here each kernel exists
// three times, compiled for a different instruction set with a per-function
// `__attribute__((target(...)))`, so the package needs no compiler flags:
//
//   level    target attribute                          vector width   tails
//   avx512   avx512f,avx512vl,avx512bw,avx2,fma,f16c   16 x f32       masked loads (no over-read)
//   avx2     avx2,fma,f16c                             8 x f32        scalar loop
//   scalar   (baseline)                                -              -
//
// The level is the one strata_dispatch.c chose for every kernel family (the best the CPU has,
// capped by STRATA_KERNELS or strata_kernels_force); each call reads it and goes through a constant
// table of function pointers for that level.
//
// Results differ between levels only by floating-point summation order (several accumulators, FMA
// vs. multiply-then-add); float16 <-> float32 conversion is bit-exact at every level (IEEE binary16,
// round to nearest even; NaNs stay NaN, quieted, payload truncated as the F16C instructions do).

#include "strata_kernels.h"
#include "strata_dispatch_internal.h"

#include <string.h>

#if STRATA_X86
#include <immintrin.h>
#endif

// MARK: - Scalar float16 <-> float32 (exact; the reference for the vector paths' tails)

static inline uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float f32_from_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/// binary16 -> binary32. Every half value is exactly representable as a float.
static inline float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1f) {
        // Inf, or NaN: quiet it (set the top mantissa bit) as VCVTPH2PS does, keep the payload.
        return f32_from_bits(sign | 0x7f800000u | (mantissa ? 0x00400000u | (mantissa << 13) : 0));
    }
    if (exponent == 0) {
        // Zero or subnormal: m * 2^-24, exact in float (m < 2^10).
        float magnitude = (float)mantissa * 0x1p-24f;
        return f32_from_bits(sign | f32_bits(magnitude));
    }
    // Normal: rebias the exponent from 15 to 127.
    return f32_from_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

/// binary32 -> binary16, round to nearest, ties to even; overflow to infinity; subnormals exact.
/// Bit-identical to VCVTPS2PH with imm8 = _MM_FROUND_TO_NEAREST_INT (MXCSR.DAZ clear).
static inline uint16_t float_to_half(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u) {
        // Inf, or NaN: quiet it and keep the top 9 payload bits, as VCVTPS2PH does.
        if (ax > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((ax >> 13) & 0x3ffu));
        return (uint16_t)(sign | 0x7c00u);
    }
    // 65520 = 0x477ff000 is half-way between 65504 (largest half, odd mantissa) and 2^16: ties go up.
    if (ax >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u);
    if (ax >= 0x38800000u) {
        // Normal half (>= 2^-14). Rebias, then round away the low 13 bits to nearest even; a carry
        // out of the mantissa correctly bumps the exponent (and cannot reach infinity, see above).
        uint32_t r = ax - (112u << 23);
        r += 0x0fffu + ((r >> 13) & 1u);
        return (uint16_t)(sign | (r >> 13));
    }
    // Subnormal half or zero. 2^-25 (0x33000000) is the tie between 0 and 2^-24: even, so 0.
    if (ax <= 0x33000000u) return sign;
    uint32_t exponent = ax >> 23;                      // 102 ... 112
    uint32_t mantissa = (ax & 0x7fffffu) | 0x800000u;  // value = mantissa * 2^(exponent - 150)
    uint32_t shift = 126u - exponent;                  // to units of 2^-24: 14 ... 24
    uint32_t r = mantissa >> shift;
    uint32_t rest = mantissa & ((1u << shift) - 1u);
    uint32_t halfway = 1u << (shift - 1u);
    if (rest > halfway || (rest == halfway && (r & 1u))) r += 1;  // may become 0x400: smallest normal
    return (uint16_t)(sign | r);
}

// MARK: - Portable kernels ("scalar" level)

// Written with GCC/Clang vector extensions rather than plain scalar loops: they need no target
// attribute, become SSE2 on baseline x86-64 and NEON on arm64, and give eight independent
// accumulators (two 4-lane vectors) without asking the compiler to reassociate float additions,
// which it never does without -ffast-math. Loads go through memcpy because the data need not be
// 16-byte aligned; compilers turn those into unaligned vector loads.

typedef float v4f __attribute__((vector_size(16)));
typedef uint32_t v4u __attribute__((vector_size(16)));
typedef uint16_t v4h __attribute__((vector_size(8)));

static inline v4f load_v4f(const float *p) {
    v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline float hsum_v4f(v4f v) { return (v[0] + v[1]) + (v[2] + v[3]); }

/// Four halves at p, widened to floats without branches (bit-identical to half_to_float):
/// shift the exponent and mantissa into place and rebias; infinities and NaNs get the rest of the
/// exponent (and NaNs the quiet bit); subnormals are built as 2^-14 * (1 + m/1024) and have 2^-14
/// subtracted, which is exact.
static inline v4f load_f16x4_portable(const uint16_t *p) {
    v4h raw;
    memcpy(&raw, p, sizeof raw);
    v4u h = __builtin_convertvector(raw, v4u);     // zero-extend 16 -> 32 bits
    v4u o = (h & 0x7fffu) << 13;
    v4u e = o & 0x0f800000u;
    o += 0x38000000u;                              // exponent bias 15 -> 127
    v4u special = (v4u)(e == 0x0f800000u);         // all ones where inf/NaN
    v4u subnormal = (v4u)(e == 0u);                // all ones where zero/subnormal
    o += special & 0x38000000u;                    // exponent all ones
    v4u nan = special & (v4u)((h & 0x3ffu) != 0u);
    o |= nan & 0x00400000u;                        // quiet NaN, as VCVTPH2PS does
    o += subnormal & 0x00800000u;                  // 2^-14 * (1 + m/1024)
    v4f f = (v4f)o - (v4f)(subnormal & 0x38800000u);  // ... - 2^-14 = m * 2^-24
    return (v4f)((v4u)f | ((h & 0x8000u) << 16));
}

static float dot_f32_scalar(const float *a, const float *b, size_t n) {
    v4f s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 += load_v4f(a + i) * load_v4f(b + i);
        s1 += load_v4f(a + i + 4) * load_v4f(b + i + 4);
    }
    float tail = 0;
    for (; i < n; i++) tail += a[i] * b[i];
    return hsum_v4f(s0 + s1) + tail;
}

static float l2sq_f32_scalar(const float *a, const float *b, size_t n) {
    v4f s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v4f d0 = load_v4f(a + i) - load_v4f(b + i);
        v4f d1 = load_v4f(a + i + 4) - load_v4f(b + i + 4);
        s0 += d0 * d0;
        s1 += d1 * d1;
    }
    float tail = 0;
    for (; i < n; i++) {
        float d = a[i] - b[i];
        tail += d * d;
    }
    return hsum_v4f(s0 + s1) + tail;
}

static float dot_f16_scalar(const float *a, const uint16_t *b, size_t n) {
    v4f s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 += load_v4f(a + i) * load_f16x4_portable(b + i);
        s1 += load_v4f(a + i + 4) * load_f16x4_portable(b + i + 4);
    }
    float tail = 0;
    for (; i < n; i++) tail += a[i] * half_to_float(b[i]);
    return hsum_v4f(s0 + s1) + tail;
}

static float l2sq_f16_scalar(const float *a, const uint16_t *b, size_t n) {
    v4f s0 = {0, 0, 0, 0}, s1 = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        v4f d0 = load_v4f(a + i) - load_f16x4_portable(b + i);
        v4f d1 = load_v4f(a + i + 4) - load_f16x4_portable(b + i + 4);
        s0 += d0 * d0;
        s1 += d1 * d1;
    }
    float tail = 0;
    for (; i < n; i++) {
        float d = a[i] - half_to_float(b[i]);
        tail += d * d;
    }
    return hsum_v4f(s0 + s1) + tail;
}

static void f16_to_f32_scalar(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        v4f v = load_f16x4_portable(src + i);
        memcpy(dst + i, &v, sizeof v);
    }
    for (; i < n; i++) dst[i] = half_to_float(src[i]);
}

// Conversion to float16 happens when vectors are written, not per query: the exact branchy
// routine is good enough here.
static void f32_to_f16_scalar(const float *src, uint16_t *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = float_to_half(src[i]);
}

#if STRATA_X86

// MARK: - AVX2 + FMA + F16C kernels

#define STRATA_AVX2 __attribute__((target("avx2,fma,f16c")))

STRATA_AVX2 static inline float hsum256(__m256 v) {
    __m128 x = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    x = _mm_add_ps(x, _mm_movehl_ps(x, x));
    x = _mm_add_ss(x, _mm_movehdup_ps(x));
    return _mm_cvtss_f32(x);
}

// Four accumulators: FMA has a latency of 4 cycles and the loop is bound by two loads per FMA, so
// four chains keep the load ports busy; more only lengthen the final reduction for short vectors.

STRATA_AVX2 static float dot_f32_avx2(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    }
    float tail = 0;
    for (; i < n; i++) tail += a[i] * b[i];
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) + tail;
}

STRATA_AVX2 static float l2sq_f32_avx2(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    float tail = 0;
    for (; i < n; i++) {
        float d = a[i] - b[i];
        tail += d * d;
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) + tail;
}

/// Eight halves at p, widened to floats.
STRATA_AVX2 static inline __m256 load_f16x8(const uint16_t *p) {
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

STRATA_AVX2 static float dot_f16_avx2(const float *a, const uint16_t *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_f16x8(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), load_f16x8(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), load_f16x8(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), load_f16x8(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), load_f16x8(b + i), s0);
    }
    float tail = 0;
    for (; i < n; i++) tail += a[i] * half_to_float(b[i]);
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) + tail;
}

STRATA_AVX2 static float l2sq_f16_avx2(const float *a, const uint16_t *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), load_f16x8(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), load_f16x8(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), load_f16x8(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), load_f16x8(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), load_f16x8(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    float tail = 0;
    for (; i < n; i++) {
        float d = a[i] - half_to_float(b[i]);
        tail += d * d;
    }
    return hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3))) + tail;
}

STRATA_AVX2 static void f16_to_f32_avx2(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, load_f16x8(src + i));
    for (; i < n; i++) dst[i] = half_to_float(src[i]);
}

STRATA_AVX2 static void f32_to_f16_avx2(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(dst + i), h);
    }
    for (; i < n; i++) dst[i] = float_to_half(src[i]);
}

// MARK: - AVX-512 kernels (F for arithmetic and conversion, BW+VL for the 16-bit masked tail loads)

#define STRATA_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx2,fma,f16c")))

/// Mask selecting the first `r` (0 < r < 16) of 16 lanes; masked-off lanes are neither read nor
/// written, so a tail never touches memory past the end (it may sit at the end of a mapped page).
STRATA_AVX512 static inline __mmask16 tail_mask16(size_t r) {
    return (__mmask16)((1u << r) - 1u);
}

STRATA_AVX512 static float dot_f32_avx512(const float *a, const float *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
    }
    if (i < n) {
        __mmask16 m = tail_mask16(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

STRATA_AVX512 static float l2sq_f32_avx512(const float *a, const float *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __mmask16 m = tail_mask16(n - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

/// Sixteen halves at p, widened to floats.
STRATA_AVX512 static inline __m512 load_f16x16(const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

/// The first r halves at p (masked, no over-read), widened; the other lanes are +0.
STRATA_AVX512 static inline __m512 load_f16x16_masked(__mmask16 m, const uint16_t *p) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

STRATA_AVX512 static float dot_f16_avx512(const float *a, const uint16_t *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load_f16x16(b + i), s0);
        s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), load_f16x16(b + i + 16), s1);
        s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), load_f16x16(b + i + 32), s2);
        s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), load_f16x16(b + i + 48), s3);
    }
    for (; i + 16 <= n; i += 16) {
        s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), load_f16x16(b + i), s0);
    }
    if (i < n) {
        __mmask16 m = tail_mask16(n - i);
        s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), load_f16x16_masked(m, b + i), s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

STRATA_AVX512 static float l2sq_f16_avx512(const float *a, const uint16_t *b, size_t n) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    __m512 s2 = _mm512_setzero_ps(), s3 = _mm512_setzero_ps();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m512 d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), load_f16x16(b + i));
        __m512 d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), load_f16x16(b + i + 16));
        __m512 d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), load_f16x16(b + i + 32));
        __m512 d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), load_f16x16(b + i + 48));
        s0 = _mm512_fmadd_ps(d0, d0, s0);
        s1 = _mm512_fmadd_ps(d1, d1, s1);
        s2 = _mm512_fmadd_ps(d2, d2, s2);
        s3 = _mm512_fmadd_ps(d3, d3, s3);
    }
    for (; i + 16 <= n; i += 16) {
        __m512 d = _mm512_sub_ps(_mm512_loadu_ps(a + i), load_f16x16(b + i));
        s0 = _mm512_fmadd_ps(d, d, s0);
    }
    if (i < n) {
        __mmask16 m = tail_mask16(n - i);
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), load_f16x16_masked(m, b + i));
        s1 = _mm512_fmadd_ps(d, d, s1);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

STRATA_AVX512 static void f16_to_f32_avx512(const uint16_t *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, load_f16x16(src + i));
    if (i < n) {
        __mmask16 m = tail_mask16(n - i);
        _mm512_mask_storeu_ps(dst + i, m, load_f16x16_masked(m, src + i));
    }
}

STRATA_AVX512 static void f32_to_f16_avx512(const float *src, uint16_t *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256((__m256i *)(dst + i), h);
    }
    if (i < n) {
        __mmask16 m = tail_mask16(n - i);
        __m256i h = _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_mask_storeu_epi16(dst + i, m, h);
    }
}

#endif  // STRATA_X86

// MARK: - Dispatch

/// One instruction-set level's kernels.
typedef struct strata_kernel_table {
    float (*dot_f32)(const float *, const float *, size_t);
    float (*l2sq_f32)(const float *, const float *, size_t);
    float (*dot_f16)(const float *, const uint16_t *, size_t);
    float (*l2sq_f16)(const float *, const uint16_t *, size_t);
    void (*f16_to_f32)(const uint16_t *, float *, size_t);
    void (*f32_to_f16)(const float *, uint16_t *, size_t);
} strata_kernel_table;

#define TABLE_SCALAR                                                                                   \
    {dot_f32_scalar, l2sq_f32_scalar, dot_f16_scalar, l2sq_f16_scalar, f16_to_f32_scalar, f32_to_f16_scalar}

/// The kernels of each level, indexed by STRATA_LEVEL_*.
static const strata_kernel_table tables[STRATA_LEVEL_COUNT] = {
    [STRATA_LEVEL_SCALAR] = TABLE_SCALAR,
#if STRATA_X86
    [STRATA_LEVEL_AVX2] = {dot_f32_avx2, l2sq_f32_avx2, dot_f16_avx2, l2sq_f16_avx2, f16_to_f32_avx2,
                           f32_to_f16_avx2},
    [STRATA_LEVEL_AVX512] = {dot_f32_avx512, l2sq_f32_avx512, dot_f16_avx512, l2sq_f16_avx512,
                             f16_to_f32_avx512, f32_to_f16_avx512},
#else
    [STRATA_LEVEL_AVX2] = TABLE_SCALAR,
    [STRATA_LEVEL_AVX512] = TABLE_SCALAR,
#endif
};

static inline const strata_kernel_table *kernels(void) { return &tables[strata_dispatch_level()]; }

// MARK: - Public entry points

float strata_dot_f32(const float *a, const float *b, size_t n) { return kernels()->dot_f32(a, b, n); }

float strata_l2sq_f32(const float *a, const float *b, size_t n) { return kernels()->l2sq_f32(a, b, n); }

float strata_dot_f16(const float *a, const uint16_t *b, size_t n) { return kernels()->dot_f16(a, b, n); }

float strata_l2sq_f16(const float *a, const uint16_t *b, size_t n) { return kernels()->l2sq_f16(a, b, n); }

void strata_f16_to_f32(const uint16_t *src, float *dst, size_t n) { kernels()->f16_to_f32(src, dst, n); }

void strata_f32_to_f16(const float *src, uint16_t *dst, size_t n) { kernels()->f32_to_f16(src, dst, n); }

float strata_half_to_float(uint16_t h) { return half_to_float(h); }

uint16_t strata_float_to_half(float f) { return float_to_half(f); }
