/* The instantiation of the kernels for double: the names the dtype-generic sources (softmax/,
 * elementwise/) use for the element type, its vectors and its vector functions (simd/). */
#define T double
#define SUF f64
#define V vf64
#define LANES FS_LANES_F64
#define VLOAD load_f64
#define VSTORE store_f64
#define VLOAD_TAIL vload_tail_f64
#define VSTORE_TAIL vstore_tail_f64
#define VSTREAM stream_f64
#define VSPLAT splat_f64
#define VMAX max_f64
#define VHMAX hmax_f64
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
