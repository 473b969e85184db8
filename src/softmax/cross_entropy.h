/* The softmax family, one dtype (see family.h): the fused cross-entropy, its row plan and
 * exported kernel; the index-target tiles of driver_tile.h and driver_dense.h take the same
 * loss and gradient, LANES rows at a time. */

typedef struct {
    const fs_ce_args *args;
    int prob, smoothing, want_grad;
    double alpha, beta, wsum; /* alpha = 1 - eps, beta = eps / C, wsum = sum of class weights */
    double xy, wy;            /* index targets: the target's logit and weight */
    double loss;
} H(ce_ctx);

/*
 * The z-loss of a row, z w lse^2 (PaLM's auxiliary loss, Chowdhery et al. 2022,
 * section 5), added to *loss, and its gradient's coefficient of p_j,
 * scale * 2 z w lse, added to *a.  Nothing when z = 0 (not even 0 * inf).
 */
static void H(add_z_loss)(double z, double w, double lse, double scale, double *loss, double *a)
{
    if (z != 0.0) {
        *loss += z * w * lse * lse;
        *a += scale * 2.0 * z * w * lse;
    }
}

/*
 * The loss of a row with an index target, and its gradient's coefficient of p_j (*a):
 *   loss = alpha w_y (lse - x_y) + beta sum_j w_j (lse - x_j),
 *   a = scale (alpha w_y + beta W) (+ the z-loss's), with lse = m + logs, and
 * dot = sum_j w_j (m - x_j) when smoothing.  One formula for every path: the row plan
 * below and the tiles of driver_tile.h (driver_dense.h has the case alpha = 1, beta = 0,
 * z = 0 in vectors: w_y ((m - x_y) + logs)).
 */
FS_INLINE double H(ce_index_row)(double alpha, double beta, double wsum, int smoothing, double z, double scale,
                                 double m, double logs, double xy, double wy, double dot, double *a)
{
    double loss = alpha * wy * ((m - xy) + logs);
    if (smoothing)
        loss += beta * (wsum * logs + dot);
    /* without smoothing only w_y enters (an infinite weight elsewhere must not give 0 * inf) */
    *a = scale * (alpha * wy + (smoothing ? beta * wsum : 0.0));
    H(add_z_loss)(z, wy, m + logs, scale, &loss, a);
    return loss;
}

/*
 * Per-row loss and gradient coefficients (see reference.py for the formulas):
 *   index targets: loss = (1-eps) w_y (lse - x_y) + (eps/C) sum_j w_j (lse - x_j),
 *                  g_j = s [(1-eps) w_y (p_j - [j = y]) + (eps/C)(W p_j - w_j)];
 *   probability targets (t' = (1-eps) t + eps/C): loss = sum_j w_j t'_j (lse - x_j),
 *                  g_j = s (T p_j - w_j t'_j), T = sum_j w_j t'_j.
 * Sums of c_j (lse - x_j) are formed as (sum_j c_j) log(s) + sum_j c_j (m - x_j), two
 * sums of terms of one sign: lse - m = log(s) >= 0 and m - x_j >= 0.
 */
static void H(plan_cross_entropy)(H(rowop) *op, const H(rowstat) *st, void *vctx)
{
    H(ce_ctx) *k = (H(ce_ctx) *)vctx;
    const double scale = k->args->grad_scale;
    const double logs = st->logs;
    if (k->prob) {
        k->loss = st->tot * logs + st->dot;
        op->a = scale * st->tot;
        H(add_z_loss)(k->args->z_loss, 1.0, (double)st->m + logs, scale, &k->loss, &op->a);
        op->alpha_g = (T)(scale * k->alpha);
        op->beta_g = (T)(scale * k->beta);
        op->has_c = 1;
    } else {
        k->loss = H(ce_index_row)(k->alpha, k->beta, k->wsum, k->smoothing, k->args->z_loss, scale,
                                  (double)st->m, logs, k->xy, k->wy, st->dot, &op->a);
        op->alpha_g = 0;
        op->beta_g = (T)(scale * k->beta);
        op->has_c = k->smoothing;
    }
    op->mode = k->want_grad ? OUT_EXP : OUT_NONE;
}

/*
 * The setup of row n (the driver's row_begin): the options into ce, what pass 1 and the
 * output pass need into op.  xc is the contiguous row, u its probability-target row (or
 * NULL), yr the output row in memory (class stride ys_cls), zeroed for an ignored row,
 * which is then *done.
 */
static int H(ce_row_begin)(const H(job) *J, int64_t n, const T *xc, const T *u, T *yr, int64_t ys_cls,
                           int want_out, H(rowop) *op, H(ce_ctx) *ce, int *done)
{
    const int64_t c = J->b->n_classes;
    const fs_ce_args *a = J->ce;
    ce->args = a;
    ce->prob = a->prob != NULL;
    ce->smoothing = a->label_smoothing != 0.0;
    ce->want_grad = want_out;
    ce->alpha = 1.0 - a->label_smoothing;
    ce->beta = a->label_smoothing / (double)c;
    ce->wsum = J->wsum;
    ce->loss = 0.0;
    op->w = (const T *)a->weight;
    op->may_store = 1;
    if (ce->prob) {
        op->u = u;
        op->want_dot = 1;
        op->alpha = ce->alpha;
        op->beta = ce->beta;
        return FS_OK;
    }
    const int64_t y = a->target[n];
    if (y == a->ignore_index) {
        J->loss_rows[n] = 0.0;
        if (yr)
            for (int64_t j = 0; j < c; j++)
                yr[j * ys_cls] = 0;
        *done = 1;
        return FS_OK;
    }
    if (y < 0 || y >= c)
        return FS_EINDEX;
    ce->xy = (double)xc[y]; /* before pass 1 may overwrite it (in place) */
    ce->wy = op->w ? (double)op->w[y] : 1.0;
    op->want_dot = ce->smoothing;
    /* the one-hot term of the gradient, added by the output pass */
    op->hole = y;
    op->hdelta = -a->grad_scale * ce->alpha * ce->wy;
    return FS_OK;
}

int K(cross_entropy)(const fs_batch *b, const T *x, const fs_strides *xs, const fs_ce_args *a,
                     double *loss_rows, double *loss_sum, T *grad, const fs_strides *gs)
{
    const int64_t nrows = b->n_outer * b->n_inner;
    double wsum = (double)b->n_classes;
    if (a->weight) {
        const T *w = (const T *)a->weight;
        wsum = 0.0;
        for (int64_t j = 0; j < b->n_classes; j++)
            wsum += w[j];
    }
    H(job) J = {.kind = KIND_CROSS_ENTROPY, .b = b, .x = x, .xs = xs, .y = grad, .ys = grad ? gs : xs,
                .ce = a, .u = (const T *)a->prob, .us = &a->prob_strides, .loss_rows = loss_rows, .wsum = wsum};
    int status = H(run)(&J);
    *loss_sum = status == FS_OK ? fs_sum_rows(loss_rows, nrows) : 0.0;
    return status;
}
