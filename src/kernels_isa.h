/*
 * Instantiates every kernel for one instruction set.  The including file
 * (kernels_baseline.c, kernels_avx2.c, ...) defines FS_VBYTES and ISA and
 * enables the target; this file generates the float and double kernels from
 * kernels_dtype.h and the table that dispatch.c picks from.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "fastsoftmax.h"
#include "dispatch.h"
#include "simd.h"
#include "half_convert.h"
#include "rows.h"

/* what the output pass of a row writes, and which kernel a batch job runs */
enum { OUT_NONE, OUT_EXP, OUT_LOG };
enum { KIND_SOFTMAX, KIND_LOG_SOFTMAX, KIND_LOGSUMEXP, KIND_CROSS_ENTROPY };
/* the kernels of kernels_rowwise.h */
enum { RW_SIGMOID, RW_BCE, RW_SOFTMAX_BW, RW_LOG_SOFTMAX_BW };

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define CAT3(a, b, c) CAT(CAT(a, b), c)
/* internal helper of this dtype, e.g. row_stats_f32 */
#define H(name) CAT(name, SUF)
/* exported kernel of this dtype and ISA, e.g. fs_softmax_f32_avx2 */
#define K(name) CAT3(CAT(fs, name), SUF, ISA)

#define T float
#define SUF f32
#define V vf32
#define LANES FS_LANES_F32
#define VLOAD load_f32
#define VSTORE store_f32
#define VSTREAM stream_f32
#define VSPLAT splat_f32
#define VMAX max_f32
#define VEXP exp_f32
#define VEXPN expneg_f32
#define VLOG log_f32
#define VLOG_GE1 log_ge1_f32
#define VWIDEN widen_sum_f32
#define VGATHER_ROWS gather_rows_f32
#define VGATHER_AT gather_at_f32
#define VSELECT select_f32
#define VI vi32
#define VTRANSPOSE transpose_f32
#ifdef FS_PAIRS_F32
#define VPAIRS 1 /* load_pairs / store_pairs: see simd.h */
#define VLOAD_PAIRS load_pairs_f32
#define VSTORE_PAIRS store_pairs_f32
#else
#define VPAIRS 0
#endif
#define VLOGCORE log_core_f32
#define select_nan_where_ninf nan_where_ninf_f32
#include "kernels_dtype.h"
#include "kernels_rowwise.h"
#undef T
#undef SUF
#undef V
#undef LANES
#undef VLOAD
#undef VSTORE
#undef VSTREAM
#undef VSPLAT
#undef VMAX
#undef VEXP
#undef VEXPN
#undef VLOG
#undef VLOG_GE1
#undef VWIDEN
#undef VGATHER_ROWS
#undef VGATHER_AT
#undef VSELECT
#undef VTRANSPOSE
#undef VPAIRS
#undef VLOAD_PAIRS
#undef VSTORE_PAIRS
#undef VI
#undef VLOGCORE
#undef select_nan_where_ninf

#define T double
#define SUF f64
#define V vf64
#define LANES FS_LANES_F64
#define VLOAD load_f64
#define VSTORE store_f64
#define VSTREAM stream_f64
#define VSPLAT splat_f64
#define VMAX max_f64
#define VEXP exp_f64
#define VEXPN expneg_f64
#define VLOG log_f64
#define VLOG_GE1 log_ge1_f64
#define VWIDEN widen_sum_f64
#define VGATHER_ROWS gather_rows_f64
#define VGATHER_AT gather_at_f64
#define VSELECT select_f64
#define VI vi64
#define VTRANSPOSE transpose_f64
#define VPAIRS 0
#define VLOGCORE log_core_f64
#define select_nan_where_ninf nan_where_ninf_f64
#include "kernels_dtype.h"
#include "kernels_rowwise.h"
#undef T
#undef SUF
#undef V
#undef LANES
#undef VLOAD
#undef VSTORE
#undef VSTREAM
#undef VSPLAT
#undef VMAX
#undef VEXP
#undef VEXPN
#undef VLOG
#undef VLOG_GE1
#undef VWIDEN
#undef VGATHER_ROWS
#undef VGATHER_AT
#undef VSELECT
#undef VTRANSPOSE
#undef VPAIRS
#undef VI
#undef VLOGCORE
#undef select_nan_where_ninf

#undef CAT_
#undef CAT
#undef CAT3
#undef H
#undef K

/* This instruction set's table: .softmax_f32 = fs_softmax_f32_<ISA>, ... (kernels.def) */
#define FS_ISA_NAME(op) FS_CAT(FS_NAME(op), ISA)
#define FS_KERNEL(op, params, args) .FS_CAT(op, DT) = FS_ISA_NAME(op),
#define FS_ARRAY(op) .FS_CAT(op, DT) = FS_ISA_NAME(op),
const fs_kernel_table FS_CAT(fs_table, ISA) = {
#include "kernels_each.h"
    .h2f = h2f_array,
    .f2h = f2h_array,
    .check_targets = rows_check_targets,
    .sum_rows = rows_sum,
};
#undef FS_ISA_NAME
