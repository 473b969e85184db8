/* The softmax family, one dtype (see family.h): a batch job, what the ops hand to the driver
 * (H(run), driver.h), and the hooks by which an op tells the driver what to compute. */

typedef struct H(job_s) H(job);

/* A row between its setup and its finish (ctx points into mem, the op's per-row state). */
typedef struct {
    H(rowop) op;
    void *ctx;
    double mem[12]; /* room for any op's per-row state (each op asserts that its own fits) */
    int done;       /* the row's results are written (an ignored target) */
} H(rowstate);

/* A tile of LANES short rows (driver_tile.h, driver_dense.h). */
typedef struct {
    int64_t n0;          /* its first row */
    int nr;              /* its rows: LANES, fewer in a batch's last tile */
    const T *xp[LANES];  /* the rows' logits (lanes past nr repeat row 0) */
    const T *up[LANES];  /* their probability targets (gathered tiles), or NULL */
    unsigned done;       /* rows whose outputs are zeros (ignored targets), one bit each */
    T *sums, *wys;       /* the dense cross-entropy's scratch of its run (see dense_losses) */
    int clean;           /* the dense cross-entropy's targets are known to be classes, none ignored */
} H(tile);

/*
 * What an op gives the driver, one constant per op (ops.h, cross_entropy.h):
 *   out        what its output holds: OUT_EXP (p_j a - c_j: pass 1 may keep the exponentials
 *              for it, and its rows can be pipelined) or OUT_LOG (log p_j)
 *   no_logs    its plan reads no log(s) (st->logs is then not computed)
 *   plan       a row's output pass from its statistics (row.h)
 *   begin      a row's setup beyond the driver's (NULL: none): its options into rs
 *   end        a row's results besides its output (NULL: none): lse, loss
 *   tile       LANES short rows with their class stride 1 (driver_tile.h)
 *   dense      a run of tiles of LANES rows of a C-contiguous array (driver_dense.h), or NULL; dense_ok says
 *              whether a job's options allow it (NULL: always)
 *   dense_clean, dense_end  the per-run setup and finish of the dense tiles, or NULL: whether
 *              the run's targets are clean, and the losses from the run's scratch (sums, wys),
 *              which the driver allocates when dense_end is set
 *   group_row  a whole row of a group (driver_group.h) from its statistics, instead of its
 *              begin, plan and end hooks, or NULL; group_row_ok says whether a job's options
 *              allow it.  x: the row, y: its output (or NULL), e: its exponentials (or NULL),
 *              m, s, logs: its max, sum of exp(x - m) (NaN: a NaN row) and log(s)
 */
typedef struct {
    int out;
    int no_logs; /* its plan reads no log(s) of the row statistics (softmax) */
    H(plan_fn) plan;
    int (*begin)(const H(job) *J, int64_t n, const T *xc, const T *u, T *yr, int64_t ys_cls, int want_out,
                 H(rowstate) *rs);
    void (*end)(const H(job) *J, int64_t n, const T *xc, const H(rowstate) *rs);
    int (*tile)(const H(job) *J, int64_t n0, int nr);
    int (*dense)(const H(job) *J, int64_t n0, int64_t ntiles, T *sums, T *wys, int clean);
    int (*dense_ok)(const H(job) *J);
    int (*dense_clean)(const H(job) *J, int64_t n0, int64_t nrows);
    void (*dense_end)(const H(job) *J, int64_t n0, int64_t nrows, const T *sums, const T *wys);
    int (*group_row_ok)(const H(job) *J);
    int (*group_row)(const H(job) *J, int64_t n, const T *x, T *y, const T *e, T m, double s, double logs);
} H(op);

struct H(job_s) {
    const H(op) *op;
    const fs_batch *b;
    const T *x;
    const fs_strides *xs;
    T *y;                    /* softmax output or gradient (NULL: none) */
    const fs_strides *ys;
    T *lse;                  /* logsumexp output */
    const fs_ce_args *ce;
    const T *u;              /* a second input of the logits' shape read with each row (the
                              * cross-entropy's probability targets), or NULL */
    const fs_strides *us;
    double *loss_rows;       /* the losses of rows loss_base, loss_base + 1, ... */
    int64_t loss_base;
    double *block_sums;      /* or NULL; else the sums of the losses of each ROWS_BLOCK rows (rows.h),
                              * loss_rows then being each thread's scratch for its run (see
                              * H(block_rows_begin) below) */
    double wsum;
    int nt;                  /* streaming stores for the output (set by run) */
    int stage;               /* groups: each group's output staged, its whole lines streamed (driver_group.h) */
};

/* A batch job's split into runs for fs_parallel: the runs of tiles, of pipelined rows or of
 * rows that the threads take as they free up. */
typedef struct {
    const H(job) *J;
    int64_t nrows, ntiles, per, nruns;
    int dense, split_nt;
} H(runs);

/*
 * The cross-entropy's loss sum without a per-row array (mean and sum reductions, block_sums
 * set): the runs are whole blocks of ROWS_BLOCK rows, each thread writes its run's losses into
 * a scratch of its own (J->loss_rows, from row loss_base on), and each block's sum goes to
 * block_sums, which the kernel adds in block order -- fs_sum_rows' order, so the sum is the
 * same, bit for bit, as that of the per-row array.  At 2 classes that array was as large as
 * the logits, and was written, read back and paged in at every call.
 */
static int H(block_rows_begin)(const H(job) *J0, H(job) *Jt, int64_t rows_per_run, const H(job) **J)
{
    *J = J0;
    if (!J0->block_sums)
        return FS_OK;
    *Jt = *J0;
    Jt->loss_rows = (double *)malloc((size_t)rows_per_run * sizeof(double));
    *J = Jt;
    return Jt->loss_rows ? FS_OK : FS_ENOMEM;
}

/* the block sums of the run's rows [lo, hi), lo a multiple of ROWS_BLOCK */
static void H(block_rows_end)(const H(job) *J, int64_t lo, int64_t hi)
{
    if (!J->block_sums)
        return;
    for (int64_t k = lo; k < hi; k += ROWS_BLOCK)
        J->block_sums[k / ROWS_BLOCK] = rows_sum_block(J->loss_rows + (k - lo), hi - k < ROWS_BLOCK ? hi - k : ROWS_BLOCK);
}

static int H(run)(const H(job) *J);
