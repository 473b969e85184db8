/* The softmax family, one dtype (see family.h): rows of SMALL_C + 1 to GROUP_C classes, GROUP_R
 * rows at a time (the path is chosen in driver.h). */

/*
 * Rows too long for the tiles and too short to amortise a row's own setup (33 to 384
 * classes): the row path's per-row costs (its block logic, a chain of scalar
 * reductions, a libm log) were 2-4x a 100-class row's arithmetic.  Here GROUP_R rows go
 * through each pass together, so that their max and sum chains overlap:
 *   max     the rows' maxima, GROUP_R independent vector chains;
 *   sum     exp(x - m) of each row into a scratch block (OUT_EXP), and its sum (read back from
 *           the block), accumulated in T for at most SUB_ITERS vectors, then in double (the
 *           accumulation note of family.h);
 *   log     log(s) of the GROUP_R rows in one vector call (ops that read it);
 *   output  the op's plan and the output pass of each row (row.h), from the scratch block.
 * A row's result depends only on its own elements, so grouping (and the thread count) changes
 * no bit.  Rows whose op needs more than (max, sum) -- weighted sums for label smoothing or
 * probability targets -- take the row path (run_row) from the same setup.
 * Up to GROUP_C classes the groups beat the pipelined rows.  Longer rows take the pipeline,
 * whose output streams from 1024-byte rows: four rows of x, y and the scratch no longer fit L1
 * (48 KB) from about 850 classes, and with the pipeline's output streamed (it was not, below
 * 4096-byte rows, so that the groups ran 1.6x faster at 1000 classes) it ran 1.05-1.17x faster
 * than the groups at 500-1000 classes out of cache and up to 1.3x in cache, AVX2 and AVX-512
 * (Xeon, one thread and two).
 */
/*
 * Large outputs of C-contiguous groups (stage): rows of 33-384 classes hold too few whole
 * cache lines to stream row by row (the partial lines at each row's ends, stored normally,
 * cost more than the streaming saved; driver.h), but a group's GROUP_R rows are one
 * contiguous span.  Its rows are written into a staging block laid out as the span is, at the
 * same offset within a cache line, and the span's whole lines then go to memory with streaming
 * stores (group_stream): only the span's first and last lines, shared with the neighbouring
 * groups, are stored normally.  A line written by streaming stores is never read first, so
 * memory carries 8 bytes an element instead of 12.  Zen 3, 2^26 floats, one thread and two:
 * softmax and CE 1.05-1.3x faster at 128-300 classes (from 256, the rows had streamed one by
 * one); at 65-100 classes not faster (the groups are bound by their arithmetic there): rows
 * under GROUP_STAGE_MIN_BYTES stay unstaged.
 */
#define GROUP_STAGE_MIN_BYTES 512
#define GROUP_C 384
#define GROUP_R 4
/* the loops over a group's rows keep each row's vectors in registers only when unrolled */
#define GROUP_UNROLL _Pragma("GCC unroll 4")
#define GROUP_RPAD (GROUP_R > FS_LANES_F64 ? GROUP_R : FS_LANES_F64)

static int H(group_ok)(const H(job) *J)
{
    const int64_t c = J->b->n_classes;
    return c > SMALL_C && c <= GROUP_C && J->xs->cls == 1 && (!J->y || J->ys->cls == 1) && !J->u;
}

/* Elements per row of the scratch block: whole vectors */
FS_INLINE int64_t H(group_stride)(int64_t c) { return (c + LANES - 1) / LANES * LANES; }

/* y = e a (softmax; the cross-entropy's gradient without smoothing), y[hole] += hdelta in double
 * rounded once, as output_range does; normal stores (the one-hot term is stored after its
 * vector) */
static void H(group_scale)(const T *e, T *y, int64_t c, double a_d, int64_t hole, double hdelta)
{
    const T a = (T)a_d;
    if (__builtin_expect(!isfinite(a) && isfinite(a_d), 0)) { /* beyond T's range: see output_huge */
        H(output_range)(e, y, NULL, NULL, c, 0, a_d, 0, 0, 1, 0, 0, hole, hdelta);
        return;
    }
    int64_t j = 0;
    for (; j + 2 * LANES <= c; j += 2 * LANES) {
        const V v0 = VLOAD(e + j) * a, v1 = VLOAD(e + j + LANES) * a;
        VSTORE(y + j, v0);
        VSTORE(y + j + LANES, v1);
    }
    for (; j + LANES <= c; j += LANES)
        VSTORE(y + j, VLOAD(e + j) * a);
    if (j < c)
        H(store_tail)(y + j, c - j, VLOAD(e + j) * a); /* e holds whole vectors */
    if (hole >= 0)
        y[hole] = (T)((double)(e[hole] * a) + hdelta);
}

/* The span y[0 .. len) from its staging copy s, which is at the same offset within a 64-byte
 * line as y: its whole lines streamed, the partial lines at its ends stored normally. */
static void H(group_stream)(T *y, const T *s, int64_t len)
{
    char *const b = (char *)y, *const end = (char *)(y + len);
    char *const lo = (char *)(((uintptr_t)b + 63) & ~(uintptr_t)63), *const hi = (char *)((uintptr_t)end & ~(uintptr_t)63);
    if (lo >= hi) {
        memcpy(b, s, (size_t)(end - b));
        return;
    }
    memcpy(b, s, (size_t)(lo - b));
    const T *src = s + (lo - b) / (int64_t)sizeof(T);
    for (T *q = (T *)lo; (char *)q < hi; q += LANES, src += LANES)
        VSTREAM(q, VLOAD(src));
    memcpy(hi, src, (size_t)(end - hi));
}

/* The rows [n, n + nr) of a run, nr <= GROUP_R; e: the scratch block (GROUP_R rows); stg: the
 * staging block (J->stage), GROUP_R rows and a line. */
static int H(group_rows)(const H(job) *J, int64_t n, int nr, T *e, T *stg)
{
    const int64_t c = J->b->n_classes, n_inner = J->b->n_inner, es = H(group_stride)(c);
    const int want_out = J->y != NULL, store = want_out && J->op->out == OUT_EXP;
    const T *x[GROUP_R];
    T *y[GROUP_R];
    H(rowstate) rs[GROUP_R];
    int live = 0; /* rows of the group that take the passes below, one bit each */
    /* the op's group_row takes the whole row after the passes (its setup included) */
    const int direct = J->op->group_row && J->op->group_row_ok(J);
    /* staged: the group's rows (contiguous from y0) are written at sy, y0's offset in a line */
    T *const y0 = want_out && J->stage ? J->y + n * c : NULL;
    T *const sy = y0 ? stg + ((uintptr_t)y0 % 64) / sizeof(T) : NULL;
    for (int r = 0; r < GROUP_R; r++) {
        const int64_t row = n + (r < nr ? r : 0);
        const int64_t o = n_inner == 1 ? row : row / n_inner, i = n_inner == 1 ? 0 : row % n_inner;
        x[r] = J->x + o * J->xs->outer + i * J->xs->inner;
        y[r] = want_out ? J->y + o * J->ys->outer + i * J->ys->inner : NULL;
        if (sy) /* the row's place in the staging block */
            y[r] = sy + (int64_t)r * c;
        if (r >= nr)
            continue; /* a lane past the batch: row n again, computed and dropped */
        if (direct) {
            live |= 1 << r;
            continue;
        }
        int status = H(row_begin)(J, n + r, x[r], NULL, y[r], 1, want_out, &rs[r]);
        if (status != FS_OK)
            return status;
        if (rs[r].done)
            continue;
        if (rs[r].op.want_dot) { /* weighted sums: the row path */
            rs[r].op.ebuf = NULL;
            rs[r].op.nt = J->nt;
            H(run_row)(x[r], y[r], c, &rs[r].op, J->op->plan, rs[r].ctx);
            H(row_end)(J, n + r, x[r], &rs[r]);
            continue;
        }
        live |= 1 << r;
    }
    if (!live) {
        if (y0)
            H(group_stream)(y0, sy, nr * c);
        return FS_OK;
    }

    /* max: VMAX(v, acc) keeps acc when v is NaN, as in block_max */
    V vm[GROUP_R];
    GROUP_UNROLL
    for (int r = 0; r < GROUP_R; r++)
        vm[r] = VSPLAT(-INFINITY);
    /* the next group's rows are asked for during this group's sum pass, where the exponentials
     * leave the memory idle (the next group: the rows GROUP_R ahead in the batch, row stride dx;
     * a prefetch past the array is harmless).  Asked for during the max pass, as they were, they
     * arrived while that pass was still reading its own rows, and the sum and output passes ran
     * with nothing in flight: on Zen 3, one thread, softmax 1.2-1.35x and the cross-entropy
     * 1.1-1.3x slower at 150-300 classes out of cache (2^22 and 2^26 floats), 1.07x at 100; in
     * cache 1.03x; two threads 1.06-1.22x. */
    const int64_t dx = GROUP_R * (n_inner == 1 ? J->xs->outer : J->xs->inner);
    /* and the lines of this group's output, for writing, unless it is streamed: a store that
     * misses waits for its line, and the output pass's stores missed one after the other (rows
     * of 500 floats out of cache ran 1.5x slower) */
    const int pw = want_out && !J->nt && !J->stage;
    int64_t j = 0;
    for (; j + LANES <= c; j += LANES)
        GROUP_UNROLL
        for (int r = 0; r < GROUP_R; r++) {
            if ((j * (int64_t)sizeof(T)) % 64 == 0) {
                if (pw)
                    __builtin_prefetch(y[r] + j, 1, 3);
            }
            vm[r] = VMAX(VLOAD(x[r] + j), vm[r]);
        }
    const int64_t tail = c - j;
    if (tail)
        GROUP_UNROLL
        for (int r = 0; r < GROUP_R; r++)
            vm[r] = VMAX(H(load_tail)(x[r] + j, tail, -INFINITY), vm[r]);
    T m[GROUP_R];
    GROUP_UNROLL
    for (int r = 0; r < GROUP_R; r++) {
        m[r] = VHMAX(vm[r]);
        vm[r] = VSPLAT(m[r]);
    }

    /* sum of exp(x - m), the exponentials kept in e for OUT_EXP */
    vf64 acc[GROUP_R];
    GROUP_UNROLL
    for (int r = 0; r < GROUP_R; r++)
        acc[r] = splat_f64(0.0);
    if (store) {
        /* the exponentials into e, then their sums read back from e (in L1) in the order of the
         * loop below, so the same bits: four accumulators and the exp's constants were more than
         * the 16 vector registers of AVX2, and two accumulators lived on the stack, a load and a
         * store per exponential (Zen 3, 64-300 classes, one thread and two: 2-6% faster) */
        for (j = 0; j + LANES <= c; j += LANES)
            GROUP_UNROLL
            for (int r = 0; r < GROUP_R; r++) {
                if ((j * (int64_t)sizeof(T)) % 64 == 0)
                    __builtin_prefetch(x[r] + j + dx, 0, 3);
                VSTORE(e + r * es + j, VEXPN(VLOAD(x[r] + j) - vm[r]));
            }
        if (tail) /* the scratch row holds whole vectors */
            GROUP_UNROLL
            for (int r = 0; r < GROUP_R; r++)
                VSTORE(e + r * es + j, VEXPN(H(load_tail)(x[r] + j, tail, -INFINITY) - vm[r]));
    }
    j = 0;
    while (j + LANES <= c) {
        int64_t stop = j + SUB_ITERS * LANES;
        if (stop > c - LANES + 1)
            stop = c - LANES + 1;
        V a[GROUP_R];
        GROUP_UNROLL
        for (int r = 0; r < GROUP_R; r++)
            a[r] = VSPLAT(0);
        if (store)
            for (; j < stop; j += LANES)
                GROUP_UNROLL
                for (int r = 0; r < GROUP_R; r++)
                    a[r] += VLOAD(e + r * es + j);
        else
            for (; j < stop; j += LANES)
                GROUP_UNROLL
                for (int r = 0; r < GROUP_R; r++) {
                    if ((j * (int64_t)sizeof(T)) % 64 == 0)
                        __builtin_prefetch(x[r] + j + dx, 0, 3);
                    a[r] += VEXPN(VLOAD(x[r] + j) - vm[r]);
                }
        GROUP_UNROLL
        for (int r = 0; r < GROUP_R; r++)
            acc[r] += VWIDEN(a[r]);
    }
    if (tail)
        GROUP_UNROLL
        for (int r = 0; r < GROUP_R; r++)
            acc[r] += VWIDEN(store ? VLOAD(e + r * es + j) : VEXPN(H(load_tail)(x[r] + j, tail, -INFINITY) - vm[r]));

    /* the statistics and their logs; a row whose max is -inf (all -inf or NaN) is NaN, as in
     * stats_finish (a NaN or +inf element makes the sum NaN by itself) */
    double s[GROUP_RPAD], logs[GROUP_RPAD];
    for (int r = 0; r < GROUP_RPAD; r++)
        s[r] = r < GROUP_R && m[r] != -INFINITY ? hsum_f64(acc[r]) : r < GROUP_R ? NAN : 1.0;
    if (!J->op->no_logs)
        for (int r = 0; r < GROUP_RPAD; r += FS_LANES_F64)
            store_f64(logs + r, log_ge1_f64(load_f64(s + r)));

    for (int r = 0; r < GROUP_R; r++) {
        if (!(live >> r & 1))
            continue;
        if (direct) {
            const int status = J->op->group_row(J, n + r, x[r], y[r], store ? e + r * es : NULL, m[r], s[r],
                                                J->op->no_logs ? NAN : logs[r]);
            if (status != FS_OK)
                return status;
            continue;
        }
        H(rowstat) st;
        st.m = m[r];
        st.s = s[r];
        st.logs = J->op->no_logs ? NAN : logs[r];
        st.dot = st.tot = 0.0;
        st.nan_seen = 0;
        st.stored = store;
        H(rowop) *op = &rs[r].op;
        J->op->plan(op, &st, rs[r].ctx);
        op->nt = J->nt;
        if (store && op->mode == OUT_EXP && st.s == st.s && !op->nt && !op->has_c)
            H(group_scale)(e + r * es, y[r], c, op->a / st.s, op->hole, op->hdelta);
        else if (store && op->mode == OUT_EXP && st.s == st.s)
            H(output_range)(e + r * es, y[r], NULL, op->w, c, st.m, op->a / st.s, op->alpha_g, op->beta_g, 1,
                            op->has_c, op->nt, op->hole, op->hdelta);
        else
            H(output_plain)(op, &st, x[r], y[r], 0, c);
        H(row_end)(J, n + r, x[r], &rs[r]);
    }
    if (y0)
        H(group_stream)(y0, sy, nr * c);
    return FS_OK;
}

/* Runs of `per` rows, GROUP_R at a time. */
static int H(group_runs)(fs_par *p, void *ctx)
{
    const H(runs) *R = (const H(runs) *)ctx;
    H(job) Jt;
    const H(job) *J;
    const int bstatus = H(block_rows_begin)(R->J, &Jt, R->per, &J);
    T *e = (T *)malloc((size_t)(GROUP_R * H(group_stride)(J->b->n_classes)) * sizeof(T));
    /* the staging block: GROUP_R rows from any offset in a line, from a line's start */
    char *smem = J->stage ? (char *)malloc((size_t)(GROUP_R * J->b->n_classes) * sizeof(T) + 128) : NULL;
    T *stg = smem ? (T *)(((uintptr_t)smem + 63) & ~(uintptr_t)63) : NULL;
    int status = e && bstatus == FS_OK && (stg || !J->stage) ? FS_OK : FS_ENOMEM;
    for (int64_t run; status == FS_OK && (run = fs_par_next(p)) >= 0;) {
        int64_t lo, hi;
        fs_unit_range(run, R->per, R->nrows, &lo, &hi);
        if (J == &Jt)
            Jt.loss_base = lo;
        for (int64_t n = lo; n < hi && status == FS_OK; n += GROUP_R)
            status = H(group_rows)(J, n, hi - n < GROUP_R ? (int)(hi - n) : GROUP_R, e, stg);
        if (status == FS_OK)
            H(block_rows_end)(J, lo, hi);
    }
    free(e);
    free(smem);
    if (J == &Jt)
        free(Jt.loss_rows);
    if (J->nt || J->stage)
        FS_SFENCE();
    return status;
}
