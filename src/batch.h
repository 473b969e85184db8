/*
 * What the three batch drivers share (the softmax family's H(run), softmax/driver.h; the
 * elementwise family's H(rw_run), elementwise/ops.h; the float16 run_half, half/half.c):
 * a batch's rows n = o * n_inner + i cut into units of work, and the units handed to the
 * pool's threads as they free up.
 */
#ifndef FS_BATCH_H
#define FS_BATCH_H

#include <stdint.h>

#include "dispatch.h"
#include "pool.h"

/* Runs body over units 0 .. nunits - 1 on the threads that `work` elements deserve
 * (fs_plan_threads), never more than there are units. */
static inline int fs_batch_parallel(int64_t work, int64_t nunits, fs_par_body body, void *ctx)
{
    int nt = fs_plan_threads(work);
    if (nt > nunits)
        nt = (int)nunits;
    return fs_parallel(nt, nunits, body, ctx);
}

/* Units of `per` consecutive rows (or tiles) of n: unit k is [*lo, *hi). */
static inline void fs_unit_range(int64_t k, int64_t per, int64_t n, int64_t *lo, int64_t *hi)
{
    *lo = k * per;
    *hi = *lo + per < n ? *lo + per : n;
}

/* Units of up to rows_per rows of one outer index, whose rows follow each other in memory
 * when the inner stride is the row's length (the elementwise groups, the float16 units). */
typedef struct {
    int64_t n_inner, rows_per, per_outer, nunits;
} fs_row_groups;

static inline fs_row_groups fs_row_groups_of(const fs_batch *b, int64_t rows_per)
{
    if (rows_per > b->n_inner)
        rows_per = b->n_inner;
    if (rows_per < 1)
        rows_per = 1;
    const int64_t per_outer = (b->n_inner + rows_per - 1) / rows_per;
    const fs_row_groups g = {b->n_inner, rows_per, per_outer, b->n_outer * per_outer};
    return g;
}

/* Unit k: rows i0 .. i0 + *ni - 1 of outer index *o; returns its first row, o n_inner + i0. */
static inline int64_t fs_row_group(const fs_row_groups *g, int64_t k, int64_t *o, int64_t *i0, int64_t *ni)
{
    *o = k / g->per_outer;
    *i0 = (k % g->per_outer) * g->rows_per;
    *ni = g->n_inner - *i0 < g->rows_per ? g->n_inner - *i0 : g->rows_per;
    return *o * g->n_inner + *i0;
}

#endif
