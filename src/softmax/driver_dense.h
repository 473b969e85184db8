/* The softmax family, one dtype (see family.h): short rows of a C-contiguous array, loaded
 * a vector per row and transposed in registers. */

/*
 * Dense tiles: LANES consecutive rows of a C-contiguous array (row n at
 * x + n c), LANES classes at a time loaded with LANES vector loads and
 * transposed in registers, and written back the same way, instead of the
 * scalar gathers and scatters of tile_gathered.  The ops' epilogues are those
 * of the gathered tiles, but for the cross-entropy, which takes dense tiles
 * only with index targets and without label smoothing or z-loss, and there
 * has a vector epilogue of its own (cross_entropy.h).
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
    if (!J->op->dense || !H(tile_ok)(J) || !H(rows_dense)(J->b, J->xs) || (J->y && !H(rows_dense)(J->b, J->ys)))
        return 0;
    return !J->op->dense_ok || J->op->dense_ok(J);
}

/* A tile of LANES rows from row n0, c classes, the op's epilogue inlined; sums, wys, clean: see
 * H(tile) */
FS_INLINE int H(tile_dense_c)(const H(job) *J, int64_t n0, T *sums, T *wys, const int clean, const int64_t c,
                              H(tile_epilogue) epilogue)
{
    const int64_t nq = (c + LANES - 1) / LANES;
    const T *xb = J->x + n0 * c;
    H(tile) t = {.n0 = n0, .nr = LANES, .up = {0}, .sums = sums, .wys = wys, .clean = clean};
    for (int k = 0; k < LANES; k++)
        t.xp[k] = xb + k * c;
    /* the lines PREFETCH_BYTES (blocks.h) past the tile's, and those of its output for writing:
     * a store that misses waits for its line (2^26 floats in rows of 10-32, one thread, ran
     * 1.25-1.4x slower on the hardware prefetcher alone; the cross-entropy the same) */
    T *const yb = J->y ? J->y + n0 * c : NULL;
    for (int64_t l = 0; l < LANES * c; l += 64 / (int64_t)sizeof(T)) {
        __builtin_prefetch((const char *)(xb + l) + PREFETCH_BYTES, 0, 3);
        if (yb)
            __builtin_prefetch((char *)(yb + l) + PREFETCH_BYTES, 1, 3);
    }
    /* vx[q LANES + k] lane r = x[row r, class q LANES + k] */
    V vx[SMALL_C], ve[SMALL_C];
#if VPAIRS
    /* a last chunk of two classes goes by pairs (see load_pairs in simd/vector.h) */
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
    V m, s;
    H(tile_stats)(vx, ve, c, &m, &s);
    const int status = epilogue(J, &t, vx, ve, c, m, s);
    if (status != TILE_STORE)
        return status == TILE_DONE ? FS_OK : status;
    /* transpose back and store; the chunks that run past their row (the last) first, so that the
     * next row's first chunk overwrites what they spilled */
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
    for (unsigned k = 0, done = t.done; done; k++, done >>= 1)
        if (done & 1)
            memset(yb + k * c, 0, (size_t)c * sizeof(T));
    return FS_OK;
}

/*
 * Two tiles side by side (rows n0 .. n0 + 2 LANES - 1), for rows of at most DENSE_TWO_C classes
 * and at most LANES (one chunk of classes per tile):
 * each step of both tiles is written next to the other's (the maxima, then the exponentials
 * class by class), so that the core has two independent dependency chains in reach.  A tile
 * of a few classes is one long chain (load, transpose, max, exp, sum, divide, store) with
 * little work beside it, and the out-of-order window, filled with the chain's waiting
 * operations, held about one tile (Zen 3, one thread, softmax at 2 classes: 1.16x faster in
 * cache).  Everything else is H(tile_dense_c)'s, tile 0 stored before tile 1.
 */
#define DENSE_TWO_C 4
FS_INLINE int H(tile_dense_two)(const H(job) *J, int64_t n0, T *sums, T *wys, const int clean, const int64_t c,
                                H(tile_epilogue) epilogue)
{
    H(tile) t[2] = {{.n0 = n0, .nr = LANES, .up = {0}, .sums = sums, .wys = wys, .clean = clean},
                    {.n0 = n0 + LANES, .nr = LANES, .up = {0}, .sums = sums ? sums + LANES : NULL,
                     .wys = wys ? wys + LANES : NULL, .clean = clean}};
    V vx[2][LANES], ve[2][LANES];
    T *yb[2];
    for (int h = 0; h < 2; h++) {
        const int64_t n = n0 + h * LANES;
        const T *xb = J->x + n * c;
        for (int k = 0; k < LANES; k++)
            t[h].xp[k] = xb + k * c;
        yb[h] = J->y ? J->y + n * c : NULL;
        for (int64_t l = 0; l < LANES * c; l += 64 / (int64_t)sizeof(T)) {
            __builtin_prefetch((const char *)(xb + l) + PREFETCH_BYTES, 0, 3);
            if (yb[h])
                __builtin_prefetch((char *)(yb[h] + l) + PREFETCH_BYTES, 1, 3);
        }
#if VPAIRS
        if (c == 2) {
            VLOAD_PAIRS(xb, c, &vx[h][0], &vx[h][1]);
            continue;
        }
#endif
        for (int r = 0; r < LANES; r++)
            vx[h][r] = VLOAD(xb + r * c);
        VTRANSPOSE(vx[h]);
    }
    /* H(tile_stats) for both tiles, step by step, with its arithmetic (the same bits whichever
     * path a tile takes) */
    V m[2] = {VSPLAT(-INFINITY), VSPLAT(-INFINITY)}, s[2];
    /* two classes: one exp per row (H(exp_two)), a short chain per tile, the tiles one after the
     * other (written side by side, GCC 12 with -fwrapv failed with an internal compiler error on
     * the compact SSE2 build; 3% slower than side by side on AVX2) */
    if (c == 2) {
        for (int h = 0; h < 2; h++)
            H(tile_stats)(vx[h], ve[h], c, &m[h], &s[h]);
    } else {
        V s0[2] = {VSPLAT(0), VSPLAT(0)}, s1[2] = {VSPLAT(0), VSPLAT(0)};
        for (int64_t j = 0; j < c; j++)
            for (int h = 0; h < 2; h++)
                m[h] = VMAX(vx[h][j], m[h]);
        for (int64_t j = 0; j < c; j++)
            for (int h = 0; h < 2; h++) {
                ve[h][j] = VEXPN(vx[h][j] - m[h]);
                if (j & 1)
                    s1[h] += ve[h][j];
                else
                    s0[h] += ve[h][j];
            }
        for (int h = 0; h < 2; h++)
            s[h] = select_nan_where_ninf(m[h], s0[h] + s1[h]);
    }
    int status[2];
    for (int h = 0; h < 2; h++) {
        status[h] = epilogue(J, &t[h], vx[h], ve[h], c, m[h], s[h]);
        if (status[h] != TILE_STORE && status[h] != TILE_DONE)
            return status[h];
    }
    const int64_t tile_end = LANES * c;
    for (int h = 0; h < 2; h++) {
        if (status[h] != TILE_STORE)
            continue;
#if VPAIRS
        if (c == 2) {
            VSTORE_PAIRS(yb[h], c, ve[h][0], ve[h][1]);
        } else
#endif
        {
            for (int64_t j = c; j < LANES; j++)
                ve[h][j] = m[h];
            VTRANSPOSE(ve[h]);
            for (int r = 0; r < LANES; r++) {
                const int64_t off = r * c;
                if (off + LANES <= tile_end)
                    VSTORE(yb[h] + off, ve[h][r]);
                else
                    H(store_tail)(yb[h] + off, tile_end - off, ve[h][r]);
            }
        }
        for (unsigned k = 0, done = t[h].done; done; k++, done >>= 1)
            if (done & 1)
                memset(yb[h] + k * c, 0, (size_t)c * sizeof(T));
    }
    return FS_OK;
}

/* ntiles tiles from row n0 (their sums and wys one after the other, as H(tile) says) */
FS_INLINE int H(tiles_dense_c)(const H(job) *J, int64_t n0, int64_t ntiles, T *sums, T *wys, const int clean,
                               const int64_t c, H(tile_epilogue) epilogue, const int two)
{
    int64_t k = 0;
    if (two && c <= DENSE_TWO_C && c <= LANES) /* one chunk of classes per tile */
        for (; k + 2 <= ntiles; k += 2) {
            const int status = H(tile_dense_two)(J, n0 + k * LANES, sums ? sums + k * LANES : NULL,
                                                 wys ? wys + k * LANES : NULL, clean, c, epilogue);
            if (status != FS_OK)
                return status;
        }
    for (; k < ntiles; k++) {
        const int status = H(tile_dense_c)(J, n0 + k * LANES, sums ? sums + k * LANES : NULL,
                                           wys ? wys + k * LANES : NULL, clean, c, epilogue);
        if (status != FS_OK)
            return status;
    }
    return FS_OK;
}

/* An op's dense tiles (its dense hook: a run of tiles) with its epilogue: one copy of the tile
 * loop per class count up to 32, where the class loops unroll and the tile stays in registers
 * (65536 x 10: 22-26% faster than with the count known only at run time; Zen 3, 17-32 classes,
 * one thread and two, softmax and CE 1.1-1.6x faster, for 1.25 MB more of library), which are
 * all the tiles' counts (SMALL_C).  The loop over the run's tiles is inside, so that a tile of a few short rows costs no
 * call and no switch of its own.  by_clean: one copy more per count for tiles whose targets are
 * known clean (see H(tile)); two: rows of up to DENSE_TWO_C classes go two tiles at a time
 * (H(tile_dense_two)), for an epilogue of a few operations (softmax, log_softmax; the
 * cross-entropy's, with its targets and losses, ran no faster). */
#define DENSE_C(n, epilogue, by_clean, two)                                                           \
    case n:                                                                                           \
        return by_clean && clean ? H(tiles_dense_c)(J, n0, ntiles, sums, wys, 1, n, epilogue, two)    \
                                 : H(tiles_dense_c)(J, n0, ntiles, sums, wys, by_clean ? 0 : clean, n, epilogue, two);
#if FS_COMPACT
/* the compact build (see isa/baseline.c): one copy of the tile for every class count */
#define DENSE_TILES(name, epilogue, by_clean, two)                                                       \
    static int H(name)(const H(job) *J, int64_t n0, int64_t ntiles, T *sums, T *wys, int clean)        \
    {                                                                                                 \
        return H(tiles_dense_c)(J, n0, ntiles, sums, wys, clean, J->b->n_classes, epilogue, two);          \
    }
#else
#define DENSE_TILES(name, epilogue, by_clean, two)                                                       \
    static int H(name)(const H(job) *J, int64_t n0, int64_t ntiles, T *sums, T *wys, int clean)        \
    {                                                                                                 \
        switch (J->b->n_classes) {                                                                    \
            DENSE_C(1, epilogue, by_clean, two) DENSE_C(2, epilogue, by_clean, two) DENSE_C(3, epilogue, by_clean, two) \
            DENSE_C(4, epilogue, by_clean, two) DENSE_C(5, epilogue, by_clean, two) DENSE_C(6, epilogue, by_clean, two) \
            DENSE_C(7, epilogue, by_clean, two) DENSE_C(8, epilogue, by_clean, two) DENSE_C(9, epilogue, by_clean, two) \
            DENSE_C(10, epilogue, by_clean, two) DENSE_C(11, epilogue, by_clean, two)                          \
            DENSE_C(12, epilogue, by_clean, two) DENSE_C(13, epilogue, by_clean, two)                          \
            DENSE_C(14, epilogue, by_clean, two) DENSE_C(15, epilogue, by_clean, two)                          \
            DENSE_C(16, epilogue, by_clean, two)                                                           \
            DENSE_C(17, epilogue, by_clean, two)                                                           \
            DENSE_C(18, epilogue, by_clean, two)                                                           \
            DENSE_C(19, epilogue, by_clean, two)                                                           \
            DENSE_C(20, epilogue, by_clean, two)                                                           \
            DENSE_C(21, epilogue, by_clean, two)                                                           \
            DENSE_C(22, epilogue, by_clean, two)                                                           \
            DENSE_C(23, epilogue, by_clean, two)                                                           \
            DENSE_C(24, epilogue, by_clean, two)                                                           \
            DENSE_C(25, epilogue, by_clean, two)                                                           \
            DENSE_C(26, epilogue, by_clean, two)                                                           \
            DENSE_C(27, epilogue, by_clean, two)                                                           \
            DENSE_C(28, epilogue, by_clean, two)                                                           \
            DENSE_C(29, epilogue, by_clean, two)                                                           \
            DENSE_C(30, epilogue, by_clean, two)                                                           \
            DENSE_C(31, epilogue, by_clean, two)                                                           \
            DENSE_C(32, epilogue, by_clean, two)                                                           \
        default: /* dense_ok (tile_ok) admits 1 to SMALL_C classes, each a case above */              \
            __builtin_unreachable();                                                                  \
        }                                                                                             \
    }
#if SMALL_C > 32
#error "DENSE_TILES has a case for each class count up to 32 only"
#endif
#endif
