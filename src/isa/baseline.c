/* Kernels for the baseline instruction set: SSE2 on x86-64, NEON on aarch64,
 * 16-byte vectors everywhere else (GCC lowers them to scalar code if needed). */
#define FS_VBYTES 16
#define ISA baseline
#include "isa/kernels_isa.h"
