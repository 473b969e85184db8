/*
 * fastsoftmax C kernels: public declarations.
 *
 * Pure C (no Python.h).  Every function works on a batch of rows: the logits
 * are viewed as an array of shape (n_outer, n_inner, n_classes) with arbitrary
 * strides given in elements (not bytes; negative strides allowed).  Row (o, i)
 * is the n-th row with n = o * n_inner + i; per-row inputs and outputs that
 * are not N x C (targets, losses) are contiguous arrays in that row order.
 *
 * The class axis is the fast axis: when its stride is 1 the SIMD row kernels
 * read and write memory directly; otherwise each row is gathered into a
 * contiguous scratch row of n_classes elements and scattered back.
 *
 * Each public function dispatches to the kernels compiled for the instruction
 * set chosen at run time (see fs_select_isa).  Return value: FS_OK (0) on
 * success, FS_ENOMEM when a scratch row could not be allocated, FS_EINDEX for
 * a target out of range (the Python layer checks targets before calling, so
 * this is a second line of defence, not the error path users see).
 */
#ifndef FASTSOFTMAX_H
#define FASTSOFTMAX_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FS_OK 0
#define FS_ENOMEM (-1)
#define FS_EINDEX (-2) /* a target index outside [0, n_classes) that is not ignore_index */
#define FS_EDTYPE (-3) /* a dtype code the kernel has no version for */

typedef struct fs_batch {
    int64_t n_outer, n_inner, n_classes;
} fs_batch;

/* Strides of one array in elements: between outer rows, inner rows, classes. */
typedef struct fs_strides {
    int64_t outer, inner, cls;
} fs_strides;

/* Options of the fused cross-entropy, with torch.nn.functional.cross_entropy's meaning. */
typedef struct fs_ce_args {
    const int64_t *target;    /* class index per row (row order), or NULL with prob targets */
    int64_t ignore_index;     /* rows whose target equals it contribute 0 loss and 0 gradient */
    const void *prob;         /* probability targets, logits' dtype and shape, or NULL */
    fs_strides prob_strides;
    const void *weight;       /* n_classes contiguous class weights (logits' dtype), or NULL for all ones */
    double label_smoothing;   /* eps in [0, 1] */
    double grad_scale;        /* reduction factor: 1 for sum/none, 1/D for mean */
    double z_loss;            /* adds z_loss * w_row * lse^2 per row (PaLM's z-loss); 0 for none */
    int targets_checked;      /* nonzero only when fs_check_targets found these targets all classes, none
                               * ignored (it returned -1 with n_valid == n): the kernel then skips its own
                               * checks of them (4% of a 10-class call) */
} fs_ce_args;

/*
 * Checks class-index targets before a cross-entropy call: returns the position
 * of the first target that is neither ignore_index nor in [0, n_classes), or
 * -1 when all are valid.  Then *n_valid is the number of targets that are not
 * ignore_index and, when weight (n_classes doubles) is not NULL, *weight_sum
 * is the sum of weight[target] over them (else 0): the denominators of the
 * "mean" reduction.
 */
int64_t fs_check_targets(const int64_t *target, int64_t n, int64_t n_classes, int64_t ignore_index,
                         const double *weight, int64_t *n_valid, double *weight_sum);

/* Options of the binary cross-entropy with logits (torch's binary_cross_entropy_with_logits). */
typedef struct fs_bce_args {
    const void *target;        /* the logits' shape and dtype (float for float16 logits) */
    fs_strides target_strides;
    const void *weight;        /* the logits' shape (broadcast: strides may be 0), or NULL for all ones */
    fs_strides weight_strides;
    const void *pos_weight;    /* n_classes contiguous, or NULL for all ones */
    double grad_scale;         /* reduction factor: 1 for sum/none, 1/numel for mean */
} fs_bce_args;

/* The sampled losses' logits (sampled_logits, sampled/ops.h): row n of the logits, n_rows x
 * (num_true + num_sampled) contiguous, holds its true classes' logits, then the sampled ones. */
typedef struct {
    int64_t n_rows, num_true, num_sampled, dim;
    int64_t ld_x;               /* row stride of the inputs (n_rows x dim), >= dim */
    const int64_t *labels;      /* n_rows x num_true */
    const int64_t *sampled;     /* num_sampled, in increasing order */
    const double *logq_true;    /* log(expected count), n_rows x num_true, or NULL: none subtracted */
    int remove_hits;            /* add FS_ACCIDENTAL_HIT to a sampled class that is one of the row's true classes */
} fs_sampled_args;

/* The weights' gradient rows of the sampled losses (sampled_id_rows, sampled/ops.h): row i of
 * the output (n_ids x dim, one row per unique class id) is the sum of the product's rows r
 * with pos_sampled[r] == i, in increasing r, then of scale[e] * x[e / num_true] over the true
 * entries e with pos_true[e] == i, in increasing e; the biases' gradient alike from the
 * product's column dim and the scales. */
typedef struct {
    int64_t n_ids, dim, num_sampled, num_entries, num_true;
    int64_t ld_prod, ld_x;          /* row strides of the product (num_sampled rows) and the inputs */
    const int64_t *pos_sampled;     /* num_sampled, nondecreasing */
    const int64_t *true_order;      /* the entries 0 .. num_entries - 1 by increasing (pos_true, e) */
    const int64_t *pos_true_sorted; /* pos_true[true_order[k]] */
} fs_id_rows;
/* what TensorFlow adds to an accidental hit's logit: float32's most negative finite value */
#define FS_ACCIDENTAL_HIT (-3.4028234663852886e38)

/* The float and double kernels: fs_<op>_f32 / fs_<op>_f64 for each line of kernels.def,
 * which says what each computes. */
#define FS_KERNEL(op, f16, params, args) int FS_NAME(op) params;
#define FS_ARRAY(op) void FS_NAME(op)(const T *x, T *y, int64_t n);
#include "kernels_each.h"

/* The same kernels by a dtype code (arrays as void pointers): fs_softmax(FS_DTYPE_F32, ...)
 * calls fs_softmax_f32(...); FS_EDTYPE for a dtype the kernel does not have. */
#define FS_DTYPE_F32 0
#define FS_DTYPE_F64 1
#define FS_DTYPE_F16 2
#define FS_UNPAREN(...) __VA_ARGS__
#define FS_KERNEL(op, f16, params, args) int FS_CAT(fs, op)(int dtype, FS_UNPAREN params);
#define FS_ARRAY(op) int FS_CAT(fs, op)(int dtype, const void *x, void *y, int64_t n);
#define FS_EACH_ANY
#include "kernels_each.h"
#undef FS_EACH_ANY

/*
 * float16 (IEEE binary16 data passed as its uint16_t bits), computed in float
 * by the float kernels above, one block of rows at a time (src/half.c), and
 * rounded once to float16.  Class weights, probability targets, BCE targets,
 * weights and elementwise losses are float; per-row losses double.
 */
int fs_softmax_f16(const fs_batch *b, const uint16_t *x, const fs_strides *xs, uint16_t *y, const fs_strides *ys);
int fs_log_softmax_f16(const fs_batch *b, const uint16_t *x, const fs_strides *xs, uint16_t *y,
                       const fs_strides *ys);
int fs_logsumexp_f16(const fs_batch *b, const uint16_t *x, const fs_strides *xs, uint16_t *out);
int fs_sigmoid_f16(const fs_batch *b, const uint16_t *x, const fs_strides *xs, uint16_t *y, const fs_strides *ys);
int fs_cross_entropy_f16(const fs_batch *b, const uint16_t *x, const fs_strides *xs, const fs_ce_args *a,
                         double *loss_rows, double *loss_sum, uint16_t *grad, const fs_strides *gs);
int fs_bce_logits_f16(const fs_batch *b, const uint16_t *x, const fs_strides *xs, const fs_bce_args *a,
                      double *row_sums, double *loss_sum, float *loss, const fs_strides *ls, uint16_t *grad,
                      const fs_strides *gs);

/* Threads: the package's own pool (pool.h), one process-wide count.  n <= 0 restores
 * the default: FASTSOFTMAX_NUM_THREADS, else OMP_NUM_THREADS, else the CPUs this
 * process may run on.  Results never depend on the count.  A build without threads
 * (FASTSOFTMAX_THREADS=0) always runs on 1; fs_threads_enabled tells. */
void fs_set_num_threads(int n);
int fs_get_num_threads(void);
int fs_threads_enabled(void);
/* How long idle helper threads spin before they sleep, in ns (n < 0: the default);
 * for the tests and the benchmarks. */
void fs_set_spin_ns(int64_t ns);
/* For the tests: creating a helper thread fails after n helpers (n < 0: no limit). */
void fs_limit_helpers(int n);
/* Threading thresholds: the least work (elements) worth a thread, and the row
 * length from which a row is split across threads when there are fewer rows
 * than threads.  0 restores the defaults (131072, 65536).  For the tests, which
 * set both low so that small inputs take the threaded code paths. */
void fs_set_tuning(int64_t min_work_per_thread, int64_t split_min_classes);
/* Outputs of at least this many bytes are written with streaming stores (the softmax family's
 * rows, when their rows are long enough); bytes <= 0 restores the default, a quarter of the
 * last-level cache and at least 8 MiB.  For the tests, which lower it to reach those stores. */
void fs_set_stream_min_bytes(int64_t bytes);

/* Run-time instruction-set dispatch. */
#define FS_ISA_BASELINE 0
#define FS_ISA_AVX2 1
#define FS_ISA_AVX512 2
#define FS_ISA_COUNT 3

const char *fs_isa_name(int isa);      /* "baseline", "avx2", "avx512"; NULL if out of range */
int fs_isa_compiled(int isa);          /* 1 if the kernels for isa were built */
int fs_isa_supported(int isa);         /* 1 if compiled and this CPU runs it */
int fs_best_isa(void);                 /* highest supported */
int fs_active_isa(void);
int fs_select_isa(int isa);            /* 0, or -1 when not supported here */

#ifdef __cplusplus
}
#endif
#endif /* FASTSOFTMAX_H */
