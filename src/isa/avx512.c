/* Kernels for AVX-512 (F, BW, DQ, VL; x86-64-v4), selected at run time by
 * dispatch.c.  The target is enabled for this file only.
 *
 * FS_AVX512_AS_AVX2 (a validation build only, never shipped) compiles the
 * same 64-byte-vector source for AVX2 and lets dispatch.c offer it on AVX2
 * CPUs, so that the 16-lane code paths (tails, blocks, reductions) can run
 * the whole test suite on a machine without AVX-512. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "isa/target.h"
#ifdef FS_AVX512_AS_AVX2
FS_TARGET_PUSH("avx2,fma,f16c")
#else
FS_TARGET_PUSH("avx512f,avx512bw,avx512dq,avx512vl,f16c")
#endif
#define FS_VBYTES 64
#define ISA avx512
#include "isa/kernels_isa.h"
FS_TARGET_POP
#else
typedef int fs_avx512_not_compiled; /* ISO C forbids an empty translation unit */
#endif
