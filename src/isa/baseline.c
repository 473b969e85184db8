/* Kernels for the baseline instruction set: SSE2 on x86-64, NEON on aarch64,
 * 16-byte vectors everywhere else (GCC lowers them to scalar code if needed). */
#define FS_VBYTES 16
#if defined(__x86_64__) && defined(FS_HAVE_AVX2)
/* On x86-64 this path runs only on CPUs without AVX2 and FMA (made before 2013-2015): the compact
 * build (one copy of the dense tile for every class count, see softmax/driver_dense.h) keeps
 * the extension under 2 MB, at some speed for fewer than 17 classes on those CPUs. */
#define FS_COMPACT 1
#endif
#define ISA baseline
#include "isa/kernels_isa.h"
