/* The instantiation of the kernels for float: the names the dtype-generic sources (softmax/,
 * elementwise/) use for the element type, its vectors and its vector functions (simd/). */
#define T float
#define SUF f32
#define V vf32
#define LANES FS_LANES_F32
#define VLOAD load_f32
#define VSTORE store_f32
#define VLOAD_TAIL vload_tail_f32
#define VSTORE_TAIL vstore_tail_f32
#define VSTREAM stream_f32
#define VSPLAT splat_f32
#define VMAX max_f32
#define VHMAX hmax_f32
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
#define VPAIRS 1 /* load_pairs / store_pairs: see simd/vector.h */
#define VLOAD_PAIRS load_pairs_f32
#define VSTORE_PAIRS store_pairs_f32
#else
#define VPAIRS 0
#endif
#define VLOGCORE log_core_f32
#define select_nan_where_ninf nan_where_ninf_f32
