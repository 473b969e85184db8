/* The softmax family, one dtype (see family.h): pass 1, the statistics of a row. */

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

/* no_logs: the row's plan reads no log(s) (softmax; a libm log cost 12% of a 100-class row) */
static void H(stats_finish)(H(rowstat) *r, int no_logs)
{
    if (r->m == -INFINITY || r->nan_seen)
        r->s = NAN; /* all -inf (or empty): 0/0 as in PyTorch; or a NaN */
    r->logs = no_logs ? NAN : log(r->s);
}
