/* The softmax family, one dtype (see family.h): softmax, log_softmax and logsumexp.  Each op
 * is what it gives the driver (its H(op): a row plan, the epilogue of its tiles, its row
 * results) and an exported kernel. */

/* The logsumexp of row xc computed as v, with torch.logsumexp's special values: a row of
 * all -inf gives -inf, one with +inf gives +inf, one with NaN gives NaN. */
static T H(lse_value)(const T *xc, int64_t c, T v)
{
    if (!(v - v == 0)) {
        T m = H(block_max)(xc, c);
        v = H(block_has_nan)(xc, c) ? (T)NAN : (m == INFINITY || m == -INFINITY) ? m : v;
    }
    return v;
}

/* softmax: p_j = exp(x_j - m) / s */
static void H(plan_softmax)(H(rowop) *op, const H(rowstat) *st, void *ctx)
{
    (void)st;
    (void)ctx;
    op->mode = OUT_EXP;
    op->a = 1.0;
    op->has_c = 0;
}

FS_INLINE int H(tile_softmax)(const H(job) *J, H(tile) *t, const V *vx, V *ve, int64_t c, V m, V s)
{
    (void)J, (void)t, (void)vx, (void)m;
    const V A = VSPLAT(1) / s;
    for (int64_t j = 0; j < c; j++)
        ve[j] *= A;
    return TILE_STORE;
}

/* log_softmax: x_j - m - log(s) */
static void H(plan_log_softmax)(H(rowop) *op, const H(rowstat) *st, void *ctx)
{
    (void)st;
    (void)ctx;
    op->mode = OUT_LOG;
}

FS_INLINE int H(tile_log_softmax)(const H(job) *J, H(tile) *t, const V *vx, V *ve, int64_t c, V m, V s)
{
    (void)J, (void)t;
    const V logs = VLOG(s);
    for (int64_t j = 0; j < c; j++)
        ve[j] = (vx[j] - m) - logs;
    return TILE_STORE;
}

/* logsumexp: m + log(s), no output array (the row's result goes to J->lse) */
static void H(plan_logsumexp)(H(rowop) *op, const H(rowstat) *st, void *ctx)
{
    op->mode = OUT_NONE;
    *(double *)ctx = (double)st->m + st->logs;
}

static void H(end_logsumexp)(const H(job) *J, int64_t n, const T *xc, const H(rowstate) *rs)
{
    J->lse[n] = H(lse_value)(xc, J->b->n_classes, (T)*(const double *)rs->ctx);
}

FS_INLINE int H(tile_logsumexp)(const H(job) *J, H(tile) *t, const V *vx, V *ve, int64_t c, V m, V s)
{
    (void)vx, (void)ve;
    T v[LANES];
    VSTORE(v, m + VLOG(s));
    for (int k = 0; k < t->nr; k++)
        J->lse[t->n0 + k] = H(lse_value)(t->xp[k], c, v[k]);
    return TILE_DONE;
}

static int H(tiles_softmax)(const H(job) *J, int64_t n0, int nr)
{
    return H(tile_gathered)(J, n0, nr, H(tile_softmax));
}
static int H(tiles_log_softmax)(const H(job) *J, int64_t n0, int nr)
{
    return H(tile_gathered)(J, n0, nr, H(tile_log_softmax));
}
static int H(tiles_logsumexp)(const H(job) *J, int64_t n0, int nr)
{
    return H(tile_gathered)(J, n0, nr, H(tile_logsumexp));
}
DENSE_TILES(dense_softmax, H(tile_softmax), 0, 1)
DENSE_TILES(dense_log_softmax, H(tile_log_softmax), 0, 1)
DENSE_TILES(dense_logsumexp, H(tile_logsumexp), 0, 0)

/* A softmax row of a group (driver_group.h): the generic setup, plan and output pass of the
 * driver (row_begin, plan_softmax, group_scale or output_range) in one function; the same
 * formulas, so the same bits. */
static int H(softmax_group_row_ok)(const H(job) *J)
{
    (void)J;
    return 1;
}

static int H(softmax_group_row)(const H(job) *J, int64_t n, const T *x, T *y, const T *e, T m, double s, double logs)
{
    (void)n, (void)x, (void)logs;
    const int64_t c = J->b->n_classes;
    if (s != s) { /* NaN row, as in PyTorch */
        for (int64_t j = 0; j < c; j++)
            y[j] = (T)NAN;
    } else if (J->nt) {
        H(output_range)(e, y, NULL, NULL, c, m, 1.0 / s, 0, 0, 1, 0, 1, -1, 0.0);
    } else {
        H(group_scale)(e, y, c, 1.0 / s, -1, 0.0);
    }
    return FS_OK;
}

static const H(op) H(op_softmax) = {.out = OUT_EXP,
                                    .no_logs = 1,
                                    .plan = H(plan_softmax),
                                    .tile = H(tiles_softmax),
                                    .dense = H(dense_softmax),
                                    .group_row_ok = H(softmax_group_row_ok),
                                    .group_row = H(softmax_group_row)};
static const H(op) H(op_log_softmax) = {
    .out = OUT_LOG, .plan = H(plan_log_softmax), .tile = H(tiles_log_softmax), .dense = H(dense_log_softmax)};
static const H(op) H(op_logsumexp) = {.out = OUT_NONE,
                                      .plan = H(plan_logsumexp),
                                      .end = H(end_logsumexp),
                                      .tile = H(tiles_logsumexp),
                                      .dense = H(dense_logsumexp)};

int K(softmax)(const fs_batch *b, const T *x, const fs_strides *xs, T *y, const fs_strides *ys)
{
    H(job) J = {.op = &H(op_softmax), .b = b, .x = x, .xs = xs, .y = y, .ys = ys};
    return H(run)(&J);
}

int K(log_softmax)(const fs_batch *b, const T *x, const fs_strides *xs, T *y, const fs_strides *ys)
{
    H(job) J = {.op = &H(op_log_softmax), .b = b, .x = x, .xs = xs, .y = y, .ys = ys};
    return H(run)(&J);
}

int K(logsumexp)(const fs_batch *b, const T *x, const fs_strides *xs, T *out)
{
    H(job) J = {.op = &H(op_logsumexp), .b = b, .x = x, .xs = xs, .ys = xs, .lse = out};
    return H(run)(&J);
}
