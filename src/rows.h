/*
 * Per-row helpers of the batch kernels, compiled with each instruction set
 * (kernels_isa.h includes this file; plain C that the compiler vectorizes):
 * the fixed-order sum of per-row losses, and the check of class-index targets
 * that the Python layer runs before a cross-entropy kernel.
 */
#ifndef FS_ROWS_H
#define FS_ROWS_H

#include <stdint.h>

/* Leaves of the sum: eight running sums over a block, added in a fixed tree.  One running sum
 * is a chain of dependent additions (65536 rows: about 80 us, a tenth of the 65536 x 10
 * cross-entropy); eight chains are eight times shorter and vectorize.  Blocks of 1024 are then
 * added in row order, as NumPy's pairwise sum adds its leaves, so the rounding error grows
 * with 128 terms per chain, not with n.  The order does not depend on the vector width. */
#define ROWS_BLOCK 1024

static inline double rows_sum_block(const double *v, int64_t m)
{
    double s[8] = {0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0};
    int64_t i = 0;
    for (; i + 8 <= m; i += 8)
        for (int k = 0; k < 8; k++)
            s[k] += v[i + k];
    for (int k = 0; i < m; i++, k++)
        s[k] += v[i];
    return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

static inline double rows_sum(const double *v, int64_t n)
{
    double total = 0.0;
    for (int64_t b = 0; b < n; b += ROWS_BLOCK)
        total += rows_sum_block(v + b, n - b < ROWS_BLOCK ? n - b : ROWS_BLOCK);
    return total;
}

/* See fs_check_targets in fastsoftmax.h.  Each block is checked without branches (so that
 * it vectorizes), and searched for its first bad target only when it has one. */
static inline int64_t rows_check_targets(const int64_t *target, int64_t n, int64_t n_classes, int64_t ignore_index,
                                         const double *weight, int64_t *n_valid, double *weight_sum)
{
    double part[ROWS_BLOCK];
    double wsum = 0.0;
    int64_t valid = 0;
    for (int64_t b = 0; b < n; b += ROWS_BLOCK) {
        const int64_t m = n - b < ROWS_BLOCK ? n - b : ROWS_BLOCK;
        const int64_t *t = target + b;
        int64_t bad = 0;
        for (int64_t i = 0; i < m; i++) {
            const int64_t keep = t[i] != ignore_index;
            /* one unsigned comparison: negative targets wrap to huge values */
            bad |= keep & ((uint64_t)t[i] >= (uint64_t)n_classes);
            valid += keep;
        }
        if (bad) {
            for (int64_t i = 0; i < m; i++)
                if (t[i] != ignore_index && (uint64_t)t[i] >= (uint64_t)n_classes)
                    return b + i;
        }
        if (weight) {
            /* weights of the rows not ignored, summed like the losses (same block tree) */
            for (int64_t i = 0; i < m; i++)
                part[i] = t[i] != ignore_index ? weight[t[i]] : 0.0;
            wsum += rows_sum_block(part, m);
        }
    }
    *n_valid = valid;
    *weight_sum = wsum;
    return -1;
}

#endif
