// Kernels of include/strata_filter_kernels.h; the variant is chosen by strata_dispatch.c's level.
#include "strata_filter_kernels.h"
#include "strata_dispatch_internal.h"

#if STRATA_X86
#include <immintrin.h>
#endif

static void scan_scalar(const uint8_t *lut, const uint8_t *codes, size_t stride, size_t m,
                        const uint32_t *ids, size_t n, uint16_t *out) {
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + (size_t)ids[i] * stride;
        uint32_t a0 = 0, a1 = 0;
        size_t s = 0;
        for (; s + 2 <= m; s += 2) { a0 += lut[s * 256 + c[s]]; a1 += lut[(s + 1) * 256 + c[s + 1]]; }
        for (; s < m; s++) a0 += lut[s * 256 + c[s]];
        out[i] = (uint16_t)(a0 + a1);
    }
}

#if STRATA_X86
// The byte permutation of the scans: within a register of 16 dwords (row r: bytes 4r..4r+3 =
// sub-spaces s..s+3), gather byte j of every row together: result byte 16j + r = source byte 4r + j.
__attribute__((target("avx512f"), always_inline))
static inline __m512i scan_byte_perm(void) {
    uint8_t perm[64];
    for (int j = 0; j < 4; j++) for (int r = 0; r < 16; r++) perm[16 * j + r] = (uint8_t)(4 * r + j);
    return _mm512_loadu_si512((const void *)perm);
}

// One step of the 64-row scans: g_k holds rows 16k..16k+15, sub-spaces s..s+3 (one dword each) as
// scan_byte_perm groups them; adds the look-up table entries of sub-spaces s..s+3 of all 64 rows to
// *accLo (rows 0..31) and *accHi (rows 32..63). Inlined, so the accumulators stay in registers.
__attribute__((target("avx512f,avx512bw,avx512vbmi"), always_inline))
static inline void scan64_add4(const uint8_t *lut, size_t s, __m512i g0, __m512i g1, __m512i g2, __m512i g3,
                               __m512i *accLo, __m512i *accHi) {
    // Now lane j (128 bits) of g_k holds sub-space s+j of rows 16k..16k+15. Transpose the 4x4
    // lanes so that register j holds sub-space s+j of all 64 rows.
    __m512i t0 = _mm512_shuffle_i64x2(g0, g1, 0x44);  // g0.l0 g0.l1 g1.l0 g1.l1
    __m512i t1 = _mm512_shuffle_i64x2(g0, g1, 0xEE);  // g0.l2 g0.l3 g1.l2 g1.l3
    __m512i t2 = _mm512_shuffle_i64x2(g2, g3, 0x44);
    __m512i t3 = _mm512_shuffle_i64x2(g2, g3, 0xEE);
    __m512i c[4];
    c[0] = _mm512_shuffle_i64x2(t0, t2, 0x88);  // g0.l0 g1.l0 g2.l0 g3.l0
    c[1] = _mm512_shuffle_i64x2(t0, t2, 0xDD);  // g0.l1 g1.l1 g2.l1 g3.l1
    c[2] = _mm512_shuffle_i64x2(t1, t3, 0x88);
    c[3] = _mm512_shuffle_i64x2(t1, t3, 0xDD);
    for (int j = 0; j < 4; j++) {
        const uint8_t *t = lut + (s + (size_t)j) * 256;
        const __m512i lo = _mm512_permutex2var_epi8(_mm512_loadu_si512((const void *)t), c[j],
                                                    _mm512_loadu_si512((const void *)(t + 64)));
        const __m512i hi = _mm512_permutex2var_epi8(_mm512_loadu_si512((const void *)(t + 128)), c[j],
                                                    _mm512_loadu_si512((const void *)(t + 192)));
        const __m512i v = _mm512_mask_blend_epi8(_mm512_movepi8_mask(c[j]), lo, hi);
        *accLo = _mm512_add_epi16(*accLo, _mm512_cvtepu8_epi16(_mm512_castsi512_si256(v)));
        *accHi = _mm512_add_epi16(*accHi, _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(v, 1)));
    }
}

// 64 rows whose code offsets (ids * m) are in off[0..63].
__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static void scan64_vbmi(const uint8_t *lut, const uint8_t *codes, size_t m, const int32_t *off, uint16_t *out) {
    const __m512i o0 = _mm512_loadu_si512((const void *)(off + 0));
    const __m512i o1 = _mm512_loadu_si512((const void *)(off + 16));
    const __m512i o2 = _mm512_loadu_si512((const void *)(off + 32));
    const __m512i o3 = _mm512_loadu_si512((const void *)(off + 48));
    const __m512i bytePerm = scan_byte_perm();
    __m512i accLo = _mm512_setzero_si512(), accHi = _mm512_setzero_si512();
    for (size_t s = 0; s + 4 <= m; s += 4) {
        const uint8_t *base = codes + s;
        // g_k: rows 16k..16k+15, sub-spaces s..s+3 (one dword each).
        __m512i g0 = _mm512_permutexvar_epi8(bytePerm, _mm512_i32gather_epi32(o0, (const void *)base, 1));
        __m512i g1 = _mm512_permutexvar_epi8(bytePerm, _mm512_i32gather_epi32(o1, (const void *)base, 1));
        __m512i g2 = _mm512_permutexvar_epi8(bytePerm, _mm512_i32gather_epi32(o2, (const void *)base, 1));
        __m512i g3 = _mm512_permutexvar_epi8(bytePerm, _mm512_i32gather_epi32(o3, (const void *)base, 1));
        scan64_add4(lut, s, g0, g1, g2, g3, &accLo, &accHi);
    }
    _mm512_storeu_si512((void *)out, accLo);
    _mm512_storeu_si512((void *)(out + 32), accHi);
}

// 16x16 dword transpose in registers (block-recursive: at level d, swap the off-diagonal d x d
// blocks of every 2d x 2d block; four levels).
// Index vectors of the four levels (d = 8, 4, 2, 1): row i takes (c & d) ? other[c - d] : own[c];
// row i + d takes (c & d) ? other[c] : own[c + d] (other = 16 + index in _mm512_permutex2var_epi32).
static const int32_t transposeIndex[4][2][16] = {
    {{0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23}, {8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31}},
    {{0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27}, {4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31}},
    {{0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29}, {2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31}},
    {{0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30}, {1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31}},
};

// 16x16 dword transpose in registers (block-recursive: at level d, swap the off-diagonal d x d
// blocks of every 2d x 2d block; four levels).
__attribute__((target("avx512f")))
static inline void transpose16x16_epi32(__m512i a[16]) {
    int level = 0;
    for (int d = 8; d >= 1; d >>= 1, level++) {
        const __m512i idxI = _mm512_loadu_si512((const void *)transposeIndex[level][0]);
        const __m512i idxJ = _mm512_loadu_si512((const void *)transposeIndex[level][1]);
        for (int i = 0; i < 16; i++) {
            if (i & d) continue;
            const __m512i x = a[i], y = a[i + d];
            a[i] = _mm512_permutex2var_epi32(x, idxI, y);
            a[i + d] = _mm512_permutex2var_epi32(x, idxJ, y);
        }
    }
}

// As scan64_vbmi for m % 4 == 0 and 4 <= m <= 128, without gathers: each group of 16 rows is
// loaded row-wise (two masked 64-byte loads per row) and transposed as 16x16 dwords, so that
// register q holds sub-spaces 4q..4q+3 of the 16 rows; the rest is as in scan64_vbmi.
__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static void scan64_vbmi_rows(const uint8_t *lut, const uint8_t *codes, size_t m, const uint8_t *const *rows, uint16_t *out) {
    const int quads = (int)(m / 4);
    __m512i x[4][32];
    for (int g = 0; g < 4; g++) {
        __m512i a[16];
        const __mmask16 m0 = quads >= 16 ? 0xFFFF : (__mmask16)((1u << quads) - 1);
        for (int r = 0; r < 16; r++) a[r] = _mm512_maskz_loadu_epi32(m0, (const void *)rows[16 * g + r]);
        transpose16x16_epi32(a);
        for (int q = 0; q < 16 && q < quads; q++) x[g][q] = a[q];
        if (quads > 16) {
            const __mmask16 m1 = (__mmask16)((1u << (quads - 16)) - 1);
            for (int r = 0; r < 16; r++) a[r] = _mm512_maskz_loadu_epi32(m1, (const void *)(rows[16 * g + r] + 64));
            transpose16x16_epi32(a);
            for (int q = 16; q < quads; q++) x[g][q] = a[q - 16];
        }
    }
    (void)codes;
    const __m512i bytePerm = scan_byte_perm();
    __m512i accLo = _mm512_setzero_si512(), accHi = _mm512_setzero_si512();
    for (int q = 0; q < quads; q++) {
        const size_t s = (size_t)q * 4;
        __m512i g0 = _mm512_permutexvar_epi8(bytePerm, x[0][q]);
        __m512i g1 = _mm512_permutexvar_epi8(bytePerm, x[1][q]);
        __m512i g2 = _mm512_permutexvar_epi8(bytePerm, x[2][q]);
        __m512i g3 = _mm512_permutexvar_epi8(bytePerm, x[3][q]);
        scan64_add4(lut, s, g0, g1, g2, g3, &accLo, &accHi);
    }
    _mm512_storeu_si512((void *)out, accLo);
    _mm512_storeu_si512((void *)(out + 32), accHi);
}
#endif

float strata_pq_lut_u8(const float *table, size_t m, uint8_t *lut) {
    float width = 0;
    float lows[1024];
    if (m > 1024) return 0;
    for (size_t s = 0; s < m; s++) {
        const float *t = table + s * 256;
        float lo = t[0], hi = t[0];
        for (size_t j = 1; j < 256; j++) { lo = t[j] < lo ? t[j] : lo; hi = t[j] > hi ? t[j] : hi; }
        lows[s] = lo;
        if (hi - lo > width) width = hi - lo;
    }
    const float scale = width > 0 ? 255.0f / width : 0.0f;
    for (size_t s = 0; s < m; s++) {
        const float *t = table + s * 256;
        uint8_t *o = lut + s * 256;
        const float lo = lows[s];
        for (size_t j = 0; j < 256; j++) {
            float v = (t[j] - lo) * scale + 0.5f;
            o[j] = (uint8_t)(v >= 255.0f ? 255.0f : v);
        }
    }
    return width > 0 ? width / 255.0f : 0.0f;
}

size_t strata_select_smallest_u16(const uint16_t *sums, size_t n, size_t keep, uint32_t *out) {
    if (keep >= n) { for (size_t i = 0; i < n; i++) out[i] = (uint32_t)i; return n; }
    uint32_t hist[512] = {0};
    for (size_t i = 0; i < n; i++) hist[sums[i] >> 7]++;
    size_t cum = 0, b = 0;
    for (; b < 512; b++) { cum += hist[b]; if (cum >= keep) break; }
    const uint32_t limit = (uint32_t)((b + 1) << 7);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) if (sums[i] < limit) out[k++] = (uint32_t)i;
    return k;
}

// Starts the code reads of the next batch, up to 64 rows from ids[from] (random rows: L2/L3 misses),
// before this batch's work: the first and the last of each row's m code bytes, rows `stride` apart.
static inline void prefetch_batch(const uint8_t *codes, size_t stride, size_t m, const uint32_t *ids, size_t from, size_t n) {
    const size_t next = n - from < 64 ? n - from : 64;
    for (size_t j = 0; j < next; j++) {
        const uint8_t *p = codes + (size_t)ids[from + j] * stride;
        __builtin_prefetch(p, 0, 3);
        __builtin_prefetch(p + m - 1, 0, 3);
    }
}

int strata_pq_scan_u8_isa(void) {
    return strata_dispatch_level() == STRATA_LEVEL_AVX512 && strata_cpu_has_avx512vbmi() ? 2 : 0;
}

void strata_pq_scan_u8(const uint8_t *lut, const uint8_t *codes, size_t m,
                       const uint32_t *ids, size_t n, uint16_t *out) {
    strata_pq_scan_u8_partial(lut, codes, m, m, ids, n, out);
}

void strata_pq_scan_u8_partial(const uint8_t *lut, const uint8_t *codes, size_t stride, size_t m,
                               const uint32_t *ids, size_t n, uint16_t *out) {
#if STRATA_X86
    if (strata_pq_scan_u8_isa() == 2 && m % 4 == 0 && m >= 4 && (m <= 128 || stride == m)) {
        size_t i = 0;
        int32_t off[64];
        uint16_t tmp[64];
        if (m <= 128) {
            const uint8_t *rows[64];
            while (i < n) {
                const size_t take = n - i < 64 ? n - i : 64;
                for (size_t j = 0; j < 64; j++) rows[j] = codes + (size_t)ids[i + (j < take ? j : 0)] * stride;
                prefetch_batch(codes, stride, m, ids, i + take, n);
                scan64_vbmi_rows(lut, codes, m, rows, tmp);
                for (size_t j = 0; j < take; j++) out[i + j] = tmp[j];
                i += take;
            }
            return;
        }
        while (i < n) {
            const size_t take = n - i < 64 ? n - i : 64;
            int ok = 1;
            for (size_t j = 0; j < 64; j++) {
                const uint64_t o = (uint64_t)ids[i + (j < take ? j : 0)] * m;
                if (o + m > 0x7FFFFFFFull) { ok = 0; break; }
                off[j] = (int32_t)o;
            }
            if (!ok) { scan_scalar(lut, codes, stride, m, ids + i, take, out + i); i += take; continue; }
            prefetch_batch(codes, m, m, ids, i + take, n);  // here stride == m
            scan64_vbmi(lut, codes, m, off, tmp);
            for (size_t j = 0; j < take; j++) out[i + j] = tmp[j];
            i += take;
        }
        return;
    }
#endif
    scan_scalar(lut, codes, stride, m, ids, n, out);
}
