/* The softmax family, one dtype (see family.h): one row, or one long row in pieces. */

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
    int no_logs;         /* the plan reads no log(s) (the op's no_logs) */
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
                    op->a / st->s, op->alpha_g, op->beta_g, 0, op->has_c, op->nt, op->hole - lo, op->hdelta);
}

/* Output pass over the range [lo, lo + n) of a row from its stored exponentials e, block by
 * block, each relative to its block's max bm[k] (k from the range's first block): rescaled to
 * the row's max (no libm call for the usual block whose max is the row's).  The rows that keep
 * their exponentials (run_row), the pipelined rows and the rows in pieces. */
static void H(output_stored)(const H(rowop) *op, const H(rowstat) *st, const T *bm, const T *e, T *g, int64_t lo,
                             int64_t n)
{
    for (int64_t b0 = lo; b0 < lo + n; b0 += BLOCK) {
        const int64_t len = lo + n - b0 < BLOCK ? lo + n - b0 : BLOCK;
        const T m = bm[(b0 - lo) / BLOCK];
        const double ab = op->a / st->s * (m == st->m ? 1.0 : exp((double)m - (double)st->m));
        H(output_range)(e + b0, g + b0, op->u ? op->u + b0 : NULL, op->w ? op->w + b0 : NULL, len, st->m, ab,
                        op->alpha_g, op->beta_g, 1, op->has_c, op->nt, op->hole - b0, op->hdelta);
    }
}

/* One row on the calling thread. */
static void H(run_row)(const T *x, T *g, int64_t c, H(rowop) *op, H(plan_fn) plan, void *ctx)
{
    H(rowstat) st;
    H(stats_init)(&st);
    T *e = op->may_store && op->ebuf && g && c * (int64_t)sizeof(T) <= STORE_BYTES ? op->ebuf : NULL;
    H(stats_add)(&st, x, c, op->want_dot, op->u, op->w, op->alpha, op->beta, e, 0);
    H(stats_finish)(&st, op->no_logs);
    plan(op, &st, ctx);
    if (!st.stored || op->mode != OUT_EXP || st.s != st.s) {
        H(output_plain)(op, &st, x, g, 0, c);
        return;
    }
    /* exponentials stored per block relative to that block's running max */
    H(output_stored)(op, &st, st.bm, e, g, 0, c);
}

/*
 * A long row (at least fs_tuning.split_min_classes elements) in pieces of a size that
 * depends only on that threshold, never on the thread count: each piece reduced on its
 * own, the partial (max, sum) pairs merged in piece order (sums rescaled to the common
 * max), then the output written piece by piece.  The pieces go to up to nt threads as
 * they free up (a row alone in its call), or all to the calling thread (rows spread over
 * the threads); the result is the same either way, bit for bit.
 * Rows of at most PIECES_STORE_BYTES whose output is made of exponentials keep them, as the
 * shorter rows do, in a scratch of the row's length (op->ebuf, which the driver sizes for
 * them: pieces_store), each block relative to its own max; the output pass then rescales
 * them instead of recomputing them from x.  The exponentials cost more than the scratch's
 * trips through L2 and L3: 2^26 floats in rows of 10^5 and 10^6 classes, Zen 3, ran
 * 1.1-1.15x faster on two threads and 1.15-1.2x on one (softmax and the cross-entropy; 2^20 to
 * 2^22 floats within the noise).  Longer rows recompute: their scratch would go to memory and
 * back.
 */
#define PIECES_STORE_BYTES (8 << 20)

typedef struct {
    const T *x;
    T *g, *e; /* e: the stored exponentials, or NULL */
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

/* 1 when rows of c classes in pieces keep their exponentials (the scratch the driver allocates
 * for them, and a piece's block maxima, rowstat.bm, within their bounds) */
static int H(pieces_store)(int64_t c)
{
    return c * (int64_t)sizeof(T) <= PIECES_STORE_BYTES && H(piece_length)() / BLOCK <= STORE_BLOCKS;
}

static int H(piece_stats)(fs_par *p, void *ctx)
{
    H(pieces) *P = (H(pieces) *)ctx;
    const H(rowop) *op = P->op;
    for (int64_t k; (k = fs_par_next(p)) >= 0;) {
        const int64_t lo = k * P->piece, hi = lo + P->piece < P->c ? lo + P->piece : P->c;
        H(stats_init)(&P->parts[k]);
        H(stats_add)(&P->parts[k], P->x + lo, hi - lo, op->want_dot, op->u ? op->u + lo : NULL,
                     op->w ? op->w + lo : NULL, op->alpha, op->beta, P->e ? P->e + lo : NULL, 0);
    }
    return FS_OK;
}

static int H(piece_output)(fs_par *p, void *ctx)
{
    H(pieces) *P = (H(pieces) *)ctx;
    /* last pieces first: what pass 1 read last may still be in the shared cache */
    for (int64_t k; (k = fs_par_next(p)) >= 0;) {
        const int64_t lo = (P->npieces - 1 - k) * P->piece, hi = lo + P->piece < P->c ? lo + P->piece : P->c;
        const H(rowop) *op = P->op;
        const H(rowstat) *st = &P->total, *part = &P->parts[P->npieces - 1 - k];
        if (!P->e || op->mode != OUT_EXP || st->s != st->s) {
            H(output_plain)(op, st, P->x, P->g, lo, hi - lo);
            continue;
        }
        H(output_stored)(op, st, part->bm, P->e, P->g, lo, hi - lo); /* the piece's own block maxima */
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
    P.e = op->may_store && op->ebuf && g && H(pieces_store)(c) ? op->ebuf : NULL;
    P.piece = H(piece_length)();
    P.npieces = (c + P.piece - 1) / P.piece;
    P.parts = (H(rowstat) *)malloc((size_t)P.npieces * sizeof(H(rowstat)));
    if (!P.parts)
        return FS_ENOMEM;
    fs_parallel(nt, P.npieces, H(piece_stats), &P);
    P.total = P.parts[0];
    for (int64_t k = 1; k < P.npieces; k++)
        H(stats_merge)(&P.total, &P.parts[k]);
    H(stats_finish)(&P.total, op->no_logs);
    plan(op, &P.total, ctx);
    fs_parallel(nt, P.npieces, H(piece_output), &P);
    free(P.parts);
    return FS_OK;
}
