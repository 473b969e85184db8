/* Ends the instantiation of dtype_f32.h / dtype_f64.h. */
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

#undef VLOAD_PAIRS
#undef VSTORE_PAIRS
