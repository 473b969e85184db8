/* The candidate samplers: see samplers.h. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "fastsoftmax.h"
#include "pool.h"
#include "sampling/samplers.h"

/* Uniform in [0, n), n >= 1, without bias: Lemire's multiply-and-reject ("Fast random integer
 * generation in an interval", ACM TOMACS 2019). */
static uint64_t draw_below(fs_rng *r, uint64_t n)
{
    __uint128_t m = (__uint128_t)r->next_uint64(r->state) * n;
    uint64_t low = (uint64_t)m;
    if (low < n) {
        const uint64_t threshold = -n % n;
        while (low < threshold) {
            m = (__uint128_t)r->next_uint64(r->state) * n;
            low = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

typedef struct {
    const fs_sampler *s;
    fs_rng *r;
    double log_range; /* log-uniform: log(range_max + 1) */
} drawer;

/* kind: d->s->kind, a constant where the caller is specialized per kind (fill) */
static inline __attribute__((always_inline)) int64_t draw(const drawer *d, const int kind)
{
    const fs_sampler *s = d->s;
    switch (kind) {
    case FS_SAMPLER_LOG_UNIFORM: {
        /* as TensorFlow's LogUniformSampler::Sample, v mod range_max, which catches a rounding
         * up to range_max (v <= range_max: a division only then, not per draw) */
        const int64_t v = (int64_t)exp(d->r->next_double(d->r->state) * d->log_range) - 1;
        return v < s->range_max ? v : v % s->range_max;
    }
    case FS_SAMPLER_UNIGRAM: {
        const int64_t j = (int64_t)draw_below(d->r, (uint64_t)s->range_max);
        return d->r->next_double(d->r->state) < s->alias_q[j] ? j : s->alias_j[j];
    }
    default:
        return (int64_t)draw_below(d->r, (uint64_t)s->range_max);
    }
}

/* Q(c); log_range = log(range_max + 1) */
static double prob(const fs_sampler *s, int64_t c, double log_range)
{
    switch (s->kind) {
    case FS_SAMPLER_LOG_UNIFORM:
        return log((c + 2.0) / (c + 1.0)) / log_range;
    case FS_SAMPLER_UNIGRAM:
        return s->prob[c];
    default:
        return 1.0 / (double)s->range_max;
    }
}


/* The distinct classes drawn so far: a bitmap of the first HEAD_CLASSES (where the log-uniform
 * and Zipf-like unigram draws mostly land) and an open-addressing hash set for the rest. */
#define HEAD_CLASSES 65536
typedef struct {
    uint64_t head[HEAD_CLASSES / 64];
    int64_t *slots; /* -1: empty */
    uint64_t mask;
} seen_set;

static int seen_init(seen_set *h, int64_t n)
{
    memset(h->head, 0, sizeof h->head);
    uint64_t cap = 16;
    while (cap < 2 * (uint64_t)n)
        cap *= 2;
    h->slots = (int64_t *)malloc(cap * sizeof(int64_t));
    if (!h->slots)
        return FS_ENOMEM;
    memset(h->slots, 0xff, cap * sizeof(int64_t));
    h->mask = cap - 1;
    return FS_OK;
}

/* 1 if v was new (and is now in) */
static int seen_insert(seen_set *h, int64_t v)
{
    if (v < HEAD_CLASSES) {
        const uint64_t bit = (uint64_t)1 << (v & 63);
        if (h->head[v >> 6] & bit)
            return 0;
        h->head[v >> 6] |= bit;
        return 1;
    }
    uint64_t i = ((uint64_t)v * 0x9E3779B97F4A7C15ull) >> 20 & h->mask;
    for (;; i = (i + 1) & h->mask) {
        if (h->slots[i] == v)
            return 0;
        if (h->slots[i] < 0) {
            h->slots[i] = v;
            return 1;
        }
    }
}

/* The draws of one call, the sampler's kind a constant (one copy per kind); h: NULL, or the
 * set that makes them distinct.  Returns the number of tries. */
static inline __attribute__((always_inline)) int64_t fill(const drawer *d, const int kind, seen_set *h,
                                                          int64_t num_sampled, int64_t *out)
{
    if (!h) {
        for (int64_t k = 0; k < num_sampled; k++)
            out[k] = draw(d, kind);
        return num_sampled;
    }
    int64_t tries = 0;
    for (int64_t k = 0; k < num_sampled; tries++) {
        const int64_t v = draw(d, kind);
        if (seen_insert(h, v))
            out[k++] = v;
    }
    return tries;
}

int fs_sample_candidates(const fs_sampler *s, fs_rng *rng, int64_t num_sampled, int unique, int64_t *out,
                         int64_t *num_tries)
{
    const drawer d = {s, rng, log1p((double)s->range_max)};
    seen_set *h = NULL;
    if (unique) {
        h = (seen_set *)malloc(sizeof(seen_set));
        if (!h || seen_init(h, num_sampled) != FS_OK) {
            free(h);
            return FS_ENOMEM;
        }
    }
    switch (s->kind) {
    case FS_SAMPLER_LOG_UNIFORM:
        *num_tries = fill(&d, FS_SAMPLER_LOG_UNIFORM, h, num_sampled, out);
        break;
    case FS_SAMPLER_UNIGRAM:
        *num_tries = fill(&d, FS_SAMPLER_UNIGRAM, h, num_sampled, out);
        break;
    default:
        *num_tries = fill(&d, FS_SAMPLER_UNIFORM, h, num_sampled, out);
        break;
    }
    if (h) {
        free(h->slots);
        free(h);
    }
    return FS_OK;
}

typedef struct {
    const fs_sampler *s;
    const int64_t *classes;
    int64_t n, num_sampled, num_tries, per;
    double *out;
} counts_job;

static int counts_runs(fs_par *p, void *ctx)
{
    const counts_job *J = (const counts_job *)ctx;
    const double log_range = log1p((double)J->s->range_max);
    for (int64_t run; (run = fs_par_next(p)) >= 0;) {
        const int64_t lo = run * J->per, hi = lo + J->per < J->n ? lo + J->per : J->n;
        for (int64_t i = lo; i < hi; i++) {
            const double q = prob(J->s, J->classes[i], log_range);
            J->out[i] = J->num_tries == J->num_sampled ? q * (double)J->num_sampled
                                                       : -expm1((double)J->num_tries * log1p(-q));
        }
    }
    return FS_OK;
}

void fs_expected_counts(const fs_sampler *s, const int64_t *classes, int64_t n, int64_t num_sampled,
                        int64_t num_tries, double *out)
{
    /* each count is up to three libm calls, as much work as about 16 elements of a softmax */
    const int nt = fs_plan_threads(16 * n);
    const counts_job J = {s, classes, n, num_sampled, num_tries, 1024, out};
    fs_parallel(nt, (n + J.per - 1) / J.per, counts_runs, (void *)&J);
}

int fs_alias_build(const double *w, int64_t n, double *prob, double *q, int64_t *alias)
{
    double total = 0.0;
    int64_t top = 0; /* a class of the largest weight */
    for (int64_t c = 0; c < n; c++) {
        total += w[c];
        if (w[c] > w[top])
            top = c;
    }
    /* small and large: the classes below and at or above the mean, as two stacks in one array */
    int64_t *stack = (int64_t *)malloc((size_t)n * sizeof(int64_t));
    if (!stack)
        return FS_ENOMEM;
    int64_t ns = 0, nl = n;
    for (int64_t c = 0; c < n; c++) {
        prob[c] = w[c] / total;
        q[c] = prob[c] * (double)n;
        alias[c] = c;
        if (q[c] < 1.0)
            stack[ns++] = c;
        else
            stack[--nl] = c;
    }
    while (ns > 0 && nl < n) {
        const int64_t small = stack[--ns], large = stack[nl++];
        alias[small] = large;
        q[large] = (q[large] + q[small]) - 1.0;
        if (q[large] < 1.0)
            stack[ns++] = large;
        else
            stack[--nl] = large;
    }
    /* what is left is 1 up to rounding; a class of weight 0 must still never be drawn */
    while (ns > 0) {
        const int64_t c = stack[--ns];
        q[c] = prob[c] > 0.0 ? 1.0 : 0.0;
        alias[c] = prob[c] > 0.0 ? c : top;
    }
    while (nl < n)
        q[stack[nl++]] = 1.0;
    free(stack);
    return FS_OK;
}
