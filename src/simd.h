/*
 * Portable SIMD layer on GCC/Clang vector extensions.
 *
 * The including file defines FS_VBYTES (16, 32 or 64: the vector width in
 * bytes) and compiles for a target that has vectors that wide (SSE2 is the
 * x86-64 baseline, NEON the aarch64 one; AVX2 and AVX-512 files enable
 * their target with a pragma).  The arithmetic is plain C operators on vector
 * types; only max goes through an intrinsic where the portable select would
 * cost more.  Nothing here depends on -ffast-math: every operation is IEEE.
 */
#ifndef FS_SIMD_H
#define FS_SIMD_H

#include <stdint.h>
#include <string.h>

#ifndef FS_VBYTES
#error "define FS_VBYTES before including simd.h"
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
FS_INLINE vf32 splat_f32(float s) { return (vf32){0} + s; }
FS_INLINE vf64 splat_f64(double s) { return (vf64){0} + s; }

/* Lane select: m is all-ones or all-zeros per lane (a comparison result). */
FS_INLINE vf32 select_f32(vi32 m, vf32 a, vf32 b) { return (vf32)(((vi32)a & m) | ((vi32)b & ~m)); }
FS_INLINE vf64 select_f64(vi64 m, vf64 a, vf64 b) { return (vf64)(((vi64)a & m) | ((vi64)b & ~m)); }

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

FS_INLINE vf32 min_f32(vf32 a, vf32 b) { return select_f32(a < b, a, b); }
FS_INLINE vf64 min_f64(vf64 a, vf64 b) { return select_f64(a < b, a, b); }

/*
 * exp(x), vectorized, for every input: -inf -> 0, +inf -> +inf, NaN -> NaN,
 * overflow -> +inf, gradual underflow into the subnormal range (results are
 * flushed to 0 only where exp(x) rounds to 0).
 *
 * Algorithm (Cody and Waite range reduction, as in Cephes' expf/exp by
 * S. L. Moshier): n = round(x / ln 2), r = x - n ln 2 in two parts so that
 * n * LN2_HI is exact, exp(r) by a polynomial on |r| <= ln(2)/2, then
 * exp(x) = exp(r) * 2^n1 * 2^n2 with n = n1 + n2, two exact scalings so that
 * 2^n never leaves the normal range even where the result is subnormal.
 * Rounding to an integer uses the 1.5 * 2^(mantissa bits) trick, which keeps
 * the integer in the low bits of the sum and needs no float->int
 * conversion (so NaN inputs raise no undefined behaviour).
 *
 * float32: Cephes expf's degree-7 polynomial (coefficients from Cephes
 * expf.c); measured error below 1 ulp over the finite range (see tests).
 * float64: Taylor series of degree 13 (truncation error < 5e-18 on
 * |r| <= ln(2)/2), evaluated by Horner's rule, error below 1 ulp.
 */
FS_INLINE vf32 exp_f32(vf32 x)
{
    const float LOG2E = 1.44269504088896341f;
    const float LN2_HI = 0.693359375f;            /* 355/512: n * LN2_HI is exact for |n| < 2^15 */
    const float LN2_LO = -2.12194440e-4f;
    const float SHIFT = 12582912.0f;              /* 1.5 * 2^23 */
    /* exp(x) rounds to +inf above 88.73 and to 0 below -103.98 */
    vi32 hi = x > 88.75f, lo = x < -104.0f;
    x = select_f32(hi, splat_f32(88.75f), x);
    x = select_f32(lo, splat_f32(-104.0f), x);

    vf32 t = x * LOG2E + SHIFT;
    vf32 n = t - SHIFT;                            /* round(x / ln 2), in [-150, 128] */
    vf32 r = (x - n * LN2_HI) - n * LN2_LO;

    vf32 p = splat_f32(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;

    /* n1 = round(n / 2), n2 = n - n1, both in [-75, 64]: 2^n1 and 2^n2 are normal */
    vf32 t1 = n * 0.5f + SHIFT;
    vf32 n1 = t1 - SHIFT;
    vf32 t2 = (n - n1) + SHIFT;
    vu32 e1 = ((vu32)t1 - (vu32)splat_f32(SHIFT) + 127u) << 23;
    vu32 e2 = ((vu32)t2 - (vu32)splat_f32(SHIFT) + 127u) << 23;
    return p * (vf32)e1 * (vf32)e2;
}

FS_INLINE vf64 exp_f64(vf64 x)
{
    const double LOG2E = 1.4426950408889634074;
    const double LN2_HI = 6.93145751953125e-1;    /* Cephes exp.c C1: exact products for |n| < 2^21 */
    const double LN2_LO = 1.42860682030941723212e-6;
    const double SHIFT = 6755399441055744.0;      /* 1.5 * 2^52 */
    /* exp(x) rounds to +inf above 709.79 and to 0 below -745.14 */
    vi64 hi = x > 709.8, lo = x < -746.0;
    x = select_f64(hi, splat_f64(709.8), x);
    x = select_f64(lo, splat_f64(-746.0), x);

    vf64 t = x * LOG2E + SHIFT;
    vf64 n = t - SHIFT;                            /* in [-1077, 1025] */
    vf64 r = (x - n * LN2_HI) - n * LN2_LO;

    vf64 p = splat_f64(1.0 / 6227020800.0);       /* 1/13! */
    p = p * r + 1.0 / 479001600.0;                /* 1/12! */
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * (r * r) + r + 1.0;

    vf64 t1 = n * 0.5 + SHIFT;
    vf64 n1 = t1 - SHIFT;
    vf64 t2 = (n - n1) + SHIFT;
    vu64 e1 = ((vu64)t1 - (vu64)splat_f64(SHIFT) + 1023u) << 52;
    vu64 e2 = ((vu64)t2 - (vu64)splat_f64(SHIFT) + 1023u) << 52;
    return p * (vf64)e1 * (vf64)e2;
}

/*
 * exp(x) for the softmax kernels, where x = logit - max <= 0 (or NaN).
 * Same range reduction and polynomial as exp_f32/exp_f64, but the result is
 * built by adding n to the exponent field (one integer add instead of two
 * multiplications), which is exact while the result is a normal number; so
 * results below the normal range (x < -86.5 for float, -708 for double:
 * exp(x) < 3e-38 and 3e-308) are flushed to 0.  -inf gives exactly 0, NaN
 * stays NaN.  Positive x is not supported (the kernels never pass one).
 */
FS_INLINE vf32 expneg_f32(vf32 x)
{
    const float LOG2E = 1.44269504088896341f;
    const float LN2_HI = 0.693359375f;
    const float LN2_LO = -2.12194440e-4f;
    const float SHIFT = 12582912.0f;
    const float LO = -86.5f;                      /* n >= -125: p * 2^n stays normal */
    vi32 tiny = x < LO;                           /* false for NaN */
    x = max_f32(splat_f32(LO), x);                /* max(LO, NaN) is NaN */
    vf32 t = x * LOG2E + SHIFT;
    vf32 n = t - SHIFT;
    vf32 r = (x - n * LN2_HI) - n * LN2_LO;
    vf32 p = splat_f32(1.9875691500e-4f);
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    vu32 e = ((vu32)t - (vu32)splat_f32(SHIFT)) << 23;
    return (vf32)(((vu32)p + e) & ~(vu32)tiny);
}

FS_INLINE vf64 expneg_f64(vf64 x)
{
    const double LOG2E = 1.4426950408889634074;
    const double LN2_HI = 6.93145751953125e-1;
    const double LN2_LO = 1.42860682030941723212e-6;
    const double SHIFT = 6755399441055744.0;
    const double LO = -708.0;                     /* n >= -1021 */
    vi64 tiny = x < LO;
    x = max_f64(splat_f64(LO), x);
    vf64 t = x * LOG2E + SHIFT;
    vf64 n = t - SHIFT;
    vf64 r = (x - n * LN2_HI) - n * LN2_LO;
    vf64 p = splat_f64(1.0 / 6227020800.0);
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * (r * r) + r + 1.0;
    vu64 e = ((vu64)t - (vu64)splat_f64(SHIFT)) << 52;
    return (vf64)(((vu64)p + e) & ~(vu64)tiny);
}

#endif /* FS_SIMD_H */
