/* The softmax family, one dtype (see family.h): the fused cross-entropy, its loss and
 * gradient, its row plan and hooks, and its exported kernel (its tiles: cross_entropy_tiles.h). */

typedef struct {
    const fs_ce_args *args;
    int prob, smoothing, want_grad;
    double alpha, beta, wsum; /* alpha = 1 - eps, beta = eps / C, wsum = sum of class weights */
    double xy, wy;            /* index targets: the target's logit and weight */
    double loss;
} H(ce_ctx);
_Static_assert(sizeof(H(ce_ctx)) <= sizeof(((H(rowstate) *)0)->mem), "rowstate.mem holds the ce_ctx");

/* LANES int64, LANES doubles: the targets and the losses of a tile of LANES rows (two registers'
 * worth where T is float: GCC splits them) */
typedef int64_t H(vq) __attribute__((vector_size(LANES * 8)));
typedef double H(vw) __attribute__((vector_size(LANES * 8)));

/*
 * The loss of a row with an index target, and its gradient's coefficient of p_j (*a):
 *   loss = alpha w_y (lse - x_y) + beta sum_j w_j (lse - x_j) (+ z w_y lse^2),
 *   a = scale (alpha w_y + beta W) (+ scale 2 z w_y lse), with lse = m + logs, and
 * dot = sum_j w_j (m - x_j) when smoothing.  The z-loss is PaLM's auxiliary loss
 * (Chowdhery et al. 2022, section 5); nothing is added when z = 0 (not even 0 * inf).
 * One formula for every path, lane-generic: D is double (the row plan below, the
 * gathered tiles) or LANES doubles (the dense tiles' losses, cross_entropy_tiles.h).
 */
#define CE_Z_LOSS(z, w, lse, scale, loss, a)                                                            \
    do {                                                                                                \
        if ((z) != 0.0) {                                                                               \
            *(loss) += (z) * (w) * (lse) * (lse);                                                       \
            *(a) += (scale) * 2.0 * (z) * (w) * (lse);                                                  \
        }                                                                                               \
    } while (0)
#define CE_INDEX_ROW(name, D)                                                                           \
    FS_INLINE D H(name)(double alpha, double beta, double wsum, int smoothing, double z, double scale, D m, \
                        D logs, D xy, D wy, D dot, D *a)                                                \
    {                                                                                                   \
        D loss = alpha * wy * ((m - xy) + logs);                                                        \
        if (smoothing)                                                                                  \
            loss += beta * (wsum * logs + dot);                                                         \
        /* without smoothing only w_y enters (an infinite weight elsewhere must not give 0 * inf) */   \
        *a = scale * (alpha * wy + (smoothing ? beta * wsum : 0.0));                                    \
        CE_Z_LOSS(z, wy, m + logs, scale, &loss, a);                                                    \
        return loss;                                                                                    \
    }
CE_INDEX_ROW(ce_index_row, double)
CE_INDEX_ROW(ce_index_rows, H(vw))

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
        CE_Z_LOSS(k->args->z_loss, 1.0, (double)st->m + logs, scale, &k->loss, &op->a);
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
 * The setup of row n (the op's begin hook, see row_begin): the options into its ctx, what
 * pass 1 and the output pass need into rs->op.  An ignored row gets its zeros here (yr, with
 * class stride ys_cls, when not NULL) and is done.
 */
static int H(ce_row_begin)(const H(job) *J, int64_t n, const T *xc, const T *u, T *yr, int64_t ys_cls,
                           int want_out, H(rowstate) *rs)
{
    const int64_t c = J->b->n_classes;
    const fs_ce_args *a = J->ce;
    H(ce_ctx) *ce = (H(ce_ctx) *)rs->ctx;
    H(rowop) *op = &rs->op;
    ce->args = a;
    ce->prob = a->prob != NULL;
    ce->smoothing = a->label_smoothing != 0.0;
    ce->want_grad = want_out;
    ce->alpha = 1.0 - a->label_smoothing;
    ce->beta = a->label_smoothing / (double)c;
    ce->wsum = J->wsum;
    ce->loss = 0.0;
    op->w = (const T *)a->weight;
    if (ce->prob) {
        op->u = u;
        op->want_dot = 1;
        op->alpha = ce->alpha;
        op->beta = ce->beta;
        return FS_OK;
    }
    const int64_t y = a->target[n];
    if (y == a->ignore_index) {
        J->loss_rows[n - J->loss_base] = 0.0;
        if (yr)
            for (int64_t j = 0; j < c; j++)
                yr[j * ys_cls] = 0;
        rs->done = 1;
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

static void H(ce_row_end)(const H(job) *J, int64_t n, const T *xc, const H(rowstate) *rs)
{
    (void)xc;
    J->loss_rows[n - J->loss_base] = ((const H(ce_ctx) *)rs->ctx)->loss;
}

#include "softmax/cross_entropy_tiles.h"

/* A row of a group (driver_group.h) with an index target and no label smoothing: the setup,
 * plan and finish of the hooks above in one function (their calls and the per-row state cost a
 * third of a 65-class row); the same formulas, so the same bits. */
static int H(ce_group_row_ok)(const H(job) *J)
{
    return !J->ce->prob && J->ce->label_smoothing == 0.0;
}

static int H(ce_group_row)(const H(job) *J, int64_t n, const T *x, T *y, const T *e, T m, double s, double logs)
{
    const fs_ce_args *a = J->ce;
    const int64_t c = J->b->n_classes, t = a->target[n];
    if (t == a->ignore_index) {
        J->loss_rows[n - J->loss_base] = 0.0;
        if (y)
            memset(y, 0, (size_t)c * sizeof(T));
        return FS_OK;
    }
    if (t < 0 || t >= c)
        return FS_EINDEX;
    const double scale = a->grad_scale, wy = a->weight ? (double)((const T *)a->weight)[t] : 1.0;
    double coef;
    J->loss_rows[n - J->loss_base] = H(ce_index_row)(1.0, 0.0, J->wsum, 0, a->z_loss, scale, (double)m, logs,
                                                     (double)x[t], wy, 0.0, &coef);
    if (!y)
        return FS_OK;
    if (s != s) { /* NaN row, as in PyTorch */
        for (int64_t j = 0; j < c; j++)
            y[j] = (T)NAN;
    } else if (J->nt) {
        H(output_range)(e, y, NULL, NULL, c, m, coef / s, 0, 0, 1, 0, 1, t, -scale * wy);
    } else {
        H(group_scale)(e, y, c, coef / s, t, -scale * wy);
    }
    return FS_OK;
}

/* Rows of at most this many classes sum their losses block by block when the caller wants the
 * sum only; longer rows keep a per-row array, whose size is then at most 1/256 of the logits',
 * and their runs need not be whole blocks of ROWS_BLOCK rows. */
#define CE_BLOCK_SUM_C 256
/* Batches of fewer rows keep the per-row array too (at most 128 KB, in cache): block sums make
 * each run a whole block, and 4096 rows made four runs, so that a helper which started late
 * (its core busy) held one of them while the caller, done with the rest, waited for it; at
 * 4096x100 on two threads such calls took 1.2x longer than with runs of 64 rows.  With 16
 * blocks or more, a late helper holds at most a sixteenth of the work. */
#define CE_BLOCK_SUM_MIN_ROWS (16 * ROWS_BLOCK)

static const H(op) H(op_cross_entropy) = {.out = OUT_EXP,
                                          .plan = H(plan_cross_entropy),
                                          .begin = H(ce_row_begin),
                                          .end = H(ce_row_end),
                                          .tile = H(ce_tiles),
                                          .dense = H(ce_dense),
                                          .dense_ok = H(ce_dense_ok),
                                          .dense_clean = H(ce_dense_clean),
                                          .dense_end = H(ce_dense_losses),
                                          .group_row_ok = H(ce_group_row_ok),
                                          .group_row = H(ce_group_row)};

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
    H(job) J = {.op = &H(op_cross_entropy), .b = b, .x = x, .xs = xs, .y = grad, .ys = grad ? gs : xs,
                .ce = a, .u = (const T *)a->prob, .us = &a->prob_strides, .loss_rows = loss_rows, .wsum = wsum};
    /* no loss_rows (the caller wants the sum only): block sums where the rows are short (see
     * H(block_rows_begin)), else an array of our own */
    double *own = NULL;
    const int64_t nb = (nrows + ROWS_BLOCK - 1) / ROWS_BLOCK;
    *loss_sum = 0.0;
    if (nrows <= 0)
        return FS_OK;
    if (!loss_rows) {
        const int blocks = b->n_classes <= CE_BLOCK_SUM_C && nrows >= CE_BLOCK_SUM_MIN_ROWS &&
                           (H(tile_ok)(&J) || H(group_ok)(&J));
        own = (double *)malloc((size_t)(blocks ? nb : nrows) * sizeof(double));
        if (!own)
            return FS_ENOMEM;
        if (blocks)
            J.block_sums = own;
        else
            J.loss_rows = own;
    }
    const int status = H(run)(&J);
    if (status == FS_OK && J.block_sums) {
        double total = 0.0; /* fs_sum_rows' order: its blocks' sums, in block order */
        for (int64_t k = 0; k < nb; k++)
            total += J.block_sums[k];
        *loss_sum = total;
    } else if (status == FS_OK) {
        *loss_sum = fs_sum_rows(J.loss_rows, nrows);
    }
    free(own);
    return status;
}
