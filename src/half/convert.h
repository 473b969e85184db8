/*
 * float16 <-> float conversion of contiguous arrays for one instruction set
 * (included by isa/kernels_isa.h; exported through the kernel table for half/half.c).
 * With F16C (the AVX2 and AVX-512 paths) the hardware converts 8 lanes at a
 * time; otherwise the portable code below does, with integer operations.
 */
#ifndef FS_HALF_CONVERT_H
#define FS_HALF_CONVERT_H

/*
 * Conversions, 4 lanes at a time on GCC/Clang vector extensions (one SSE2
 * register; no F16C needed), branch-free so that every lane takes the same
 * path.  The bit manipulations follow F. Giesen's public-domain
 * half_to_float and float_to_half_fast3_rtne
 * (https://gist.github.com/rygorous/2144712).
 */
typedef uint16_t hv16 __attribute__((vector_size(8)));
typedef uint32_t hvu __attribute__((vector_size(16)));
typedef int32_t hvi __attribute__((vector_size(16)));
typedef float hvf __attribute__((vector_size(16)));
#define HL 4

FS_INLINE hvu sel(hvi m, hvu a, hvu b) { return ((hvu)m & a) | (~(hvu)m & b); }

/*
 * float16 -> float, exact: the exponent is rebiased with integer arithmetic,
 * and a subnormal half becomes a normal float through one exact subtraction,
 * 2^-14 (1 + m/1024) - 2^-14 = m 2^-24, so that no float subnormal is involved
 * (exact under flush-to-zero and denormals-are-zero modes too).
 */
FS_INLINE hvf h2f_vec(hv16 h)
{
    const hvu hu = __builtin_convertvector(h, hvu);
    hvu u = (hu & 0x7fffu) << 13; /* exponent and mantissa in float position */
    const hvu exp = u & 0x0f800000u;
    u += (uint32_t)(127 - 15) << 23;                                      /* rebias */
    u += (hvu)(exp == 0x0f800000u) & ((uint32_t)(128 - 16) << 23);      /* inf, NaN: exponent all ones */
    const hvi sub = (hvi)(exp == 0);
    u += (hvu)sub & (1u << 23);
    hvf f = (hvf)u;
    f = (hvf)sel(sub, (hvu)(f - 6.103515625e-05f), (hvu)f);               /* minus 2^-14 */
    return (hvf)((hvu)f | ((hu & 0x8000u) << 16));
}

/*
 * float -> float16, rounded to nearest even; overflow gives inf, NaN a quiet
 * NaN; below the float16 normal range, adding 0.5 (whose ulp 2^-24 is the
 * float16 subnormal step) rounds to the subnormal.
 */
FS_INLINE hv16 f2h_vec(hvf f)
{
    hvu u = (hvu)f;
    const hvu sign = (u >> 16) & 0x8000u;
    u &= 0x7fffffffu;
    const hvu big = sel((hvi)(u > 0x7f800000u), (hvu){0} + 0x7e00u, (hvu){0} + 0x7c00u);
    const hvu small = (hvu)((hvf)u + 0.5f) - 0x3f000000u;
    const hvu normal = (u + ((uint32_t)(15 - 127) << 23) + 0xfffu + ((u >> 13) & 1u)) >> 13;
    hvu o = sel((hvi)(u >= 0x47800000u), big, sel((hvi)(u < 0x38800000u), small, normal));
    return __builtin_convertvector(o | sign, hv16);
}

/* The portable conversions over n elements (the tail through a padded vector). */
FS_INLINE void h2f_generic(const uint16_t *src, float *dst, int64_t n)
{
    int64_t j = 0;
    for (; j + HL <= n; j += HL) {
        hv16 h;
        memcpy(&h, src + j, sizeof h);
        hvf f = h2f_vec(h);
        memcpy(dst + j, &f, sizeof f);
    }
    if (j < n) {
        hv16 h = {0};
        memcpy(&h, src + j, (size_t)(n - j) * sizeof(uint16_t));
        hvf f = h2f_vec(h);
        memcpy(dst + j, &f, (size_t)(n - j) * sizeof(float));
    }
}

FS_INLINE void f2h_generic(const float *src, uint16_t *dst, int64_t n)
{
    int64_t j = 0;
    for (; j + HL <= n; j += HL) {
        hvf f;
        memcpy(&f, src + j, sizeof f);
        hv16 h = f2h_vec(f);
        memcpy(dst + j, &h, sizeof h);
    }
    if (j < n) {
        hvf f = {0};
        memcpy(&f, src + j, (size_t)(n - j) * sizeof(float));
        hv16 h = f2h_vec(f);
        memcpy(dst + j, &h, (size_t)(n - j) * sizeof(uint16_t));
    }
}

/* dst = src as float (exact) */
FS_INLINE void h2f_array(const uint16_t *src, float *dst, int64_t n)
{
    int64_t j = 0;
#if defined(__F16C__) && defined(__AVX__)
    for (; j + 8 <= n; j += 8)
        _mm256_storeu_ps(dst + j, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + j))));
#endif
    h2f_generic(src + j, dst + j, n - j);
}

/* dst = src rounded to float16 (to nearest even) */
FS_INLINE void f2h_array(const float *src, uint16_t *dst, int64_t n)
{
    int64_t j = 0;
#if defined(__F16C__) && defined(__AVX__)
    for (; j + 8 <= n; j += 8)
        _mm_storeu_si128((__m128i *)(dst + j), _mm256_cvtps_ph(_mm256_loadu_ps(src + j), _MM_FROUND_TO_NEAREST_INT));
#endif
    f2h_generic(src + j, dst + j, n - j);
}

#endif /* FS_HALF_CONVERT_H */
