/* The softmax family, one dtype (see family.h): the batch driver's rows, one at a time. */

/* Scratch row for gathered (non unit class stride) rows; NULL when not needed. */
static int H(scratch)(T **buf, int needed, int64_t c)
{
    *buf = NULL;
    if (!needed || c == 0)
        return FS_OK;
    *buf = (T *)malloc((size_t)c * sizeof(T));
    return *buf ? FS_OK : FS_ENOMEM;
}

/*
 * The setup of row n: the fields of rs that every op starts from, then the op's own (its
 * begin hook).  xc is the contiguous row, u its probability-target row (or NULL), yr the
 * output row in memory (class stride ys_cls), for the zeros of an ignored row.
 */
static int H(row_begin)(const H(job) *J, int64_t n, const T *xc, const T *u, T *yr, int64_t ys_cls, int want_out,
                        H(rowstate) *rs)
{
    /* field by field: a memset of the struct (rep stos) cost more than a short row */
    H(rowop) *op0 = &rs->op;
    op0->want_dot = op0->nt = op0->mode = op0->has_c = 0;
    op0->may_store = J->op->out == OUT_EXP;
    op0->no_logs = J->op->no_logs;
    op0->u = op0->w = NULL;
    op0->ebuf = NULL;
    op0->alpha = op0->beta = op0->hdelta = op0->a = 0.0;
    op0->hole = -1;
    op0->alpha_g = op0->beta_g = 0;
    rs->ctx = rs->mem;
    rs->done = 0;
    return J->op->begin ? J->op->begin(J, n, xc, u, yr, ys_cls, want_out, rs) : FS_OK;
}

/* The finish of row n (xc unchanged for logsumexp): the op's results besides its output. */
FS_INLINE void H(row_end)(const H(job) *J, int64_t n, const T *xc, const H(rowstate) *rs)
{
    if (J->op->end)
        J->op->end(J, n, xc, rs);
}

/* One row n of the batch; bx, bu: scratch rows (used when the class stride is not 1). */
static int H(process_row)(const H(job) *J, int64_t n, T *bx, T *bu, T *eb, int split_nt)
{
    const int64_t c = J->b->n_classes;
    const int64_t o = n / J->b->n_inner, i = n % J->b->n_inner;
    const T *xr = J->x + o * J->xs->outer + i * J->xs->inner;
    T *yr = J->y ? J->y + o * J->ys->outer + i * J->ys->inner : NULL;
    const int gx = J->xs->cls != 1, gy = yr && J->ys->cls != 1;
    const T *xc = xr, *u = NULL;
    if (gx) {
        H(gather)(bx, xr, c, J->xs->cls);
        xc = bx;
    }
    T *yc = gy ? bx : yr; /* in place in the scratch row: each element is read before it is written */
    if (J->u) {
        u = J->u + o * J->us->outer + i * J->us->inner;
        if (J->us->cls != 1) {
            H(gather)(bu, u, c, J->us->cls);
            u = bu;
        }
    }
    H(rowstate) rs;
    int status = H(row_begin)(J, n, xc, u, yr, yr ? J->ys->cls : 0, yr != NULL, &rs);
    if (status != FS_OK || rs.done)
        return status;
    rs.op.ebuf = eb;
    rs.op.nt = J->nt && !gy;
    if (c >= fs_tuning.split_min_classes)
        status = H(run_row_pieces)(xc, yc, c, &rs.op, J->op->plan, rs.ctx, split_nt);
    else
        H(run_row)(xc, yc, c, &rs.op, J->op->plan, rs.ctx);
    if (status != FS_OK)
        return status;
    H(row_end)(J, n, xc, &rs);
    if (gy)
        H(scatter)(yr, J->ys->cls, bx, c);
    return FS_OK;
}
