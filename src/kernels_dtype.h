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
 *     most SUB_ITERS = 16 additions per lane, then in double across sub-blocks, so its
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

/* y = exp(x), the general exp (exported for its accuracy tests). */
static void H(vexp_array)(const T *x, T *y, int64_t n)
{
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        VSTORE(y + j, VEXP(VLOAD(x + j)));
    if (j < n)
        H(store_tail)(y + j, n - j, VEXP(H(load_tail)(x + j, n - j, 0)));
}

/*
 * sum_j exp(x[j] - m) over x[0..n) (see the accumulation note at the top);
 * with store, also e[j] = exp(x[j] - m) (e may be x: in place).
 */
FS_INLINE double H(sumexp_body)(const T *x, T *e, int64_t n, T m, const int store)
{
    const V vm = VSPLAT(m);
    double s = 0.0;
    int64_t j = 0;
    while (j + 2 * LANES <= n) {
        V a0 = VSPLAT(0), a1 = VSPLAT(0);
        for (int it = 0; it < SUB_ITERS && j + 2 * LANES <= n; it++, j += 2 * LANES) {
            V e0 = VEXPN(VLOAD(x + j) - vm);
            V e1 = VEXPN(VLOAD(x + j + LANES) - vm);
            if (store) {
                VSTORE(e + j, e0);
                VSTORE(e + j + LANES, e1);
            }
            a0 += e0;
            a1 += e1;
        }
        s += H(hsum)(a0) + H(hsum)(a1);
    }
    V a = VSPLAT(0);
    for (; j + LANES <= n; j += LANES) {
        V e0 = VEXPN(VLOAD(x + j) - vm);
        if (store)
            VSTORE(e + j, e0);
        a += e0;
    }
    if (j < n) {
        V e0 = VEXPN(H(load_tail)(x + j, n - j, -INFINITY) - vm);
        if (store)
            H(store_tail)(e + j, n - j, e0);
        a += e0;
    }
    return s + H(hsum)(a);
}

static double H(block_sumexp)(const T *x, int64_t n, T m) { return H(sumexp_body)(x, NULL, n, m, 0); }
static double H(block_sumexp_store)(const T *x, T *e, int64_t n, T m) { return H(sumexp_body)(x, e, n, m, 1); }

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

/*
 * Rows of at most STORE_BYTES keep exp(x - running max) in the output row
 * during pass 1 (it stays in L2), so the output pass only rescales: one exp
 * per element instead of two.  Longer rows recompute the exponentials in the
 * output pass, which reads x again instead of reading and writing the output
 * twice.
 */
#define STORE_BYTES (256 * 1024)
#define STORE_BLOCKS (STORE_BYTES / (BLOCK * (int)sizeof(T)))

typedef struct {
    T m;          /* row max (over non-NaN elements) */
    double s;     /* sum_j exp(x_j - m); NaN when the softmax of the row is NaN */
    double dot;   /* sum_j c_j (x_j - x0) when requested */
    double tot;   /* sum_j c_j when requested */
    double x0;    /* shift of the dot product */
    int stored;   /* e holds exp(x - bm[b]) for each block b */
    T bm[STORE_BLOCKS];
} H(rowstat);

/*
 * Pass 1 over a contiguous row: max and sum of exponentials with online
 * rescaling per block, plus the optional weighted sums on the same block
 * while it is in L1.  With e != NULL and a short enough row, the
 * exponentials are also stored in e (which may be x itself).
 */
static void H(row_stats)(H(rowstat) *r, const T *x, int64_t c, int want_dot, const T *u, const T *w,
                         double alpha, double beta, T *e)
{
    int nan_seen = 0;
    r->m = -INFINITY;
    r->s = r->dot = r->tot = r->x0 = 0.0;
    r->stored = e != NULL && c * (int64_t)sizeof(T) <= STORE_BYTES;
    if (want_dot && c > 0 && x[0] - x[0] == 0)
        r->x0 = x[0]; /* shift by a finite element of the row: no cancellation for large |x| */
    for (int64_t b0 = 0; b0 < c; b0 += BLOCK) {
        int64_t len = c - b0 < BLOCK ? c - b0 : BLOCK;
        const T *xb = x + b0;
        T bm = H(block_max)(xb, len);
        if (bm > r->m) {
            r->s *= exp((double)r->m - (double)bm);
            r->m = bm;
        }
        if (want_dot)
            H(block_dot)(xb, u ? u + b0 : NULL, w ? w + b0 : NULL, len, r->x0, alpha, beta, &r->dot, &r->tot);
        if (r->m == -INFINITY) {
            /* everything so far is -inf or NaN: the sum is empty, but remember NaN */
            nan_seen |= H(block_has_nan)(xb, len);
            if (r->stored)
                memset(e + b0, 0, (size_t)len * sizeof(T));
        } else if (r->stored) {
            r->s += H(block_sumexp_store)(xb, e + b0, len, r->m);
        } else {
            r->s += H(block_sumexp)(xb, len, r->m);
        }
        if (r->stored)
            r->bm[b0 / BLOCK] = r->m;
    }
    if (r->m == -INFINITY || nan_seen)
        r->s = NAN; /* all -inf (or empty): 0/0 as in PyTorch */
}

/* y = (x - m) - rest */
static void H(write_shift)(const T *x, T *y, int64_t n, T m, T rest)
{
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES)
        VSTORE(y + j, (VLOAD(x + j) - m) - rest);
    for (; j < n; j++)
        y[j] = (x[j] - m) - rest;
}

/*
 * Output pass over n elements: g = E * a - (u ? alpha u + beta : beta) * (w ? w : 1),
 * where E = src (exponentials stored by pass 1) or exp(src - m) (recomputed).
 * Softmax is the case beta = 0 without u and w.  The variants are generated
 * from one body by constant flags.
 */
FS_INLINE void H(output_body)(const T *src, T *g, const T *u, const T *w, int64_t n, T m, T a, T alpha,
                              T beta, const int stored, const int has_u, const int has_w, const int has_c)
{
    const V vm = VSPLAT(m);
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES) {
        V v = VLOAD(src + j);
        V ex = stored ? v : VEXPN(v - vm);
        if (has_c) {
            V c = has_u ? VLOAD(u + j) * alpha + beta : VSPLAT(beta);
            if (has_w)
                c *= VLOAD(w + j);
            VSTORE(g + j, ex * a - c);
        } else {
            VSTORE(g + j, ex * a);
        }
    }
    if (j < n) {
        int64_t k = n - j;
        V v = H(load_tail)(src + j, k, stored ? 0 : -INFINITY);
        V ex = stored ? v : VEXPN(v - vm);
        if (has_c) {
            V c = has_u ? H(load_tail)(u + j, k, 0) * alpha + beta : VSPLAT(beta);
            if (has_w)
                c *= H(load_tail)(w + j, k, 0);
            H(store_tail)(g + j, k, ex * a - c);
        } else {
            H(store_tail)(g + j, k, ex * a);
        }
    }
}

#define OUTPUT_VARIANTS(stored)                                                                        \
    if (!has_c)                                                                                        \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 0, 0, 0);                           \
    else if (u && w)                                                                                   \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 1, 1, 1);                           \
    else if (u)                                                                                        \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 1, 0, 1);                           \
    else if (w)                                                                                        \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 0, 1, 1);                           \
    else                                                                                               \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 0, 0, 1);

static void H(output_range)(const T *src, T *g, const T *u, const T *w, int64_t n, T m, T a, T alpha, T beta,
                            int stored, int has_c)
{
    if (stored) {
        OUTPUT_VARIANTS(1)
    } else {
        OUTPUT_VARIANTS(0)
    }
}
#undef OUTPUT_VARIANTS

/*
 * Output pass over a row after row_stats:
 *   g_j = exp(x_j - m) * a / s - c_j,  c_j = (u ? alpha u_j + beta : beta) * (w ? w_j : 1)
 * (has_c = 0: no c term).  When pass 1 stored the exponentials in g, each
 * block is rescaled by exp(bm[b] - m); otherwise they are recomputed from x.
 * A row whose sum is NaN gives NaN everywhere, as in PyTorch.
 */
static void H(row_output)(const H(rowstat) *r, const T *x, T *g, const T *u, const T *w, int64_t c, double a,
                          T alpha, T beta, int has_c)
{
    if (r->s != r->s) {
        for (int64_t j = 0; j < c; j++)
            g[j] = (T)NAN;
        return;
    }
    if (!r->stored) {
        H(output_range)(x, g, u, w, c, r->m, (T)(a / r->s), alpha, beta, 0, has_c);
        return;
    }
    for (int64_t b0 = 0; b0 < c; b0 += BLOCK) {
        int64_t len = c - b0 < BLOCK ? c - b0 : BLOCK;
        T ab = (T)(a / r->s * exp((double)r->bm[b0 / BLOCK] - (double)r->m));
        H(output_range)(g + b0, g + b0, u ? u + b0 : NULL, w ? w + b0 : NULL, len, r->m, ab, alpha, beta, 1,
                        has_c);
    }
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
    H(rowstat) st;
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
            if (take_log) {
                H(row_stats)(&st, xc, c, 0, NULL, NULL, 0, 0, NULL);
                H(write_shift)(xc, yc, c, st.m, (T)log(st.s));
            } else {
                H(row_stats)(&st, xc, c, 0, NULL, NULL, 0, 0, yc);
                H(row_output)(&st, xc, yc, NULL, NULL, c, 1.0, 0, 0, 0);
            }
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
    H(rowstat) st;
    if (H(scratch)(&buf, xs->cls != 1, c) != FS_OK)
        return FS_ENOMEM;
    for (int64_t o = 0; o < b->n_outer; o++) {
        for (int64_t i = 0; i < b->n_inner; i++) {
            const T *xc = x + o * xs->outer + i * xs->inner;
            if (buf) {
                H(gather)(buf, xc, c, xs->cls);
                xc = buf;
            }
            H(row_stats)(&st, xc, c, 0, NULL, NULL, 0, 0, NULL);
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
    H(rowstat) st;
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
                H(row_stats)(&st, xc, c, 1, uc, weight, alpha, beta, gc);
                double lse_x0 = ((double)st.m - st.x0) + log(st.s);
                loss = st.tot * lse_x0 - st.dot;
                if (gc)
                    H(row_output)(&st, xc, gc, uc, weight, c, scale * st.tot, (T)(scale * alpha), (T)(scale * beta),
                                  1);
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
                    const double xy = (double)xc[y]; /* before pass 1 may overwrite it (in place) */
                    H(row_stats)(&st, xc, c, smoothing, NULL, weight, 0.0, 0.0, gc);
                    const double wy = weight ? (double)weight[y] : 1.0;
                    const double logs = log(st.s);
                    const double nll = ((double)st.m - xy) + logs;
                    loss = alpha * wy * nll;
                    if (smoothing)
                        loss += beta * (wsum * (((double)st.m - st.x0) + logs) - st.dot);
                    if (gc) {
                        /* g_j = s [(1-eps) w_y (p_j - [j = y]) + (eps/C)(W p_j - w_j)] */
                        const double pa = scale * (alpha * wy + beta * wsum);
                        H(row_output)(&st, xc, gc, NULL, weight, c, pa, 0, (T)(scale * beta), smoothing || weight);
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
#undef STORE_BYTES
#undef STORE_BLOCKS
