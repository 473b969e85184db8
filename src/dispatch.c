/*
 * Run-time instruction-set dispatch: the public fs_* functions call through
 * the table of the active instruction set, chosen once (the best one this CPU
 * runs) and changeable with fs_select_isa (the Python layer does that for
 * FASTSOFTMAX_ISA and for the tests that run every path).
 */
#include <stddef.h>
#include <stdlib.h>
#ifdef __linux__
#include <unistd.h>
#endif

#include "dispatch.h"
#include "pool.h"
#include "rows.h"

/* min_work_per_thread: 2^17 elements, for every kernel family.  Next to BLAS (a NumPy training
 * step, where OpenBLAS's threads spin on the other core after each product), a second thread
 * paid from about 2^18 elements and not below: on 2 cores (AMD EPYC), the cross-entropy fwd+bwd
 * of 1024x300, 2048x200 and 4096x100 logits took 0.72-0.87 of one thread's time, that of
 * 2048x100 (204800) 0.85-1.3 from run to run.  With 2^15, as before, the default two threads
 * made the last one slower than one thread (benchmarks/training_loop.py, 2048x512x100). */
#define MIN_WORK_PER_THREAD 131072
fs_tuning_t fs_tuning = {MIN_WORK_PER_THREAD, 65536, 0}; /* stream_min_bytes: set by tune_streaming */

void fs_set_tuning(int64_t min_work_per_thread, int64_t split_min_classes)
{
    fs_tuning.min_work_per_thread = min_work_per_thread > 0 ? min_work_per_thread : MIN_WORK_PER_THREAD;
    fs_tuning.split_min_classes = split_min_classes > 0 ? split_min_classes : 65536;
}

/* the configured count, at most one thread per `least` of work, 1 on a helper */
static int plan_threads(int64_t work, int64_t least)
{
    if (fs_pool_in_helper())
        return 1;
    int nt = fs_get_num_threads();
    int64_t cap = work / least;
    if (cap < nt)
        nt = cap < 1 ? 1 : (int)cap;
    return nt;
}

int fs_plan_threads(int64_t work) { return plan_threads(work, fs_tuning.min_work_per_thread); }

static const fs_kernel_table *const tables[FS_ISA_COUNT] = {
    &fs_table_baseline,
#ifdef FS_HAVE_AVX2
    &fs_table_avx2,
#else
    NULL,
#endif
#ifdef FS_HAVE_AVX512
    &fs_table_avx512,
#else
    NULL,
#endif
};

static const char *const names[FS_ISA_COUNT] = {"baseline", "avx2", "avx512"};

static int active = -1;

const char *fs_isa_name(int isa) { return isa >= 0 && isa < FS_ISA_COUNT ? names[isa] : NULL; }

int fs_isa_compiled(int isa) { return isa >= 0 && isa < FS_ISA_COUNT && tables[isa] != NULL; }

#if defined(FS_HAVE_AVX2) || defined(FS_HAVE_AVX512)
#include <cpuid.h>
/* F16C: CPUID leaf 1, ECX bit 29 (Intel SDM vol. 2A, CPUID); GCC's __builtin_cpu_supports knows
 * "f16c", clang's (14) does not.  The AVX register state that it needs is checked with "avx2". */
static int has_f16c(void)
{
    unsigned a, b, c, d;
    return __get_cpuid(1, &a, &b, &c, &d) && ((c >> 29) & 1);
}
#endif

int fs_isa_supported(int isa)
{
    if (!fs_isa_compiled(isa))
        return 0;
    switch (isa) {
    case FS_ISA_BASELINE:
        return 1;
#ifdef FS_HAVE_AVX2
    case FS_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
#endif
#ifdef FS_HAVE_AVX512
    case FS_ISA_AVX512:
        __builtin_cpu_init();
#ifdef FS_AVX512_AS_AVX2
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && has_f16c();
#else
        /* libgcc's checks include the OS's support for the AVX-512 register state */
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
               has_f16c();
#endif
#endif
    default:
        return 0;
    }
}

int fs_best_isa(void)
{
    for (int isa = FS_ISA_COUNT - 1; isa > 0; isa--)
        if (fs_isa_supported(isa))
            return isa;
    return FS_ISA_BASELINE;
}

/* Outputs stream to memory from a quarter of the last-level cache on (their input and the rest of
 * the process share it), and never below 8 MiB.  With a 480 MB L3, 2^22 floats (16 MB) in rows of
 * 300-500 classes ran 1.2-1.3x faster with normal stores, which leave them in L3 where the next
 * call or the copy finds them; rows of 1000 classes and longer within 3% either way. */
static int64_t default_stream_min_bytes(void)
{
    int64_t bytes = 8 << 20;
#if defined(__linux__) && defined(_SC_LEVEL3_CACHE_SIZE)
    const long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0 && l3 / 4 > bytes)
        bytes = l3 / 4;
#endif
    return bytes;
}

/* the default, unless fs_set_stream_min_bytes chose already; before the first kernel runs */
static void tune_streaming(void)
{
    if (fs_tuning.stream_min_bytes <= 0)
        fs_tuning.stream_min_bytes = default_stream_min_bytes();
}

void fs_set_stream_min_bytes(int64_t bytes)
{
    fs_tuning.stream_min_bytes = bytes > 0 ? bytes : default_stream_min_bytes();
}

static const fs_kernel_table *table(void)
{
    if (active < 0) {
        tune_streaming();
        active = fs_best_isa();
    }
    return tables[active];
}

const fs_kernel_table *fs_active_table(void) { return table(); }

int fs_active_isa(void)
{
    (void)table();
    return active;
}

int fs_select_isa(int isa)
{
    if (!fs_isa_supported(isa))
        return -1;
    tune_streaming();
    active = isa;
    return 0;
}

/* The public fs_<op>_<dt> of kernels.def: through the active table. */
#define FS_KERNEL(op, f16, params, args)                                                               \
    int FS_NAME(op) params { return table()->FS_CAT(op, DT) args; }
#define FS_ARRAY(op)                                                                                   \
    void FS_NAME(op)(const T *x, T *y, int64_t n) { table()->FS_CAT(op, DT)(x, y, n); }
#include "kernels_each.h"

/* fs_<op>(dtype, ...): the void pointers convert to the dtype's (C converts void * implicitly) */
#define FS_F16_1(op, args) return FS_CAT(FS_CAT(fs, op), f16) args;
#define FS_F16_0(op, args) return FS_EDTYPE;
#define FS_KERNEL(op, f16, params, args)                                                               \
    int FS_CAT(fs, op)(int dtype, FS_UNPAREN params)                                                   \
    {                                                                                                  \
        switch (dtype) {                                                                               \
        case FS_DTYPE_F32:                                                                             \
            return FS_CAT(FS_CAT(fs, op), f32) args;                                                   \
        case FS_DTYPE_F64:                                                                             \
            return FS_CAT(FS_CAT(fs, op), f64) args;                                                   \
        case FS_DTYPE_F16:                                                                             \
            FS_F16_##f16(op, args)                                                                     \
        default:                                                                                       \
            return FS_EDTYPE;                                                                          \
        }                                                                                              \
    }
#define FS_ARRAY(op)                                                                                   \
    int FS_CAT(fs, op)(int dtype, const void *x, void *y, int64_t n)                                   \
    {                                                                                                  \
        if (dtype == FS_DTYPE_F32)                                                                     \
            FS_CAT(FS_CAT(fs, op), f32)(x, y, n);                                                      \
        else if (dtype == FS_DTYPE_F64)                                                                \
            FS_CAT(FS_CAT(fs, op), f64)(x, y, n);                                                      \
        else                                                                                           \
            return FS_EDTYPE;                                                                          \
        return FS_OK;                                                                                  \
    }
#define FS_EACH_ANY
#include "kernels_each.h"
#undef FS_EACH_ANY
#undef FS_F16_0
#undef FS_F16_1

/*
 * The per-row passes of the cross-entropy (the check of the targets before the
 * kernel, the sum of the losses after it) over several threads: blocks of
 * ROWS_BLOCK rows, each done by the serial function of the table (which adds
 * its blocks' results in row order, from 0), and the blocks' results combined
 * here in the same order, so that the result is the serial one, bit for bit,
 * for any thread count.  65536 rows: 20 us on one thread.
 */
#define ROWS_MIN_PER_THREAD (8 * ROWS_BLOCK)
/* ... and at least this many rows a thread by default: 2^15, not the kernels' 2^17 elements
 * (MIN_WORK_PER_THREAD, measured for the kernels next to BLAS, not for these passes).  A check
 * of 65536 targets on two threads also wakes the helper that the kernel then finds awake. */
#define ROWS_MIN_DEFAULT 32768

static int rows_threads(int64_t n)
{
    const int64_t least = fs_tuning.min_work_per_thread; /* the tests lower it */
    return plan_threads(n, least > ROWS_MIN_DEFAULT ? ROWS_MIN_DEFAULT
                           : least < ROWS_MIN_PER_THREAD ? ROWS_MIN_PER_THREAD : least);
}

/* per block: first bad position (or -1), count not ignored, weight sum */
typedef struct {
    int64_t bad, valid;
    double wsum;
} check_part;

typedef struct {
    const fs_kernel_table *tb;
    const int64_t *target;
    int64_t n, n_classes, ignore_index;
    const double *weight, *v;
    check_part *part;
    double *sums;
} rows_job;

static int check_blocks(fs_par *p, void *ctx)
{
    const rows_job *J = (const rows_job *)ctx;
    for (int64_t b; (b = fs_par_next(p)) >= 0;) {
        const int64_t lo = b * ROWS_BLOCK, m = J->n - lo < ROWS_BLOCK ? J->n - lo : ROWS_BLOCK;
        check_part *q = &J->part[b];
        q->bad = J->tb->check_targets(J->target + lo, m, J->n_classes, J->ignore_index, J->weight, &q->valid,
                                      &q->wsum);
    }
    return FS_OK;
}

int64_t fs_check_targets(const int64_t *target, int64_t n, int64_t n_classes, int64_t ignore_index,
                         const double *weight, int64_t *n_valid, double *weight_sum)
{
    const fs_kernel_table *tb = table();
    const int nt = rows_threads(n);
    const int64_t nb = (n + ROWS_BLOCK - 1) / ROWS_BLOCK;
    check_part *part = nt > 1 ? malloc((size_t)nb * sizeof *part) : NULL;
    if (!part)
        return tb->check_targets(target, n, n_classes, ignore_index, weight, n_valid, weight_sum);
    rows_job J = {tb, target, n, n_classes, ignore_index, weight, NULL, part, NULL};
    fs_parallel(nt, nb, check_blocks, &J);
    int64_t bad = -1, valid = 0;
    double wsum = 0.0;
    for (int64_t b = 0; b < nb && bad < 0; b++) {
        if (part[b].bad >= 0)
            bad = b * ROWS_BLOCK + part[b].bad;
        valid += part[b].valid;
        wsum += part[b].wsum;
    }
    free(part);
    if (bad < 0) {
        *n_valid = valid;
        *weight_sum = wsum;
    }
    return bad;
}

static int sum_blocks(fs_par *p, void *ctx)
{
    const rows_job *J = (const rows_job *)ctx;
    for (int64_t b; (b = fs_par_next(p)) >= 0;) {
        const int64_t lo = b * ROWS_BLOCK;
        J->sums[b] = J->tb->sum_rows(J->v + lo, J->n - lo < ROWS_BLOCK ? J->n - lo : ROWS_BLOCK);
    }
    return FS_OK;
}

double fs_sum_rows(const double *v, int64_t n)
{
    const fs_kernel_table *tb = table();
    const int nt = rows_threads(n);
    const int64_t nb = (n + ROWS_BLOCK - 1) / ROWS_BLOCK;
    double *part = nt > 1 ? malloc((size_t)nb * sizeof *part) : NULL;
    if (!part)
        return tb->sum_rows(v, n);
    rows_job J = {tb, NULL, n, 0, 0, NULL, v, NULL, part};
    fs_parallel(nt, nb, sum_blocks, &J);
    double total = 0.0;
    for (int64_t b = 0; b < nb; b++)
        total += part[b];
    free(part);
    return total;
}
