/*
 * Candidate samplers (the sampling family): draws of classes from a proposal distribution Q
 * over [0, range_max), with TensorFlow's semantics (tensorflow/core/kernels/range_sampler.cc):
 *   uniform      Q(c) = 1 / range_max
 *   log-uniform  Q(c) = log((c + 2) / (c + 1)) / log(range_max + 1), drawn as
 *                floor(exp(u log(range_max + 1))) - 1 (mod range_max), u uniform in [0, 1)
 *   unigram      Q(c) = w_c / sum w, drawn from Walker's alias table (Vose's construction,
 *                "A linear algorithm for generating random numbers with a given distribution",
 *                IEEE TSE 1991): O(1) per draw.
 * With unique, draws are rejected until num_sampled distinct classes are in; every draw
 * counts as a try.  Expected counts: p num_sampled when tries == num_sampled, else
 * 1 - (1 - p)^tries, computed as -expm1(tries log1p(-p)) (in double; TensorFlow rounds to float).
 *
 * Random numbers come from the caller's generator (the binding passes NumPy's bitgen_t
 * functions and holds its lock): draws are serial, so a seed gives the same candidates
 * on any thread count.  Plain C, compiled once (the draws are not vector work).
 */
#ifndef FS_SAMPLING_SAMPLERS_H
#define FS_SAMPLING_SAMPLERS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A generator: next_uint64 gives 64 random bits, next_double a double uniform in [0, 1). */
typedef struct {
    void *state;
    uint64_t (*next_uint64)(void *state);
    double (*next_double)(void *state);
} fs_rng;

enum { FS_SAMPLER_UNIFORM = 0, FS_SAMPLER_LOG_UNIFORM = 1, FS_SAMPLER_UNIGRAM = 2 };

typedef struct {
    int kind;
    int64_t range_max;        /* classes 0 .. range_max - 1, range_max >= 1 */
    /* unigram only (range_max entries each): Q(c), and the alias table of fs_alias_build */
    const double *prob;
    const double *alias_q;
    const int64_t *alias_j;
} fs_sampler;

/* num_sampled >= 1 draws into out (distinct with unique: the caller makes sure that at
 * least num_sampled classes have Q > 0); *num_tries gets the number of draws made.
 * FS_OK, or FS_ENOMEM. */
int fs_sample_candidates(const fs_sampler *s, fs_rng *rng, int64_t num_sampled, int unique, int64_t *out,
                         int64_t *num_tries);

/* out[i] = the expected count of classes[i] (each in [0, range_max)) in num_sampled
 * candidates drawn in num_tries tries. */
void fs_expected_counts(const fs_sampler *s, const int64_t *classes, int64_t n, int64_t num_sampled,
                        int64_t num_tries, double *out);

/* Walker's alias table of the distribution w[0..n) (w >= 0, finite, sum > 0): prob[c] =
 * w[c] / sum w; a draw takes j uniform in [0, n) and keeps j with probability q[j], else
 * alias[j].  FS_OK, or FS_ENOMEM. */
int fs_alias_build(const double *w, int64_t n, double *prob, double *q, int64_t *alias);

#ifdef __cplusplus
}
#endif
#endif
