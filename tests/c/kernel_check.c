/*
 * The C kernels against a scalar long-double reference, without Python: every compiled
 * instruction set that this CPU runs, float and double, row lengths that hit every vector tail
 * and the dense tiles (1-17 classes), 1 and 2 threads.  Checked with the package's accuracy bars
 * (fastsoftmax.reference.TOLERANCES): softmax and sigmoid |p - p_ref| <= rel |p_ref| + abs;
 * log_softmax, logsumexp and losses |v - v_ref| <= rel (1 + |v_ref|); gradients
 * |g - g_ref| <= rel (|g_ref| + r), r = grad_scale.
 *
 * It is how the aarch64 (NEON) baseline is tested: tools/neon-check cross-compiles it with the
 * kernels and runs it under qemu-aarch64.  tests/test_c_kernels.py builds and runs it natively.
 * Prints one line per instruction set and dtype; exit status 1 on the first failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fastsoftmax.h"

typedef long double R;

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static double uniform(void) /* xorshift64*, in [0, 1) */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545f4914f6cdd1dull) >> 11) * 0x1.0p-53;
}

static int failures;
static const char *context;

static void check(const char *what, int64_t i, R got, R want, R bar)
{
    if (!(fabsl(got - want) <= bar)) { /* NaN fails too */
        if (failures++ < 10)
            fprintf(stderr, "FAIL %s: %s[%lld] = %.12Lg, reference %.12Lg (bar %.3Lg)\n", context, what,
                    (long long)i, got, want, bar);
    }
}

static void ok(int status, const char *what)
{
    if (status != FS_OK) {
        fprintf(stderr, "FAIL %s: %s returned %d\n", context, what, status);
        exit(1);
    }
}

#define CHECKS(T, DT, REL, ABS)                                                                               \
    static R lse_##DT(const T *xi, int64_t c) /* log sum_j exp(x_j), from the definition */                   \
    {                                                                                                         \
        R m = xi[0], z = 0;                                                                                   \
        for (int64_t j = 1; j < c; j++)                                                                       \
            m = xi[j] > m ? xi[j] : m;                                                                        \
        for (int64_t j = 0; j < c; j++)                                                                       \
            z += expl((R)xi[j] - m);                                                                          \
        return m + logl(z);                                                                                   \
    }                                                                                                         \
    static void checks_##DT(int64_t n, int64_t c)                                                             \
    {                                                                                                         \
        const R rel = REL, abs_ = ABS;                                                                        \
        T *x = malloc(sizeof(T) * n * c), *y = malloc(sizeof(T) * n * c), *t = malloc(sizeof(T) * n * c);     \
        T *w = malloc(sizeof(T) * c), *out = malloc(sizeof(T) * n);                                           \
        int64_t *tgt = malloc(sizeof(int64_t) * n);                                                           \
        double *rows = malloc(sizeof(double) * n), sum;                                                       \
        for (int64_t k = 0; k < n * c; k++) {                                                                 \
            x[k] = (T)(8 * uniform() - 4);                                                                    \
            t[k] = (T)(uniform() < 0.3);                                                                      \
        }                                                                                                     \
        for (int64_t j = 0; j < c; j++)                                                                       \
            w[j] = (T)(0.5 + uniform());                                                                      \
        for (int64_t i = 0; i < n; i++)                                                                       \
            tgt[i] = i % 5 == 4 ? -100 : (int64_t)(uniform() * c);                                            \
        const fs_batch b = {1, n, c};                                                                         \
        const fs_strides s = {n * c, c, 1};                                                                   \
        ok(fs_softmax_##DT(&b, x, &s, y, &s), "softmax");                                                     \
        for (int64_t i = 0; i < n; i++) {                                                                     \
            const T *xi = x + i * c;                                                                          \
            const R lse = lse_##DT(xi, c);                                                                    \
            for (int64_t j = 0; j < c; j++) {                                                                 \
                const R q = expl((R)xi[j] - lse);                                                             \
                check("softmax", i * c + j, y[i * c + j], q, rel * q + abs_);                                 \
            }                                                                                                 \
        }                                                                                                     \
        ok(fs_log_softmax_##DT(&b, x, &s, y, &s), "log_softmax");                                             \
        ok(fs_logsumexp_##DT(&b, x, &s, out), "logsumexp");                                                   \
        for (int64_t i = 0; i < n; i++) {                                                                     \
            const T *xi = x + i * c;                                                                          \
            const R lse = lse_##DT(xi, c);                                                                    \
            check("logsumexp", i, out[i], lse, rel * (1 + fabsl(lse)));                                       \
            for (int64_t j = 0; j < c; j++)                                                                   \
                check("log_softmax", i * c + j, y[i * c + j], xi[j] - lse, rel * (1 + fabsl(xi[j] - lse)));   \
        }                                                                                                     \
        /* cross-entropy, PyTorch's: class weights, label smoothing eps, ignore_index, "sum" */               \
        for (int smooth = 0; smooth < 2; smooth++) {                                                          \
            const R eps = smooth ? 0.1L : 0, scale = 0.5L;                                                    \
            fs_ce_args a;                                                                                     \
            memset(&a, 0, sizeof a);                                                                          \
            a.target = tgt;                                                                                   \
            a.ignore_index = -100;                                                                            \
            a.weight = w;                                                                                     \
            a.label_smoothing = (double)eps;                                                                  \
            a.grad_scale = (double)scale;                                                                     \
            ok(fs_cross_entropy_##DT(&b, x, &s, &a, rows, &sum, y, &s), "cross_entropy");                     \
            R total = 0;                                                                                      \
            for (int64_t i = 0; i < n; i++) {                                                                 \
                const T *xi = x + i * c;                                                                      \
                const R lse = lse_##DT(xi, c);                                                                \
                R wsum = 0, loss = 0;                                                                         \
                const int64_t y_i = tgt[i];                                                                   \
                if (y_i != -100) {                                                                            \
                    for (int64_t j = 0; j < c; j++) {                                                         \
                        wsum += w[j];                                                                         \
                        loss += eps / c * w[j] * (lse - xi[j]);                                               \
                    }                                                                                         \
                    loss += (1 - eps) * w[y_i] * (lse - xi[y_i]);                                             \
                }                                                                                             \
                check("ce loss", i, rows[i], loss, rel * (1 + fabsl(loss)));                                  \
                total += loss;                                                                                \
                for (int64_t j = 0; j < c; j++) {                                                             \
                    R g = 0;                                                                                  \
                    if (y_i != -100)                                                                          \
                        g = scale * (expl(xi[j] - lse) * ((1 - eps) * w[y_i] + eps / c * wsum) -              \
                                     (j == y_i ? (1 - eps) * w[y_i] : 0) - eps / c * w[j]);                   \
                    check("ce grad", i * c + j, y[i * c + j], g, rel * (fabsl(g) + scale));                   \
                }                                                                                             \
            }                                                                                                 \
            check("ce sum", 0, sum, total, rel * (1 + fabsl(total)));                                         \
        }                                                                                                     \
        /* sigmoid; BCE with logits with pos_weight, "sum", the gradient scaled by 0.25 */                    \
        ok(fs_sigmoid_##DT(&b, x, &s, y, &s), "sigmoid");                                                     \
        for (int64_t k = 0; k < n * c; k++) {                                                                 \
            const R q = 1 / (1 + expl(-(R)x[k]));                                                             \
            check("sigmoid", k, y[k], q, rel * q + abs_);                                                     \
        }                                                                                                     \
        fs_bce_args ba;                                                                                       \
        memset(&ba, 0, sizeof ba);                                                                            \
        ba.target = t;                                                                                        \
        ba.target_strides = s;                                                                                \
        ba.pos_weight = w;                                                                                    \
        ba.grad_scale = 0.25;                                                                                 \
        ok(fs_bce_logits_##DT(&b, x, &s, &ba, rows, &sum, NULL, NULL, y, &s), "bce_logits");                  \
        R total = 0;                                                                                          \
        for (int64_t k = 0; k < n * c; k++) {                                                                 \
            const R xk = x[k], tk = t[k], lw = 1 + ((R)w[k % c] - 1) * tk;                                    \
            const R loss = (1 - tk) * xk + lw * log1pl(expl(-xk));                                            \
            const R g = 0.25L * ((1 - tk) - lw / (1 + expl(xk)));                                             \
            total += loss;                                                                                    \
            check("bce grad", k, y[k], g, rel * (fabsl(g) + 0.25L));                                          \
        }                                                                                                     \
        check("bce sum", 0, sum, total, rel * (1 + fabsl(total)));                                            \
        free(x), free(y), free(t), free(w), free(out), free(tgt), free(rows);                                 \
    }

CHECKS(float, f32, 2e-6L, 1e-12L)
CHECKS(double, f64, 1e-12L, 1e-300L)

int main(void)
{
    static const int64_t classes[] = {1, 2, 3, 4, 5, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 129, 257, 1000, 4099};
    static const int64_t rows[] = {1, 3, 37};
    char label[160];
    int runs = 0;
    for (int isa = 0; fs_isa_name(isa) != NULL; isa++) {
        if (!fs_isa_supported(isa))
            continue;
        fs_select_isa(isa);
        for (int threads = 1; threads <= 2; threads++) {
            fs_set_num_threads(threads);
            for (size_t ci = 0; ci < sizeof classes / sizeof *classes; ci++)
                for (size_t ri = 0; ri < sizeof rows / sizeof *rows; ri++) {
                    context = label;
                    snprintf(label, sizeof label, "%s, %d thread(s), %lld x %lld, float", fs_isa_name(isa),
                             threads, (long long)rows[ri], (long long)classes[ci]);
                    checks_f32(rows[ri], classes[ci]);
                    snprintf(label, sizeof label, "%s, %d thread(s), %lld x %lld, double", fs_isa_name(isa),
                             threads, (long long)rows[ri], (long long)classes[ci]);
                    checks_f64(rows[ri], classes[ci]);
                    runs += 2;
                }
        }
        printf("%s: %s (float and double, %zu class counts x %zu row counts, 1 and 2 threads)\n",
               fs_isa_name(isa), failures ? "FAIL" : "ok", sizeof classes / sizeof *classes,
               sizeof rows / sizeof *rows);
        if (failures)
            return 1;
    }
    printf("kernel_check: %d runs passed\n", runs);
    return 0;
}
