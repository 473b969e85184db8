/* Internal: the table of kernels compiled for one instruction set. */
#ifndef FS_DISPATCH_H
#define FS_DISPATCH_H

#include "fastsoftmax.h"
#include "pool.h"

typedef struct fs_kernel_table {
    /* softmax_f32, softmax_f64, ...: one field per kernel of kernels.def and dtype */
#define FS_KERNEL(op, f16, params, args) int(*FS_CAT(op, DT)) params;
#define FS_ARRAY(op) void (*FS_CAT(op, DT))(const T *x, T *y, int64_t n);
#include "kernels_each.h"
    /* float16 conversions of half.c */
    void (*h2f)(const uint16_t *, float *, int64_t);
    void (*f2h)(const float *, uint16_t *, int64_t);
    /* per-row helpers of rows.h */
    int64_t (*check_targets)(const int64_t *, int64_t, int64_t, int64_t, const double *, int64_t *, double *);
    double (*sum_rows)(const double *, int64_t);
} fs_kernel_table;

/* The table of the active instruction set. */
const fs_kernel_table *fs_active_table(void);

/* Threads for a call over `work` elements: the configured count, fewer for
 * small problems (each thread gets at least fs_tuning.min_work_per_thread
 * elements), and 1 on a helper of the pool (the float16 driver calls the
 * float kernels from its threads). */
int fs_plan_threads(int64_t work);

/* Thresholds of the threading (fs_set_tuning changes them, for the tests). */
typedef struct {
    int64_t min_work_per_thread; /* default 131072 elements (dispatch.c) */
    int64_t split_min_classes;   /* rows this long are split across threads when rows < threads; 65536 */
    int64_t stream_min_bytes;    /* outputs this large are written with streaming stores; 8 MiB, or a
                                  * quarter of the last-level cache (dispatch.c) */
} fs_tuning_t;
extern fs_tuning_t fs_tuning;

/* Items per run when work is handed to the threads in runs as they free up (fs_parallel):
 * about 16 runs per thread, so that a thread that falls behind on a
 * shared machine does not hold the others at the end (5-8% of a 2048x32000 call when
 * each thread had one static half); at least `least` items. */
static inline int64_t fs_run_length(int64_t items, int nt, int64_t least)
{
    const int64_t per = items / ((int64_t)nt * 16);
    return per > least ? per : least;
}

/* The sum of n per-row values in a fixed order (rows_sum of rows.h), on several threads for
 * long batches with the serial result (see dispatch.c). */
double fs_sum_rows(const double *v, int64_t n);

extern const fs_kernel_table fs_table_baseline;
#ifdef FS_HAVE_AVX2
extern const fs_kernel_table fs_table_avx2;
#endif
#ifdef FS_HAVE_AVX512
extern const fs_kernel_table fs_table_avx512;
#endif

#endif
