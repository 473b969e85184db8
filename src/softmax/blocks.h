/* The softmax family, one dtype (see family.h): the vector loops over one block of a row. */

#define BLOCK 2048
#define UNROLL 4     /* independent accumulators of block_max */
#define SUB_ITERS 16 /* iterations of the exp loop before its float sums are widened to double */
/* pass 1 asks for the line this far ahead of the one it reads (the hardware
 * prefetcher alone left the 2048x32000 cross-entropy 10-25% slower) */
#define PREFETCH_BYTES 2048
/* and the exp loop of pass 1 (sumexp_body) this far: the rows of 500 to 3000 floats
 * that it reads from memory one after the other, pipelined (driver_pipeline.h), ran 1.08-1.2x
 * faster on Zen 3, one thread and two, 2^26 floats, than with PREFETCH_BYTES; 16384 no better,
 * rows of 10^4 and longer and arrays in cache within 3% either way */
#define SUMEXP_PREFETCH_BYTES 8192

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
    return VHMAX(VMAX(VMAX(a0, a1), VMAX(a2, a3)));
}

static int H(block_has_nan)(const T *x, int64_t n)
{
    for (int64_t j = 0; j < n; j++)
        if (x[j] != x[j])
            return 1;
    return 0;
}

/* y = F(x) elementwise with the vectorized functions, exported for their accuracy tests:
 * exp, the softmax kernels' exp of x <= 0, and log */
#define FS_MAP_ARRAY(name, F, fill)                                                                     \
    static void K(name)(const T *x, T *y, int64_t n)                                                   \
    {                                                                                                  \
        int64_t j = 0;                                                                                 \
        for (; j + LANES <= n; j += LANES)                                                             \
            VSTORE(y + j, F(VLOAD(x + j)));                                                            \
        if (j < n)                                                                                     \
            H(store_tail)(y + j, n - j, F(H(load_tail)(x + j, n - j, fill)));                          \
    }
FS_MAP_ARRAY(vexp, VEXP, 0)
FS_MAP_ARRAY(vexpneg, VEXPN, 0)
FS_MAP_ARRAY(vlog, VLOG, 1)
#undef FS_MAP_ARRAY

/*
 * sum_j exp(x[j] - m) over x[0..n) (see the accumulation note at the top);
 * with store, also e[j] = exp(x[j] - m) (e may be x: in place).
 */
FS_INLINE double H(sumexp_body)(const T *x, T *e, int64_t n, T m, const int store, const int track, T *xmax)
{
    const V vm = VSPLAT(m);
    V mx0 = VSPLAT(-INFINITY);
    vf64 acc = splat_f64(0.0);
    int64_t j = 0;
    /* two vectors per iteration, so that the loop's own instructions (counter, branch, one
     * prefetch per 64-byte line) are shared by two exponentials; at most SUB_ITERS additions
     * per accumulator between widenings */
    const int64_t per_iter = 2 * LANES;
    while (j + per_iter <= n) {
        V a0 = VSPLAT(0), a1 = VSPLAT(0);
        int64_t iters = (n - j) / per_iter;
        if (iters > SUB_ITERS)
            iters = SUB_ITERS;
        for (int64_t it = 0; it < iters; it++, j += per_iter) {
            for (int b = 0; b < per_iter * (int)sizeof(T); b += 64)
                __builtin_prefetch((const char *)(x + j) + SUMEXP_PREFETCH_BYTES + b, 0, 3);
            V x0 = VLOAD(x + j), x1 = VLOAD(x + j + LANES);
            if (track)
                mx0 = VMAX(VMAX(x1, x0), mx0); /* NaN enters neither max, as in block_max */
            V e0 = VEXPN(x0 - vm), e1 = VEXPN(x1 - vm);
            if (store) {
                VSTORE(e + j, e0);
                VSTORE(e + j + LANES, e1);
            }
            a0 += e0;
            a1 += e1;
        }
        acc += VWIDEN(a0) + VWIDEN(a1);
    }
    if (j + LANES <= n) { /* one vector left over from the pairs */
        V x0 = VLOAD(x + j);
        if (track)
            mx0 = VMAX(x0, mx0);
        V e0 = VEXPN(x0 - vm);
        if (store)
            VSTORE(e + j, e0);
        acc += VWIDEN(e0);
        j += LANES;
    }
    V a = VSPLAT(0);
    if (j < n) {
        V x0 = H(load_tail)(x + j, n - j, -INFINITY);
        if (track)
            mx0 = VMAX(x0, mx0);
        V e0 = VEXPN(x0 - vm);
        if (store)
            H(store_tail)(e + j, n - j, e0);
        a += e0;
    }
    acc += VWIDEN(a);
    if (track)
        *xmax = VHMAX(mx0);
    return hsum_f64(acc);
}

/* sum_j exp(x_j - m) over a block, storing the exponentials in e unless e is NULL */
static double H(block_sumexp)(const T *x, T *e, int64_t n, T m)
{
    return e ? H(sumexp_body)(x, e, n, m, 1, 0, NULL) : H(sumexp_body)(x, NULL, n, m, 0, 0, NULL);
}

/* the same, and *xmax = the largest non-NaN x_j, in the same pass */
static double H(block_sumexp_max)(const T *x, T *e, int64_t n, T m, T *xmax)
{
    return e ? H(sumexp_body)(x, e, n, m, 1, 1, xmax) : H(sumexp_body)(x, NULL, n, m, 0, 1, xmax);
}

/*
 * Weighted sums for label smoothing and probability targets, in double:
 *   *dot += sum_j c_j (m - x_j),  *tot += sum_j c_j,
 * with c_j = (u ? alpha u_j + beta : 1) * (w ? w_j : 1) and m the row's
 * running max, so that the terms have one sign (no cancellation, see
 * stats_add).  c_j is formed before the product, as PyTorch does, so that a
 * zero coefficient against x_j = -inf gives NaN exactly where PyTorch does.
 */
static void H(block_dot)(const T *x, const T *u, const T *w, int64_t n, double m, double alpha,
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
        d0 += c0 * (m - (double)x[j]);
        d1 += c1 * (m - (double)x[j + 1]);
        t0 += c0;
        t1 += c1;
    }
    for (; j < n; j++) {
        double c = u ? (T)(alpha * u[j] + beta) : 1.0;
        if (w)
            c *= w[j];
        d0 += c * (m - (double)x[j]);
        t0 += c;
    }
    *dot += d0 + d1;
    *tot += t0 + t1;
}
