/* The softmax family, one dtype (see family.h): short rows, LANES rows per vector. */

/*
 * Short rows (at most SMALL_C classes, unit class stride): LANES rows at a
 * time, transposed so that each vector holds one class of LANES rows; the
 * max, the exponentials and the output then take c vector operations per
 * LANES rows instead of a row's worth of loop and tail overhead per row.
 */
#define SMALL_C 64
#define NT_MIN_ROW_BYTES 4096 /* see run() */

static int H(tile_ok)(const H(job) *J)
{
    const int64_t c = J->b->n_classes;
    if (c < 1 || c > SMALL_C || J->xs->cls != 1 || (J->y && J->ys->cls != 1))
        return 0;
    return !(J->u && J->us->cls != 1);
}

/*
 * Statistics of LANES rows held class by class (vx[j] lane k = row k, class j):
 * the max, the exponentials e[j] = exp(vx[j] - m), their sum and, when want_log,
 * its log (a long dependency chain in the middle of a tile: softmax skips it,
 * and the dense cross-entropy takes it later for a whole run of tiles).
 */
FS_INLINE void H(tile_stats)(const V *vx, V *ve, int64_t c, V *mo, V *so, V *logso, int want_log)
{
    V m = VSPLAT(-INFINITY);
    for (int64_t j = 0; j < c; j++)
        m = VMAX(vx[j], m); /* NaN never enters the max, as in block_max */
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
    *logso = want_log ? VLOG(*so) : *so;
}

static int H(process_tile)(const H(job) *J, int64_t n0, int nr)
{
    const int64_t c = J->b->n_classes, n_inner = J->b->n_inner;
    const int ce_kind = J->kind == KIND_CROSS_ENTROPY;
    const int prob = J->u != NULL;
    /* index targets take a lean path: the per-row work is a few scalars, no plan call */
    const int index_ce = ce_kind && !prob;
    int64_t yk[LANES];
    double xy[LANES], wy[LANES];
    H(rowstate) rs[LANES];
    const T *xp[LANES] = {0}, *up[LANES] = {0};
    T *yp[LANES];
    V vx[SMALL_C], ve[SMALL_C];
    T tmp[LANES];
    int64_t o = n0 / n_inner, i = n0 % n_inner; /* one division per tile, then step */
    for (int k = 0; k < nr; k++) {
        xp[k] = J->x + o * J->xs->outer + i * J->xs->inner;
        yp[k] = J->y ? J->y + o * J->ys->outer + i * J->ys->inner : NULL;
        up[k] = prob ? J->u + o * J->us->outer + i * J->us->inner
                     : NULL;
        if (++i == n_inner) {
            i = 0;
            o++;
        }
        if (index_ce) {
            const int64_t y = J->ce->target[n0 + k];
            rs[k].done = y == J->ce->ignore_index;
            yk[k] = y;
            if (rs[k].done) {
                J->loss_rows[n0 + k] = 0.0;
                if (yp[k])
                    memset(yp[k], 0, (size_t)c * sizeof(T));
                continue;
            }
            if (y < 0 || y >= c)
                return FS_EINDEX;
            xy[k] = (double)xp[k][y];
            wy[k] = J->ce->weight ? (double)((const T *)J->ce->weight)[y] : 1.0;
        } else if (ce_kind) {
            int status = H(row_begin)(J, n0 + k, xp[k], up[k], yp[k], 1, yp[k] != NULL, &rs[k]);
            if (status != FS_OK)
                return status;
        } else {
            rs[k].done = 0;
        }
    }
    /* transpose in: vx[j] lane k = x[row k, class j]; unused lanes repeat row 0 */
    for (int k = nr; k < LANES; k++) {
        xp[k] = xp[0];
        up[k] = up[0];
    }
    for (int64_t j = 0; j < c; j++)
        vx[j] = VGATHER_ROWS(xp, j);
    V m, s, logs;
    H(tile_stats)(vx, ve, c, &m, &s, &logs, J->kind != KIND_SOFTMAX);

    if (index_ce) {
        const fs_ce_args *a = J->ce;
        const double alpha = 1.0 - a->label_smoothing, beta = a->label_smoothing / (double)c;
        const double scale = a->grad_scale;
        const int smoothing = a->label_smoothing != 0.0;
        const T *w = (const T *)a->weight;
        T va[LANES];
        for (int k = 0; k < LANES; k++) {
            va[k] = 0;
            if (k >= nr || rs[k].done)
                continue;
            const double mk = (double)m[k];
            double dot = 0.0, tot = 0.0, ak;
            if (smoothing)
                H(block_dot)(xp[k], NULL, w, c, mk == -INFINITY ? 0.0 : mk, 0.0, 0.0, &dot, &tot);
            J->loss_rows[n0 + k] = H(ce_index_row)(alpha, beta, J->wsum, smoothing, a->z_loss, scale, mk,
                                                   (double)logs[k], xy[k], wy[k], dot, &ak);
            va[k] = (T)ak;
        }
        if (!J->y)
            return FS_OK;
        const V A = VLOAD(va) / s;
        const T bg = (T)(scale * beta);
        for (int64_t j = 0; j < c; j++) {
            V g = ve[j] * A;
            if (smoothing)
                g = g - bg * (w ? w[j] : (T)1);
            VSTORE(tmp, g);
            for (int k = 0; k < nr; k++)
                if (!rs[k].done)
                    yp[k][j] = tmp[k];
        }
        for (int k = 0; k < nr; k++)
            if (!rs[k].done)
                yp[k][yk[k]] = (T)((double)yp[k][yk[k]] - scale * alpha * wy[k]);
        return FS_OK;
    }

    int mode, has_c = 0;
    V A = VSPLAT(1) / s, AG = VSPLAT(0), BG = VSPLAT(0);
    switch (J->kind) {
    case KIND_SOFTMAX:
        mode = OUT_EXP;
        break;
    case KIND_LOG_SOFTMAX:
        mode = OUT_LOG;
        break;
    case KIND_LOGSUMEXP: {
        mode = OUT_NONE;
        VSTORE(tmp, m + logs);
        for (int k = 0; k < nr; k++) {
            rs[k].lse = (double)tmp[k];
            H(row_end)(J, n0 + k, xp[k], &rs[k]);
        }
        return FS_OK;
    }
    default: {
        /* per row: the loss and the gradient's coefficients */
        T va[LANES], vag[LANES], vbg[LANES];
        mode = OUT_NONE;
        for (int k = 0; k < LANES; k++) {
            va[k] = vag[k] = vbg[k] = 0;
            if (k >= nr || rs[k].done)
                continue;
            H(rowstat) st;
            H(stats_init)(&st);
            st.m = m[k];
            st.s = (double)s[k];
            st.logs = (double)logs[k];
            if (rs[k].op.want_dot)
                H(block_dot)(xp[k], up[k], rs[k].op.w, c, st.m == -INFINITY ? 0.0 : (double)st.m, rs[k].op.alpha,
                             rs[k].op.beta, &st.dot, &st.tot);
            rs[k].plan(&rs[k].op, &st, rs[k].ctx);
            mode = rs[k].op.mode;
            has_c = rs[k].op.has_c;
            va[k] = (T)rs[k].op.a;
            vag[k] = rs[k].op.alpha_g;
            vbg[k] = rs[k].op.beta_g;
        }
        A = VLOAD(va) / s;
        AG = VLOAD(vag);
        BG = VLOAD(vbg);
    }
    }
    if (mode != OUT_NONE) {
        const T *w = ce_kind ? (const T *)J->ce->weight : NULL;
        for (int64_t j = 0; j < c; j++) {
            V g;
            if (mode == OUT_LOG) {
                g = (vx[j] - m) - logs;
            } else if (has_c) {
                V cj = prob ? VGATHER_ROWS(up, j) * AG + BG : BG;
                if (w)
                    cj = cj * w[j];
                g = ve[j] * A - cj;
            } else {
                g = ve[j] * A;
            }
            VSTORE(tmp, g);
            for (int k = 0; k < nr; k++)
                if (!rs[k].done)
                    yp[k][j] = tmp[k];
        }
    }
    if (ce_kind)
        for (int k = 0; k < nr; k++)
            if (!rs[k].done)
                H(row_end)(J, n0 + k, xp[k], &rs[k]);
    return FS_OK;
}
