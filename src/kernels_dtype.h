/*
 * Row kernels and batch drivers for one dtype and one instruction set.
 *
 * Included by kernels_isa.h once per dtype with these macros defined:
 *   T       float or double          SUF     f32 or f64
 *   V       vf32 or vf64             VI      matching integer vector (comparison result)
 *   LANES   lanes per vector         VLOAD, VSTORE, VSPLAT, VMAX, VEXP
 *   ISA     the instruction-set suffix of the exported names (baseline, avx2, ...)
 *
 * Accumulation precision (what keeps the accuracy bars of the test suite):
 *   - the sum of exponentials is accumulated in T inside sub-blocks of at
 *     most 16 additions per lane, then in double across sub-blocks, so its
 *     relative error stays below ~20 ulp of float even for 10^7 classes;
 *   - loss terms, the label-smoothing and probability-target dot products and
 *     the batch sum are computed in double;
 *   - outputs are rounded once to T at the end.
 *
 * One row is read from memory once to get its max and its sum of
 * exponentials: it is processed in blocks of BLOCK elements (small enough to
 * stay in L1), each block read twice, first for its max and then, after the
 * running sum is rescaled to the new max (online softmax), for its sum.  The
 * output pass then reads the row again (from cache for rows up to L2 size)
 * and writes each output once.
 */

#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define CAT3(a, b, c) CAT(CAT(a, b), c)
/* internal helper of this dtype, e.g. row_stats_f32 */
#define H(name) CAT(name, SUF)
/* exported kernel of this dtype and ISA, e.g. fs_softmax_f32_avx2 */
#define K(name) CAT3(CAT(fs, name), SUF, ISA)

#define BLOCK 2048
#define UNROLL 4
#define SUB_ITERS 16 /* iterations of the UNROLL-vector loop before flushing sums to double */

/* Copy the last n < LANES elements into a full vector, the rest set to fill. */
FS_INLINE V H(load_tail)(const T *p, int64_t n, T fill)
{
    T tmp[LANES];
    for (int k = 0; k < LANES; k++)
        tmp[k] = k < n ? p[k] : fill;
    return VLOAD(tmp);
}

FS_INLINE void H(store_tail)(T *p, int64_t n, V v)
{
    T tmp[LANES];
    VSTORE(tmp, v);
    for (int64_t k = 0; k < n; k++)
        p[k] = tmp[k];
}

/* Largest non-NaN element of x[0..n) (-inf if none). */
static T H(block_max)(const T *x, int64_t n)
{
    const V ninf = VSPLAT(-INFINITY);
    V a0 = ninf, a1 = ninf, a2 = ninf, a3 = ninf;
    int64_t j = 0;
    /* VMAX(v, acc) keeps acc when v is NaN, so NaN never enters the max */
    for (; j + UNROLL * LANES <= n; j += UNROLL * LANES) {
        a0 = VMAX(VLOAD(x + j), a0);
        a1 = VMAX(VLOAD(x + j + LANES), a1);
        a2 = VMAX(VLOAD(x + j + 2 * LANES), a2);
        a3 = VMAX(VLOAD(x + j + 3 * LANES), a3);
    }
    for (; j + LANES <= n; j += LANES)
        a0 = VMAX(VLOAD(x + j), a0);
    if (j < n)
        a1 = VMAX(H(load_tail)(x + j, n - j, -INFINITY), a1);
    a0 = VMAX(VMAX(a0, a1), VMAX(a2, a3));
    T m = -INFINITY;
    for (int k = 0; k < LANES; k++)
        if (a0[k] > m)
            m = a0[k];
    return m;
}

static int H(block_has_nan)(const T *x, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        if (x[j] != x[j])
            return 1;
    return 0;
}

FS_INLINE double H(hsum)(V v)
{
    double s = 0.0;
    for (int k = 0; k < LANES; k++)
        s += (double)v[k];
    return s;
}

/* sum_j exp(x[j] - m) over x[0..n), see the accumulation note at the top. */
static double H(block_sumexp)(const T *x, int64_t n, T m)
{
    const V vm = VSPLAT(m);
    double s = 0.0;
    int64_t j = 0;
    while (j + UNROLL * LANES <= n) {
        V a0 = VSPLAT(0), a1 = VSPLAT(0), a2 = VSPLAT(0), a3 = VSPLAT(0);
        for (int it = 0; it < SUB_ITERS && j + UNROLL * LANES <= n; it++, j += UNROLL * LANES) {
            a0 += VEXP(VLOAD(x + j) - vm);
            a1 += VEXP(VLOAD(x + j + LANES) - vm);
            a2 += VEXP(VLOAD(x + j + 2 * LANES) - vm);
            a3 += VEXP(VLOAD(x + j + 3 * LANES) - vm);
        }
        s += H(hsum)(a0) + H(hsum)(a1) + (H(hsum)(a2) + H(hsum)(a3));
    }
    V a = VSPLAT(0);
    for (; j + LANES <= n; j += LANES)
        a += VEXP(VLOAD(x + j) - vm);
    if (j < n)
        a += VEXP(H(load_tail)(x + j, n - j, -INFINITY) - vm);
    return s + H(hsum)(a);
}

/*
 * Weighted sums for label smoothing and probability targets, in double:
 *   *dot += sum_j c_j (x_j - x0),  *tot += sum_j c_j,
 * with c_j = (u ? alpha u_j + beta : 1) * (w ? w_j : 1).
 * c_j is formed before the product, as PyTorch does, so that a zero
 * coefficient against x_j = -inf gives NaN exactly where PyTorch does.
 */
static void H(block_dot)(const T *x, const T *u, const T *w, int64_t n, double x0, double alpha,
                         double beta, double *dot, double *tot)
{
    double d0 = 0, d1 = 0, t0 = 0, t1 = 0;
    int64_t j = 0;
    for (; j + 2 <= n; j += 2) {
        double c0 = u ? (T)(alpha * u[j] + beta) : 1.0, c1 = u ? (T)(alpha * u[j + 1] + beta) : 1.0;
        if (w) {
            c0 *= w[j];
            c1 *= w[j + 1];
        }
        d0 += c0 * ((double)x[j] - x0);
        d1 += c1 * ((double)x[j + 1] - x0);
        t0 += c0;
        t1 += c1;
    }
    for (; j < n; j++) {
        double c = u ? (T)(alpha * u[j] + beta) : 1.0;
        if (w)
            c *= w[j];
        d0 += c * ((double)x[j] - x0);
        t0 += c;
    }
    *dot += d0 + d1;
    *tot += t0 + t1;
}

typedef struct {
    T m;          /* row max (over non-NaN elements) */
    double s;     /* sum_j exp(x_j - m); NaN when the softmax of the row is NaN */
    double dot;   /* sum_j c_j (x_j - x0) when requested */
    double tot;   /* sum_j c_j when requested */
    double x0;    /* shift of the dot product */
} H(rowstat);

/*
 * Pass 1 over a contiguous row: max and sum of exponentials with online
 * rescaling per block, plus the optional weighted sums on the same block
 * while it is in L1.
 */
static H(rowstat) H(row_stats)(const T *x, int64_t c, int want_dot, const T *u, const T *w, double alpha,
                                double beta)
{
    H(rowstat) r = {-INFINITY, 0.0, 0.0, 0.0, 0.0};
    int nan_seen = 0;
    if (want_dot && c > 0 && x[0] - x[0] == 0)
        r.x0 = x[0]; /* shift by a finite element of the row: no cancellation for large |x| */
    for (int64_t b0 = 0; b0 < c; b0 += BLOCK) {
        int64_t len = c - b0 < BLOCK ? c - b0 : BLOCK;
        const T *xb = x + b0;
        T bm = H(block_max)(xb, len);
        if (bm > r.m) {
            r.s *= exp((double)r.m - (double)bm);
            r.m = bm;
        }
        if (r.m == -INFINITY) {
            /* everything so far is -inf or NaN: the sum is empty, but remember NaN */
            nan_seen |= H(block_has_nan)(xb, len);
        } else {
            r.s += H(block_sumexp)(xb, len, r.m);
        }
        if (want_dot)
            H(block_dot)(xb, u ? u + b0 : NULL, w ? w + b0 : NULL, len, r.x0, alpha, beta, &r.dot, &r.tot);
    }
    if (r.m == -INFINITY || nan_seen)
        r.s = NAN; /* all -inf (or empty): 0/0 as in PyTorch */
    return r;
}

/* y = exp(x - m) * scale */
static void H(write_exp)(const T *x, T *y, int64_t n, T m, T scale)
{
    const V vm = VSPLAT(m);
    int64_t j = 0;
    for (; j + 2 * LANES <= n; j += 2 * LANES) {
        V e0 = VEXP(VLOAD(x + j) - vm), e1 = VEXP(VLOAD(x + j + LANES) - vm);
        VSTORE(y + j, e0 * scale);
        VSTORE(y + j + LANES, e1 * scale);
    }
    for (; j + LANES <= n; j += LANES)
        VSTORE(y + j, VEXP(VLOAD(x + j) - vm) * scale);
    if (j < n)
        H(store_tail)(y + j, n - j, VEXP(H(load_tail)(x + j, n - j, -INFINITY) - vm) * scale);
}

/* y = (x - m) - lse_rest */
static void H(write_shift)(const T *x, T *y, int64_t n, T m, T rest)
{
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        VSTORE(y + j, (VLOAD(x + j) - m) - rest);
    for (; j < n; j++)
        y[j] = (x[j] - m) - rest;
}

/*
 * Gradient pass: g = exp(x - m) * a - (u ? alpha u + beta : beta) * (w ? w : 1).
 * The four variants are generated from one body by constant flags.
 */
FS_INLINE void H(write_grad_body)(const T *x, T *g, const T *u, const T *w, int64_t n, T m, T a, T alpha,
                                  T beta, const int has_u, const int has_w)
{
    const V vm = VSPLAT(m);
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES) {
        V c = has_u ? VLOAD(u + j) * alpha + beta : VSPLAT(beta);
        if (has_w)
            c *= VLOAD(w + j);
        VSTORE(g + j, VEXP(VLOAD(x + j) - vm) * a - c);
    }
    if (j < n) {
        int64_t k = n - j;
        V c = has_u ? H(load_tail)(u + j, k, 0) * alpha + beta : VSPLAT(beta);
        if (has_w)
            c *= H(load_tail)(w + j, k, 0);
        H(store_tail)(g + j, k, VEXP(H(load_tail)(x + j, k, -INFINITY) - vm) * a - c);
    }
}

static void H(write_grad)(const T *x, T *g, const T *u, const T *w, int64_t n, T m, T a, T alpha, T beta)
{
    if (u && w)
        H(write_grad_body)(x, g, u, w, n, m, a, alpha, beta, 1, 1);
    else if (u)
        H(write_grad_body)(x, g, u, w, n, m, a, alpha, beta, 1, 0);
    else if (w)
        H(write_grad_body)(x, g, u, w, n, m, a, alpha, beta, 0, 1);
    else
        H(write_grad_body)(x, g, u, w, n, m, a, alpha, beta, 0, 0);
}

static void H(gather)(T *dst, const T *src, int64_t n, int64_t stride)
{
    for (int64_t j = 0; j < n; j++)
        dst[j] = src[j * stride];
}

static void H(scatter)(T *dst, int64_t stride, const T *src, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        dst[j * stride] = src[j];
}

/* Scratch row for gathered (non unit class stride) rows; NULL is fine when not needed. */
static int H(scratch)(T **buf, int needed, int64_t c)
{
    *buf = NULL;
    if (!needed || c == 0)
        return FS_OK;
    *buf = (T *)malloc((size_t)c * sizeof(T));
    return *buf ? FS_OK : FS_ENOMEM;
}

static int H(softmax_driver)(const fs_batch *b, const T *x, const fs_strides *xs, T *y, const fs_strides *ys,
                             int take_log)
{
    const int64_t c = b->n_classes;
    const int gx = xs->cls != 1, gy = ys->cls != 1;
    T *buf;
    if (H(scratch)(&buf, gx || gy, c) != FS_OK)
        return FS_ENOMEM;
    for (int64_t o = 0; o < b->n_outer; o++) {
        for (int64_t i = 0; i < b->n_inner; i++) {
            const T *xr = x + o * xs->outer + i * xs->inner;
            T *yr = y + o * ys->outer + i * ys->inner;
            const T *xc = xr;
            if (gx) {
                H(gather)(buf, xr, c, xs->cls);
                xc = buf;
            }
            T *yc = gy ? buf : yr;
            H(rowstat) st = H(row_stats)(xc, c, 0, NULL, NULL, 0, 0);
            if (take_log)
                H(write_shift)(xc, yc, c, st.m, (T)log(st.s));
            else
                H(write_exp)(xc, yc, c, st.m, (T)(1.0 / st.s));
            if (gy)
                H(scatter)(yr, ys->cls, buf, c);
        }
    }
    free(buf);
    return FS_OK;
}

int K(softmax)(const fs_batch *b, const T *x, const fs_strides *xs, T *y, const fs_strides *ys)
{
    return H(softmax_driver)(b, x, xs, y, ys, 0);
}

int K(log_softmax)(const fs_batch *b, const T *x, const fs_strides *xs, T *y, const fs_strides *ys)
{
    return H(softmax_driver)(b, x, xs, y, ys, 1);
}

int K(logsumexp)(const fs_batch *b, const T *x, const fs_strides *xs, T *out)
{
    const int64_t c = b->n_classes;
    T *buf;
    if (H(scratch)(&buf, xs->cls != 1, c) != FS_OK)
        return FS_ENOMEM;
    for (int64_t o = 0; o < b->n_outer; o++) {
        for (int64_t i = 0; i < b->n_inner; i++) {
            const T *xc = x + o * xs->outer + i * xs->inner;
            if (buf) {
                H(gather)(buf, xc, c, xs->cls);
                xc = buf;
            }
            H(rowstat) st = H(row_stats)(xc, c, 0, NULL, NULL, 0, 0);
            T v;
            if (st.m == INFINITY || st.m == -INFINITY) {
                /* as torch.logsumexp: +-inf unless a NaN is present */
                v = H(block_has_nan)(xc, c) ? (T)NAN : st.m;
            } else {
                v = (T)((double)st.m + log(st.s));
            }
            out[o * b->n_inner + i] = v;
        }
    }
    free(buf);
    return FS_OK;
}

int K(cross_entropy)(const fs_batch *b, const T *x, const fs_strides *xs, const fs_ce_args *a,
                     double *loss_rows, double *loss_sum, T *grad, const fs_strides *gs)
{
    const int64_t c = b->n_classes;
    const T *weight = (const T *)a->weight;
    const T *prob = (const T *)a->prob;
    const double eps = a->label_smoothing, scale = a->grad_scale;
    const int smoothing = eps != 0.0;
    /* probability targets: c_j = ((1 - eps) t_j + eps / C) w_j; index targets: c_j = w_j */
    const double alpha = 1.0 - eps, beta = c > 0 ? eps / (double)c : 0.0;
    const int gx = xs->cls != 1 || (grad && gs->cls != 1);
    const int gu = prob && a->prob_strides.cls != 1;
    T *bx, *bu = NULL;
    double total = 0.0;
    if (H(scratch)(&bx, gx, c) != FS_OK)
        return FS_ENOMEM;
    if (H(scratch)(&bu, gu, c) != FS_OK) {
        free(bx);
        return FS_ENOMEM;
    }
    /* sum of the class weights, for the smoothing term of index targets */
    double wsum = (double)c;
    if (weight) {
        wsum = 0.0;
        for (int64_t j = 0; j < c; j++)
            wsum += weight[j];
    }
    for (int64_t o = 0; o < b->n_outer; o++) {
        for (int64_t i = 0; i < b->n_inner; i++) {
            const int64_t n = o * b->n_inner + i;
            const T *xr = x + o * xs->outer + i * xs->inner;
            T *gr = grad ? grad + o * gs->outer + i * gs->inner : NULL;
            const T *xc = xr;
            if (gx) {
                H(gather)(bx, xr, c, xs->cls);
                xc = bx;
            }
            T *gc = gr && gs->cls != 1 ? bx : gr;
            double loss;
            if (prob) {
                const T *ur = prob + o * a->prob_strides.outer + i * a->prob_strides.inner;
                const T *uc = ur;
                if (gu) {
                    H(gather)(bu, ur, c, a->prob_strides.cls);
                    uc = bu;
                }
                H(rowstat) st = H(row_stats)(xc, c, 1, uc, weight, alpha, beta);
                double lse_x0 = ((double)st.m - st.x0) + log(st.s);
                loss = st.tot * lse_x0 - st.dot;
                if (gc)
                    H(write_grad)(xc, gc, uc, weight, c, st.m, (T)(scale * st.tot / st.s), (T)(scale * alpha),
                                  (T)(scale * beta));
            } else {
                const int64_t y = a->target[n];
                if (y == a->ignore_index) {
                    loss = 0.0;
                    if (gc)
                        memset(gc, 0, (size_t)c * sizeof(T));
                } else {
                    if (y < 0 || y >= c) {
                        free(bx);
                        free(bu);
                        return FS_EINDEX;
                    }
                    H(rowstat) st = H(row_stats)(xc, c, smoothing, NULL, weight, 0.0, 0.0);
                    const double wy = weight ? (double)weight[y] : 1.0;
                    const double logs = log(st.s);
                    const double nll = ((double)st.m - (double)xc[y]) + logs;
                    loss = alpha * wy * nll;
                    if (smoothing)
                        loss += beta * (wsum * (((double)st.m - st.x0) + logs) - st.dot);
                    if (gc) {
                        /* g_j = s [(1-eps) w_y (p_j - [j = y]) + (eps/C)(W p_j - w_j)] */
                        const double pa = scale * (alpha * wy + beta * wsum);
                        H(write_grad)(xc, gc, NULL, weight, c, st.m, (T)(pa / st.s), (T)0, (T)(scale * beta));
                        gc[y] = (T)((double)gc[y] - scale * alpha * wy);
                    }
                }
            }
            if (loss_rows)
                loss_rows[n] = loss;
            total += loss;
            if (gr && gs->cls != 1)
                H(scatter)(gr, gs->cls, bx, c);
        }
    }
    *loss_sum = total;
    free(bx);
    free(bu);
    return FS_OK;
}

#undef CAT_
#undef CAT
#undef CAT3
#undef H
#undef K
#undef BLOCK
#undef UNROLL
#undef SUB_ITERS
