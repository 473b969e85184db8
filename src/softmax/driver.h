/* The softmax family, one dtype (see family.h): the batch driver, H(run): which path a job
 * takes, and its split over the threads. */

/* Scratch rows of one thread: gathered logits/output, gathered targets, exponentials. */
typedef struct {
    T *bx, *bu, *eb;
} H(scratchset);

static int H(scratch_alloc)(H(scratchset) *w, const H(job) *J)
{
    const int64_t c = J->b->n_classes;
    const int need_bx = J->xs->cls != 1 || (J->y && J->ys->cls != 1);
    const int need_bu = J->u && J->us->cls != 1;
    /* rows in pieces (from split_min_classes on) keep their exponentials in a scratch of their length */
    const int pieces = c >= fs_tuning.split_min_classes;
    const int need_eb = J->y && J->op->out == OUT_EXP &&
                        (pieces ? H(pieces_store)(c) : c * (int64_t)sizeof(T) <= STORE_BYTES);
    int s1 = H(scratch)(&w->bx, need_bx, c);
    int s2 = H(scratch)(&w->bu, need_bu, c);
    int s3 = H(scratch)(&w->eb, need_eb, c);
    return s1 == FS_OK && s2 == FS_OK && s3 == FS_OK ? FS_OK : FS_ENOMEM;
}

static void H(scratch_free)(H(scratchset) *w)
{
    free(w->bx);
    free(w->bu);
    free(w->eb);
}


/* Short rows: runs of `per` tiles of LANES rows. */
static int H(tile_runs)(fs_par *p, void *ctx)
{
    const H(runs) *R = (const H(runs) *)ctx;
    H(job) Jt;
    const H(job) *J;
    int bstatus = H(block_rows_begin)(R->J, &Jt, R->per * LANES, &J);
    const int64_t c = J->b->n_classes, nrows = R->nrows, ntiles = R->ntiles, per = R->per;
    /* the scratch of an op's dense tiles for a run (the cross-entropy's: sums of exponentials,
     * then weights) */
    const int scratch = R->dense && J->op->dense_end;
    T *sums = scratch ? (T *)malloc((size_t)(2 * per * LANES) * sizeof(T)) : NULL;
    int status = (scratch && !sums) || bstatus != FS_OK ? FS_ENOMEM : FS_OK;
    for (int64_t run; status == FS_OK && (run = fs_par_next(p)) >= 0;) {
        int64_t lo, hi;
        fs_unit_range(run, per, ntiles, &lo, &hi);
        if (J == &Jt)
            Jt.loss_base = lo * LANES;
        /* a dense tile reads up to LANES - 1 elements past its rows (and never uses them):
         * within the array, and when the output overwrites the input, within this run */
        const int64_t row_hi = hi * LANES < nrows ? hi * LANES : nrows;
        const int64_t end = (J->y == J->x ? row_hi : nrows) * c;
        int64_t tile = lo;
        const int clean = R->dense && J->op->dense_clean && J->op->dense_clean(J, lo * LANES, row_hi - lo * LANES);
        /* dense: the tiles with (tile + 1) LANES c + LANES <= end */
        int64_t dense_hi = R->dense && end >= LANES ? (end - LANES) / (LANES * c) : lo;
        if (dense_hi > hi)
            dense_hi = hi;
        if (tile < dense_hi) { /* the run's first tile: its sums and wys at the scratch's start */
            status = J->op->dense(J, tile * LANES, dense_hi - tile, sums, sums ? sums + per * LANES : NULL, clean);
            tile = dense_hi;
        }
        if (sums && status == FS_OK)
            J->op->dense_end(J, lo * LANES, (tile - lo) * LANES, sums, sums + per * LANES);
        for (; tile < hi && status == FS_OK; tile++) {
            const int64_t n0 = tile * LANES;
            status = J->op->tile(J, n0, nrows - n0 < LANES ? (int)(nrows - n0) : LANES);
        }
        if (status == FS_OK)
            H(block_rows_end)(J, lo * LANES, row_hi);
    }
    free(sums);
    if (J == &Jt)
        free(Jt.loss_rows);
    return status;
}

/* Rows that fit the scratch row: runs of `per` rows, each run pipelined. */
static int H(pipelined_runs)(fs_par *p, void *ctx)
{
    const H(runs) *R = (const H(runs) *)ctx;
    const H(job) *J = R->J;
    T *ebuf = (T *)malloc((size_t)J->b->n_classes * sizeof(T));
    int status = ebuf ? FS_OK : FS_ENOMEM;
    for (int64_t run; status == FS_OK && (run = fs_par_next(p)) >= 0;) {
        int64_t lo, hi;
        fs_unit_range(run, R->per, R->nrows, &lo, &hi);
        status = H(run_pipelined)(J, lo, hi, ebuf);
    }
    free(ebuf);
    if (J->nt)
        FS_SFENCE();
    return status;
}

/* Any other rows: runs of `per` rows, one row at a time (long rows in pieces, split over
 * split_nt threads when the rows are done one after the other). */
static int H(row_runs)(fs_par *p, void *ctx)
{
    const H(runs) *R = (const H(runs) *)ctx;
    const H(job) *J = R->J;
    H(scratchset) w;
    int status = H(scratch_alloc)(&w, J);
    for (int64_t run; status == FS_OK && (run = fs_par_next(p)) >= 0;) {
        int64_t lo, hi;
        fs_unit_range(run, R->per, R->nrows, &lo, &hi);
        for (int64_t n = lo; n < hi && status == FS_OK; n++)
            status = H(process_row)(J, n, w.bx, w.bu, w.eb, R->split_nt);
    }
    H(scratch_free)(&w);
    if (J->nt)
        FS_SFENCE();
    return status;
}

/* Runs whose rows fill a scratch of their own (the losses of block_sums, the dense tiles' sums
 * and weights) stop at this many rows, a multiple of ROWS_BLOCK, so that the scratch stays in
 * cache: 1/32 of 2^25 rows of 2 classes wrote 16 MB of it per run, and read it back. */
#define SCRATCH_RUN_ROWS 8192
/* rows shorter than this never stream their output (see run()) */
#define NT_MIN_ROW_BYTES 1024

static int H(run)(const H(job) *Jin)
{
    H(job) job = *Jin;
    const H(job) *J = &job;
    const int64_t c = J->b->n_classes, nrows = J->b->n_outer * J->b->n_inner;
    int nt = fs_plan_threads(nrows * (c > 0 ? c : 1));
    if (nrows <= 0)
        return FS_OK;
    H(runs) R = {J, nrows, 0, 0, 0, 0, 1};
    if (H(tile_ok)(J)) {
        R.ntiles = (nrows + LANES - 1) / LANES;
        R.dense = H(dense_ok)(J);
        if (nt > R.ntiles)
            nt = (int)R.ntiles;
        /* In place, the last tile of a run is a gathered one, not dense (see tile_runs), and the
         * two round differently: there, runs of a length that does not depend on the thread
         * count (that of 16 threads, and at least 32 tiles: a gathered tile costs about two
         * dense ones), so that the same tiles are gathered, and the results are the same, on
         * any number of threads. */
        const int in_place = R.dense && J->y == J->x;
        R.per = fs_run_length(R.ntiles, in_place ? 16 : nt, in_place ? 32 : 4);
        if ((J->block_sums || (R.dense && J->op->dense_end)) && R.per > SCRATCH_RUN_ROWS / LANES)
            R.per = SCRATCH_RUN_ROWS / LANES;
        if (J->block_sums) /* runs of whole blocks (see block_rows_begin) */
            R.per = (R.per * LANES + ROWS_BLOCK - 1) / ROWS_BLOCK * (ROWS_BLOCK / LANES);
        R.nruns = (R.ntiles + R.per - 1) / R.per;
        return fs_parallel(nt, R.nruns, H(tile_runs), &R);
    }
    /* outputs larger than the caches go to memory with streaming stores, unless their rows are short
     * and not whole cache lines: the partial lines at a row's ends are stored normally (output.h),
     * and rows under NT_MIN_ROW_BYTES hold too few whole lines to pay for that (2^26 floats in rows
     * of 1000, one thread: 1.2x faster streamed; rows of 100 in groups, whose output lines are
     * prefetched, 1.35x faster with normal stores).  Outside the groups, rows of whole lines stream
     * at any length. */
    const int64_t row_bytes = c * (int64_t)sizeof(T);
    const int group = H(group_ok)(J);
    const int big = J->y && nrows * row_bytes >= fs_tuning.stream_min_bytes;
    /* C-contiguous groups stream through their staging block instead (driver_group.h) */
    job.stage = big && group && row_bytes >= GROUP_STAGE_MIN_BYTES && H(rows_dense)(J->b, J->ys) &&
                (uintptr_t)J->y % sizeof(T) == 0;
    job.nt = big && !job.stage && (row_bytes >= NT_MIN_ROW_BYTES || (!group && row_bytes % 64 == 0));
    if (group) {
        const int64_t ngroups = (nrows + GROUP_R - 1) / GROUP_R;
        if (nt > ngroups)
            nt = (int)ngroups;
        R.per = fs_run_length(ngroups, nt, 1) * GROUP_R; /* runs of whole groups */
        if (J->block_sums && R.per > SCRATCH_RUN_ROWS)
            R.per = SCRATCH_RUN_ROWS;
        if (J->block_sums) /* and of whole blocks (see block_rows_begin) */
            R.per = (R.per + ROWS_BLOCK - 1) / ROWS_BLOCK * ROWS_BLOCK;
        R.nruns = (nrows + R.per - 1) / R.per;
        return fs_parallel(nt, R.nruns, H(group_runs), &R);
    }
    if (H(pipeline_ok)(J) && nrows >= 2) {
        if (nt > nrows / 2)
            nt = (int)(nrows / 2); /* at least two rows per thread, or there is nothing to overlap */
        if (nt < 1)
            nt = 1;
        R.per = fs_run_length(nrows, nt, 2); /* a run pipelines its rows */
        R.nruns = (nrows + R.per - 1) / R.per;
        return fs_parallel(nt, R.nruns, H(pipelined_runs), &R);
    }
    if (nrows < nt) {
        /* fewer rows than threads: long rows one after the other, each split over the threads */
        R.split_nt = c >= fs_tuning.split_min_classes ? nt : 1;
        nt = c >= fs_tuning.split_min_classes ? 1 : (int)nrows;
    }
    R.per = fs_run_length(nrows, nt, 1);
    R.nruns = (nrows + R.per - 1) / R.per;
    return fs_parallel(nt, R.nruns, H(row_runs), &R);
}
