/* The softmax family, one dtype (see family.h): short rows of a C-contiguous array, loaded
 * a vector per row and transposed in registers. */

/*
 * Dense tiles: LANES consecutive rows of a C-contiguous array (row n at
 * x + n c), LANES classes at a time loaded with LANES vector loads and
 * transposed in registers, and written back the same way, instead of the
 * scalar gathers and scatters of process_tile.  The index cross-entropy
 * checks its targets in a short scalar loop; x_y, m - x_y, the gradient's
 * coefficients and its one-hot term are vectors, and the logs of the sums
 * are taken per run of tiles (dense_losses).  For softmax,
 * log_softmax, logsumexp and the cross-entropy with index targets without
 * label smoothing or z-loss (the rest take process_tile).
 *
 * The loads of a tile's last chunk read up to LANES - 1 elements past its
 * last row: the caller runs a tile here only when those elements exist and
 * belong to a later tile of the same run of tiles (one thread's).  Stores of
 * a chunk that runs past its row land in the next row, whose own store comes
 * after it; those that would run past the tile are cut (store_tail).
 */
/* LANES int64, LANES doubles: the targets and the losses of a tile of LANES rows (two registers'
 * worth where T is float: GCC splits them) */
typedef int64_t H(vq) __attribute__((vector_size(LANES * 8)));
typedef double H(vw) __attribute__((vector_size(LANES * 8)));

static int H(rows_dense)(const fs_batch *b, const fs_strides *st)
{
    const int64_t c = b->n_classes;
    if (st->cls != 1)
        return 0;
    if (b->n_inner == 1)
        return st->outer == c || b->n_outer == 1;
    if (b->n_outer == 1)
        return st->inner == c;
    return st->inner == c && st->outer == c * b->n_inner;
}

static int H(dense_ok)(const H(job) *J)
{
    if (!H(tile_ok)(J) || !H(rows_dense)(J->b, J->xs) || (J->y && !H(rows_dense)(J->b, J->ys)))
        return 0;
    const fs_ce_args *a = J->ce;
    return J->kind != KIND_CROSS_ENTROPY || (!a->prob && a->label_smoothing == 0.0 && a->z_loss == 0.0);
}

/* The dense cross-entropy's losses of rows n0 .. n0 + nrows - 1 (whole tiles): loss_rows holds
 * m - x_y, and the scratch the sums of exponentials (1 for ignored rows) and the weights w_y
 * (0 for ignored rows); the logs are taken here, LANES rows per vector, off the tiles'
 * dependency chains. */
static void H(dense_losses)(const H(job) *J, int64_t n0, int64_t nrows, const T *sums, const T *wys)
{
    for (int64_t k = 0; k < nrows; k += LANES) {
        const V logs = VLOG_GE1(VLOAD(sums + k)); /* sums >= 1 (ignored rows: 1) or NaN */
        H(vw) d;
        memcpy(&d, J->loss_rows + n0 + k, sizeof d);
        d = __builtin_convertvector(VLOAD(wys + k), H(vw)) * (d + __builtin_convertvector(logs, H(vw)));
        memcpy(J->loss_rows + n0 + k, &d, sizeof d);
    }
}

/* 1 when every target of t[0..n) is a class and none is ignore_index (rows_check_targets of
 * rows.h, whose loop vectorizes): then the tiles skip their row-by-row checks, 4% of a
 * 65536 x 10 tile's instructions. */
static int H(targets_clean)(const int64_t *t, int64_t n, int64_t c, int64_t ignore_index)
{
    int64_t n_valid;
    double unused;
    return rows_check_targets(t, n, c, ignore_index, NULL, &n_valid, &unused) < 0 && n_valid == n;
}

/* sums, wys: the scratch of dense_losses for this tile's rows (cross-entropy only); clean: its
 * targets are known to be classes, none ignored (see targets_clean) */
FS_INLINE int H(tile_dense_c)(const H(job) *J, int64_t n0, T *sums, T *wys, const int clean, const int64_t c)
{
    const int64_t nq = (c + LANES - 1) / LANES;
    const T *xb = J->x + n0 * c;
    /* vx[q LANES + k] lane r = x[row r, class q LANES + k] */
    V vx[SMALL_C], ve[SMALL_C];
#if VPAIRS
    /* a last chunk of two classes goes by pairs (see load_pairs in simd/vector.h) */
    const int pairs = c % LANES == 2;
#endif
    for (int64_t q = 0; q < nq; q++) {
#if VPAIRS
        if (pairs && q == nq - 1) {
            VLOAD_PAIRS(xb + q * LANES, c, &vx[q * LANES], &vx[q * LANES + 1]);
            break;
        }
#endif
        for (int r = 0; r < LANES; r++)
            vx[q * LANES + r] = VLOAD(xb + r * c + q * LANES);
        VTRANSPOSE(vx + q * LANES);
    }
    V m, s, logs;
    H(tile_stats)(vx, ve, c, &m, &s, &logs, J->kind == KIND_LOGSUMEXP || J->kind == KIND_LOG_SOFTMAX);

    unsigned ignored = 0; /* rows with the ignore_index target, one bit each */
    switch (J->kind) {
    case KIND_LOGSUMEXP: {
        T v[LANES];
        VSTORE(v, m + logs);
        for (int k = 0; k < LANES; k++)
            J->lse[n0 + k] = H(lse_value)(xb + k * c, c, v[k]);
        return FS_OK;
    }
    case KIND_SOFTMAX: {
        const V A = VSPLAT(1) / s;
        for (int64_t j = 0; j < c; j++)
            ve[j] *= A;
        break;
    }
    case KIND_LOG_SOFTMAX:
        for (int64_t j = 0; j < c; j++)
            ve[j] = (vx[j] - m) - logs;
        break;
    default: {
        /* index targets: loss = w_y (lse - x_y), g_j = s w_y (p_j - [j = y]); ignored rows 0.
         * Here loss_rows gets m - x_y, and dense_losses finishes it.  The targets are checked
         * row by row without branches (or were, for the whole run: clean), and then used as
         * vectors: x_y is gathered from the tile's rows in memory (so that the transposed logits
         * die with their exponentials), and the comparisons tv == j place the one-hot term. */
        const fs_ce_args *a = J->ce;
        const T *wt = (const T *)a->weight;
        const int64_t *tg = a->target + n0;
        if (!clean) {
            int64_t bad = 0;
            for (int k = 0; k < LANES; k++) {
                const int64_t ign = tg[k] == a->ignore_index;
                ignored |= (unsigned)ign << k;
                bad |= !ign & ((uint64_t)tg[k] >= (uint64_t)c);
            }
            if (bad)
                return FS_EINDEX;
        }
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
        const V xy = VSELECT(keep, VGATHER_AT(xb, row_at + (tv & keep)), VSPLAT(0));
        V wy = VSELECT(keep, VSPLAT(1), VSPLAT(0));
        if (wt) {
            T wv[LANES];
            for (int k = 0; k < LANES; k++)
                wv[k] = ignored >> k & 1 ? 0 : wt[tg[k]];
            wy = H(from_scalars)(wv);
        }
        VSTORE(wys, wy);
        VSTORE(sums, VSELECT(keep, s, VSPLAT(1)));
        /* m - x_y in double, as the generic path forms it; 0 for ignored rows (x_y is 0 there: the
         * mask goes on m, as floats, where it is one instruction) */
        const H(vw) d = __builtin_convertvector(VSELECT(keep, m, VSPLAT(0)), H(vw)) - __builtin_convertvector(xy, H(vw));
        memcpy(J->loss_rows + n0, &d, sizeof d);
        if (!J->y)
            return FS_OK;
        /* grad_scale w_y rounded once from double, as in process_tile */
        const V VA = __builtin_convertvector(__builtin_convertvector(wy, H(vw)) * a->grad_scale, V);
        const V A = VA / s;
        for (int64_t j = 0; j < c; j++)
            ve[j] = ve[j] * A - VSELECT(tv == (int)j, VA, VSPLAT(0));
    }
    }
    /* transpose back and store; the chunks that run past their row (the last) first, so that the
     * next row's first chunk overwrites what they spilled */
    T *yb = J->y + n0 * c;
    const int64_t tile_end = LANES * c;
    for (int64_t j = c; j < nq * LANES; j++)
        ve[j] = m; /* lanes past the row: stored where the next row's chunk overwrites them (VSPLAT(0) became a memset call) */
    for (int64_t q = nq - 1; q >= 0; q--) {
#if VPAIRS
        if (pairs && q == nq - 1) {
            VSTORE_PAIRS(yb + q * LANES, c, ve[q * LANES], ve[q * LANES + 1]);
            continue;
        }
#endif
        VTRANSPOSE(ve + q * LANES);
        for (int r = 0; r < LANES; r++) {
            const int64_t off = r * c + q * LANES;
            if (off + LANES <= tile_end)
                VSTORE(yb + off, ve[q * LANES + r]);
            else
                H(store_tail)(yb + off, tile_end - off, ve[q * LANES + r]);
        }
    }
    /* ignored rows are 0, even where their logits are NaN */
    for (int k = 0; ignored; k++, ignored >>= 1)
        if (ignored & 1)
            memset(yb + k * c, 0, (size_t)c * sizeof(T));
    return FS_OK;
}

/* One copy of the tile per class count up to 16, where the class loops unroll and the tile stays
 * in registers (65536 x 10: 22-26% faster than with the count known only at run time); longer
 * rows share one copy. */
static int H(process_tile_dense)(const H(job) *J, int64_t n0, T *sums, T *wys, int clean)
{
#define TILE_C(n)                                                                                     \
    case n:                                                                                           \
        return clean ? H(tile_dense_c)(J, n0, sums, wys, 1, n) : H(tile_dense_c)(J, n0, sums, wys, 0, n);
    switch (J->b->n_classes) {
        TILE_C(1) TILE_C(2) TILE_C(3) TILE_C(4) TILE_C(5) TILE_C(6) TILE_C(7) TILE_C(8)
        TILE_C(9) TILE_C(10) TILE_C(11) TILE_C(12) TILE_C(13) TILE_C(14) TILE_C(15) TILE_C(16)
    default:
        return H(tile_dense_c)(J, n0, sums, wys, clean, J->b->n_classes);
    }
#undef TILE_C
}
