/* Kernels for AVX2 + FMA + F16C (x86-64-v3), selected at run time by dispatch.c.
 * The target is enabled for this file only, so the rest of the build stays
 * at the baseline and runs on any x86-64 CPU. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "isa/target.h"
FS_TARGET_PUSH("avx2,fma,f16c")
#define FS_VBYTES 32
#define ISA avx2
#include "isa/kernels_isa.h"
FS_TARGET_POP
#else
typedef int fs_avx2_not_compiled; /* ISO C forbids an empty translation unit */
#endif
