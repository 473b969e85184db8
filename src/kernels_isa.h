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

#define TCAT_(a, b) a##_##b
#define TCAT(a, b) TCAT_(a, b)
#define KN(op, dt) TCAT(TCAT(TCAT(fs, op), dt), ISA)

/* the general vectorized exp over an array */
static void TCAT(fs_vexp_f32, ISA)(const float *x, float *y, int64_t n) { vexp_array_f32(x, y, n); }
static void TCAT(fs_vexp_f64, ISA)(const double *x, double *y, int64_t n) { vexp_array_f64(x, y, n); }
static void TCAT(fs_vexpneg_f32, ISA)(const float *x, float *y, int64_t n) { vexpneg_array_f32(x, y, n); }
static void TCAT(fs_vexpneg_f64, ISA)(const double *x, double *y, int64_t n) { vexpneg_array_f64(x, y, n); }
static void TCAT(fs_vlog_f32, ISA)(const float *x, float *y, int64_t n) { vlog_array_f32(x, y, n); }
static void TCAT(fs_vlog_f64, ISA)(const double *x, double *y, int64_t n) { vlog_array_f64(x, y, n); }
static void TCAT(fs_h2f, ISA)(const uint16_t *x, float *y, int64_t n) { h2f_array(x, y, n); }
static void TCAT(fs_f2h, ISA)(const float *x, uint16_t *y, int64_t n) { f2h_array(x, y, n); }

const fs_kernel_table TCAT(fs_table, ISA) = {
    KN(softmax, f32),       KN(softmax, f64),   KN(log_softmax, f32), KN(log_softmax, f64),
    KN(logsumexp, f32),     KN(logsumexp, f64), KN(cross_entropy, f32), KN(cross_entropy, f64),
    KN(sigmoid, f32),       KN(sigmoid, f64),   KN(bce_logits, f32),  KN(bce_logits, f64),
    KN(softmax_backward, f32), KN(softmax_backward, f64), KN(log_softmax_backward, f32), KN(log_softmax_backward, f64),
    /* exposed for the accuracy tests of the vectorized exp and log */
    TCAT(fs_vexp_f32, ISA), TCAT(fs_vexp_f64, ISA), TCAT(fs_vexpneg_f32, ISA), TCAT(fs_vexpneg_f64, ISA),
    TCAT(fs_vlog_f32, ISA), TCAT(fs_vlog_f64, ISA),
    /* float16 conversions of src/half.c */
    TCAT(fs_h2f, ISA),      TCAT(fs_f2h, ISA),
    /* per-row helpers of rows.h */
    rows_check_targets,     rows_sum,
};
