/*
 * Kernels without softmax statistics, for one dtype and one instruction set:
 * the logistic sigmoid, the fused binary cross-entropy with logits, and the
 * vector-Jacobian products of softmax and log-softmax.
 *
 * Included by isa/kernels_isa.h once per dtype, after softmax/family.h, with the
 * same macros (T, V, LANES, VLOAD, ..., H, K).
 *
 * Layout is that of the softmax kernels: rows of n_classes elements at
 * (outer, inner) strides.  Each row is processed from contiguous memory: a row
 * whose class stride is not 1 is gathered into a per-thread scratch row (and
 * its outputs scattered back).  How rows are cut into units of work: rw_plan.
 */

#define CHUNK 8192

/* |x| (NaN stays NaN) */
FS_INLINE V H(vabs)(V x) { return VSELECT(x < 0, -x, x); }

/*
 * e = exp(-|x|) and the two sigmoids from it, each without cancellation:
 * sigmoid(|x|) = 1 / (1 + e), sigmoid(-|x|) = e / (1 + e).
 * *pos = sigmoid(x), *neg = sigmoid(-x).  NaN stays NaN.  With flush, e below
 * the normal range (|x| > 87 in float) is 0 (the faster exp of the softmax
 * kernels; for the loss, where such terms are far below its rounding).
 */
FS_INLINE V H(sigmoids)(V x, V *pos, V *neg, const int flush)
{
    V e = flush ? VEXPN(-H(vabs)(x)) : VEXP(-H(vabs)(x));
    V big = (T)1 / ((T)1 + e), small = e * big;
    *pos = VSELECT(x >= 0, big, small);
    *neg = VSELECT(x >= 0, small, big);
    return e;
}

/*
 * log1p(e) for e in [0, 1], without forming 1 + e (whose rounding would lose
 * the digits of a small e): up to sqrt(2) - 1, e is already the reduced
 * argument f of log's core (exponent 0); above it, 1 + e = 2 (1 + f) with
 * f = (e - 1) / 2 in (sqrt(1/2) - 1, 0] (exponent 1).  No special values
 * reach it (e = exp(-|x|)), except NaN, which stays NaN.
 */
FS_INLINE V H(log1p_unit)(V e)
{
    const T SQRT2M1 = (T)0.41421356237309504880;
    const VI above = e > SQRT2M1;
    V f = VSELECT(above, (e - (T)1) * (T)0.5, e);
    return VLOGCORE(f, VSELECT(above, VSPLAT(1), VSPLAT(0)));
}

/* y = sigmoid(x) over n contiguous elements */
static void H(sigmoid_run)(const T *x, T *y, int64_t n)
{
    int64_t j = 0;
    V pos, neg;
    for (; j + LANES <= n; j += LANES) {
        H(sigmoids)(VLOAD(x + j), &pos, &neg, 0);
        VSTORE(y + j, pos);
    }
    if (j < n) {
        H(sigmoids)(H(load_tail)(x + j, n - j, 0), &pos, &neg, 0);
        H(store_tail)(y + j, n - j, pos);
    }
}

/*
 * Binary cross-entropy with logits over n contiguous elements, torch's
 * semantics: with lw = 1 + (pw - 1) t,
 *     loss = w [(1 - t) x + lw (log1p(exp(-|x|)) + max(-x, 0))]
 * computed as w [(x >= 0 ? (1 - t) x : pw t |x|) + lw log1p(exp(-|x|))], the
 * same value written as a sum of two terms >= 0 (for 0 <= t <= 1, pw >= 0),
 * which does not cancel for large |x|; and the gradient
 *     grad = scale w (lw sigmoid(x) - pw t) = scale w [(1 - t) sigmoid(x) - pw t sigmoid(-x)].
 * w, pw, loss, grad may be NULL (w = 1, pw = 1, no output).  Returns the sum
 * of the losses (in double).
 */
FS_INLINE V H(bce_vec)(V x, V t, V w, V pw, T scale, V *grad, const int has_w, const int has_pw)
{
    V pos, neg;
    V e = H(sigmoids)(x, &pos, &neg, 1);
    V one_t = (T)1 - t, pt = pw * t;
    V lw = has_pw ? (T)1 + (pw - (T)1) * t : VSPLAT(1);
    V g = one_t * pos - pt * neg;
    if (has_pw)
        g += lw - lw; /* NaN where lw is infinite, as torch's lw sigmoid(x) - pw t = inf - inf */
    *grad = g * (has_w ? w * scale : VSPLAT(scale));
    V log1p_e = H(log1p_unit)(e);
    V l = VSELECT(x >= 0, one_t * x, pt * -x) + lw * log1p_e;
    if (has_w) {
        /* the unweighted loss of a finite x beyond the float range (pw t |x| with pw > 1) can
         * come back in range times w < 1: then w multiplies the factors before |x| does */
        const V inf = VSPLAT(INFINITY);
        VI over = (l == inf) & (x > -inf) & (x < inf);
        l *= w;
        l = VSELECT(over, VSELECT(x >= 0, (w * one_t) * x, (w * pt) * -x) + (w * lw) * log1p_e, l);
    }
    /* torch's form gives -inf + inf = NaN at x = -inf (whatever t is): so do we */
    return VSELECT(x == -(T)INFINITY, VSPLAT(NAN), l);
}

FS_INLINE double H(bce_body)(const T *x, const T *t, const T *w, const T *pw, T *loss, T *grad, int64_t n,
                             T scale, const int has_w, const int has_pw, const int want_loss, const int want_grad)
{
    /* each vector of losses is widened into the double sum at once: a float sum of a few
     * element losses near the float range would overflow where their mean does not */
    vf64 acc = splat_f64(0.0);
    V one = VSPLAT(1), g;
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES) {
        V l = H(bce_vec)(VLOAD(x + j), VLOAD(t + j), has_w ? VLOAD(w + j) : one, has_pw ? VLOAD(pw + j) : one,
                         scale, &g, has_w, has_pw);
        if (want_grad)
            VSTORE(grad + j, g);
        if (want_loss)
            VSTORE(loss + j, l);
        acc += VWIDEN(l);
    }
    double s = hsum_f64(acc);
    if (j < n) {
        const int64_t k = n - j;
        T tmp[LANES];
        V l = H(bce_vec)(H(load_tail)(x + j, k, 0), H(load_tail)(t + j, k, 0),
                         has_w ? H(load_tail)(w + j, k, 0) : one, has_pw ? H(load_tail)(pw + j, k, 0) : one, scale,
                         &g, has_w, has_pw);
        if (want_grad)
            H(store_tail)(grad + j, k, g);
        if (want_loss)
            H(store_tail)(loss + j, k, l);
        VSTORE(tmp, l);
        for (int64_t q = 0; q < k; q++)
            s += (double)tmp[q];
    }
    return s;
}

static double H(bce_run)(const T *x, const T *t, const T *w, const T *pw, T *loss, T *grad, int64_t n, T scale)
{
#if FS_COMPACT /* one body, its options tested in the loop (see isa/baseline.c) */
    return H(bce_body)(x, t, w, pw, loss, grad, n, scale, w != NULL, pw != NULL, loss != NULL, grad != NULL);
#else
#define BCE_CASE(hw, hp)                                                                                     \
    if (loss && grad)                                                                                        \
        return H(bce_body)(x, t, w, pw, loss, grad, n, scale, hw, hp, 1, 1);                                 \
    if (loss)                                                                                                \
        return H(bce_body)(x, t, w, pw, loss, grad, n, scale, hw, hp, 1, 0);                                 \
    if (grad)                                                                                                \
        return H(bce_body)(x, t, w, pw, loss, grad, n, scale, hw, hp, 0, 1);                                 \
    return H(bce_body)(x, t, w, pw, loss, grad, n, scale, hw, hp, 0, 0);
    if (w && pw) {
        BCE_CASE(1, 1)
    } else if (w) {
        BCE_CASE(1, 0)
    } else if (pw) {
        BCE_CASE(0, 1)
    } else {
        BCE_CASE(0, 0)
    }
#undef BCE_CASE
#endif
}

/*
 * The reduction of the backward kernels, in double: sum_j a_j b_j (b != NULL)
 * or sum_j a_j.  Products are rounded to T, and each vector of them is widened
 * into the double sum at once (a float sum of a few terms near the float range
 * would overflow where the whole sum does not).
 */
static double H(bw_sum)(const T *a, const T *b, int64_t n)
{
    vf64 acc = splat_f64(0.0);
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        acc += VWIDEN(b ? VLOAD(a + j) * VLOAD(b + j) : VLOAD(a + j));
    double s = hsum_f64(acc);
    for (; j < n; j++)
        s += b ? (double)(a[j] * b[j]) : (double)a[j];
    return s;
}

/* softmax's VJP: gx_j = p_j (g_j - sum_k p_k g_k).  gx may be p or g (in place). */
static void H(softmax_bw_run)(const T *p, const T *g, T *gx, int64_t n)
{
    const T dot = (T)H(bw_sum)(p, g, n);
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        VSTORE(gx + j, VLOAD(p + j) * (VLOAD(g + j) - dot));
    for (; j < n; j++)
        gx[j] = p[j] * (g[j] - dot);
}

/* log-softmax's VJP: gx_j = g_j - exp(lp_j) sum_k g_k.  gx may be lp or g. */
static void H(log_softmax_bw_run)(const T *lp, const T *g, T *gx, int64_t n)
{
    const T sum = (T)H(bw_sum)(g, NULL, n);
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        VSTORE(gx + j, VLOAD(g + j) - VEXP(VLOAD(lp + j)) * sum);
    if (j < n)
        H(store_tail)(gx + j, n - j, H(load_tail)(g + j, n - j, 0) - VEXP(H(load_tail)(lp + j, n - j, 0)) * sum);
}

/* ---------------------------------------------------------------- batch driver */

#define RW_IN 4  /* inputs: x | x, target, weight, pos_weight | probs or log-probs, grad_output */
#define RW_OUT 2 /* outputs: y | loss, grad | gx */

typedef struct H(rwjob_s) H(rwjob);
/* An op of the family on a unit of n elements (a chunk of a row, or a group of rows): its
 * inputs and outputs by position (see RW_IN, RW_OUT); returns the unit's loss sum (BCE). */
typedef double (*H(rw_fn))(const H(rwjob) *J, const T *const *in, T *const *out, int64_t n);

struct H(rwjob_s) {
    H(rw_fn) unit;
    int elementwise;  /* rows may be cut into chunks and grouped (sigmoid, BCE); else one whole row per unit */
    const fs_batch *b;
    const T *in[RW_IN];
    fs_strides is[RW_IN]; /* in[3] (pos_weight) is per class: only is[3].cls is used */
    T *out[RW_OUT];
    fs_strides os[RW_OUT];
    T scale;
    double *sums; /* BCE: the loss sum of each row, or of each chunk of a row (see rw_plan) */
};

/* Rows whose elements follow each other in memory (class stride 1, inner stride C), or no array. */
static int H(rows_contiguous)(const void *p, const fs_strides *s, int64_t c)
{
    return !p || (s->cls == 1 && s->inner == c);
}

/*
 * How a batch is cut into units of work (spread over the threads).  The
 * elementwise kernels (sigmoid, BCE) cut a long row into chunks of CHUNK
 * elements, and join short rows that follow each other in memory into groups
 * of whole rows of about CHUNK elements, processed in one call (pos_weight
 * tiled over the group's rows), so that short rows pay no per-row overhead.
 * The backward kernels take one whole row per unit.
 */
typedef struct {
    int grouped;        /* units are groups of rows of one outer index (g) */
    fs_row_groups g;
    int64_t len;        /* not grouped: elements per chunk of a row */
    int64_t nchunks;    /* not grouped: chunks per row */
    int64_t nunits;
} H(rwplan);

static H(rwplan) H(rw_plan)(const H(rwjob) *J)
{
    const int64_t c = J->b->n_classes, n_inner = J->b->n_inner, nrows = J->b->n_outer * n_inner;
    const int elementwise = J->elementwise;
    H(rwplan) P;
    P.grouped = elementwise && c > 0 && 2 * c <= CHUNK && n_inner > 1;
    for (int k = 0; k < 3; k++)
        P.grouped &= H(rows_contiguous)(J->in[k], &J->is[k], c);
    for (int k = 0; k < RW_OUT; k++)
        P.grouped &= H(rows_contiguous)(J->out[k], &J->os[k], c);
    P.g = fs_row_groups_of(J->b, P.grouped ? CHUNK / c : 1);
    P.len = elementwise && c > CHUNK ? CHUNK : c > 0 ? c : 1;
    P.nchunks = P.grouped ? 1 : (c + P.len - 1) / P.len;
    P.nunits = P.grouped ? P.g.nunits : nrows * P.nchunks;
    return P;
}

/*
 * Unit u.  buf: RW_IN + RW_OUT scratch rows of P->len elements (or NULL when
 * all class strides are 1); pwt: pos_weight tiled over P->g.rows_per rows
 * (grouped BCE), else NULL.
 */
static void H(rw_unit)(const H(rwjob) *J, const H(rwplan) *P, int64_t u, T *buf, const T *pwt)
{
    const int64_t c = J->b->n_classes, n_inner = J->b->n_inner;
    int64_t o, i, j0, n, sum_at = u; /* sum_at: where a BCE unit's loss sum goes (a group: its first row) */
    if (P->grouped) {
        sum_at = fs_row_group(&P->g, u, &o, &i, &n);
        n *= c;
        j0 = 0;
    } else {
        const int64_t row = u / P->nchunks;
        o = row / n_inner;
        i = row % n_inner;
        j0 = (u % P->nchunks) * P->len;
        n = c - j0 < P->len ? c - j0 : P->len;
    }
    const T *in[RW_IN];
    T *out[RW_OUT], *dst[RW_OUT];
    for (int k = 0; k < RW_IN; k++) {
        const fs_strides *s = &J->is[k];
        if (!J->in[k]) {
            in[k] = NULL;
        } else if (k == 3) {
            in[k] = pwt ? pwt : J->in[k] + j0; /* pos_weight: contiguous per class */
        } else {
            const T *src = J->in[k] + o * s->outer + i * s->inner + j0 * s->cls;
            if (s->cls == 1) {
                in[k] = src;
            } else {
                H(gather)(buf + k * P->len, src, n, s->cls);
                in[k] = buf + k * P->len;
            }
        }
    }
    for (int k = 0; k < RW_OUT; k++) {
        const fs_strides *s = &J->os[k];
        dst[k] = J->out[k] ? J->out[k] + o * s->outer + i * s->inner + j0 * s->cls : NULL;
        out[k] = dst[k] && s->cls != 1 ? buf + (RW_IN + k) * P->len : dst[k];
    }
    const double sum = J->unit(J, in, out, n);
    if (J->sums)
        J->sums[sum_at] = sum;
    for (int k = 0; k < RW_OUT; k++)
        if (dst[k] && out[k] != dst[k])
            H(scatter)(dst[k], J->os[k].cls, out[k], n);
}

typedef struct {
    const H(rwjob) *J;
    const H(rwplan) *P;
    int need_buf, tile_pw;
} H(rwrun);

static int H(rw_units)(fs_par *p, void *ctx)
{
    const H(rwrun) *R = (const H(rwrun) *)ctx;
    const H(rwjob) *J = R->J;
    const H(rwplan) *P = R->P;
    const int64_t c = J->b->n_classes;
    T *buf = R->need_buf ? (T *)malloc((size_t)((RW_IN + RW_OUT) * P->len) * sizeof(T)) : NULL;
    T *pwt = R->tile_pw ? (T *)malloc((size_t)(P->g.rows_per * c) * sizeof(T)) : NULL;
    int status = (R->need_buf && !buf) || (R->tile_pw && !pwt) ? FS_ENOMEM : FS_OK;
    if (pwt)
        for (int64_t r = 0; r < P->g.rows_per; r++)
            memcpy(pwt + r * c, J->in[3], (size_t)c * sizeof(T));
    for (int64_t u; status == FS_OK && (u = fs_par_next(p)) >= 0;)
        H(rw_unit)(J, P, u, buf, pwt);
    free(buf);
    free(pwt);
    return status;
}

static int H(rw_run)(const H(rwjob) *J, const H(rwplan) *P)
{
    const int64_t c = J->b->n_classes, nrows = J->b->n_outer * J->b->n_inner;
    if (nrows <= 0 || c <= 0)
        return FS_OK;
    H(rwrun) R = {J, P, 0, P->grouped && J->in[3]};
    for (int k = 0; k < 3; k++)
        R.need_buf |= J->in[k] && J->is[k].cls != 1;
    for (int k = 0; k < RW_OUT; k++)
        R.need_buf |= J->out[k] && J->os[k].cls != 1;
    return fs_batch_parallel(nrows * c, P->nunits, H(rw_units), &R);
}

/* The ops on a unit (the kernels above, by the positions of their inputs and outputs). */
static double H(rw_sigmoid)(const H(rwjob) *J, const T *const *in, T *const *out, int64_t n)
{
    (void)J;
    H(sigmoid_run)(in[0], out[0], n);
    return 0.0;
}
static double H(rw_bce)(const H(rwjob) *J, const T *const *in, T *const *out, int64_t n)
{
    return H(bce_run)(in[0], in[1], in[2], in[3], out[0], out[1], n, J->scale);
}
static double H(rw_softmax_bw)(const H(rwjob) *J, const T *const *in, T *const *out, int64_t n)
{
    (void)J;
    H(softmax_bw_run)(in[0], in[1], out[0], n);
    return 0.0;
}
static double H(rw_log_softmax_bw)(const H(rwjob) *J, const T *const *in, T *const *out, int64_t n)
{
    (void)J;
    H(log_softmax_bw_run)(in[0], in[1], out[0], n);
    return 0.0;
}

static H(rwjob) H(rwjob_init)(H(rw_fn) unit, int elementwise, const fs_batch *b)
{
    H(rwjob) J;
    memset(&J, 0, sizeof J);
    J.unit = unit;
    J.elementwise = elementwise;
    J.b = b;
    return J;
}

int K(sigmoid)(const fs_batch *b, const T *x, const fs_strides *xs, T *y, const fs_strides *ys)
{
    H(rwjob) J = H(rwjob_init)(H(rw_sigmoid), 1, b);
    J.in[0] = x;
    J.is[0] = *xs;
    J.out[0] = y;
    J.os[0] = *ys;
    const H(rwplan) P = H(rw_plan)(&J);
    return H(rw_run)(&J, &P);
}

int K(bce_logits)(const fs_batch *b, const T *x, const fs_strides *xs, const fs_bce_args *a, double *row_sums,
                  double *loss_sum, T *loss, const fs_strides *ls, T *grad, const fs_strides *gs)
{
    const int64_t nrows = b->n_outer * b->n_inner;
    H(rwjob) J = H(rwjob_init)(H(rw_bce), 1, b);
    J.in[0] = x;
    J.is[0] = *xs;
    J.in[1] = (const T *)a->target;
    J.is[1] = a->target_strides;
    J.in[2] = (const T *)a->weight;
    J.is[2] = a->weight_strides;
    J.in[3] = (const T *)a->pos_weight;
    J.out[0] = loss;
    J.os[0] = loss ? *ls : *xs;
    J.out[1] = grad;
    J.os[1] = grad ? *gs : *xs;
    J.scale = (T)a->grad_scale;
    const H(rwplan) P = H(rw_plan)(&J);
    /* unit sums: at each group's first row (0 at its other rows), per row, or per chunk of a row */
    for (int64_t n = 0; n < nrows; n++)
        row_sums[n] = 0.0;
    double *sums = P.nchunks > 1 ? (double *)malloc((size_t)(nrows * P.nchunks) * sizeof(double)) : row_sums;
    if (!sums)
        return FS_ENOMEM;
    J.sums = sums;
    int status = H(rw_run)(&J, &P);
    /* per row, then over rows, in a fixed order: the same result for any thread count */
    if (sums != row_sums) {
        for (int64_t n = 0; n < nrows; n++) {
            double s = 0.0;
            for (int64_t k = 0; k < P.nchunks; k++)
                s += sums[n * P.nchunks + k];
            row_sums[n] = s;
        }
        free(sums);
    }
    *loss_sum = fs_sum_rows(row_sums, nrows);
    return status;
}

static int H(backward)(H(rw_fn) unit, const fs_batch *b, const T *p, const fs_strides *ps, const T *g,
                       const fs_strides *gs, T *gx, const fs_strides *gxs)
{
    H(rwjob) J = H(rwjob_init)(unit, 0, b);
    J.in[0] = p;
    J.is[0] = *ps;
    J.in[1] = g;
    J.is[1] = *gs;
    J.out[0] = gx;
    J.os[0] = *gxs;
    const H(rwplan) P = H(rw_plan)(&J);
    return H(rw_run)(&J, &P);
}

int K(softmax_backward)(const fs_batch *b, const T *p, const fs_strides *ps, const T *g, const fs_strides *gs, T *gx,
                        const fs_strides *gxs)
{
    return H(backward)(H(rw_softmax_bw), b, p, ps, g, gs, gx, gxs);
}

int K(log_softmax_backward)(const fs_batch *b, const T *lp, const fs_strides *lps, const T *g, const fs_strides *gs,
                            T *gx, const fs_strides *gxs)
{
    return H(backward)(H(rw_log_softmax_bw), b, lp, lps, g, gs, gx, gxs);
}

#undef CHUNK
#undef RW_IN
#undef RW_OUT
