/* The softmax family, one dtype (see family.h): softmax, log_softmax and logsumexp, each
 * a plan (what a row's output pass does with its statistics) and an exported kernel. */

static void H(plan_softmax)(H(rowop) *op, const H(rowstat) *st, void *ctx)
{
    (void)st;
    (void)ctx;
    op->mode = OUT_EXP;
    op->a = 1.0;
    op->has_c = 0;
}

static void H(plan_log_softmax)(H(rowop) *op, const H(rowstat) *st, void *ctx)
{
    (void)st;
    (void)ctx;
    op->mode = OUT_LOG;
}

static void H(plan_logsumexp)(H(rowop) *op, const H(rowstat) *st, void *ctx)
{
    op->mode = OUT_NONE;
    *(double *)ctx = (double)st->m + st->logs;
}


int K(softmax)(const fs_batch *b, const T *x, const fs_strides *xs, T *y, const fs_strides *ys)
{
    H(job) J = {.kind = KIND_SOFTMAX, .b = b, .x = x, .xs = xs, .y = y, .ys = ys};
    return H(run)(&J);
}

int K(log_softmax)(const fs_batch *b, const T *x, const fs_strides *xs, T *y, const fs_strides *ys)
{
    H(job) J = {.kind = KIND_LOG_SOFTMAX, .b = b, .x = x, .xs = xs, .y = y, .ys = ys};
    return H(run)(&J);
}

int K(logsumexp)(const fs_batch *b, const T *x, const fs_strides *xs, T *out)
{
    H(job) J = {.kind = KIND_LOGSUMEXP, .b = b, .x = x, .xs = xs, .ys = xs, .lse = out};
    return H(run)(&J);
}
