/*
 * Portable SIMD layer on GCC/Clang vector extensions: the vector types and their plumbing
 * (loads, stores, selects, gathers, transposes); the math (exp, log) is simd/math.h.
 *
 * The including file defines FS_VBYTES (16, 32 or 64: the vector width in
 * bytes) and compiles for a target that has vectors that wide (SSE2 is the
 * x86-64 baseline, NEON the aarch64 one; AVX2 and AVX-512 files enable
 * their target with a pragma).  The arithmetic is plain C operators on vector
 * types; only max goes through an intrinsic where the portable select would
 * cost more.  Nothing here depends on -ffast-math: every operation is IEEE.
 */
#ifndef FS_SIMD_VECTOR_H
#define FS_SIMD_VECTOR_H

#include <stdint.h>
#include <string.h>

#ifndef FS_VBYTES
#error "define FS_VBYTES before including simd/vector.h"
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#define FS_INLINE static inline __attribute__((always_inline))

typedef float vf32 __attribute__((vector_size(FS_VBYTES)));
typedef double vf64 __attribute__((vector_size(FS_VBYTES)));
typedef int32_t vi32 __attribute__((vector_size(FS_VBYTES)));
typedef int64_t vi64 __attribute__((vector_size(FS_VBYTES)));
typedef uint32_t vu32 __attribute__((vector_size(FS_VBYTES)));
typedef uint64_t vu64 __attribute__((vector_size(FS_VBYTES)));

#define FS_LANES_F32 ((int)(FS_VBYTES / 4))
#define FS_LANES_F64 ((int)(FS_VBYTES / 8))

/* Unaligned loads and stores: memcpy compiles to one vector move. */
FS_INLINE vf32 load_f32(const float *p) { vf32 v; memcpy(&v, p, sizeof v); return v; }
FS_INLINE vf64 load_f64(const double *p) { vf64 v; memcpy(&v, p, sizeof v); return v; }
FS_INLINE void store_f32(float *p, vf32 v) { memcpy(p, &v, sizeof v); }
FS_INLINE void store_f64(double *p, vf64 v) { memcpy(p, &v, sizeof v); }
/* Non-temporal (streaming) stores to a VBYTES-aligned address: the line goes to
 * memory without being read first or kept in cache.  Plain stores where the
 * target has none.  FS_SFENCE orders them before the kernel returns. */
FS_INLINE void stream_f32(float *p, vf32 v)
{
#if FS_VBYTES == 64 && defined(__AVX512F__)
    _mm512_stream_ps(p, (__m512)v);
#elif FS_VBYTES == 32 && defined(__AVX__)
    _mm256_stream_ps(p, (__m256)v);
#elif FS_VBYTES == 16 && defined(__SSE2__)
    _mm_stream_ps(p, (__m128)v);
#else
    store_f32(p, v);
#endif
}

FS_INLINE void stream_f64(double *p, vf64 v)
{
#if FS_VBYTES == 64 && defined(__AVX512F__)
    _mm512_stream_pd(p, (__m512d)v);
#elif FS_VBYTES == 32 && defined(__AVX__)
    _mm256_stream_pd(p, (__m256d)v);
#elif FS_VBYTES == 16 && defined(__SSE2__)
    _mm_stream_pd(p, (__m128d)v);
#else
    store_f64(p, v);
#endif
}

#if defined(__SSE2__)
#define FS_SFENCE() _mm_sfence()
#else
#define FS_SFENCE() __sync_synchronize()
#endif

FS_INLINE vf32 splat_f32(float s) { return (vf32){0} + s; }
FS_INLINE vf64 splat_f64(double s) { return (vf64){0} + s; }

/* Lane select: m is all-ones or all-zeros per lane (a comparison result).  AVX has it as one
 * instruction (by the sign bit of m), which GCC did not always find in the three-operation form. */
#if FS_VBYTES == 32 && defined(__AVX__)
FS_INLINE vf32 select_f32(vi32 m, vf32 a, vf32 b) { return (vf32)_mm256_blendv_ps((__m256)b, (__m256)a, (__m256)m); }
FS_INLINE vf64 select_f64(vi64 m, vf64 a, vf64 b) { return (vf64)_mm256_blendv_pd((__m256d)b, (__m256d)a, (__m256d)m); }
#else
FS_INLINE vf32 select_f32(vi32 m, vf32 a, vf32 b) { return (vf32)(((vi32)a & m) | ((vi32)b & ~m)); }
FS_INLINE vf64 select_f64(vi64 m, vf64 a, vf64 b) { return (vf64)(((vi64)a & m) | ((vi64)b & ~m)); }
#endif

/*
 * max_*(a, b) = a > b ? a : b, lane by lane.  With a NaN in either lane it
 * returns b, which is exactly what the x86 MAXPS/MAXPD instructions do.
 */
FS_INLINE vf32 max_f32(vf32 a, vf32 b)
{
#if FS_VBYTES == 64 && defined(__AVX512F__)
    return (vf32)_mm512_max_ps((__m512)a, (__m512)b);
#elif FS_VBYTES == 32 && defined(__AVX__)
    return (vf32)_mm256_max_ps((__m256)a, (__m256)b);
#elif FS_VBYTES == 16 && defined(__SSE2__)
    return (vf32)_mm_max_ps((__m128)a, (__m128)b);
#else
    return select_f32(a > b, a, b);
#endif
}

FS_INLINE vf64 max_f64(vf64 a, vf64 b)
{
#if FS_VBYTES == 64 && defined(__AVX512F__)
    return (vf64)_mm512_max_pd((__m512d)a, (__m512d)b);
#elif FS_VBYTES == 32 && defined(__AVX__)
    return (vf64)_mm256_max_pd((__m256d)a, (__m256d)b);
#elif FS_VBYTES == 16 && defined(__SSE2__)
    return (vf64)_mm_max_pd((__m128d)a, (__m128d)b);
#else
    return select_f64(a > b, a, b);
#endif
}

/* Sum of the two halves of a float vector, widened to double: the lanes of the
 * result add up to the lanes of a, exactly. */
typedef float vf32half __attribute__((vector_size(FS_VBYTES / 2)));
FS_INLINE vf64 widen_sum_f32(vf32 a)
{
#if FS_VBYTES == 16
    vf32half lo = __builtin_shufflevector(a, a, 0, 1), hi = __builtin_shufflevector(a, a, 2, 3);
#elif FS_VBYTES == 32
    vf32half lo = __builtin_shufflevector(a, a, 0, 1, 2, 3), hi = __builtin_shufflevector(a, a, 4, 5, 6, 7);
#elif FS_VBYTES == 64
    vf32half lo = __builtin_shufflevector(a, a, 0, 1, 2, 3, 4, 5, 6, 7),
             hi = __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15);
#else
#error "unsupported FS_VBYTES"
#endif
    return __builtin_convertvector(lo, vf64) + __builtin_convertvector(hi, vf64);
}

FS_INLINE vf64 widen_sum_f64(vf64 a) { return a; }

/* The first n (0 <= n < lanes) elements at p as a vector, the other lanes set to fill, and the
 * store of a vector's first n lanes: masked loads and stores where the instruction set has them
 * (a masked-off element is neither read nor faulted on), except AVX2's store, done by halves
 * (below); elsewhere lane by lane through a stack copy (which stalls on store forwarding: 20-30
 * cycles, more than a short row's work). */
#if FS_VBYTES == 64 && defined(__AVX512F__)
#define FS_MASKED_TAILS 1
FS_INLINE vf32 vload_tail_f32(const float *p, int64_t n, float fill)
{
    return (vf32)_mm512_mask_loadu_ps(_mm512_set1_ps(fill), (__mmask16)((1u << n) - 1), p);
}
FS_INLINE vf64 vload_tail_f64(const double *p, int64_t n, double fill)
{
    return (vf64)_mm512_mask_loadu_pd(_mm512_set1_pd(fill), (__mmask8)((1u << n) - 1), p);
}
FS_INLINE void vstore_tail_f32(float *p, int64_t n, vf32 v) { _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v); }
FS_INLINE void vstore_tail_f64(double *p, int64_t n, vf64 v) { _mm512_mask_storeu_pd(p, (__mmask8)((1u << n) - 1), (__m512d)v); }
#elif FS_VBYTES == 32 && defined(__AVX2__)
#define FS_MASKED_TAILS 1
FS_INLINE vi32 fs_tail_mask32(int64_t n) { return (vi32){0, 1, 2, 3, 4, 5, 6, 7} < (int32_t)n; }
FS_INLINE vi64 fs_tail_mask64(int64_t n) { return (vi64){0, 1, 2, 3} < (int64_t)n; }
FS_INLINE vf32 vload_tail_f32(const float *p, int64_t n, float fill)
{
    const vi32 m = fs_tail_mask32(n);
    return select_f32(m, (vf32)_mm256_maskload_ps(p, (__m256i)m), splat_f32(fill));
}
FS_INLINE vf64 vload_tail_f64(const double *p, int64_t n, double fill)
{
    const vi64 m = fs_tail_mask64(n);
    return select_f64(m, (vf64)_mm256_maskload_pd(p, (__m256i)m), splat_f64(fill));
}
/* the store by the bits of n: 4 lanes, then 2, then 1.  AVX2's masked
 * store (vmaskmovps) took 10-18 cycles on AMD Zen 3, these 2-4: 2^18 floats in rows of 17, one
 * thread, softmax 1.07x and cross-entropy 1.13x faster; rows of 100, 1.04-1.05x */
FS_INLINE void vstore_tail_f32(float *p, int64_t n, vf32 v)
{
    __m128 h = _mm256_castps256_ps128((__m256)v);
    if (n & 4) {
        _mm_storeu_ps(p, h);
        h = _mm256_extractf128_ps((__m256)v, 1);
        p += 4;
    }
    if (n & 2) {
        _mm_storel_pi((__m64 *)p, h);
        h = _mm_movehl_ps(h, h);
        p += 2;
    }
    if (n & 1)
        _mm_store_ss(p, h);
}
/* n doubles are 2n floats: the stores of 4 and 2 floats above (never the single one) */
FS_INLINE void vstore_tail_f64(double *p, int64_t n, vf64 v) { vstore_tail_f32((float *)p, 2 * n, (vf32)v); }
#else
#define FS_MASKED_TAILS 0
#endif

/* Horizontal max and sum by halving (log2(lanes) shuffles instead of a chain of lanes - 1 scalar
 * steps, which cost 60 cycles a row at 16 lanes): the max is exact in any order; the sum adds
 * the lanes in a fixed tree order. */
#if FS_VBYTES == 16
#define FS_HALVE_F32(a) __builtin_shufflevector(a, a, 2, 3, 0, 1)
#define FS_PAIR_F32(a) __builtin_shufflevector(a, a, 1, 0, 3, 2)
#define FS_HALVE_F64(a) __builtin_shufflevector(a, a, 1, 0)
#elif FS_VBYTES == 32
#define FS_HALVE_F32(a) __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3)
#define FS_QUARTER_F32(a) __builtin_shufflevector(a, a, 2, 3, 0, 1, 6, 7, 4, 5)
#define FS_PAIR_F32(a) __builtin_shufflevector(a, a, 1, 0, 3, 2, 5, 4, 7, 6)
#define FS_HALVE_F64(a) __builtin_shufflevector(a, a, 2, 3, 0, 1)
#define FS_PAIR_F64(a) __builtin_shufflevector(a, a, 1, 0, 3, 2)
#elif FS_VBYTES == 64
#define FS_HALVE_F32(a) __builtin_shufflevector(a, a, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7)
#define FS_EIGHTH_F32(a) __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11)
#define FS_QUARTER_F32(a) __builtin_shufflevector(a, a, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13)
#define FS_PAIR_F32(a) __builtin_shufflevector(a, a, 1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 13, 12, 15, 14)
#define FS_HALVE_F64(a) __builtin_shufflevector(a, a, 4, 5, 6, 7, 0, 1, 2, 3)
#define FS_QUARTER_F64(a) __builtin_shufflevector(a, a, 2, 3, 0, 1, 6, 7, 4, 5)
#define FS_PAIR_F64(a) __builtin_shufflevector(a, a, 1, 0, 3, 2, 5, 4, 7, 6)
#endif
FS_INLINE float hmax_f32(vf32 a)
{
    a = max_f32(a, FS_HALVE_F32(a));
#if FS_VBYTES == 64
    a = max_f32(a, FS_EIGHTH_F32(a));
#endif
#if FS_VBYTES >= 32
    a = max_f32(a, FS_QUARTER_F32(a));
#endif
    a = max_f32(a, FS_PAIR_F32(a));
    return a[0];
}
FS_INLINE double hmax_f64(vf64 a)
{
    a = max_f64(a, FS_HALVE_F64(a));
#if FS_VBYTES == 64
    a = max_f64(a, FS_QUARTER_F64(a));
#endif
#if FS_VBYTES >= 32
    a = max_f64(a, FS_PAIR_F64(a));
#endif
    return a[0];
}
FS_INLINE double hsum_f64(vf64 a)
{
    a += FS_HALVE_F64(a);
#if FS_VBYTES == 64
    a += FS_QUARTER_F64(a);
#endif
#if FS_VBYTES >= 32
    a += FS_PAIR_F64(a);
#endif
    return a[0];
}

/* Lane k = p[k][j]: one class of LANES rows, built in registers (a vector
 * load right after scalar stores to the same place would stall on store
 * forwarding). */
#define FS_G4(p, j) p[0][j], p[1][j], p[2][j], p[3][j]
#define FS_G8(p, j) FS_G4(p, j), p[4][j], p[5][j], p[6][j], p[7][j]
#define FS_G16(p, j) FS_G8(p, j), p[8][j], p[9][j], p[10][j], p[11][j], p[12][j], p[13][j], p[14][j], p[15][j]
#if FS_VBYTES == 16
FS_INLINE vf32 gather_rows_f32(const float *const *p, int64_t j) { return (vf32){FS_G4(p, j)}; }
FS_INLINE vf64 gather_rows_f64(const double *const *p, int64_t j) { return (vf64){p[0][j], p[1][j]}; }
#elif FS_VBYTES == 32
FS_INLINE vf32 gather_rows_f32(const float *const *p, int64_t j) { return (vf32){FS_G8(p, j)}; }
FS_INLINE vf64 gather_rows_f64(const double *const *p, int64_t j) { return (vf64){FS_G4(p, j)}; }
#elif FS_VBYTES == 64
FS_INLINE vf32 gather_rows_f32(const float *const *p, int64_t j) { return (vf32){FS_G16(p, j)}; }
FS_INLINE vf64 gather_rows_f64(const double *const *p, int64_t j) { return (vf64){FS_G8(p, j)}; }
#endif
#undef FS_G4
#undef FS_G8
#undef FS_G16

/* Lane k = base[idx[k]]: one gather instruction where the instruction set has one (AVX2, AVX-512),
 * else lane by lane */
FS_INLINE vf32 gather_at_f32(const float *base, vi32 idx)
{
#if FS_VBYTES == 64 && defined(__AVX512F__)
    return (vf32)_mm512_i32gather_ps((__m512i)idx, base, 4);
#elif FS_VBYTES == 32 && defined(__AVX2__)
    return (vf32)_mm256_i32gather_ps(base, (__m256i)idx, 4);
#else
    vf32 r;
    for (int k = 0; k < FS_LANES_F32; k++)
        r[k] = base[idx[k]];
    return r;
#endif
}

FS_INLINE vf64 gather_at_f64(const double *base, vi64 idx)
{
#if FS_VBYTES == 64 && defined(__AVX512F__)
    return (vf64)_mm512_i64gather_pd((__m512i)idx, base, 8);
#elif FS_VBYTES == 32 && defined(__AVX2__)
    return (vf64)_mm256_i64gather_pd(base, (__m256i)idx, 8);
#else
    vf64 r;
    for (int k = 0; k < FS_LANES_F64; k++)
        r[k] = base[idx[k]];
    return r;
#endif
}

/*
 * In-place transpose of a square block of vectors (r[i] lane k <-> r[k] lane i):
 * log2(lanes) stages, each swapping the off-diagonal d x d blocks of every
 * pair of rows (i, i + d) with two two-source shuffles (on AVX2, 8 floats:
 * vperm2f128, vshufps, and vpermilps + blend).
 */
#define FS_T2_1_LO 0, 2
#define FS_T2_1_HI 1, 3
#define FS_T4_2_LO 0, 1, 4, 5
#define FS_T4_2_HI 2, 3, 6, 7
#define FS_T4_1_LO 0, 4, 2, 6
#define FS_T4_1_HI 1, 5, 3, 7
#define FS_T8_4_LO 0, 1, 2, 3, 8, 9, 10, 11
#define FS_T8_4_HI 4, 5, 6, 7, 12, 13, 14, 15
#define FS_T8_2_LO 0, 1, 8, 9, 4, 5, 12, 13
#define FS_T8_2_HI 2, 3, 10, 11, 6, 7, 14, 15
#define FS_T8_1_LO 0, 8, 2, 10, 4, 12, 6, 14
#define FS_T8_1_HI 1, 9, 3, 11, 5, 13, 7, 15
#define FS_T16_8_LO 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define FS_T16_8_HI 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define FS_T16_4_LO 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define FS_T16_4_HI 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define FS_T16_2_LO 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define FS_T16_2_HI 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define FS_T16_1_LO 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define FS_T16_1_HI 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
/* the element (i, c) goes to (i, c) or across the pair by d: see FS_T*_*_LO/HI */
#define FS_TSTAGE(VT, r, L, d, LO, HI)                                                                 \
    for (int i_ = 0; i_ < (L); i_++)                                                                   \
        if (!(i_ & (d))) {                                                                             \
            VT a_ = r[i_], b_ = r[i_ + (d)];                                                           \
            r[i_] = __builtin_shufflevector(a_, b_, LO);                                               \
            r[i_ + (d)] = __builtin_shufflevector(a_, b_, HI);                                         \
        }
#define FS_TRANSPOSE2(VT, r) FS_TSTAGE(VT, r, 2, 1, FS_T2_1_LO, FS_T2_1_HI)
#define FS_TRANSPOSE4(VT, r)                                                                           \
    FS_TSTAGE(VT, r, 4, 2, FS_T4_2_LO, FS_T4_2_HI) FS_TSTAGE(VT, r, 4, 1, FS_T4_1_LO, FS_T4_1_HI)
#define FS_TRANSPOSE8(VT, r)                                                                           \
    FS_TSTAGE(VT, r, 8, 4, FS_T8_4_LO, FS_T8_4_HI) FS_TSTAGE(VT, r, 8, 2, FS_T8_2_LO, FS_T8_2_HI)      \
    FS_TSTAGE(VT, r, 8, 1, FS_T8_1_LO, FS_T8_1_HI)
#define FS_TRANSPOSE16(VT, r)                                                                          \
    FS_TSTAGE(VT, r, 16, 8, FS_T16_8_LO, FS_T16_8_HI) FS_TSTAGE(VT, r, 16, 4, FS_T16_4_LO, FS_T16_4_HI) \
    FS_TSTAGE(VT, r, 16, 2, FS_T16_2_LO, FS_T16_2_HI) FS_TSTAGE(VT, r, 16, 1, FS_T16_1_LO, FS_T16_1_HI)
#if FS_VBYTES == 16
FS_INLINE void transpose_f32(vf32 *r) { FS_TRANSPOSE4(vf32, r) }
FS_INLINE void transpose_f64(vf64 *r) { FS_TRANSPOSE2(vf64, r) }
#elif FS_VBYTES == 32
FS_INLINE void transpose_f32(vf32 *r) { FS_TRANSPOSE8(vf32, r) }
FS_INLINE void transpose_f64(vf64 *r) { FS_TRANSPOSE4(vf64, r) }
#elif FS_VBYTES == 64
FS_INLINE void transpose_f32(vf32 *r) { FS_TRANSPOSE16(vf32, r) }
FS_INLINE void transpose_f64(vf64 *r) { FS_TRANSPOSE8(vf64, r) }
#endif

/*
 * Two columns of 8 rows of floats (p[k * stride], p[k * stride + 1], k < 8) to and from two
 * vectors, with 8-byte loads and stores: the last chunk of a tile whose rows have 8 q + 2
 * floats (10 classes, say) costs a quarter of a full 8 x 8 transpose, and nothing is read or
 * written past the two columns.
 */
#if (FS_VBYTES == 32 && defined(__AVX__)) || (FS_VBYTES == 64 && defined(__AVX512F__))
#define FS_PAIRS_F32 1
/* [a0 b0 a1 b1] from the pairs at a and b, and back */
FS_INLINE __m128 fs_load_2pairs(const float *a, const float *b)
{
    return _mm_loadh_pi(_mm_castpd_ps(_mm_load_sd((const double *)a)), (const __m64 *)b);
}
FS_INLINE void fs_store_2pairs(float *a, float *b, __m128 v)
{
    _mm_storel_pi((__m64 *)a, v);
    _mm_storeh_pi((__m64 *)b, v);
}
#endif
#if FS_VBYTES == 32 && defined(__AVX__)
/* Rows that follow each other (stride 2: the 8 rows are two vectors) load and store whole
 * vectors: [a0 b0 .. a3 b3] and [a4 b4 .. a7 b7] give [a0 a1 a4 a5 | a2 a3 a6 a7] by vshufps,
 * put in order by vpermpd (its own inverse, which the store applies first). */
FS_INLINE void load_pairs_f32(const float *p, int64_t stride, vf32 *c0, vf32 *c1)
{
#ifdef __AVX2__
    if (stride == 2) {
        const __m256 v0 = _mm256_loadu_ps(p), v1 = _mm256_loadu_ps(p + 8);
        *c0 = (vf32)_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(v0, v1, 0x88)), 0xd8);
        *c1 = (vf32)_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(v0, v1, 0xdd)), 0xd8);
        return;
    }
#endif
    /* lo = [a0 b0 a1 b1 | a4 b4 a5 b5], hi = [a2 b2 a3 b3 | a6 b6 a7 b7] (row k: a_k b_k) */
    __m256 lo = _mm256_insertf128_ps(_mm256_castps128_ps256(fs_load_2pairs(p, p + stride)),
                                     fs_load_2pairs(p + 4 * stride, p + 5 * stride), 1);
    __m256 hi = _mm256_insertf128_ps(_mm256_castps128_ps256(fs_load_2pairs(p + 2 * stride, p + 3 * stride)),
                                     fs_load_2pairs(p + 6 * stride, p + 7 * stride), 1);
    *c0 = (vf32)_mm256_shuffle_ps(lo, hi, 0x88);
    *c1 = (vf32)_mm256_shuffle_ps(lo, hi, 0xdd);
}
FS_INLINE void store_pairs_f32(float *p, int64_t stride, vf32 c0, vf32 c1)
{
#ifdef __AVX2__
    if (stride == 2) {
        const __m256 d0 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd((__m256)c0), 0xd8));
        const __m256 d1 = _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd((__m256)c1), 0xd8));
        _mm256_storeu_ps(p, _mm256_unpacklo_ps(d0, d1));
        _mm256_storeu_ps(p + 8, _mm256_unpackhi_ps(d0, d1));
        return;
    }
#endif
    __m256 lo = _mm256_unpacklo_ps((__m256)c0, (__m256)c1), hi = _mm256_unpackhi_ps((__m256)c0, (__m256)c1);
    __m128 l0 = _mm256_castps256_ps128(lo), l1 = _mm256_extractf128_ps(lo, 1);
    __m128 h0 = _mm256_castps256_ps128(hi), h1 = _mm256_extractf128_ps(hi, 1);
    fs_store_2pairs(p, p + stride, l0);
    fs_store_2pairs(p + 2 * stride, p + 3 * stride, h0);
    fs_store_2pairs(p + 4 * stride, p + 5 * stride, l1);
    fs_store_2pairs(p + 6 * stride, p + 7 * stride, h1);
}
#elif FS_VBYTES == 64 && defined(__AVX512F__)
/* The same for 16 rows: without it, a tile of 2 classes went through a whole 16 x 16 transpose
 * and ran 2x slower than AVX2's tile of 8 rows.  Rows that follow each other (stride 2: the
 * tile is two vectors) load and store whole vectors. */
/* rows k0 .. k0 + 7 as [a b] pairs, in order */
FS_INLINE __m512 fs_load_8pairs(const float *p, int64_t stride)
{
    __m512 v = _mm512_castps128_ps512(fs_load_2pairs(p, p + stride));
    v = _mm512_insertf32x4(v, fs_load_2pairs(p + 2 * stride, p + 3 * stride), 1);
    v = _mm512_insertf32x4(v, fs_load_2pairs(p + 4 * stride, p + 5 * stride), 2);
    return _mm512_insertf32x4(v, fs_load_2pairs(p + 6 * stride, p + 7 * stride), 3);
}
FS_INLINE void load_pairs_f32(const float *p, int64_t stride, vf32 *c0, vf32 *c1)
{
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512 lo = stride == 2 ? _mm512_loadu_ps(p) : fs_load_8pairs(p, stride);
    const __m512 hi = stride == 2 ? _mm512_loadu_ps(p + 16) : fs_load_8pairs(p + 8 * stride, stride);
    *c0 = (vf32)_mm512_permutex2var_ps(lo, even, hi);
    *c1 = (vf32)_mm512_permutex2var_ps(lo, odd, hi);
}
FS_INLINE void store_pairs_f32(float *p, int64_t stride, vf32 c0, vf32 c1)
{
    const __m512i first = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i second = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    const __m512 lo = _mm512_permutex2var_ps((__m512)c0, first, (__m512)c1);
    const __m512 hi = _mm512_permutex2var_ps((__m512)c0, second, (__m512)c1);
    if (stride == 2) {
        _mm512_storeu_ps(p, lo);
        _mm512_storeu_ps(p + 16, hi);
        return;
    }
    for (int h = 0; h < 2; h++) {
        const __m512 v = h ? hi : lo;
        float *q = p + 8 * h * stride;
        fs_store_2pairs(q, q + stride, _mm512_castps512_ps128(v));
        fs_store_2pairs(q + 2 * stride, q + 3 * stride, _mm512_extractf32x4_ps(v, 1));
        fs_store_2pairs(q + 4 * stride, q + 5 * stride, _mm512_extractf32x4_ps(v, 2));
        fs_store_2pairs(q + 6 * stride, q + 7 * stride, _mm512_extractf32x4_ps(v, 3));
    }
}
#endif

/* s where m > -inf, NaN where m == -inf */
FS_INLINE vf32 nan_where_ninf_f32(vf32 m, vf32 s) { return select_f32(m == -__builtin_inff(), splat_f32(__builtin_nanf("")), s); }
FS_INLINE vf64 nan_where_ninf_f64(vf64 m, vf64 s) { return select_f64(m == -__builtin_inf(), splat_f64(__builtin_nan("")), s); }

#endif /* FS_SIMD_VECTOR_H */
