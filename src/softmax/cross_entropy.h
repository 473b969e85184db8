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
        k->loss = k->alpha * k->wy * (((double)st->m - k->xy) + logs);
        if (k->smoothing)
            k->loss += k->beta * (k->wsum * logs + st->dot);
        /* without smoothing only w_y enters (an infinite weight elsewhere must not give 0 * inf) */
        op->a = scale * (k->alpha * k->wy + (k->smoothing ? k->beta * k->wsum : 0.0));
        H(add_z_loss)(k->args->z_loss, k->wy, (double)st->m + logs, scale, &k->loss, &op->a);
        op->alpha_g = 0;
        op->beta_g = (T)(scale * k->beta);
        op->has_c = k->smoothing;
    }
    op->mode = k->want_grad ? OUT_EXP : OUT_NONE;
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
    H(job) J = {KIND_CROSS_ENTROPY, b, x, xs, grad, grad ? gs : xs, NULL, a, loss_rows, wsum, 0};
    int status = H(run)(&J);
    *loss_sum = status == FS_OK ? fs_sum_rows(loss_rows, nrows) : 0.0;
    return status;
}
