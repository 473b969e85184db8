/* The softmax family, one dtype (see family.h): rows whose output pass overlaps the next
 * row's pass 1. */

/*
 * Software pipeline over rows whose output is written (softmax, gradient):
 * while pass 1 reads block b of row n, the output pass writes block b of row
 * n - 1, so that the reads of one row and the writes of the previous one
 * share the memory bus instead of taking turns.  Rows of at most
 * STORE_BYTES with unit class strides.  One scratch row of exponentials
 * serves both rows: block b of row n - 1 is written out before block b of
 * row n replaces it, so that only one row's worth stays in L2.
 */
typedef struct {
    int active;
    int64_t n;
    H(rowstate) rs; /* its plan's output coefficients in rs.op */
    H(rowstat) st;
    const T *x;
    T *g;
} H(pending);

/* Output blocks [b_from, b_to) of the pending row p from the scratch row e. */
static void H(pending_blocks)(const H(pending) *p, const T *e, int64_t c, int64_t b_from, int64_t b_to)
{
    const int64_t lo = b_from * BLOCK, hi = b_to * BLOCK < c ? b_to * BLOCK : c;
    if (lo >= hi)
        return;
    if (p->st.s != p->st.s) { /* NaN row, as in PyTorch */
        for (int64_t j = lo; j < hi; j++)
            p->g[j] = (T)NAN;
        return;
    }
    H(output_stored)(&p->rs.op, &p->st, p->st.bm + b_from, e, p->g, lo, hi - lo);
}

static int H(pipeline_ok)(const H(job) *J)
{
    const int64_t c = J->b->n_classes;
    /* rows from split_min_classes on are reduced in pieces (run_row_pieces), whichever the path */
    if (!J->y || J->xs->cls != 1 || J->ys->cls != 1 || c * (int64_t)sizeof(T) > STORE_BYTES ||
        c >= fs_tuning.split_min_classes)
        return 0;
    return J->op->out == OUT_EXP && !(J->u && J->us->cls != 1);
}

static int H(run_pipelined)(const H(job) *J, int64_t n_lo, int64_t n_hi, T *ebuf)
{
    const int64_t c = J->b->n_classes, n_inner = J->b->n_inner;
    const int64_t nblocks = (c + BLOCK - 1) / BLOCK;
    /* two slots used in turn: the current row's and the pending one's (never copied: a struct
     * copy right after the plan's scalar stores stalled on store forwarding) */
    H(pending) slot[2];
    slot[0].active = slot[1].active = 0;
    int cur = 0;
    for (int64_t n = n_lo; n < n_hi; n++) {
        const int64_t o = n / n_inner, i = n % n_inner;
        H(pending) *R = &slot[cur], *P = &slot[cur ^ 1];
        R->x = J->x + o * J->xs->outer + i * J->xs->inner;
        R->g = J->y + o * J->ys->outer + i * J->ys->inner;
        const T *ur = J->u ? J->u + o * J->us->outer + i * J->us->inner
                           : NULL;
        H(rowstate) *rs = &R->rs;
        int status = H(row_begin)(J, n, R->x, ur, R->g, 1, 1, rs);
        if (status != FS_OK)
            return status;
        if (rs->done)
            continue;
        rs->op.nt = J->nt;
        R->n = n;
        H(stats_init)(&R->st);
        for (int64_t b = 0; b < nblocks; b++) {
            const int64_t b0 = b * BLOCK, len = c - b0 < BLOCK ? c - b0 : BLOCK;
            /* block b of the pending row's exponentials is consumed before this row's replace it */
            if (P->active)
                H(pending_blocks)(P, ebuf, c, b, b + 1);
            H(stats_add)(&R->st, R->x + b0, len, rs->op.want_dot, rs->op.u ? rs->op.u + b0 : NULL,
                         rs->op.w ? rs->op.w + b0 : NULL, rs->op.alpha, rs->op.beta, ebuf + b0, b);
        }
        if (P->active) {
            H(row_end)(J, P->n, P->x, &P->rs);
            P->active = 0;
        }
        H(stats_finish)(&R->st, rs->op.no_logs);
        J->op->plan(&rs->op, &R->st, rs->ctx);
        R->active = 1;
        cur ^= 1;
    }
    H(pending) *P = &slot[cur ^ 1];
    if (P->active) {
        H(pending_blocks)(P, ebuf, c, 0, nblocks);
        H(row_end)(J, P->n, P->x, &P->rs);
    }
    return FS_OK;
}
