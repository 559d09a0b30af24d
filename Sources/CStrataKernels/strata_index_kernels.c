// Strata index kernels (see include/strata_index_kernels.h). Run-time dispatch on the level that
// strata_dispatch.c chose for every kernel family; no compiler flags.
//
// Why C: the ADC look-up is a gather (one table entry per sub-space, chosen by a code byte), and the
// table build / nearest-centroid loops want 16 lanes; neither is expressible in portable Swift
// without FMA-by-libm calls on baseline x86-64 (STYLE.md practice 11).
#include "strata_index_kernels.h"
#include "strata_dispatch.h"
#include "strata_dispatch_internal.h"

#include <float.h>

#if STRATA_X86
#include <immintrin.h>
#endif

// ---------------------------------------------------------------- scalar references

static void l2t_scalar(const float *x, const float *ct, size_t d, size_t k, float *out) {
    for (size_t c = 0; c < k; c++) out[c] = 0.0f;
    for (size_t j = 0; j < d; j++) {
        const float xj = x[j];
        const float *row = ct + j * k;
        for (size_t c = 0; c < k; c++) {
            const float t = xj - row[c];
            out[c] += t * t;
        }
    }
}

static void l2tb_scalar(const float *x, size_t xstride, size_t n, const float *qt, size_t d, size_t k, float *out) {
    for (size_t r = 0; r < n; r++) l2t_scalar(x + r * xstride, qt, d, k, out + r * k);
}

static uint32_t nearest_scalar(const float *x, const float *ct, size_t d, size_t k, float *dist) {
    float best = FLT_MAX;
    uint32_t bi = 0;
    for (size_t c = 0; c < k; c++) {
        float s = 0.0f;
        for (size_t j = 0; j < d; j++) {
            const float t = x[j] - ct[j * k + c];
            s += t * t;
        }
        if (s < best) { best = s; bi = (uint32_t)c; }
    }
    if (dist) *dist = best;
    return bi;
}

static void pq_table_scalar(const float *q, const float *ct, size_t m, size_t dsub, int kind, float *table) {
    for (size_t s = 0; s < m; s++) {
        const float *cs = ct + s * dsub * 256;
        const float *qs = q + s * dsub;
        float *ts = table + s * 256;
        for (size_t c = 0; c < 256; c++) ts[c] = 0.0f;
        for (size_t j = 0; j < dsub; j++) {
            const float *row = cs + j * 256;
            const float qj = qs[j];
            if (kind == 0) {
                for (size_t c = 0; c < 256; c++) { const float t = qj - row[c]; ts[c] += t * t; }
            } else {
                for (size_t c = 0; c < 256; c++) ts[c] -= qj * row[c];
            }
        }
    }
}

static void adc_scalar(const float *table, const uint8_t *codes, size_t m,
                       const uint32_t *ids, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *code = codes + (size_t)ids[i] * m;
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        size_t s = 0;
        for (; s + 4 <= m; s += 4) {
            s0 += table[(s + 0) * 256 + code[s + 0]];
            s1 += table[(s + 1) * 256 + code[s + 1]];
            s2 += table[(s + 2) * 256 + code[s + 2]];
            s3 += table[(s + 3) * 256 + code[s + 3]];
        }
        for (; s < m; s++) s0 += table[s * 256 + code[s]];
        out[i] = (s0 + s1) + (s2 + s3);
    }
}

#if STRATA_X86
// ---------------------------------------------------------------- AVX-512

__attribute__((target("avx512f")))
static void l2t_avx512(const float *x, const float *ct, size_t d, size_t k, float *out) {
    size_t c = 0;
    for (; c + 16 <= k; c += 16) {
        __m512 acc = _mm512_setzero_ps();
        for (size_t j = 0; j < d; j++) {
            const __m512 t = _mm512_sub_ps(_mm512_set1_ps(x[j]), _mm512_loadu_ps(ct + j * k + c));
            acc = _mm512_fmadd_ps(t, t, acc);
        }
        _mm512_storeu_ps(out + c, acc);
    }
    for (; c < k; c++) {
        float s = 0.0f;
        for (size_t j = 0; j < d; j++) { const float t = x[j] - ct[j * k + c]; s += t * t; }
        out[c] = s;
    }
}

// Four rows against 32 transposed columns per step: 8 independent accumulator chains (enough to hide
// the FMA latency) and 6 loads for 16 vector operations, so the loop is bound by the FMA ports, not by
// loads or by one dependency chain (l2t_avx512 above has a single chain per 16 columns). Every lane
// adds (x_j - q_j)^2 to its accumulator as one fused multiply-add, over j in order, whichever tile it lands in, so a
// distance does not depend on how the rows were split into blocks or threads.
__attribute__((target("avx512f")))
static void l2tb_avx512(const float *x, size_t xstride, size_t n, const float *qt, size_t d, size_t k, float *out) {
    size_t r = 0;
    for (; r + 4 <= n; r += 4) {
        const float *x0 = x + r * xstride, *x1 = x0 + xstride, *x2 = x1 + xstride, *x3 = x2 + xstride;
        float *o = out + r * k;
        size_t c = 0;
        for (; c + 32 <= k; c += 32) {
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
            __m512 b0 = _mm512_setzero_ps(), b1 = _mm512_setzero_ps(), b2 = _mm512_setzero_ps(), b3 = _mm512_setzero_ps();
            for (size_t j = 0; j < d; j++) {
                const __m512 qa = _mm512_loadu_ps(qt + j * k + c), qb = _mm512_loadu_ps(qt + j * k + c + 16);
                __m512 v = _mm512_set1_ps(x0[j]), t;
                t = _mm512_sub_ps(v, qa); a0 = _mm512_fmadd_ps(t, t, a0);
                t = _mm512_sub_ps(v, qb); b0 = _mm512_fmadd_ps(t, t, b0);
                v = _mm512_set1_ps(x1[j]);
                t = _mm512_sub_ps(v, qa); a1 = _mm512_fmadd_ps(t, t, a1);
                t = _mm512_sub_ps(v, qb); b1 = _mm512_fmadd_ps(t, t, b1);
                v = _mm512_set1_ps(x2[j]);
                t = _mm512_sub_ps(v, qa); a2 = _mm512_fmadd_ps(t, t, a2);
                t = _mm512_sub_ps(v, qb); b2 = _mm512_fmadd_ps(t, t, b2);
                v = _mm512_set1_ps(x3[j]);
                t = _mm512_sub_ps(v, qa); a3 = _mm512_fmadd_ps(t, t, a3);
                t = _mm512_sub_ps(v, qb); b3 = _mm512_fmadd_ps(t, t, b3);
            }
            _mm512_storeu_ps(o + c, a0); _mm512_storeu_ps(o + c + 16, b0);
            _mm512_storeu_ps(o + k + c, a1); _mm512_storeu_ps(o + k + c + 16, b1);
            _mm512_storeu_ps(o + 2 * k + c, a2); _mm512_storeu_ps(o + 2 * k + c + 16, b2);
            _mm512_storeu_ps(o + 3 * k + c, a3); _mm512_storeu_ps(o + 3 * k + c + 16, b3);
        }
        for (; c < k; c += 16) {
            __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps(), a2 = _mm512_setzero_ps(), a3 = _mm512_setzero_ps();
            for (size_t j = 0; j < d; j++) {
                const __m512 q = _mm512_loadu_ps(qt + j * k + c);
                __m512 t;
                t = _mm512_sub_ps(_mm512_set1_ps(x0[j]), q); a0 = _mm512_fmadd_ps(t, t, a0);
                t = _mm512_sub_ps(_mm512_set1_ps(x1[j]), q); a1 = _mm512_fmadd_ps(t, t, a1);
                t = _mm512_sub_ps(_mm512_set1_ps(x2[j]), q); a2 = _mm512_fmadd_ps(t, t, a2);
                t = _mm512_sub_ps(_mm512_set1_ps(x3[j]), q); a3 = _mm512_fmadd_ps(t, t, a3);
            }
            _mm512_storeu_ps(o + c, a0); _mm512_storeu_ps(o + k + c, a1);
            _mm512_storeu_ps(o + 2 * k + c, a2); _mm512_storeu_ps(o + 3 * k + c, a3);
        }
    }
    for (; r < n; r++) {
        const float *x0 = x + r * xstride;
        for (size_t c = 0; c < k; c += 16) {
            __m512 a0 = _mm512_setzero_ps();
            for (size_t j = 0; j < d; j++) {
                const __m512 t = _mm512_sub_ps(_mm512_set1_ps(x0[j]), _mm512_loadu_ps(qt + j * k + c));
                a0 = _mm512_fmadd_ps(t, t, a0);
            }
            _mm512_storeu_ps(out + r * k + c, a0);
        }
    }
}

__attribute__((target("avx512f")))
static uint32_t nearest_avx512(const float *x, const float *ct, size_t d, size_t k, float *dist) {
    // Running per-lane minimum and its index; strict < keeps the lowest index per lane, and the final
    // reduction breaks ties between lanes by index, so the result equals the scalar reference.
    __m512 best = _mm512_set1_ps(FLT_MAX);
    __m512i besti = _mm512_setzero_si512();
    __m512i idx = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    const __m512i step = _mm512_set1_epi32(16);
    size_t c = 0;
    for (; c + 16 <= k; c += 16) {
        __m512 acc = _mm512_setzero_ps();
        for (size_t j = 0; j < d; j++) {
            const __m512 t = _mm512_sub_ps(_mm512_set1_ps(x[j]), _mm512_loadu_ps(ct + j * k + c));
            acc = _mm512_fmadd_ps(t, t, acc);
        }
        const __mmask16 lt = _mm512_cmp_ps_mask(acc, best, _CMP_LT_OQ);
        best = _mm512_mask_mov_ps(best, lt, acc);
        besti = _mm512_mask_mov_epi32(besti, lt, idx);
        idx = _mm512_add_epi32(idx, step);
    }
    float bv[16];
    uint32_t bi[16];
    _mm512_storeu_ps(bv, best);
    _mm512_storeu_si512((void *)bi, besti);
    float b = FLT_MAX;
    uint32_t r = 0;
    for (int l = 0; l < 16; l++) {
        if (bv[l] < b || (bv[l] == b && bi[l] < r)) { b = bv[l]; r = bi[l]; }
    }
    for (; c < k; c++) {
        float s = 0.0f;
        for (size_t j = 0; j < d; j++) { const float t = x[j] - ct[j * k + c]; s += t * t; }
        if (s < b) { b = s; r = (uint32_t)c; }
    }
    if (dist) *dist = b;
    return r;
}

__attribute__((target("avx512f")))
static void pq_table_avx512(const float *q, const float *ct, size_t m, size_t dsub, int kind, float *table) {
    for (size_t s = 0; s < m; s++) {
        const float *cs = ct + s * dsub * 256;
        const float *qs = q + s * dsub;
        float *ts = table + s * 256;
        for (size_t c = 0; c < 256; c += 16) {
            __m512 acc = _mm512_setzero_ps();
            if (kind == 0) {
                for (size_t j = 0; j < dsub; j++) {
                    const __m512 t = _mm512_sub_ps(_mm512_set1_ps(qs[j]), _mm512_loadu_ps(cs + j * 256 + c));
                    acc = _mm512_fmadd_ps(t, t, acc);
                }
            } else {
                for (size_t j = 0; j < dsub; j++)
                    acc = _mm512_fnmadd_ps(_mm512_set1_ps(qs[j]), _mm512_loadu_ps(cs + j * 256 + c), acc);
            }
            _mm512_storeu_ps(ts + c, acc);
        }
    }
}

__attribute__((target("avx512f")))
static inline float adc_one_avx512(const float *table, const uint8_t *code, size_t m) {
    // One gather per 16 sub-spaces: lane l reads table[(s + l) * 256 + code[s + l]].
    const __m512i lane = _mm512_setr_epi32(0, 256, 512, 768, 1024, 1280, 1536, 1792,
                                           2048, 2304, 2560, 2816, 3072, 3328, 3584, 3840);
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    size_t s = 0;
    for (; s + 32 <= m; s += 32) {
        const __m512i i0 = _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(code + s))), lane);
        const __m512i i1 = _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(code + s + 16))), lane);
        acc0 = _mm512_add_ps(acc0, _mm512_i32gather_ps(i0, table + s * 256, 4));
        acc1 = _mm512_add_ps(acc1, _mm512_i32gather_ps(i1, table + (s + 16) * 256, 4));
    }
    for (; s + 16 <= m; s += 16) {
        const __m512i i0 = _mm512_add_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(code + s))), lane);
        acc0 = _mm512_add_ps(acc0, _mm512_i32gather_ps(i0, table + s * 256, 4));
    }
    float r = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
    for (; s < m; s++) r += table[s * 256 + code[s]];
    return r;
}

__attribute__((target("avx512f")))
static void adc_avx512(const float *table, const uint8_t *codes, size_t m,
                       const uint32_t *ids, size_t n, float *out) {
    for (size_t i = 0; i < n; i++) {
        if (i + 4 < n) __builtin_prefetch(codes + (size_t)ids[i + 4] * m, 0, 3);
        out[i] = adc_one_avx512(table, codes + (size_t)ids[i] * m, m);
    }
}

// ---------------------------------------------------------------- AVX2 (table build and nearest only)

__attribute__((target("avx2,fma")))
static void pq_table_avx2(const float *q, const float *ct, size_t m, size_t dsub, int kind, float *table) {
    for (size_t s = 0; s < m; s++) {
        const float *cs = ct + s * dsub * 256;
        const float *qs = q + s * dsub;
        float *ts = table + s * 256;
        for (size_t c = 0; c < 256; c += 8) {
            __m256 acc = _mm256_setzero_ps();
            if (kind == 0) {
                for (size_t j = 0; j < dsub; j++) {
                    const __m256 t = _mm256_sub_ps(_mm256_set1_ps(qs[j]), _mm256_loadu_ps(cs + j * 256 + c));
                    acc = _mm256_fmadd_ps(t, t, acc);
                }
            } else {
                for (size_t j = 0; j < dsub; j++)
                    acc = _mm256_fnmadd_ps(_mm256_set1_ps(qs[j]), _mm256_loadu_ps(cs + j * 256 + c), acc);
            }
            _mm256_storeu_ps(ts + c, acc);
        }
    }
}

__attribute__((target("avx2,fma")))
static void l2t_avx2(const float *x, const float *ct, size_t d, size_t k, float *out) {
    size_t c = 0;
    for (; c + 8 <= k; c += 8) {
        __m256 acc = _mm256_setzero_ps();
        for (size_t j = 0; j < d; j++) {
            const __m256 t = _mm256_sub_ps(_mm256_set1_ps(x[j]), _mm256_loadu_ps(ct + j * k + c));
            acc = _mm256_fmadd_ps(t, t, acc);
        }
        _mm256_storeu_ps(out + c, acc);
    }
    for (; c < k; c++) {
        float s = 0.0f;
        for (size_t j = 0; j < d; j++) { const float t = x[j] - ct[j * k + c]; s += t * t; }
        out[c] = s;
    }
}
// AVX2 version of l2tb_avx512: four rows against 16 columns (two 8-lane halves), same per-lane order.
__attribute__((target("avx2,fma")))
static void l2tb_avx2(const float *x, size_t xstride, size_t n, const float *qt, size_t d, size_t k, float *out) {
    size_t r = 0;
    for (; r + 4 <= n; r += 4) {
        const float *x0 = x + r * xstride, *x1 = x0 + xstride, *x2 = x1 + xstride, *x3 = x2 + xstride;
        float *o = out + r * k;
        for (size_t c = 0; c < k; c += 16) {
            __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps(), a2 = _mm256_setzero_ps(), a3 = _mm256_setzero_ps();
            __m256 b0 = _mm256_setzero_ps(), b1 = _mm256_setzero_ps(), b2 = _mm256_setzero_ps(), b3 = _mm256_setzero_ps();
            for (size_t j = 0; j < d; j++) {
                const __m256 qa = _mm256_loadu_ps(qt + j * k + c), qb = _mm256_loadu_ps(qt + j * k + c + 8);
                __m256 v = _mm256_set1_ps(x0[j]), t;
                t = _mm256_sub_ps(v, qa); a0 = _mm256_fmadd_ps(t, t, a0);
                t = _mm256_sub_ps(v, qb); b0 = _mm256_fmadd_ps(t, t, b0);
                v = _mm256_set1_ps(x1[j]);
                t = _mm256_sub_ps(v, qa); a1 = _mm256_fmadd_ps(t, t, a1);
                t = _mm256_sub_ps(v, qb); b1 = _mm256_fmadd_ps(t, t, b1);
                v = _mm256_set1_ps(x2[j]);
                t = _mm256_sub_ps(v, qa); a2 = _mm256_fmadd_ps(t, t, a2);
                t = _mm256_sub_ps(v, qb); b2 = _mm256_fmadd_ps(t, t, b2);
                v = _mm256_set1_ps(x3[j]);
                t = _mm256_sub_ps(v, qa); a3 = _mm256_fmadd_ps(t, t, a3);
                t = _mm256_sub_ps(v, qb); b3 = _mm256_fmadd_ps(t, t, b3);
            }
            _mm256_storeu_ps(o + c, a0); _mm256_storeu_ps(o + c + 8, b0);
            _mm256_storeu_ps(o + k + c, a1); _mm256_storeu_ps(o + k + c + 8, b1);
            _mm256_storeu_ps(o + 2 * k + c, a2); _mm256_storeu_ps(o + 2 * k + c + 8, b2);
            _mm256_storeu_ps(o + 3 * k + c, a3); _mm256_storeu_ps(o + 3 * k + c + 8, b3);
        }
    }
    for (; r < n; r++) {
        const float *x0 = x + r * xstride;
        for (size_t c = 0; c < k; c += 8) {
            __m256 a0 = _mm256_setzero_ps();
            for (size_t j = 0; j < d; j++) {
                const __m256 t = _mm256_sub_ps(_mm256_set1_ps(x0[j]), _mm256_loadu_ps(qt + j * k + c));
                a0 = _mm256_fmadd_ps(t, t, a0);
            }
            _mm256_storeu_ps(out + r * k + c, a0);
        }
    }
}
#endif

// ---------------------------------------------------------------- dispatch

// The AVX-512 variants need only AVX-512 F, which the avx512 level includes; nearest centroid and ADC
// have no AVX2 variant and run the scalar code at that level.

const char *strata_index_kernels_isa(void) { return strata_kernels_isa(); }

void strata_l2_to_transposed_f32(const float *x, const float *ct, size_t d, size_t k, float *out) {
#if STRATA_X86
    switch (strata_dispatch_level()) {
    case STRATA_LEVEL_AVX512: l2t_avx512(x, ct, d, k, out); return;
    case STRATA_LEVEL_AVX2: l2t_avx2(x, ct, d, k, out); return;
    default: break;
    }
#endif
    l2t_scalar(x, ct, d, k, out);
}

void strata_l2_block_transposed_f32(const float *x, size_t xstride, size_t n, const float *qt, size_t d,
                                    size_t k, float *out) {
#if STRATA_X86
    switch (strata_dispatch_level()) {
    case STRATA_LEVEL_AVX512: l2tb_avx512(x, xstride, n, qt, d, k, out); return;
    case STRATA_LEVEL_AVX2: l2tb_avx2(x, xstride, n, qt, d, k, out); return;
    default: break;
    }
#endif
    l2tb_scalar(x, xstride, n, qt, d, k, out);
}

uint32_t strata_nearest_transposed_f32(const float *x, const float *ct, size_t d, size_t k, float *dist) {
#if STRATA_X86
    if (strata_dispatch_level() == STRATA_LEVEL_AVX512) return nearest_avx512(x, ct, d, k, dist);
#endif
    return nearest_scalar(x, ct, d, k, dist);
}

void strata_pq_table_f32(const float *q, const float *ct, size_t m, size_t dsub, int kind, float *table) {
#if STRATA_X86
    switch (strata_dispatch_level()) {
    case STRATA_LEVEL_AVX512: pq_table_avx512(q, ct, m, dsub, kind, table); return;
    case STRATA_LEVEL_AVX2: pq_table_avx2(q, ct, m, dsub, kind, table); return;
    default: break;
    }
#endif
    pq_table_scalar(q, ct, m, dsub, kind, table);
}

void strata_pq_adc_f32(const float *table, const uint8_t *codes, size_t m,
                       const uint32_t *ids, size_t n, float *out) {
#if STRATA_X86
    if (strata_dispatch_level() == STRATA_LEVEL_AVX512) { adc_avx512(table, codes, m, ids, n, out); return; }
#endif
    adc_scalar(table, codes, m, ids, n, out);
}

// ---------------------------------------------------------------- heap

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int strata_trim_heap(void) {
#if defined(__GLIBC__)
    // After a build, glibc keeps freed blocks below its (dynamically raised) mmap threshold in the
    // arenas: tens of MB of RssAnon that a process serving searches would not have.
    return malloc_trim(0);
#else
    return 0;
#endif
}
