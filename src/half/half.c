/*
 * float16 entry points.  float16 data (IEEE binary16, passed as its uint16_t
 * bits) is computed in float32 by the float kernels, one unit of rows at a
 * time (the conversions are those of the active instruction set, see
 * half/convert.h): a unit's rows are converted into a per-thread float scratch block of
 * about UNIT_ELEMS elements (it stays in L2), the float kernel runs on the
 * block in place, and its outputs are rounded once to float16 into place.  No
 * float copy of the whole array is made (a single row longer than the unit is
 * one unit).  Class weights, probability targets and losses are float.
 *
 * Units are spread over the threads; each float call inside runs on its
 * thread (a pool in use runs a nested call on its caller alone).  A batch of
 * one unit calls the float kernel with the pool free, so that a long row is
 * still split across the threads.
 */
#include <stdlib.h>
#include <string.h>
#include "batch.h"
#include "dispatch.h"
#include "fastsoftmax.h"

#define UNIT_ELEMS 16384

/* dst[j] = src[j * s] as float, j < n (tmp: n halves of scratch) */
static void h2f_row(const uint16_t *src, int64_t s, float *dst, int64_t n, uint16_t *tmp)
{
    if (s != 1) {
        for (int64_t j = 0; j < n; j++)
            tmp[j] = src[j * s];
        src = tmp;
    }
    fs_active_table()->h2f(src, dst, n);
}

/* dst[j * s] = src[j] rounded to float16, j < n */
static void f2h_row(const float *src, uint16_t *dst, int64_t s, int64_t n, uint16_t *tmp)
{
    if (s == 1) {
        fs_active_table()->f2h(src, dst, n);
        return;
    }
    fs_active_table()->f2h(src, tmp, n);
    for (int64_t j = 0; j < n; j++)
        dst[j * s] = tmp[j];
}

/* One unit: rows i0 .. i0 + ni - 1 of outer index o, n0 = o * n_inner + i0 its first row. */
typedef struct {
    int64_t o, i0, ni, n0;
} unit_t;

typedef struct half_job half_job;
/* Runs the float kernel on the unit's rows, converted into x32 (ni x C, contiguous); an output
 * row block goes to x32 too (in place), per-row outputs to aux (ni floats). */
typedef int (*unit_fn)(const half_job *J, const unit_t *u, const fs_batch *ub, const fs_strides *us, float *x32,
                       float *aux);

struct half_job {
    const fs_batch *b;
    const uint16_t *x;
    const fs_strides *xs;
    uint16_t *y; /* output of C elements per row (converted from x32), or NULL */
    const fs_strides *ys;
    uint16_t *row_out; /* output of one element per row (converted from aux), or NULL */
    unit_fn fn;
    const void *args;  /* the kernel's options */
    double *rows;      /* per-row losses (row order) */
    float *loss;       /* BCE: elementwise float losses, or NULL */
    const fs_strides *ls;
};

static int run_unit(const half_job *J, const unit_t *u, float *x32, float *aux, uint16_t *tmp)
{
    const int64_t c = J->b->n_classes;
    const fs_batch ub = {1, u->ni, c};
    const fs_strides us = {0, c, 1};
    for (int64_t r = 0; r < u->ni; r++)
        h2f_row(J->x + u->o * J->xs->outer + (u->i0 + r) * J->xs->inner, J->xs->cls, x32 + r * c, c, tmp);
    int status = J->fn(J, u, &ub, &us, x32, aux);
    if (status != FS_OK)
        return status;
    if (J->y)
        for (int64_t r = 0; r < u->ni; r++)
            f2h_row(x32 + r * c, J->y + u->o * J->ys->outer + (u->i0 + r) * J->ys->inner, J->ys->cls, c, tmp);
    if (J->row_out)
        f2h_row(aux, J->row_out + u->n0, 1, u->ni, tmp);
    return FS_OK;
}

typedef struct {
    const half_job *J;
    fs_row_groups g;
} half_units;

static int run_units(fs_par *p, void *ctx)
{
    const half_units *U = (const half_units *)ctx;
    const half_job *J = U->J;
    const int64_t c = J->b->n_classes, rpu = U->g.rows_per;
    float *x32 = (float *)malloc((size_t)(rpu * c) * sizeof(float));
    float *aux = (float *)malloc((size_t)rpu * sizeof(float));
    uint16_t *tmp = (uint16_t *)malloc((size_t)c * sizeof(uint16_t));
    int status = x32 && aux && tmp ? FS_OK : FS_ENOMEM;
    for (int64_t k; status == FS_OK && (k = fs_par_next(p)) >= 0;) {
        unit_t u;
        u.n0 = fs_row_group(&U->g, k, &u.o, &u.i0, &u.ni);
        status = run_unit(J, &u, x32, aux, tmp);
    }
    free(x32);
    free(aux);
    free(tmp);
    return status;
}

static int run_half(const half_job *J)
{
    const int64_t c = J->b->n_classes, nrows = J->b->n_outer * J->b->n_inner;
    if (nrows <= 0 || c <= 0)
        return FS_OK;
    const half_units U = {J, fs_row_groups_of(J->b, UNIT_ELEMS / c)};
    return fs_batch_parallel(nrows * c, U.g.nunits, run_units, (void *)&U);
}

/* ---------------------------------------------------------------- the kernels on a unit */

static int unit_softmax(const half_job *J, const unit_t *u, const fs_batch *ub, const fs_strides *us, float *x32,
                        float *aux)
{
    (void)J, (void)u, (void)aux;
    return fs_softmax_f32(ub, x32, us, x32, us);
}

static int unit_log_softmax(const half_job *J, const unit_t *u, const fs_batch *ub, const fs_strides *us,
                            float *x32, float *aux)
{
    (void)J, (void)u, (void)aux;
    return fs_log_softmax_f32(ub, x32, us, x32, us);
}

static int unit_logsumexp(const half_job *J, const unit_t *u, const fs_batch *ub, const fs_strides *us, float *x32,
                          float *aux)
{
    (void)J, (void)u;
    return fs_logsumexp_f32(ub, x32, us, aux);
}

static int unit_sigmoid(const half_job *J, const unit_t *u, const fs_batch *ub, const fs_strides *us, float *x32,
                        float *aux)
{
    (void)J, (void)u, (void)aux;
    return fs_sigmoid_f32(ub, x32, us, x32, us);
}

/* A float array's pointer and strides restricted to the unit's rows. */
static const float *at_unit(const void *p, const fs_strides *s, const unit_t *u, fs_strides *us)
{
    us->outer = 0;
    us->inner = s->inner;
    us->cls = s->cls;
    return (const float *)p + u->o * s->outer + u->i0 * s->inner;
}

static int unit_cross_entropy(const half_job *J, const unit_t *u, const fs_batch *ub, const fs_strides *us,
                              float *x32, float *aux)
{
    (void)aux;
    fs_ce_args a = *(const fs_ce_args *)J->args;
    double sum;
    if (a.target)
        a.target += u->n0;
    if (a.prob)
        a.prob = at_unit(a.prob, &((const fs_ce_args *)J->args)->prob_strides, u, &a.prob_strides);
    return fs_cross_entropy_f32(ub, x32, us, &a, J->rows + u->n0, &sum, J->y ? x32 : NULL, us);
}

static int unit_bce(const half_job *J, const unit_t *u, const fs_batch *ub, const fs_strides *us, float *x32,
                    float *aux)
{
    (void)aux;
    const fs_bce_args *a0 = (const fs_bce_args *)J->args;
    fs_bce_args a = *a0;
    fs_strides ls = *us;
    double sum;
    a.target = at_unit(a0->target, &a0->target_strides, u, &a.target_strides);
    if (a.weight)
        a.weight = at_unit(a0->weight, &a0->weight_strides, u, &a.weight_strides);
    float *loss = J->loss ? (float *)at_unit(J->loss, J->ls, u, &ls) : NULL;
    return fs_bce_logits_f32(ub, x32, us, &a, J->rows + u->n0, &sum, loss, &ls, J->y ? x32 : NULL, us);
}

/* ---------------------------------------------------------------- entry points */

static half_job job(const fs_batch *b, const uint16_t *x, const fs_strides *xs, uint16_t *y, const fs_strides *ys,
                    unit_fn fn)
{
    half_job J;
    memset(&J, 0, sizeof J);
    J.b = b;
    J.x = x;
    J.xs = xs;
    J.y = y;
    J.ys = ys;
    J.fn = fn;
    return J;
}

int fs_softmax_f16(const fs_batch *b, const uint16_t *x, const fs_strides *xs, uint16_t *y, const fs_strides *ys)
{
    half_job J = job(b, x, xs, y, ys, unit_softmax);
    return run_half(&J);
}

int fs_log_softmax_f16(const fs_batch *b, const uint16_t *x, const fs_strides *xs, uint16_t *y,
                       const fs_strides *ys)
{
    half_job J = job(b, x, xs, y, ys, unit_log_softmax);
    return run_half(&J);
}

int fs_logsumexp_f16(const fs_batch *b, const uint16_t *x, const fs_strides *xs, uint16_t *out)
{
    half_job J = job(b, x, xs, NULL, NULL, unit_logsumexp);
    J.row_out = out;
    return run_half(&J);
}

int fs_sigmoid_f16(const fs_batch *b, const uint16_t *x, const fs_strides *xs, uint16_t *y, const fs_strides *ys)
{
    half_job J = job(b, x, xs, y, ys, unit_sigmoid);
    return run_half(&J);
}

int fs_cross_entropy_f16(const fs_batch *b, const uint16_t *x, const fs_strides *xs, const fs_ce_args *a,
                         double *loss_rows, double *loss_sum, uint16_t *grad, const fs_strides *gs)
{
    half_job J = job(b, x, xs, grad, gs, unit_cross_entropy);
    const int64_t nrows = b->n_outer * b->n_inner;
    double *own = NULL;
    if (!loss_rows && nrows > 0) { /* the sum only: an array of our own */
        own = (double *)malloc((size_t)nrows * sizeof(double));
        if (!own)
            return FS_ENOMEM;
        loss_rows = own;
    }
    J.args = a;
    J.rows = loss_rows;
    int status = run_half(&J);
    *loss_sum = status == FS_OK && nrows > 0 ? fs_sum_rows(loss_rows, nrows) : 0.0;
    free(own);
    return status;
}

int fs_bce_logits_f16(const fs_batch *b, const uint16_t *x, const fs_strides *xs, const fs_bce_args *a,
                      double *row_sums, double *loss_sum, float *loss, const fs_strides *ls, uint16_t *grad,
                      const fs_strides *gs)
{
    half_job J = job(b, x, xs, grad, gs, unit_bce);
    J.args = a;
    J.rows = row_sums;
    J.loss = loss;
    J.ls = ls;
    int status = run_half(&J);
    *loss_sum = status == FS_OK ? fs_sum_rows(row_sums, b->n_outer * b->n_inner) : 0.0;
    return status;
}
