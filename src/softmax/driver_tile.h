/* The softmax family, one dtype (see family.h): short rows, LANES rows per vector. */

/*
 * Short rows (at most SMALL_C classes, unit class stride): LANES rows at a
 * time, transposed so that each vector holds one class of LANES rows; the
 * max, the exponentials and the output then take c vector operations per
 * LANES rows instead of a row's worth of loop and tail overhead per row.
 */
#define SMALL_C 32

static int H(tile_ok)(const H(job) *J)
{
    const int64_t c = J->b->n_classes;
    if (c < 1 || c > SMALL_C || J->xs->cls != 1 || (J->y && J->ys->cls != 1))
        return 0;
    return !(J->u && J->us->cls != 1);
}

/*
 * Two classes: the exponentials exp(x0 - m) and exp(x1 - m) with one exp.  One of x0 - m and
 * x1 - m is 0 (exp gives exactly 1 there), so their sum is the other one, exactly, and exp of
 * the sum is its exponential: the same bits as two exps.  Where either difference is NaN (a
 * NaN logit, or an infinite max) the sum is NaN and so is every exponential that is not exp(0);
 * the two exps could give 0 for the other class there, but the row's sum is NaN either way, and
 * every output of such a row is NaN (log_softmax and logsumexp read only s; the softmax and the
 * cross-entropy multiply the exponentials by 1 / s).  Binary classification with
 * a softmax over two logits: the exps are most of a tile's arithmetic there (Zen 3, one
 * thread, 2^15 to 2^26 floats: softmax 1.28x, log_softmax 1.16x and the cross-entropy 1.05x
 * faster; two threads at 2^26, 1.05x, 1.15x and 1.06x).
 */
FS_INLINE void H(exp_two)(V x0, V x1, V m, V *e0, V *e1)
{
    const V d0 = x0 - m, d1 = x1 - m;
    const V e = VEXPN(d0 + d1);
    *e0 = VSELECT(d0 != 0, e, VSPLAT(1));
    *e1 = VSELECT(d1 != 0, e, VSPLAT(1));
}

/*
 * Statistics of LANES rows held class by class (vx[j] lane k = row k, class j):
 * the max, the exponentials e[j] = exp(vx[j] - m) and their sum.  The ops take its log
 * where they need it (a long dependency chain: softmax skips it, and the dense
 * cross-entropy takes it later for a whole run of tiles).
 */
FS_INLINE void H(tile_stats)(const V *vx, V *ve, int64_t c, V *mo, V *so)
{
    V m = VSPLAT(-INFINITY);
    for (int64_t j = 0; j < c; j++)
        m = VMAX(vx[j], m); /* NaN never enters the max, as in block_max */
    if (c == 2) { /* the sum as below: (0 + e0) + (0 + e1) */
        H(exp_two)(vx[0], vx[1], m, &ve[0], &ve[1]);
        *mo = m;
        *so = select_nan_where_ninf(m, ve[0] + ve[1]);
        return;
    }
    V s0 = VSPLAT(0), s1 = VSPLAT(0);
    for (int64_t j = 0; j < c; j++) {
        ve[j] = VEXPN(vx[j] - m);
        if (j & 1)
            s1 += ve[j];
        else
            s0 += ve[j];
    }
    /* a row whose max is -inf (all -inf or NaN) has a NaN softmax, as in stats_finish */
    *mo = m;
    *so = select_nan_where_ninf(m, s0 + s1);
}

/* An op's work on a tile after its statistics (ops.h, cross_entropy.h): from vx (the logits,
 * class by class), ve[j] = exp(vx[j] - m) and s their sum, it leaves the output in ve and
 * returns TILE_STORE, or writes its results itself and returns TILE_DONE, or an error. */
typedef int (*H(tile_epilogue))(const H(job) *J, H(tile) *t, const V *vx, V *ve, int64_t c, V m, V s);

/* A tile of nr <= LANES rows from row n0 gathered class by class (any row strides, class
 * stride 1), the op's epilogue inlined (an op instantiates it: its tile hook). */
FS_INLINE int H(tile_gathered)(const H(job) *J, int64_t n0, int nr, H(tile_epilogue) epilogue)
{
    const int64_t c = J->b->n_classes, n_inner = J->b->n_inner;
    H(tile) t = {.n0 = n0, .nr = nr, .up = {0}};
    T *yp[LANES];
    V vx[SMALL_C], ve[SMALL_C];
    int64_t o = n0 / n_inner, i = n0 % n_inner; /* one division per tile, then step */
    for (int k = 0; k < nr; k++) {
        t.xp[k] = J->x + o * J->xs->outer + i * J->xs->inner;
        yp[k] = J->y ? J->y + o * J->ys->outer + i * J->ys->inner : NULL;
        if (J->u)
            t.up[k] = J->u + o * J->us->outer + i * J->us->inner;
        if (++i == n_inner) {
            i = 0;
            o++;
        }
    }
    /* transpose in: vx[j] lane k = x[row k, class j]; unused lanes repeat row 0 */
    for (int k = nr; k < LANES; k++) {
        t.xp[k] = t.xp[0];
        t.up[k] = t.up[0];
    }
    for (int64_t j = 0; j < c; j++)
        vx[j] = VGATHER_ROWS(t.xp, j);
    V m, s;
    H(tile_stats)(vx, ve, c, &m, &s);
    const int status = epilogue(J, &t, vx, ve, c, m, s);
    if (status != TILE_STORE)
        return status == TILE_DONE ? FS_OK : status;
    T tmp[LANES];
    for (int64_t j = 0; j < c; j++) {
        VSTORE(tmp, ve[j]);
        for (int k = 0; k < nr; k++)
            if (!(t.done >> k & 1))
                yp[k][j] = tmp[k];
    }
    for (int k = 0; k < nr; k++)
        if (t.done >> k & 1)
            memset(yp[k], 0, (size_t)c * sizeof(T));
    return FS_OK;
}
