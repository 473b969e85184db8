/*
 * The softmax family (softmax, log_softmax, logsumexp, cross_entropy) for one dtype and one
 * instruction set.
 *
 * Included by isa/kernels_isa.h once per dtype with these macros defined:
 *   T       float or double          SUF     f32 or f64
 *   V       vf32 or vf64             LANES   lanes per vector
 *   VLOAD, VSTORE, VSTREAM, VSPLAT, VMAX, VEXP, VEXPN, VLOG, VWIDEN, VGATHER_ROWS, VGATHER_AT, VSELECT
 *   H(name), K(name)  name of an internal helper / exported kernel of this dtype (and ISA)
 *   ISA     the instruction-set suffix of the exported names (baseline, avx2, ...)
 *
 * Accumulation precision (what keeps the accuracy bars of the test suite):
 *   - the sum of exponentials is accumulated in T for at most SUB_ITERS
 *     additions per lane, then widened to double, so its relative error
 *     stays below ~20 ulp of float even for 10^7 classes;
 *   - loss terms, the label-smoothing and probability-target sums (terms of
 *     one sign, relative to the running max) and the batch sum are in double;
 *   - outputs are rounded once to T at the end.
 *
 * How a row is processed (rows of more than GROUP_C classes, and those of more than SMALL_C
 * that the groups do not take):
 *   pass 1  reads the row once, in blocks of BLOCK elements (L1-sized): the
 *           exponentials relative to the running max and the block's max in
 *           one loop (online softmax; a block is redone only when its max
 *           jumps by more than RESCALE_LIMIT).  Rows of at most STORE_BYTES
 *           keep the exponentials in a per-thread scratch row;
 *   plan    the kernel turns (max, sum[, weighted sums]) into the loss and
 *           the output's coefficients;
 *   output  rescales the stored exponentials (or recomputes them for longer
 *           rows) and writes each output once, with streaming stores when
 *           the output is larger than the caches.  Rows with an output are
 *           pipelined: the output of row n-1 is written block by block while
 *           pass 1 reads row n.
 * Short rows go through tiles (LANES rows per vector, driver_tile.h and
 * driver_dense.h), rows of SMALL_C + 1 to GROUP_C classes through groups of
 * GROUP_R rows (driver_group.h); a long row is reduced in pieces, split across threads when
 * alone (run_row_pieces).
 *
 * The drivers never ask which op they run: each op hands them an H(op) (job.h) of
 * hooks (its row plan, setup and finish, its tiles' epilogue) and says what its
 * output holds.
 */

#ifndef FS_SOFTMAX_ENUMS
#define FS_SOFTMAX_ENUMS
/* what the output pass of a row writes */
enum { OUT_NONE, OUT_EXP, OUT_LOG };
/* what a tile's epilogue returns besides an error: its output is in ve, to be stored, or it
 * has written its results itself */
enum { TILE_STORE = 1, TILE_DONE = 2 };
#endif

#include "softmax/blocks.h"
#include "softmax/stats.h"
#include "softmax/output.h"
#include "softmax/row.h"
#include "softmax/job.h"
#include "softmax/driver_rows.h"
#include "softmax/driver_tile.h"
#include "softmax/driver_dense.h"
#include "softmax/driver_pipeline.h"
#include "softmax/driver_group.h"
#include "softmax/driver.h"
#include "softmax/ops.h"
#include "softmax/cross_entropy.h"

#undef BLOCK
#undef UNROLL
#undef SUB_ITERS
#undef PREFETCH_BYTES
#undef SUMEXP_PREFETCH_BYTES
#undef STORE_BYTES
#undef STORE_BLOCKS
#undef PIECES_STORE_BYTES
#undef RESCALE_LIMIT
#undef SMALL_C
#undef GROUP_C
#undef GROUP_STAGE_MIN_BYTES
#undef GROUP_R
#undef SCRATCH_RUN_ROWS
#undef GROUP_RPAD
#undef GROUP_UNROLL
#undef NT_MIN_ROW_BYTES
#undef DENSE_C
#undef DENSE_TILES
#undef CE_Z_LOSS
#undef CE_INDEX_ROW
#undef CE_BLOCK_SUM_C
#undef CE_BLOCK_SUM_MIN_ROWS
#undef CE_SELECT_C
