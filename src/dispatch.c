/*
 * Run-time instruction-set dispatch: the public fs_* functions call through
 * the table of the active instruction set, chosen once (the best one this CPU
 * runs) and changeable with fs_select_isa (the Python layer does that for
 * FASTSOFTMAX_ISA and for the tests that run every path).
 */
#include <stddef.h>

#include "dispatch.h"

static const fs_kernel_table *const tables[FS_ISA_COUNT] = {
    &fs_table_baseline,
#ifdef FS_HAVE_AVX2
    &fs_table_avx2,
#else
    NULL,
#endif
};

static const char *const names[FS_ISA_COUNT] = {"baseline", "avx2"};

static int active = -1;

const char *fs_isa_name(int isa) { return isa >= 0 && isa < FS_ISA_COUNT ? names[isa] : NULL; }

int fs_isa_compiled(int isa) { return isa >= 0 && isa < FS_ISA_COUNT && tables[isa] != NULL; }

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
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
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

static const fs_kernel_table *table(void)
{
    if (active < 0)
        active = fs_best_isa();
    return tables[active];
}

int fs_active_isa(void)
{
    (void)table();
    return active;
}

int fs_select_isa(int isa)
{
    if (!fs_isa_supported(isa))
        return -1;
    active = isa;
    return 0;
}

int fs_softmax_f32(const fs_batch *b, const float *x, const fs_strides *xs, float *y, const fs_strides *ys)
{
    return table()->softmax_f32(b, x, xs, y, ys);
}
int fs_softmax_f64(const fs_batch *b, const double *x, const fs_strides *xs, double *y, const fs_strides *ys)
{
    return table()->softmax_f64(b, x, xs, y, ys);
}
int fs_log_softmax_f32(const fs_batch *b, const float *x, const fs_strides *xs, float *y, const fs_strides *ys)
{
    return table()->log_softmax_f32(b, x, xs, y, ys);
}
int fs_log_softmax_f64(const fs_batch *b, const double *x, const fs_strides *xs, double *y, const fs_strides *ys)
{
    return table()->log_softmax_f64(b, x, xs, y, ys);
}
int fs_logsumexp_f32(const fs_batch *b, const float *x, const fs_strides *xs, float *out)
{
    return table()->logsumexp_f32(b, x, xs, out);
}
int fs_logsumexp_f64(const fs_batch *b, const double *x, const fs_strides *xs, double *out)
{
    return table()->logsumexp_f64(b, x, xs, out);
}
int fs_cross_entropy_f32(const fs_batch *b, const float *x, const fs_strides *xs, const fs_ce_args *a,
                         double *loss_rows, double *loss_sum, float *grad, const fs_strides *gs)
{
    return table()->cross_entropy_f32(b, x, xs, a, loss_rows, loss_sum, grad, gs);
}
int fs_cross_entropy_f64(const fs_batch *b, const double *x, const fs_strides *xs, const fs_ce_args *a,
                         double *loss_rows, double *loss_sum, double *grad, const fs_strides *gs)
{
    return table()->cross_entropy_f64(b, x, xs, a, loss_rows, loss_sum, grad, gs);
}
void fs_vexp_f32(const float *x, float *y, int64_t n) { table()->vexp_f32(x, y, n); }
void fs_vexp_f64(const double *x, double *y, int64_t n) { table()->vexp_f64(x, y, n); }
