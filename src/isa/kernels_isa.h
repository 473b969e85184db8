/*
 * Instantiates every kernel for one instruction set.  The including file (isa/baseline.c,
 * isa/avx2.c, isa/avx512.c) defines FS_VBYTES and ISA and enables the target; this file
 * compiles the float and double kernels of each family (softmax/family.h,
 * elementwise/ops.h) and the table of kernels.def that dispatch.c picks from.
 */
/* The families' inline helpers take and return vectors wider than the baseline's registers
 * (LANES doubles): GCC warns that their ABI differs by target, which never applies to a
 * function that is always inlined (the warning comes at the end of the file, so it is off
 * for the whole file; the exported kernels take pointers only). */
#pragma GCC diagnostic ignored "-Wpsabi"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fastsoftmax.h"
#include "dispatch.h"
#include "batch.h"
#include "simd/vector.h"
#include "simd/math.h"
#include "half/convert.h"
#include "rows.h"

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define CAT3(a, b, c) CAT(CAT(a, b), c)
/* internal helper of this dtype, e.g. row_stats_f32 */
#define H(name) CAT(name, SUF)
/* exported kernel of this dtype and ISA, e.g. fs_softmax_f32_avx2 */
#define K(name) CAT3(CAT(fs, name), SUF, ISA)

#include "isa/dtype_f32.h"
#include "simd/dtype.h"
#include "softmax/family.h"
#include "elementwise/ops.h"
#include "sampled/ops.h"
#include "isa/dtype_undef.h"

#include "isa/dtype_f64.h"
#include "simd/dtype.h"
#include "softmax/family.h"
#include "elementwise/ops.h"
#include "sampled/ops.h"
#include "isa/dtype_undef.h"

#undef CAT_
#undef CAT
#undef CAT3
#undef H
#undef K

/* This instruction set's table: .softmax_f32 = fs_softmax_f32_<ISA>, ... (kernels.def) */
#define FS_ISA_NAME(op) FS_CAT(FS_NAME(op), ISA)
#define FS_KERNEL(op, f16, params, args) .FS_CAT(op, DT) = FS_ISA_NAME(op),
#define FS_ARRAY(op) .FS_CAT(op, DT) = FS_ISA_NAME(op),
const fs_kernel_table FS_CAT(fs_table, ISA) = {
#include "kernels_each.h"
    .h2f = h2f_array,
    .f2h = f2h_array,
    .check_targets = rows_check_targets,
    .sum_rows = rows_sum,
};
#undef FS_ISA_NAME
