/*
 * The vectorized exp and log of every instruction-set path (on the types of simd/vector.h),
 * with their documented error bounds (2 ulp); IEEE throughout, no -ffast-math.
 */
#ifndef FS_SIMD_MATH_H
#define FS_SIMD_MATH_H

#include "simd/vector.h"

/*
 * Shared core of exp_* and expneg_*: x = n ln 2 + r (Cody and Waite, so that
 * n * LN2_HI is exact), returns exp(r) and leaves in *t a float whose low
 * mantissa bits hold the integer n.
 */
FS_INLINE vf32 exp_core_f32(vf32 x, vf32 *t)
{
    const float LOG2E = 1.44269504088896341f;
    const float LN2_HI = 0.693359375f;            /* 355/512: n * LN2_HI is exact for |n| < 2^15 */
    const float LN2_LO = -2.12194440e-4f;
    const float SHIFT = 12582912.0f;              /* 1.5 * 2^23 */
    *t = x * LOG2E + SHIFT;
    vf32 n = *t - SHIFT;                           /* round(x / ln 2) */
    vf32 r = (x - n * LN2_HI) - n * LN2_LO;
    /* exp(r) = 1 + r + r^2 q(r), q of degree 4 fitted here for the least maximum relative error of
     * exp on |r| <= ln(2)/2 (Lawson's iteratively reweighted least squares, 0.05 ulp before
     * rounding), evaluated in Estrin's scheme (a short dependency chain) */
    vf32 r2 = r * r;
    vf32 q01 = r * 1.6666521132e-1f + 4.9999994040e-1f;
    vf32 q23 = r * 8.3687100559e-3f + 4.1668388993e-2f;
    vf32 q = (r2 * 1.3814612757e-3f + q23) * r2 + q01;
    return q * r2 + r + 1.0f;
}

FS_INLINE vf64 exp_core_f64(vf64 x, vf64 *t)
{
    const double LOG2E = 1.4426950408889634074;
    const double LN2_HI = 6.93145751953125e-1;    /* Cephes exp.c C1: exact products for |n| < 2^21 */
    const double LN2_LO = 1.42860682030941723212e-6;
    const double SHIFT = 6755399441055744.0;      /* 1.5 * 2^52 */
    *t = x * LOG2E + SHIFT;
    vf64 n = *t - SHIFT;
    vf64 r = (x - n * LN2_HI) - n * LN2_LO;
    /* Taylor series to degree 13: exp(r) = 1 + r + r^2 q(r), q(r) = sum_k r^k / (k + 2)!, k = 0..11,
     * in Estrin's scheme (a dependency chain of 6 operations instead of 12) */
    vf64 r2 = r * r, r4 = r2 * r2;
    vf64 a0 = r * (1.0 / 6.0) + 0.5;
    vf64 a1 = r * (1.0 / 120.0) + 1.0 / 24.0;
    vf64 a2 = r * (1.0 / 5040.0) + 1.0 / 720.0;
    vf64 a3 = r * (1.0 / 362880.0) + 1.0 / 40320.0;
    vf64 a4 = r * (1.0 / 39916800.0) + 1.0 / 3628800.0;
    vf64 a5 = r * (1.0 / 6227020800.0) + 1.0 / 479001600.0;
    vf64 b0 = a1 * r2 + a0, b1 = a3 * r2 + a2, b2 = a5 * r2 + a4;
    vf64 q = (b2 * r4 + b1) * r4 + b0;
    return q * r2 + r + 1.0;
}

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
 * float32: a degree-6 polynomial fitted for the least relative error;
 * float64: Taylor series of degree 13 (truncation error < 5e-18 on
 * |r| <= ln(2)/2).  Measured error about 1 ulp at most over the finite range on every
 * path (tests/test_backends.py checks <= 2 ulp).
 */
FS_INLINE vf32 exp_f32(vf32 x)
{
    const float SHIFT = 12582912.0f;
    /* exp(x) rounds to +inf above 88.73 and to 0 below -103.98 */
    vi32 hi = x > 88.75f, lo = x < -104.0f;
    x = select_f32(hi, splat_f32(88.75f), x);
    x = select_f32(lo, splat_f32(-104.0f), x);
    vf32 t;
    vf32 p = exp_core_f32(x, &t);
    vf32 n = t - SHIFT;                           /* in [-150, 128] */
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
    const double SHIFT = 6755399441055744.0;
    /* exp(x) rounds to +inf above 709.79 and to 0 below -745.14 */
    vi64 hi = x > 709.8, lo = x < -746.0;
    x = select_f64(hi, splat_f64(709.8), x);
    x = select_f64(lo, splat_f64(-746.0), x);
    vf64 t;
    vf64 p = exp_core_f64(x, &t);
    vf64 n = t - SHIFT;                           /* in [-1077, 1025] */
    vf64 t1 = n * 0.5 + SHIFT;
    vf64 n1 = t1 - SHIFT;
    vf64 t2 = (n - n1) + SHIFT;
    vu64 e1 = ((vu64)t1 - (vu64)splat_f64(SHIFT) + 1023u) << 52;
    vu64 e2 = ((vu64)t2 - (vu64)splat_f64(SHIFT) + 1023u) << 52;
    return p * (vf64)e1 * (vf64)e2;
}

/*
 * exp(x) for the softmax kernels, where x = logit - max <= 0 (or NaN).
 * Results below the smallest normal number, exp(x) < 1.2e-38 (float) or
 * 2.2e-308 (double), are flushed to 0; -inf gives exactly 0, NaN stays NaN.
 * Positive x up to 88 (float) or 709 (double) also work: pass 1 of the
 * kernels may pass up to RESCALE_LIMIT before it redoes a block, and
 * discards what a block gave beyond that.
 *
 * Where the instruction set has a variable permute (AVX2, AVX-512), a table
 * of 2^(j/8) (float) or 2^(j/4) (double) shortens the polynomial:
 * x = (8n' + j) ln2/8 + r with |r| <= ln2/16, exp(x) = 2^n' 2^(j/8) exp(r).
 * The table entries are stored with j << 20 (j << 50) subtracted from
 * their bits, so that adding n << 20 (the rounding trick leaves n in the low
 * bits of t) to them yields 2^n' 2^(j/8) with no integer multiply or
 * separate exponent (the layout of ARM's optimized-routines expf tables).
 * The range reduction is Cody and Waite's, as in exp_core_*, with the
 * constants divided by 8 (4): n * LN2_HI/8 is still exact.  exp(r) is
 * 1 + r + r^2 q(r), q fitted here for the least maximum relative error of
 * exp on |r| <= ln2/16 (float, degree 3: 2.6e-8) or ln2/8 (double,
 * degree 8: 4.4e-18) by Lawson's iteratively reweighted least squares.
 * Measured: at most 1.13 ulp (float) and 1.09 ulp (double); the kernels' bars
 * are 2e-6 and 1e-12 relative.
 * Without a permute (SSE2, NEON) the polynomial of exp_core_* is used, with
 * the scaling built from the exponent field.
 */
#if FS_VBYTES == 64 && defined(__AVX512F__)
#define FS_EXP_TABLE 1
/* tab[idx & 7] (float) / tab[idx & 3] (double): the tables are repeated to fill the vector */
FS_INLINE vf32 table8_f32(vf32 tab, vf32 idx) { return (vf32)_mm512_permutexvar_ps((__m512i)idx, (__m512)tab); }
FS_INLINE vf64 table4_f64(vf64 tab, vf64 idx) { return (vf64)_mm512_permutexvar_pd((__m512i)idx, (__m512d)tab); }
#elif (FS_VBYTES == 32 || FS_VBYTES == 64) && defined(__AVX2__)
#define FS_EXP_TABLE 1
FS_INLINE __m256 table8_ymm(__m256 tab, __m256i idx) { return _mm256_permutevar8x32_ps(tab, idx); }
/* a table of 4 doubles: T[n & 1] from each half by vpermilpd, then the half by bit 1 of n
 * (one shuffle fewer than building vpermps indices: 4% off float64 pass 1) */
FS_INLINE __m256 table4_ymm(__m256 tab, __m256i idx)
{
    __m256d t = _mm256_castps_pd(tab);
    __m256d lo = _mm256_permute2f128_pd(t, t, 0x00), hi = _mm256_permute2f128_pd(t, t, 0x11);
    __m256i sel = _mm256_slli_epi64(idx, 1); /* vpermilpd picks by bit 1: n & 1 */
    __m256d a = _mm256_permutevar_pd(lo, sel), b = _mm256_permutevar_pd(hi, sel);
    return _mm256_castpd_ps(_mm256_blendv_pd(a, b, _mm256_castsi256_pd(_mm256_slli_epi64(idx, 62))));
}
#if FS_VBYTES == 32
FS_INLINE vf32 table8_f32(vf32 tab, vf32 idx) { return (vf32)table8_ymm((__m256)tab, (__m256i)idx); }
FS_INLINE vf64 table4_f64(vf64 tab, vf64 idx) { return (vf64)table4_ymm((__m256)tab, (__m256i)idx); }
#else
/* 64-byte vectors on AVX2 (the FS_AVX512_AS_AVX2 validation build): two halves */
typedef float vf32h __attribute__((vector_size(32)));
typedef double vf64h __attribute__((vector_size(32)));
FS_INLINE vf32 table8_f32(vf32 tab, vf32 idx)
{
    vf32h t = __builtin_shufflevector(tab, tab, 0, 1, 2, 3, 4, 5, 6, 7);
    vf32h i0 = __builtin_shufflevector(idx, idx, 0, 1, 2, 3, 4, 5, 6, 7);
    vf32h i1 = __builtin_shufflevector(idx, idx, 8, 9, 10, 11, 12, 13, 14, 15);
    vf32h r0 = (vf32h)table8_ymm((__m256)t, (__m256i)i0), r1 = (vf32h)table8_ymm((__m256)t, (__m256i)i1);
    return __builtin_shufflevector(r0, r1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
FS_INLINE vf64 table4_f64(vf64 tab, vf64 idx)
{
    vf64h t = __builtin_shufflevector(tab, tab, 0, 1, 2, 3);
    vf64h i0 = __builtin_shufflevector(idx, idx, 0, 1, 2, 3), i1 = __builtin_shufflevector(idx, idx, 4, 5, 6, 7);
    vf64h r0 = (vf64h)table4_ymm((__m256)t, (__m256i)i0), r1 = (vf64h)table4_ymm((__m256)t, (__m256i)i1);
    return __builtin_shufflevector(r0, r1, 0, 1, 2, 3, 4, 5, 6, 7);
}
#endif
#else
#define FS_EXP_TABLE 0
#endif

#if FS_EXP_TABLE
/* bits of 2^(j/8) rounded to float, minus j << 20 */
#define FS_EXP_TAB8 0x3f800000u, 0x3f7b95c2u, 0x3f7837f0u, 0x3f75fed7u, 0x3f7504f3u, 0x3f75672au, 0x3f7744fdu, 0x3f7ac0c7u
/* bits of 2^(j/4) rounded to double, minus j << 50 */
#define FS_EXP_TAB4 0x3ff0000000000000u, 0x3fef06fe0a31b715u, 0x3feea09e667f3bcdu, 0x3feee89f995ad3adu

FS_INLINE vf32 expneg_f32(vf32 x)
{
#if FS_VBYTES == 64
    const vu32 tab = {FS_EXP_TAB8, FS_EXP_TAB8};
#else
    const vu32 tab = {FS_EXP_TAB8};
#endif
    const float LO = -87.33f;                     /* n >= -1008: 2^(n >> 3) is normal; exp(LO) = 1.18e-38 */
    const float SHIFT = 12582912.0f;              /* 1.5 * 2^23 */
    vf32 t = x * 11.5415603f + SHIFT;           /* 8 / ln 2: t's low bits hold n = round(8 x / ln 2) */
    vf32 n = t - SHIFT;
    vf32 r = (x - n * 8.66699218750e-2f) - n * -2.65243050e-5f; /* (355/512) / 8 and LN2_LO / 8 */
    vf32 q = (r * 1.66668981e-1f + 5.00064492e-1f) * (r * r) + r;
    vf32 s = (vf32)((vu32)table8_f32((vf32)tab, t) + ((vu32)t << 20)); /* 2^(n >> 3) 2^((n & 7) / 8) */
    vi32 keep = ~(x < LO);                        /* NaN is kept (and gives NaN) */
    return (vf32)((vi32)(s * q + s) & keep);
}

FS_INLINE vf64 expneg_f64(vf64 x)
{
#if FS_VBYTES == 64
    const vu64 tab = {FS_EXP_TAB4, FS_EXP_TAB4};
#else
    const vu64 tab = {FS_EXP_TAB4};
#endif
    const double LO = -708.39;                    /* n >= -4088: 2^(n >> 2) is normal; exp(LO) = 2.23e-308 */
    const double SHIFT = 6755399441055744.0;      /* 1.5 * 2^52 */
    vf64 t = x * 5.7707801635558535 + SHIFT;      /* 4 / ln 2 */
    vf64 n = t - SHIFT;
    vf64 r = (x - n * 1.7328643798828125e-1) - n * 3.57151705077354308e-7; /* Cephes' C1 / 4 and C2 / 4 */
    vf64 r2 = r * r;
    vf64 a0 = r * 1.6666666666695842e-1 + 5.0000000000000071e-1;
    vf64 a1 = r * 8.3333331305597403e-3 + 4.1666666666109903e-2;
    vf64 a2 = r * 1.9845510094142190e-4 + 1.3888890102505165e-3;
    vf64 q = ((r2 * 2.4795695512367397e-5 + a2) * (r2 * r2) + (a1 * r2 + a0)) * r2 + r;
    vf64 s = (vf64)((vu64)table4_f64((vf64)tab, t) + ((vu64)t << 50));
    vi64 keep = ~(x < LO);
    return (vf64)((vi64)(s * q + s) & keep);
}
#undef FS_EXP_TAB8
#undef FS_EXP_TAB4
#else
FS_INLINE vf32 expneg_f32(vf32 x)
{
    vi32 keep = ~(x < -87.33f);                   /* as above: 0 below the normal range, NaN kept */
    x = max_f32(splat_f32(-88.0f), x);            /* round(-88 / ln 2) = -127; max(-88, NaN) is NaN */
    vf32 t;
    vf32 p = exp_core_f32(x, &t);
    /* t = x log2(e) + 1.5 * 2^23, so t's low bits hold n and (t << 23) = n << 23 */
    vu32 e = ((vu32)t << 23) + (127u << 23);      /* 2^n: biased exponent n + 127 */
    return (vf32)((vi32)(p * (vf32)e) & keep);
}

FS_INLINE vf64 expneg_f64(vf64 x)
{
    vi64 keep = ~(x < -708.39);
    x = max_f64(splat_f64(-709.0), x);            /* round(-709 / ln 2) = -1023 */
    vf64 t;
    vf64 p = exp_core_f64(x, &t);
    vu64 e = ((vu64)t << 52) + ((uint64_t)1023 << 52);
    return (vf64)((vi64)(p * (vf64)e) & keep);
}
#endif

/* e ln 2 + log(1 + f) for f in [sqrt(1/2) - 1, sqrt(2) - 1] (the reduced argument of log_f32) */
FS_INLINE vf32 log_core_f32(vf32 f, vf32 e)
{
    vf32 z = f * f;
    vf32 p = splat_f32(7.0376836292e-2f);
    p = p * f - 1.1514610310e-1f;
    p = p * f + 1.1676998740e-1f;
    p = p * f - 1.2420140846e-1f;
    p = p * f + 1.4249322787e-1f;
    p = p * f - 1.6668057665e-1f;
    p = p * f + 2.0000714765e-1f;
    p = p * f - 2.4999993993e-1f;
    p = p * f + 3.3333331174e-1f;
    vf32 y = p * f * z;
    y = y + e * -2.12194440e-4f;
    y = y - 0.5f * z;
    return (f + y) + e * 0.693359375f;
}

/* e ln 2 + log(1 + f) for f in [sqrt(1/2) - 1, sqrt(2) - 1] (the reduced argument of log_f64) */
FS_INLINE vf64 log_core_f64(vf64 f, vf64 e)
{
    vf64 z = f * f;
    vf64 P = splat_f64(1.01875663804580931796e-4);
    P = P * f + 4.97494994976747001425e-1;
    P = P * f + 4.70579119878881725854e0;
    P = P * f + 1.44989225341610930846e1;
    P = P * f + 1.79368678507819816313e1;
    P = P * f + 7.70838733755885391666e0;
    vf64 Q = f + 1.12873587189167450590e1;
    Q = Q * f + 4.52279145837532221105e1;
    Q = Q * f + 8.29875266912776603211e1;
    Q = Q * f + 7.11544750618563894466e1;
    Q = Q * f + 2.31251620126765340583e1;
    vf64 y = f * (z * P / Q);
    y = y - e * 2.121944400546905827679e-4;
    y = y - 0.5 * z;
    return (f + y) + e * 0.693359375;
}

/*
 * log(x), vectorized, for every input: log(+-0) = -inf, log(x < 0) = NaN,
 * log(+inf) = +inf, NaN -> NaN, subnormal inputs scaled into the normal range
 * first.
 *
 * Algorithm (Cephes' logf/log by S. L. Moshier): x = 2^e m with m in
 * [sqrt(1/2), sqrt(2)), f = m - 1, log(x) = e ln 2 + log(1 + f) with
 * log(1 + f) = f - f^2/2 + f^3 P(f) (float: Cephes logf's degree-8
 * polynomial; double: Cephes log's rational P(f)/Q(f) of degree 5/5), and
 * e ln 2 added in two parts so that e * LN2_HI is exact.  The error bound
 * (<= 2 ulp, measured below 1 ulp) is checked by the test suite on every path.
 * log_normal_* takes x > 0 as x = 2^-ea xs with xs normal (ea: 0, or the
 * scaling of a subnormal); log_* adds the special values.
 */
FS_INLINE vf32 log_normal_f32(vf32 xs, vf32 ea)
{
    const vu32 bits = (vu32)xs;
    vf32 e = __builtin_convertvector((vi32)(bits >> 23) - 126, vf32) - ea;
    const vf32 m = (vf32)((bits & 0x807fffffu) | 0x3f000000u); /* in [0.5, 1) */
    const vi32 lo = m < 0.707106781186547524f;                 /* sqrt(1/2) */
    e = e - select_f32(lo, splat_f32(1.0f), splat_f32(0.0f));
    const vf32 f = select_f32(lo, m + m, m) - 1.0f;
    return log_core_f32(f, e);
}

FS_INLINE vf32 log_f32(vf32 x)
{
    vi32 sub = (x < 1.17549435e-38f) & (x > 0.0f); /* subnormal: scale by 2^25 */
    vf32 r = log_normal_f32(select_f32(sub, x * 33554432.0f, x), select_f32(sub, splat_f32(25.0f), splat_f32(0.0f)));
    r = select_f32(x == __builtin_inff(), x, r);
    r = select_f32(x == 0.0f, splat_f32(-__builtin_inff()), r);
    r = select_f32((x < 0.0f) | (x != x), splat_f32(__builtin_nanf("")), r);
    return r;
}

FS_INLINE vf64 log_normal_f64(vf64 xs, vf64 ea)
{
    const vu64 bits = (vu64)xs;
    /* exponent field as a double without an int64 -> double conversion */
    vf64 e = (vf64)((bits >> 52) | 0x4330000000000000u) - 4503599627370496.0 - 1022.0 - ea;
    const vf64 m = (vf64)((bits & 0x800fffffffffffffu) | 0x3fe0000000000000u); /* in [0.5, 1) */
    const vi64 lo = m < 0.70710678118654752440;                                 /* sqrt(1/2) */
    e = e - select_f64(lo, splat_f64(1.0), splat_f64(0.0));
    const vf64 f = select_f64(lo, m + m, m) - 1.0;
    return log_core_f64(f, e);
}

FS_INLINE vf64 log_f64(vf64 x)
{
    vi64 sub = (x < 2.2250738585072014e-308) & (x > 0.0); /* subnormal: scale by 2^54 */
    vf64 r = log_normal_f64(select_f64(sub, x * 18014398509481984.0, x), select_f64(sub, splat_f64(54.0), splat_f64(0.0)));
    r = select_f64(x == __builtin_inf(), x, r);
    r = select_f64(x == 0.0, splat_f64(-__builtin_inf()), r);
    r = select_f64((x < 0.0) | (x != x), splat_f64(__builtin_nan("")), r);
    return r;
}

/*
 * log(x) for x >= 1 or NaN: the sum of exponentials of a row, whose largest
 * term is exp(0) = 1.  log_f32 / log_f64 without their subnormal, zero,
 * negative and infinite cases (the same reduction and polynomial, so the same
 * results); a NaN sum gives NaN.
 */
FS_INLINE vf32 log_ge1_f32(vf32 x) { return select_f32(x != x, x, log_normal_f32(x, splat_f32(0.0f))); }
FS_INLINE vf64 log_ge1_f64(vf64 x) { return select_f64(x != x, x, log_normal_f64(x, splat_f64(0.0))); }

#endif /* FS_SIMD_MATH_H */
