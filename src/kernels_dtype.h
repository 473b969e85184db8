/*
 * Row kernels and batch driver for one dtype and one instruction set.
 *
 * Included by kernels_isa.h once per dtype with these macros defined:
 *   T       float or double          SUF     f32 or f64
 *   V       vf32 or vf64             LANES   lanes per vector
 *   VLOAD, VSTORE, VSTREAM, VSPLAT, VMAX, VEXP, VEXPN, VLOG, VWIDEN, VGATHER_ROWS, VGATHER_AT, VSELECT
 *   H(name), K(name)  name of an internal helper / exported kernel of this dtype (and ISA)
 *   ISA     the instruction-set suffix of the exported names (baseline, avx2, ...)
 *
 * Accumulation precision (what keeps the accuracy bars of the test suite):
 *   - the sum of exponentials is accumulated in T for at most SUB_ITERS
 *     additions per lane, then widened to double, so its relative error
 *     stays below ~20 ulp of float even for 10^7 classes;
 *   - loss terms, the label-smoothing and probability-target sums (terms of
 *     one sign, relative to the running max) and the batch sum are in double;
 *   - outputs are rounded once to T at the end.
 *
 * How a row is processed (rows of more than SMALL_C classes):
 *   pass 1  reads the row once, in blocks of BLOCK elements (L1-sized): the
 *           exponentials relative to the running max and the block's max in
 *           one loop (online softmax; a block is redone only when its max
 *           jumps by more than RESCALE_LIMIT).  Rows of at most STORE_BYTES
 *           keep the exponentials in a per-thread scratch row;
 *   plan    the kernel turns (max, sum[, weighted sums]) into the loss and
 *           the output's coefficients;
 *   output  rescales the stored exponentials (or recomputes them for longer
 *           rows) and writes each output once, with streaming stores when
 *           the output is larger than the caches.  Rows with an output are
 *           pipelined: the output of row n-1 is written block by block while
 *           pass 1 reads row n.
 * Short rows go through process_tile (LANES rows per vector); a long row
 * is reduced in pieces, split across threads when alone (run_row_pieces).
 */

#define BLOCK 2048
#define UNROLL 4     /* independent accumulators of block_max */
#define SUB_ITERS 16 /* iterations of the exp loop before its float sums are widened to double */
/* pass 1 asks for the line this far ahead of the one it reads (the hardware
 * prefetcher alone left the 2048x32000 cross-entropy 10-25% slower) */
#define PREFETCH_BYTES 2048

/* Copy the last n < LANES elements into a full vector, the rest set to fill. */
FS_INLINE V H(load_tail)(const T *p, int64_t n, T fill)
{
    T tmp[LANES];
    for (int k = 0; k < LANES; k++)
        tmp[k] = k < n ? p[k] : fill;
    return VLOAD(tmp);
}

/* LANES int64, LANES doubles: the targets and the losses of a tile of LANES rows (two registers'
 * worth where T is float: GCC splits them) */
typedef int64_t H(vq) __attribute__((vector_size(LANES * 8)));
typedef double H(vw) __attribute__((vector_size(LANES * 8)));

/* The vector of a[0..LANES), built lane by lane (see gather_rows). */
FS_INLINE V H(from_scalars)(const T *a)
{
    const T *p[LANES];
    for (int k = 0; k < LANES; k++)
        p[k] = a + k;
    return VGATHER_ROWS(p, 0);
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
                __builtin_prefetch((const char *)(x + j) + PREFETCH_BYTES + b, 0, 3);
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
    double s = 0.0;
    for (int k = 0; k < FS_LANES_F64; k++)
        s += acc[k];
    if (track) {
        T mm = -INFINITY;
        for (int k = 0; k < LANES; k++)
            if (mx0[k] > mm)
                mm = mx0[k];
        *xmax = mm;
    }
    return s;
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

/*
 * Rows of at most STORE_BYTES keep exp(x - running max) in a per-thread
 * scratch row during pass 1 (it stays in L2), so the output pass only
 * rescales: one exp per element instead of two.  Longer rows recompute the
 * exponentials in the output pass.  Large outputs are written with
 * streaming stores, so that the output is written to memory once and never
 * read: the kernel then moves as many bytes as a copy of the logits.
 */
#define STORE_BYTES (256 * 1024)
#define STORE_BLOCKS (STORE_BYTES / (BLOCK * (int)sizeof(T)))
/* a block whose max exceeds the running max by more than this is redone (exp(64) * BLOCK is far from overflow) */
#define RESCALE_LIMIT 64.0

/* Pass-1 statistics of a row, or of a range of it (merged with stats_merge). */
typedef struct {
    T m;          /* max over non-NaN elements */
    double s;     /* sum_j exp(x_j - m); NaN after stats_finish when the softmax of the row is NaN */
    double logs;  /* log(s), set by stats_finish */
    double dot;   /* sum_j c_j (m - x_j), when requested */
    double tot;   /* sum_j c_j, when requested */
    int nan_seen; /* a NaN in a block that was skipped because everything so far was -inf */
    int stored;   /* the scratch row holds exp(x - bm[b]) for each block b */
    T bm[STORE_BLOCKS];
} H(rowstat);

static void H(stats_init)(H(rowstat) *r)
{
    r->m = -INFINITY;
    r->s = r->dot = r->tot = 0.0;
    r->nan_seen = r->stored = 0;
}

/*
 * Pass 1 over a contiguous range: max and sum of exponentials with online
 * rescaling per block, plus the optional weighted sums on the same block
 * while it is in L1.  With e != NULL (a whole row of at most STORE_BYTES),
 * the exponentials are also stored in e, which may be x itself.
 */
static void H(stats_add)(H(rowstat) *r, const T *x, int64_t c, int want_dot, const T *u, const T *w,
                         double alpha, double beta, T *e, int64_t bofs)
{
    r->stored = e != NULL;
    for (int64_t b0 = 0; b0 < c; b0 += BLOCK) {
        int64_t len = c - b0 < BLOCK ? c - b0 : BLOCK;
        const T *xb = x + b0;
        T *eb = e ? e + b0 : NULL;
        T used, bm;
        double sb;
        if (r->m == -INFINITY) {
            /* nothing finite so far: this block's max first */
            bm = H(block_max)(xb, len);
            used = bm;
            if (bm == -INFINITY) {
                /* everything so far is -inf or NaN: the sum is empty, but remember NaN */
                r->nan_seen |= H(block_has_nan)(xb, len);
                if (eb)
                    memset(eb, 0, (size_t)len * sizeof(T));
                sb = 0.0;
            } else {
                sb = H(block_sumexp)(xb, eb, len, used);
            }
        } else {
            /* exponentials relative to the running max and the block's max in one pass; when the
             * block's max is far above (exp could have overflowed), the block is redone */
            used = r->m;
            sb = H(block_sumexp_max)(xb, eb, len, used, &bm);
            if (bm > used && (double)bm - (double)used > RESCALE_LIMIT) {
                used = bm;
                sb = H(block_sumexp)(xb, eb, len, used);
            }
        }
        /* the running sum and this block's, both to the new max */
        T m = bm > r->m ? bm : r->m;
        if (m != r->m) {
            r->s *= exp((double)r->m - (double)m);
            /* the dot product follows the max: sum c_j (m_new - x_j) = sum c_j (m_old - x_j) + tot (m_new - m_old);
             * while the max was -inf, the terms already hold their +-inf or NaN */
            if (want_dot && r->m != -INFINITY && r->tot != 0.0)
                r->dot += r->tot * ((double)m - (double)r->m);
            r->m = m;
        }
        r->s += used == m ? sb : sb * exp((double)used - (double)m);
        if (want_dot)
            H(block_dot)(xb, u ? u + b0 : NULL, w ? w + b0 : NULL, len, r->m == -INFINITY ? 0.0 : (double)r->m,
                         alpha, beta, &r->dot, &r->tot);
        if (e)
            r->bm[bofs + b0 / BLOCK] = used; /* this block's exponentials are relative to `used` */
    }
}

/* r += q for the statistics of two disjoint ranges of one row (not stored). */
static void H(stats_merge)(H(rowstat) *r, const H(rowstat) *q)
{
    T m = q->m > r->m ? q->m : r->m;
    /* dot products to the common max, as in stats_add */
    if (r->m != -INFINITY && r->tot != 0.0 && m != r->m)
        r->dot += r->tot * ((double)m - (double)r->m);
    double qdot = q->dot;
    if (q->m != -INFINITY && q->tot != 0.0 && m != q->m)
        qdot += q->tot * ((double)m - (double)q->m);
    /* s = 0 terms stay 0 even where m = -inf would make the rescaling NaN */
    double s1 = r->s != 0.0 ? r->s * exp((double)r->m - (double)m) : 0.0;
    double s2 = q->s != 0.0 ? q->s * exp((double)q->m - (double)m) : 0.0;
    r->m = m;
    r->s = s1 + s2;
    r->dot += qdot;
    r->tot += q->tot;
    r->nan_seen |= q->nan_seen;
}

static void H(stats_finish)(H(rowstat) *r)
{
    if (r->m == -INFINITY || r->nan_seen)
        r->s = NAN; /* all -inf (or empty): 0/0 as in PyTorch; or a NaN */
    r->logs = log(r->s);
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

/* v[k] += d in double, rounded once; out of line so that the loops below keep their vector in a
 * register (an indexed store into it made GCC spill it to the stack on every iteration) */
static __attribute__((noinline)) V H(add_at)(V v, int64_t k, double d)
{
    v[k] = (T)((double)v[k] + d);
    return v;
}

/* out[hole - base] += hdelta when hole falls in this vector */
#define ADD_AT_HOLE(out, base)                                                                         \
    if (__builtin_expect((uint64_t)(hole - (base)) < (uint64_t)LANES, 0))                              \
        out = H(add_at)(out, hole - (base), hdelta);

/* One vector of the output pass below, at src + j. */
FS_INLINE V H(out_vec)(const T *src, const T *u, const T *w, int64_t j, V vm, T a, T alpha, T beta,
                       const int stored, const int has_u, const int has_w, const int has_c)
{
    V v = VLOAD(src + j);
    V ex = stored ? v : VEXPN(v - vm);
    if (!has_c)
        return ex * a;
    V c = has_u ? VLOAD(u + j) * alpha + beta : VSPLAT(beta);
    if (has_w)
        c *= VLOAD(w + j);
    return ex * a - c;
}

/* The same for the k < LANES elements at src + j (the head and tail of the output pass). */
FS_INLINE V H(out_part)(const T *src, const T *u, const T *w, int64_t j, int64_t k, V vm, T a, T alpha,
                        T beta, const int stored, const int has_u, const int has_w, const int has_c)
{
    V v = H(load_tail)(src + j, k, stored ? 0 : -INFINITY);
    V ex = stored ? v : VEXPN(v - vm);
    if (!has_c)
        return ex * a;
    V c = has_u ? H(load_tail)(u + j, k, 0) * alpha + beta : VSPLAT(beta);
    if (has_w)
        c *= H(load_tail)(w + j, k, 0);
    return ex * a - c;
}

/*
 * Output pass over n elements: g = E * a - (u ? alpha u + beta : beta) * (w ? w : 1),
 * where E = src (exponentials stored by pass 1) or exp(src - m) (recomputed),
 * and g[hole] += hdelta (the target's term of the cross-entropy gradient; hole
 * -1: none).  It is added before the store, never read back: reading back a
 * streamed line waits for it to reach memory.
 * Softmax is the case without the c term (has_c = 0).  The variants are
 * generated from one body by constant flags.
 */
FS_INLINE void H(output_body)(const T *src, T *g, const T *u, const T *w, int64_t n, T m, T a, T alpha,
                              T beta, const int stored, const int has_u, const int has_w, const int has_c,
                              const int nt, int64_t hole, double hdelta)
{
    const V vm = VSPLAT(m);
    int64_t j = 0;
    if (nt) {
        /* elements up to the first VBYTES-aligned output address, as a tail */
        int64_t head = (int64_t)(((uintptr_t)0 - (uintptr_t)g) % FS_VBYTES) / (int64_t)sizeof(T);
        if (head > n)
            head = n;
        if (head > 0) {
            V ex = H(out_part)(src, u, w, 0, head, vm, a, alpha, beta, stored, has_u, has_w, has_c);
            ADD_AT_HOLE(ex, 0)
            H(store_tail)(g, head, ex);
            j = head;
        }
    }
    /* the vector that holds the hole (if any) is done on its own, so that the loops test nothing
     * per vector; two vectors per iteration share the loop's instructions */
    const int64_t hv = hole >= j && hole < n ? j + (hole - j) / LANES * LANES : n;
#define OUT_VEC(k) H(out_vec)(src, u, w, k, vm, a, alpha, beta, stored, has_u, has_w, has_c)
#define PUT(k, v)                                                                                      \
    if (nt)                                                                                            \
        VSTREAM(g + (k), v);                                                                           \
    else                                                                                               \
        VSTORE(g + (k), v);
    for (int part = 0; part < 2; part++) {
        const int64_t stop = part == 0 ? hv : n;
        for (; j + 2 * LANES <= stop; j += 2 * LANES) {
            V o0 = OUT_VEC(j), o1 = OUT_VEC(j + LANES);
            PUT(j, o0)
            PUT(j + LANES, o1)
        }
        for (; j + LANES <= stop; j += LANES) {
            V o0 = OUT_VEC(j);
            PUT(j, o0)
        }
        if (part == 0 && hv + LANES <= n) {
            V o0 = OUT_VEC(hv);
            ADD_AT_HOLE(o0, hv)
            PUT(hv, o0)
            j = hv + LANES;
        }
    }
#undef OUT_VEC
#undef PUT
    if (j < n) {
        V ex = H(out_part)(src, u, w, j, n - j, vm, a, alpha, beta, stored, has_u, has_w, has_c);
        ADD_AT_HOLE(ex, j)
        H(store_tail)(g + j, n - j, ex);
    }
}
#undef ADD_AT_HOLE

#define OUTPUT_VARIANTS(stored, nt)                                                                    \
    if (!has_c)                                                                                        \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 0, 0, 0, nt, hole, hdelta);                       \
    else if (u && w)                                                                                   \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 1, 1, 1, nt, hole, hdelta);                       \
    else if (u)                                                                                        \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 1, 0, 1, nt, hole, hdelta);                       \
    else if (w)                                                                                        \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 0, 1, 1, nt, hole, hdelta);                       \
    else                                                                                               \
        H(output_body)(src, g, u, w, n, m, a, alpha, beta, stored, 0, 0, 1, nt, hole, hdelta);

static void H(output_range)(const T *src, T *g, const T *u, const T *w, int64_t n, T m, T a, T alpha, T beta,
                            int stored, int has_c, int nt, int64_t hole, double hdelta)
{
    if (stored && nt) {
        OUTPUT_VARIANTS(1, 1)
    } else if (stored) {
        OUTPUT_VARIANTS(1, 0)
    } else if (nt) {
        OUTPUT_VARIANTS(0, 1)
    } else {
        OUTPUT_VARIANTS(0, 0)
    }
}
#undef OUTPUT_VARIANTS

/*
 * What the output pass of a row does, decided from its statistics by the
 * kernel's plan function (pass 1 needs only the first group of fields).
 */
typedef struct {
    /* pass 1 */
    int want_dot;
    const T *u, *w;      /* probability-target row (or NULL) and class weights (or NULL) */
    double alpha, beta;
    int may_store;       /* the output pass writes exponentials: pass 1 may store them */
    T *ebuf;             /* scratch row for them (STORE_BYTES), or NULL */
    int nt;              /* write the output with streaming stores */
    int64_t hole;        /* output index that gets hdelta added (the target's gradient term), or -1 */
    double hdelta;
    /* output pass, set by the plan */
    int mode;            /* OUT_NONE, OUT_EXP: g = p * a - c_j, OUT_LOG: y = log p */
    double a;            /* multiplies p_j = exp(x_j - m) / s */
    T alpha_g, beta_g;   /* c_j = (u ? alpha_g u_j + beta_g : beta_g) * (w ? w_j : 1) */
    int has_c;
} H(rowop);

typedef void (*H(plan_fn))(H(rowop) *op, const H(rowstat) *st, void *ctx);

/* Output pass over the range [lo, lo + n) of a row whose statistics are final. */
static void H(output_plain)(const H(rowop) *op, const H(rowstat) *st, const T *x, T *g, int64_t lo, int64_t n)
{
    if (op->mode == OUT_NONE || n <= 0)
        return;
    if (st->s != st->s) { /* NaN row, as in PyTorch */
        for (int64_t j = 0; j < n; j++)
            g[lo + j] = (T)NAN;
        return;
    }
    if (op->mode == OUT_LOG) {
        H(write_shift)(x + lo, g + lo, n, st->m, (T)st->logs);
        return;
    }
    H(output_range)(x + lo, g + lo, op->u ? op->u + lo : NULL, op->w ? op->w + lo : NULL, n, st->m,
                    (T)(op->a / st->s), op->alpha_g, op->beta_g, 0, op->has_c, op->nt, op->hole - lo, op->hdelta);
}

/* One row on the calling thread. */
static void H(run_row)(const T *x, T *g, int64_t c, H(rowop) *op, H(plan_fn) plan, void *ctx)
{
    H(rowstat) st;
    H(stats_init)(&st);
    T *e = op->may_store && op->ebuf && g && c * (int64_t)sizeof(T) <= STORE_BYTES ? op->ebuf : NULL;
    H(stats_add)(&st, x, c, op->want_dot, op->u, op->w, op->alpha, op->beta, e, 0);
    H(stats_finish)(&st);
    plan(op, &st, ctx);
    if (!st.stored || op->mode != OUT_EXP || st.s != st.s) {
        H(output_plain)(op, &st, x, g, 0, c);
        return;
    }
    /* exponentials stored per block relative to that block's running max: rescale */
    for (int64_t b0 = 0; b0 < c; b0 += BLOCK) {
        int64_t len = c - b0 < BLOCK ? c - b0 : BLOCK;
        T ab = (T)(op->a / st.s * exp((double)st.bm[b0 / BLOCK] - (double)st.m));
        H(output_range)(e + b0, g + b0, op->u ? op->u + b0 : NULL, op->w ? op->w + b0 : NULL, len, st.m, ab,
                        op->alpha_g, op->beta_g, 1, op->has_c, op->nt, op->hole - b0, op->hdelta);
    }
}

/*
 * A long row (at least fs_tuning.split_min_classes elements) in pieces of a size that
 * depends only on that threshold, never on the thread count: each piece reduced on its
 * own, the partial (max, sum) pairs merged in piece order (sums rescaled to the common
 * max), then the output written piece by piece.  The pieces go to up to nt threads as
 * they free up (a row alone in its call), or all to the calling thread (rows spread over
 * the threads); the result is the same either way, bit for bit.
 */
typedef struct {
    const T *x;
    T *g;
    int64_t c, piece, npieces;
    H(rowop) *op;
    H(rowstat) *parts, total;
} H(pieces);

static int64_t H(piece_length)(void)
{
    /* a quarter of the threshold in whole blocks: 8 blocks (16384 elements) by default */
    const int64_t blocks = (fs_tuning.split_min_classes + BLOCK - 1) / BLOCK / 4;
    return (blocks > 1 ? blocks : 1) * BLOCK;
}

static int H(piece_stats)(fs_par *p, void *ctx)
{
    H(pieces) *P = (H(pieces) *)ctx;
    const H(rowop) *op = P->op;
    for (int64_t k; (k = fs_par_next(p)) >= 0;) {
        const int64_t lo = k * P->piece, hi = lo + P->piece < P->c ? lo + P->piece : P->c;
        H(stats_init)(&P->parts[k]);
        H(stats_add)(&P->parts[k], P->x + lo, hi - lo, op->want_dot, op->u ? op->u + lo : NULL,
                     op->w ? op->w + lo : NULL, op->alpha, op->beta, NULL, 0);
    }
    return FS_OK;
}

static int H(piece_output)(fs_par *p, void *ctx)
{
    H(pieces) *P = (H(pieces) *)ctx;
    /* last pieces first: what pass 1 read last may still be in the shared cache */
    for (int64_t k; (k = fs_par_next(p)) >= 0;) {
        const int64_t lo = (P->npieces - 1 - k) * P->piece, hi = lo + P->piece < P->c ? lo + P->piece : P->c;
        H(output_plain)(P->op, &P->total, P->x, P->g, lo, hi - lo);
    }
    if (P->op->nt)
        FS_SFENCE();
    return FS_OK;
}

static int H(run_row_pieces)(const T *x, T *g, int64_t c, H(rowop) *op, H(plan_fn) plan, void *ctx, int nt)
{
    H(pieces) P;
    P.x = x;
    P.g = g;
    P.c = c;
    P.op = op;
    P.piece = H(piece_length)();
    P.npieces = (c + P.piece - 1) / P.piece;
    P.parts = (H(rowstat) *)malloc((size_t)P.npieces * sizeof(H(rowstat)));
    if (!P.parts)
        return FS_ENOMEM;
    fs_parallel(nt, P.npieces, H(piece_stats), &P);
    P.total = P.parts[0];
    for (int64_t k = 1; k < P.npieces; k++)
        H(stats_merge)(&P.total, &P.parts[k]);
    H(stats_finish)(&P.total);
    plan(op, &P.total, ctx);
    fs_parallel(nt, P.npieces, H(piece_output), &P);
    free(P.parts);
    return FS_OK;
}

/* ---------------------------------------------------------------- kernels' plans */

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

/* ---------------------------------------------------------------- batch driver */

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

/* Scratch row for gathered (non unit class stride) rows; NULL when not needed. */
static int H(scratch)(T **buf, int needed, int64_t c)
{
    *buf = NULL;
    if (!needed || c == 0)
        return FS_OK;
    *buf = (T *)malloc((size_t)c * sizeof(T));
    return *buf ? FS_OK : FS_ENOMEM;
}

typedef struct {
    int kind;
    const fs_batch *b;
    const T *x;
    const fs_strides *xs;
    T *y;                    /* softmax output or gradient (NULL: none) */
    const fs_strides *ys;
    T *lse;                  /* logsumexp output */
    const fs_ce_args *ce;
    double *loss_rows;
    double wsum;
    int nt;                  /* streaming stores for the output (set by run) */
} H(job);

/* What a row needs between its setup and its finish (ctx points into it). */
typedef struct {
    H(rowop) op;
    H(plan_fn) plan;
    void *ctx;
    double lse;
    H(ce_ctx) ce;
    int done; /* an ignored row, already written */
} H(rowstate);

/*
 * Per-kernel setup of row n: its plan, the cross-entropy target and options.
 * xc is the contiguous row, u its probability-target row (or NULL), yr the
 * output row in memory (for the zeros of an ignored row).
 */
static int H(row_begin)(const H(job) *J, int64_t n, const T *xc, const T *u, T *yr, int64_t ys_cls, int want_out,
                        H(rowstate) *rs)
{
    const int64_t c = J->b->n_classes;
    /* field by field: a memset of the struct (rep stos) cost more than a short row */
    H(rowop) *op0 = &rs->op;
    op0->want_dot = op0->may_store = op0->nt = op0->mode = op0->has_c = 0;
    op0->u = op0->w = NULL;
    op0->ebuf = NULL;
    op0->alpha = op0->beta = op0->hdelta = op0->a = 0.0;
    op0->hole = -1;
    op0->alpha_g = op0->beta_g = 0;
    rs->ctx = NULL;
    rs->done = 0;
    switch (J->kind) {
    case KIND_SOFTMAX:
        rs->op.may_store = 1;
        rs->plan = H(plan_softmax);
        return FS_OK;
    case KIND_LOG_SOFTMAX:
        rs->plan = H(plan_log_softmax);
        return FS_OK;
    case KIND_LOGSUMEXP:
        rs->plan = H(plan_logsumexp);
        rs->ctx = &rs->lse;
        return FS_OK;
    default:
        break;
    }
    const fs_ce_args *a = J->ce;
    H(ce_ctx) *ce = &rs->ce;
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
    op->may_store = 1;
    rs->plan = H(plan_cross_entropy);
    rs->ctx = ce;
    if (ce->prob) {
        op->u = u;
        op->want_dot = 1;
        op->alpha = ce->alpha;
        op->beta = ce->beta;
    } else {
        const int64_t y = a->target[n];
        if (y == a->ignore_index) {
            J->loss_rows[n] = 0.0;
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
    }
    return FS_OK;
}

/* The logsumexp of row xc computed as v, with torch.logsumexp's special values: a row of
 * all -inf gives -inf, one with +inf gives +inf, one with NaN gives NaN. */
static T H(lse_value)(const T *xc, int64_t c, T v)
{
    if (!(v - v == 0)) {
        T m = H(block_max)(xc, c);
        v = H(block_has_nan)(xc, c) ? (T)NAN : (m == INFINITY || m == -INFINITY) ? m : v;
    }
    return v;
}

/* Per-kernel finish of row n (xc unchanged for logsumexp). */
static void H(row_end)(const H(job) *J, int64_t n, const T *xc, const H(rowstate) *rs)
{
    const int64_t c = J->b->n_classes;
    if (J->kind == KIND_LOGSUMEXP) {
        J->lse[n] = H(lse_value)(xc, c, (T)rs->lse);
    } else if (J->kind == KIND_CROSS_ENTROPY) {
        J->loss_rows[n] = rs->ce.loss;
    }
}

/* One row n of the batch; bx, bu: scratch rows (used when the class stride is not 1). */
static int H(process_row)(const H(job) *J, int64_t n, T *bx, T *bu, T *eb, int split_nt)
{
    const int64_t c = J->b->n_classes;
    const int64_t o = n / J->b->n_inner, i = n % J->b->n_inner;
    const T *xr = J->x + o * J->xs->outer + i * J->xs->inner;
    T *yr = J->y ? J->y + o * J->ys->outer + i * J->ys->inner : NULL;
    const int gx = J->xs->cls != 1, gy = yr && J->ys->cls != 1;
    const T *xc = xr, *u = NULL;
    if (gx) {
        H(gather)(bx, xr, c, J->xs->cls);
        xc = bx;
    }
    T *yc = gy ? bx : yr; /* in place in the scratch row: each element is read before it is written */
    if (J->kind == KIND_CROSS_ENTROPY && J->ce->prob) {
        const fs_strides *ps = &J->ce->prob_strides;
        u = (const T *)J->ce->prob + o * ps->outer + i * ps->inner;
        if (ps->cls != 1) {
            H(gather)(bu, u, c, ps->cls);
            u = bu;
        }
    }
    H(rowstate) rs;
    int status = H(row_begin)(J, n, xc, u, yr, yr ? J->ys->cls : 0, yr != NULL, &rs);
    if (status != FS_OK || rs.done)
        return status;
    rs.op.ebuf = eb;
    rs.op.nt = J->nt && !gy;
    if (c >= fs_tuning.split_min_classes)
        status = H(run_row_pieces)(xc, yc, c, &rs.op, rs.plan, rs.ctx, split_nt);
    else
        H(run_row)(xc, yc, c, &rs.op, rs.plan, rs.ctx);
    if (status != FS_OK)
        return status;
    H(row_end)(J, n, xc, &rs);
    if (gy)
        H(scatter)(yr, J->ys->cls, bx, c);
    return FS_OK;
}

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
    return !(J->kind == KIND_CROSS_ENTROPY && J->ce->prob && J->ce->prob_strides.cls != 1);
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
    const int prob = ce_kind && J->ce->prob;
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
        up[k] = prob ? (const T *)J->ce->prob + o * J->ce->prob_strides.outer + i * J->ce->prob_strides.inner
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
            const double mk = (double)m[k], logs_k = (double)logs[k];
            double loss = alpha * wy[k] * ((mk - xy[k]) + logs_k);
            if (smoothing) {
                double dot = 0.0, tot = 0.0;
                H(block_dot)(xp[k], NULL, w, c, mk == -INFINITY ? 0.0 : mk, 0.0, 0.0, &dot, &tot);
                loss += beta * (J->wsum * logs_k + dot);
            }
            double ak = scale * (alpha * wy[k] + (smoothing ? beta * J->wsum : 0.0));
            H(add_z_loss)(a->z_loss, wy[k], mk + logs_k, scale, &loss, &ak);
            J->loss_rows[n0 + k] = loss;
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
    /* a last chunk of two classes goes by pairs (see load_pairs in simd.h) */
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

/*
 * Software pipeline over rows whose output is written (softmax, gradient):
 * while pass 1 reads block b of row n, the output pass writes block b of row
 * n - 1, so that the reads of one row and the writes of the previous one
 * share the memory bus instead of taking turns.  Rows of at most
 * STORE_BYTES with unit class strides.  One scratch row of exponentials
 * serves both rows: block b of row n - 1 is written out before block b of
 * row n replaces it, so that only one row's worth stays in L2.
 */
typedef struct {
    int active;
    int64_t n;
    H(rowstate) rs; /* its plan's output coefficients in rs.op */
    H(rowstat) st;
    const T *x;
    T *g;
} H(pending);

/* Output blocks [b_from, b_to) of the pending row p from the scratch row e. */
static void H(pending_blocks)(const H(pending) *p, const T *e, int64_t c, int64_t b_from, int64_t b_to)
{
    const H(rowop) *op = &p->rs.op;
    for (int64_t b = b_from; b < b_to && b * BLOCK < c; b++) {
        const int64_t b0 = b * BLOCK, len = c - b0 < BLOCK ? c - b0 : BLOCK;
        if (p->st.s != p->st.s) { /* NaN row, as in PyTorch */
            for (int64_t j = 0; j < len; j++)
                p->g[b0 + j] = (T)NAN;
            continue;
        }
        T ab = (T)(op->a / p->st.s * exp((double)p->st.bm[b] - (double)p->st.m));
        H(output_range)(e + b0, p->g + b0, op->u ? op->u + b0 : NULL, op->w ? op->w + b0 : NULL, len, p->st.m,
                        ab, op->alpha_g, op->beta_g, 1, op->has_c, op->nt,
                        op->hole - b0, op->hdelta);
    }
}

static int H(pipeline_ok)(const H(job) *J)
{
    const int64_t c = J->b->n_classes;
    /* rows from split_min_classes on are reduced in pieces (run_row_pieces), whichever the path */
    if (!J->y || J->xs->cls != 1 || J->ys->cls != 1 || c * (int64_t)sizeof(T) > STORE_BYTES ||
        c >= fs_tuning.split_min_classes)
        return 0;
    if (J->kind == KIND_SOFTMAX)
        return 1;
    return J->kind == KIND_CROSS_ENTROPY && !(J->ce->prob && J->ce->prob_strides.cls != 1);
}

static int H(run_pipelined)(const H(job) *J, int64_t n_lo, int64_t n_hi, T *ebuf)
{
    const int64_t c = J->b->n_classes, n_inner = J->b->n_inner;
    const int64_t nblocks = (c + BLOCK - 1) / BLOCK;
    const int prob = J->kind == KIND_CROSS_ENTROPY && J->ce->prob;
    /* two slots used in turn: the current row's and the pending one's (never copied: a struct
     * copy right after the plan's scalar stores stalled on store forwarding) */
    H(pending) slot[2];
    slot[0].active = slot[1].active = 0;
    int cur = 0;
    for (int64_t n = n_lo; n < n_hi; n++) {
        const int64_t o = n / n_inner, i = n % n_inner;
        H(pending) *R = &slot[cur], *P = &slot[cur ^ 1];
        R->x = J->x + o * J->xs->outer + i * J->xs->inner;
        R->g = J->y + o * J->ys->outer + i * J->ys->inner;
        const T *ur = prob ? (const T *)J->ce->prob + o * J->ce->prob_strides.outer + i * J->ce->prob_strides.inner
                           : NULL;
        H(rowstate) *rs = &R->rs;
        int status = H(row_begin)(J, n, R->x, ur, R->g, 1, 1, rs);
        if (status != FS_OK)
            return status;
        if (rs->done)
            continue;
        rs->op.nt = J->nt;
        R->n = n;
        H(stats_init)(&R->st);
        for (int64_t b = 0; b < nblocks; b++) {
            const int64_t b0 = b * BLOCK, len = c - b0 < BLOCK ? c - b0 : BLOCK;
            /* block b of the pending row's exponentials is consumed before this row's replace it */
            if (P->active)
                H(pending_blocks)(P, ebuf, c, b, b + 1);
            H(stats_add)(&R->st, R->x + b0, len, rs->op.want_dot, rs->op.u ? rs->op.u + b0 : NULL,
                         rs->op.w ? rs->op.w + b0 : NULL, rs->op.alpha, rs->op.beta, ebuf + b0, b);
        }
        if (P->active) {
            H(row_end)(J, P->n, P->x, &P->rs);
            P->active = 0;
        }
        H(stats_finish)(&R->st);
        rs->plan(&rs->op, &R->st, rs->ctx);
        R->active = 1;
        cur ^= 1;
    }
    H(pending) *P = &slot[cur ^ 1];
    if (P->active) {
        H(pending_blocks)(P, ebuf, c, 0, nblocks);
        H(row_end)(J, P->n, P->x, &P->rs);
    }
    return FS_OK;
}

/* Scratch rows of one thread: gathered logits/output, gathered targets, exponentials. */
typedef struct {
    T *bx, *bu, *eb;
} H(scratchset);

static int H(scratch_alloc)(H(scratchset) *w, const H(job) *J)
{
    const int64_t c = J->b->n_classes;
    const int need_bx = J->xs->cls != 1 || (J->y && J->ys->cls != 1);
    const int need_bu = J->kind == KIND_CROSS_ENTROPY && J->ce->prob && J->ce->prob_strides.cls != 1;
    const int need_eb = J->y && J->kind != KIND_LOG_SOFTMAX && c * (int64_t)sizeof(T) <= STORE_BYTES;
    int s1 = H(scratch)(&w->bx, need_bx, c);
    int s2 = H(scratch)(&w->bu, need_bu, c);
    int s3 = H(scratch)(&w->eb, need_eb, c);
    return s1 == FS_OK && s2 == FS_OK && s3 == FS_OK ? FS_OK : FS_ENOMEM;
}

static void H(scratch_free)(H(scratchset) *w)
{
    free(w->bx);
    free(w->bu);
    free(w->eb);
}

/* A batch job's split into runs for fs_parallel: the runs of tiles, of pipelined rows or of
 * rows that the threads take as they free up. */
typedef struct {
    const H(job) *J;
    int64_t nrows, ntiles, per, nruns;
    int dense, split_nt;
} H(runs);

/* Short rows: runs of `per` tiles of LANES rows. */
static int H(tile_runs)(fs_par *p, void *ctx)
{
    const H(runs) *R = (const H(runs) *)ctx;
    const H(job) *J = R->J;
    const int64_t c = J->b->n_classes, nrows = R->nrows, ntiles = R->ntiles, per = R->per;
    /* the dense cross-entropy's scratch for a run: sums of exponentials, then weights */
    const int dense_ce = R->dense && J->kind == KIND_CROSS_ENTROPY;
    T *sums = dense_ce ? (T *)malloc((size_t)(2 * per * LANES) * sizeof(T)) : NULL;
    int status = dense_ce && !sums ? FS_ENOMEM : FS_OK;
    for (int64_t run; status == FS_OK && (run = fs_par_next(p)) >= 0;) {
        const int64_t lo = run * per, hi = lo + per < ntiles ? lo + per : ntiles;
        /* a dense tile reads up to LANES - 1 elements past its rows (and never uses them):
         * within the array, and when the output overwrites the input, within this run */
        const int64_t row_hi = hi * LANES < nrows ? hi * LANES : nrows;
        const int64_t end = (J->y == J->x ? row_hi : nrows) * c;
        int64_t tile = lo;
        const int clean = dense_ce && (J->ce->targets_checked ||
                                       H(targets_clean)(J->ce->target + lo * LANES, row_hi - lo * LANES, c,
                                                        J->ce->ignore_index));
        /* dense: the tiles with (tile + 1) LANES c + LANES <= end */
        int64_t dense_hi = R->dense && end >= LANES ? (end - LANES) / (LANES * c) : lo;
        if (dense_hi > hi)
            dense_hi = hi;
        for (; tile < dense_hi && status == FS_OK; tile++) {
            const int64_t k = (tile - lo) * LANES;
            status = H(process_tile_dense)(J, tile * LANES, sums ? sums + k : NULL,
                                           sums ? sums + per * LANES + k : NULL, clean);
        }
        if (sums && status == FS_OK)
            H(dense_losses)(J, lo * LANES, (tile - lo) * LANES, sums, sums + per * LANES);
        for (; tile < hi && status == FS_OK; tile++) {
            const int64_t n0 = tile * LANES;
            status = H(process_tile)(J, n0, nrows - n0 < LANES ? (int)(nrows - n0) : LANES);
        }
    }
    free(sums);
    return status;
}

/* Rows that fit the scratch row: runs of `per` rows, each run pipelined. */
static int H(pipelined_runs)(fs_par *p, void *ctx)
{
    const H(runs) *R = (const H(runs) *)ctx;
    const H(job) *J = R->J;
    T *ebuf = (T *)malloc((size_t)J->b->n_classes * sizeof(T));
    int status = ebuf ? FS_OK : FS_ENOMEM;
    for (int64_t run; status == FS_OK && (run = fs_par_next(p)) >= 0;) {
        const int64_t lo = run * R->per, hi = lo + R->per < R->nrows ? lo + R->per : R->nrows;
        status = H(run_pipelined)(J, lo, hi, ebuf);
    }
    free(ebuf);
    if (J->nt)
        FS_SFENCE();
    return status;
}

/* Any other rows: runs of `per` rows, one row at a time (long rows in pieces, split over
 * split_nt threads when the rows are done one after the other). */
static int H(row_runs)(fs_par *p, void *ctx)
{
    const H(runs) *R = (const H(runs) *)ctx;
    const H(job) *J = R->J;
    H(scratchset) w;
    int status = H(scratch_alloc)(&w, J);
    for (int64_t run; status == FS_OK && (run = fs_par_next(p)) >= 0;) {
        const int64_t lo = run * R->per, hi = lo + R->per < R->nrows ? lo + R->per : R->nrows;
        for (int64_t n = lo; n < hi && status == FS_OK; n++)
            status = H(process_row)(J, n, w.bx, w.bu, w.eb, R->split_nt);
    }
    H(scratch_free)(&w);
    if (J->nt)
        FS_SFENCE();
    return status;
}

static int H(run)(const H(job) *Jin)
{
    H(job) job = *Jin;
    const H(job) *J = &job;
    const int64_t c = J->b->n_classes, nrows = J->b->n_outer * J->b->n_inner;
    int nt = fs_plan_threads(nrows * (c > 0 ? c : 1));
    if (nrows <= 0)
        return FS_OK;
    H(runs) R = {J, nrows, 0, 0, 0, 0, 1};
    if (H(tile_ok)(J)) {
        R.ntiles = (nrows + LANES - 1) / LANES;
        R.dense = H(dense_ok)(J);
        if (nt > R.ntiles)
            nt = (int)R.ntiles;
        R.per = fs_run_length(R.ntiles, nt, 4);
        R.nruns = (R.ntiles + R.per - 1) / R.per;
        return fs_parallel(nt, R.nruns, H(tile_runs), &R);
    }
    /* outputs larger than the caches go to memory with streaming stores, unless their rows are short
     * and not whole cache lines: then every row boundary streams two partial lines, which cost more
     * than the reads for ownership that normal stores add (rows of 65..256 floats ran 2x slower) */
    const int64_t row_bytes = c * (int64_t)sizeof(T);
    job.nt = J->y && nrows * row_bytes >= fs_tuning.stream_min_bytes &&
             (row_bytes >= NT_MIN_ROW_BYTES || row_bytes % 64 == 0);
    if (H(pipeline_ok)(J) && nrows >= 2) {
        if (nt > nrows / 2)
            nt = (int)(nrows / 2); /* at least two rows per thread, or there is nothing to overlap */
        if (nt < 1)
            nt = 1;
        R.per = fs_run_length(nrows, nt, 2); /* a run pipelines its rows */
        R.nruns = (nrows + R.per - 1) / R.per;
        return fs_parallel(nt, R.nruns, H(pipelined_runs), &R);
    }
    if (nrows < nt) {
        /* fewer rows than threads: long rows one after the other, each split over the threads */
        R.split_nt = c >= fs_tuning.split_min_classes ? nt : 1;
        nt = c >= fs_tuning.split_min_classes ? 1 : (int)nrows;
    }
    R.per = fs_run_length(nrows, nt, 1);
    R.nruns = (nrows + R.per - 1) / R.per;
    return fs_parallel(nt, R.nruns, H(row_runs), &R);
}

int K(softmax)(const fs_batch *b, const T *x, const fs_strides *xs, T *y, const fs_strides *ys)
{
    H(job) J = {KIND_SOFTMAX, b, x, xs, y, ys, NULL, NULL, NULL, 0.0, 0};
    return H(run)(&J);
}

int K(log_softmax)(const fs_batch *b, const T *x, const fs_strides *xs, T *y, const fs_strides *ys)
{
    H(job) J = {KIND_LOG_SOFTMAX, b, x, xs, y, ys, NULL, NULL, NULL, 0.0, 0};
    return H(run)(&J);
}

int K(logsumexp)(const fs_batch *b, const T *x, const fs_strides *xs, T *out)
{
    H(job) J = {KIND_LOGSUMEXP, b, x, xs, NULL, xs, out, NULL, NULL, 0.0, 0};
    return H(run)(&J);
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

#undef BLOCK
#undef UNROLL
#undef SUB_ITERS
#undef PREFETCH_BYTES
#undef STORE_BYTES
#undef STORE_BLOCKS
#undef RESCALE_LIMIT
#undef SMALL_C
