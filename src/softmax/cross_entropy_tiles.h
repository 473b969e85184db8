/* The softmax family, one dtype (see family.h): the cross-entropy's tiles (its epilogues for
 * driver_tile.h and driver_dense.h), LANES rows at a time, with the loss and gradient of
 * cross_entropy.h. */

/* Lane k of a gathered tile whose multiplier a is beyond T's range (the z-loss of a huge
 * log-sum-exp, with float32; a / s may be in range, s >= 1): its exponentials scaled by a / s
 * in double, so that a 0 stays 0 instead of 0 * inf, and its multiplier made s (a / s = 1 for
 * the vector pass). */
FS_INLINE void H(huge_lane)(V *ve, int64_t c, int k, double a, T sk, T *va)
{
    if (__builtin_expect(isfinite((T)a) || !isfinite(a), 1))
        return;
    const double a_s = a / (double)sk;
    for (int64_t j = 0; j < c; j++)
        ve[j][k] = (T)((double)ve[j][k] * a_s);
    *va = sk;
}

/*
 * Gathered tiles with index targets: the per-row work is a few scalars (no row plan), the
 * gradient e_j a / s - (eps/C) s w_j for all lanes, then the one-hot term per row.
 */
FS_INLINE int H(ce_tile_index)(const H(job) *J, H(tile) *t, V *ve, int64_t c, V m, V s)
{
    const fs_ce_args *a = J->ce;
    const double alpha = 1.0 - a->label_smoothing, beta = a->label_smoothing / (double)c;
    const double scale = a->grad_scale;
    const int smoothing = a->label_smoothing != 0.0;
    const T *w = (const T *)a->weight;
    int64_t yk[LANES];
    double wy[LANES];
    T va[LANES];
    for (int k = 0; k < t->nr; k++) {
        const int64_t y = a->target[t->n0 + k];
        yk[k] = y;
        if (y == a->ignore_index) {
            t->done |= 1u << k;
            continue;
        }
        if (y < 0 || y >= c)
            return FS_EINDEX;
    }
    const V logs = VLOG(s);
    for (int k = 0; k < LANES; k++) {
        va[k] = 0;
        if (k >= t->nr || t->done >> k & 1) {
            if (k < t->nr)
                J->loss_rows[t->n0 + k - J->loss_base] = 0.0;
            continue;
        }
        const double mk = (double)m[k];
        double dot = 0.0, tot = 0.0, ak;
        if (smoothing)
            H(block_dot)(t->xp[k], NULL, w, c, mk == -INFINITY ? 0.0 : mk, 0.0, 0.0, &dot, &tot);
        wy[k] = w ? (double)w[yk[k]] : 1.0;
        J->loss_rows[t->n0 + k - J->loss_base] = H(ce_index_row)(alpha, beta, J->wsum, smoothing, a->z_loss, scale, mk,
                                                  (double)logs[k], (double)t->xp[k][yk[k]], wy[k], dot, &ak);
        va[k] = (T)ak;
        if (J->y)
            H(huge_lane)(ve, c, k, ak, s[k], &va[k]);
    }
    if (!J->y)
        return TILE_DONE;
    const V A = VLOAD(va) / s;
    const T bg = (T)(scale * beta);
    for (int64_t j = 0; j < c; j++) {
        ve[j] = ve[j] * A;
        if (smoothing)
            ve[j] = ve[j] - bg * (w ? w[j] : (T)1);
    }
    for (int k = 0; k < t->nr; k++)
        if (!(t->done >> k & 1))
            ve[yk[k]][k] = (T)((double)ve[yk[k]][k] - scale * alpha * wy[k]);
    return TILE_STORE;
}

/* Gathered tiles with probability targets: the row plan of each row, then the gradient
 * e_j a / s - (alpha_g u_j + beta_g) w_j for all lanes. */
FS_INLINE int H(ce_tile_prob)(const H(job) *J, H(tile) *t, V *ve, int64_t c, V m, V s)
{
    H(rowstate) rs[LANES];
    T va[LANES], vag[LANES], vbg[LANES];
    for (int k = 0; k < t->nr; k++) {
        int status = H(row_begin)(J, t->n0 + k, t->xp[k], t->up[k], NULL, 1, J->y != NULL, &rs[k]);
        if (status != FS_OK)
            return status;
    }
    const V logs = VLOG(s);
    for (int k = 0; k < LANES; k++) {
        va[k] = vag[k] = vbg[k] = 0;
        if (k >= t->nr)
            continue;
        H(rowstat) st;
        H(stats_init)(&st);
        st.m = m[k];
        st.s = (double)s[k];
        st.logs = (double)logs[k];
        H(block_dot)(t->xp[k], t->up[k], rs[k].op.w, c, st.m == -INFINITY ? 0.0 : (double)st.m, rs[k].op.alpha,
                     rs[k].op.beta, &st.dot, &st.tot);
        H(plan_cross_entropy)(&rs[k].op, &st, rs[k].ctx);
        va[k] = (T)rs[k].op.a;
        if (J->y)
            H(huge_lane)(ve, c, k, rs[k].op.a, s[k], &va[k]);
        vag[k] = rs[k].op.alpha_g;
        vbg[k] = rs[k].op.beta_g;
        H(ce_row_end)(J, t->n0 + k, t->xp[k], &rs[k]);
    }
    if (!J->y)
        return TILE_DONE;
    const V A = VLOAD(va) / s, AG = VLOAD(vag), BG = VLOAD(vbg);
    const T *w = (const T *)J->ce->weight;
    for (int64_t j = 0; j < c; j++) {
        V cj = VGATHER_ROWS(t->up, j) * AG + BG;
        if (w)
            cj = cj * w[j];
        ve[j] = ve[j] * A - cj;
    }
    return TILE_STORE;
}

FS_INLINE int H(ce_tile)(const H(job) *J, H(tile) *t, const V *vx, V *ve, int64_t c, V m, V s)
{
    (void)vx;
    return J->u ? H(ce_tile_prob)(J, t, ve, c, m, s) : H(ce_tile_index)(J, t, ve, c, m, s);
}

static int H(ce_tiles)(const H(job) *J, int64_t n0, int nr)
{
    return H(tile_gathered)(J, n0, nr, H(ce_tile));
}

/*
 * Dense tiles: index targets without label smoothing or z-loss, loss = w_y (lse - x_y),
 * g_j = s w_y (p_j - [j = y]); ignored rows 0.  The tile leaves m - x_y in loss_rows, and
 * the sum of exponentials and w_y in the run's scratch; ce_dense_losses finishes the losses
 * per run, off the tiles' dependency chains.  The targets are checked row by row without
 * branches (or were, for the whole run: clean), and then used as vectors: x_y is gathered
 * from the tile's rows in memory (so that the transposed logits die with their
 * exponentials), or for rows of up to CE_SELECT_C classes selected among them (a gather cost
 * more: 2 classes, one thread, 1.10-1.14x faster without it; at 8 classes 2% slower), and the
 * comparisons tv == j place the one-hot term.
 */
static int H(ce_dense_ok)(const H(job) *J)
{
    const fs_ce_args *a = J->ce;
    return !a->prob && a->label_smoothing == 0.0 && a->z_loss == 0.0;
}

/* 1 when every target of rows n0 .. n0 + nrows - 1 is a class and none is ignore_index
 * (rows_check_targets of rows.h, whose loop vectorizes): then the tiles skip their row-by-row
 * checks, 4% of a 65536 x 10 tile's instructions. */
static int H(ce_dense_clean)(const H(job) *J, int64_t n0, int64_t nrows)
{
    const fs_ce_args *a = J->ce;
    int64_t n_valid;
    double unused;
    if (a->targets_checked)
        return 1;
    return rows_check_targets(a->target + n0, nrows, J->b->n_classes, a->ignore_index, NULL, &n_valid, &unused) < 0 &&
           n_valid == nrows;
}

/* rows of up to this many classes select x_y among the tile's logits, longer ones gather it */
#define CE_SELECT_C 4

FS_INLINE int H(ce_tile_dense)(const H(job) *J, H(tile) *t, const V *vx, V *ve, const int64_t c, V m, V s)
{
    const fs_ce_args *a = J->ce;
    const T *wt = (const T *)a->weight;
    const T *xb = t->xp[0];
    const int64_t *tg = a->target + t->n0;
    unsigned ignored = 0; /* rows with the ignore_index target, one bit each */
    if (!t->clean) {
        int64_t bad = 0;
        for (int k = 0; k < LANES; k++) {
            const int64_t ign = tg[k] == a->ignore_index;
            ignored |= (unsigned)ign << k;
            bad |= !ign & ((uint64_t)tg[k] >= (uint64_t)c);
        }
        if (bad)
            return FS_EINDEX;
    }
    t->done = ignored;
    H(vq) tq;
    memcpy(&tq, tg, sizeof tq);
    /* keep: the rows not ignored, as a mask of T lanes, from the bits of `ignored` (converting
     * the mask of the int64 comparison took GCC 47 instructions per tile of floats) */
    VI lane_bit, row_at;
    for (int k = 0; k < LANES; k++) {
        lane_bit[k] = 1 << k;
        row_at[k] = k * (int)c;
    }
    const VI keep = (lane_bit & (int)ignored) == 0;
    /* tv: the targets in the lanes of VI (exact: a target not ignored is a class), -1 in the
     * ignored rows, where it matches no class; x_y is 0 there (their class 0 is read) */
    const VI tv = __builtin_convertvector(tq, VI) | ~keep;
    V xy = VSPLAT(0);
    if (c <= CE_SELECT_C) /* from the tile's logits in registers: no class matches an ignored row */
        for (int64_t j = 0; j < c; j++)
            xy = VSELECT(tv == (int)j, vx[j], xy);
    else
        xy = VSELECT(keep, VGATHER_AT(xb, row_at + (tv & keep)), xy);
    V wy = VSELECT(keep, VSPLAT(1), VSPLAT(0));
    if (wt) {
        T wv[LANES];
        for (int k = 0; k < LANES; k++)
            wv[k] = ignored >> k & 1 ? 0 : wt[tg[k]];
        wy = H(from_scalars)(wv);
    }
    VSTORE(t->wys, wy);
    VSTORE(t->sums, VSELECT(keep, s, VSPLAT(1)));
    /* m - x_y in double, as the row plan forms it; 0 for ignored rows (x_y is 0 there: the
     * mask goes on m, as floats, where it is one instruction) */
    const H(vw) d = __builtin_convertvector(VSELECT(keep, m, VSPLAT(0)), H(vw)) - __builtin_convertvector(xy, H(vw));
    memcpy(J->loss_rows + (t->n0 - J->loss_base), &d, sizeof d);
    if (!J->y)
        return TILE_DONE;
    /* grad_scale w_y rounded once from double, as in the gathered tiles */
    const V VA = __builtin_convertvector(__builtin_convertvector(wy, H(vw)) * a->grad_scale, V);
    const V A = VA / s;
    for (int64_t j = 0; j < c; j++)
        ve[j] = ve[j] * A - VSELECT(tv == (int)j, VA, VSPLAT(0));
    return TILE_STORE;
}

DENSE_TILES(ce_dense, H(ce_tile_dense), 1, 0)

/* The losses of rows n0 .. n0 + nrows - 1 (whole dense tiles): loss_rows holds m - x_y, sums
 * the sums of exponentials (1 for ignored rows), wys the weights w_y (0 for ignored rows).
 * The logs are taken here, LANES rows per vector; the loss is ce_index_row's, for LANES rows,
 * with m - x_y for m and 0 for x_y. */
static void H(ce_dense_losses)(const H(job) *J, int64_t n0, int64_t nrows, const T *sums, const T *wys)
{
    const H(vw) zero = {0};
    /* the logs of a chunk first, then its losses: each loop's dependency chain is short enough
     * for the out-of-order window to hold the iterations it needs (in one loop, the log's chain
     * and the losses' after it bound the loop by their latency; Zen 3, one thread and two:
     * the cross-entropy 1.04-1.07x faster at 2 classes, 1-2% at 10-32) */
    enum { CHUNK = 256 };
    T lg[CHUNK] __attribute__((aligned(64)));
    for (int64_t k0 = 0; k0 < nrows; k0 += CHUNK) {
        const int64_t m = nrows - k0 < CHUNK ? nrows - k0 : CHUNK;
        for (int64_t k = 0; k < m; k += LANES)
            VSTORE(lg + k, VLOG_GE1(VLOAD(sums + k0 + k))); /* sums >= 1 (ignored rows: 1) or NaN */
        for (int64_t k = 0; k < m; k += LANES) {
            H(vw) d, unused;
            memcpy(&d, J->loss_rows + (n0 + k0 + k - J->loss_base), sizeof d);
            d = H(ce_index_rows)(1.0, 0.0, 0.0, 0, 0.0, 1.0, d, __builtin_convertvector(VLOAD(lg + k), H(vw)), zero,
                                 __builtin_convertvector(VLOAD(wys + k0 + k), H(vw)), zero, &unused);
            memcpy(J->loss_rows + (n0 + k0 + k - J->loss_base), &d, sizeof d);
        }
    }
}
