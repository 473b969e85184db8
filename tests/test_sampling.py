"""Candidate samplers (fastsoftmax.sampling) against their definitions (fastsoftmax.reference)."""

import math

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import _kernels, reference, sampling

KIND = {"uniform": 0, "log_uniform": 1}


def _chi2_limit(df, z=3.719):
    """The chi-square quantile of df degrees of freedom at the normal quantile z (3.719: 0.9999),
    by Wilson and Hilferty's approximation."""
    a = 2.0 / (9.0 * df)
    return df * (1.0 - a + z * math.sqrt(a)) ** 3


def _chi2(counts, p):
    expected = counts.sum() * p
    keep = expected > 0
    assert np.all(counts[~keep] == 0), "a class of probability 0 was drawn"
    return float(np.sum((counts[keep] - expected[keep]) ** 2 / expected[keep])), int(keep.sum()) - 1


def _draw(name, true, num_true, num_sampled, unique, range_max, rng, unigrams=None, distortion=1.0):
    if name == "log_uniform":
        return sampling.log_uniform_candidate_sampler(true, num_true, num_sampled, unique, range_max, rng=rng)
    if name == "uniform":
        return sampling.uniform_candidate_sampler(true, num_true, num_sampled, unique, range_max, rng=rng)
    return sampling.fixed_unigram_candidate_sampler(true, num_true, num_sampled, unique, range_max,
                                                    unigrams=unigrams, distortion=distortion, rng=rng)


UNIGRAMS = np.array([5.0, 0.0, 1.0, 3.0, 0.5, 0.0, 8.0, 2.0, 1.0, 0.25, 4.0, 0.0, 7.0])


@pytest.mark.parametrize("name,range_max", [("log_uniform", 50), ("uniform", 37), ("unigram", 13),
                                             ("log_uniform", 1)])
def test_frequencies_match_the_distribution(name, range_max):
    """unique=False: each draw is an independent draw of Q (chi-square at a fixed seed)."""
    n = 200_000
    s, tc, sc = _draw(name, np.zeros((3, 1), np.int64), 1, n, False, range_max, 1234, UNIGRAMS, 0.75)
    assert s.dtype == np.int64 and s.shape == (n,)
    assert s.min() >= 0 and s.max() < range_max
    p = reference.candidate_probability(name, np.arange(range_max), range_max, unigrams=UNIGRAMS, distortion=0.75)
    np.testing.assert_allclose(p.sum(), 1.0, rtol=1e-12)
    if range_max > 1:
        stat, df = _chi2(np.bincount(s, minlength=range_max), p)
        assert stat < _chi2_limit(df), (stat, df)
    # no rejection: the expected count is p * num_sampled
    np.testing.assert_allclose(sc, reference.expected_count(p[s], n, n), rtol=1e-14)
    np.testing.assert_allclose(tc, reference.expected_count(p[[0]], n, n)[None, :].repeat(3, 0), rtol=1e-14)


@pytest.mark.parametrize("name", ["log_uniform", "uniform", "unigram"])
def test_unique_candidates_and_their_counts(name):
    range_max = 13 if name == "unigram" else 1000
    num_sampled = 9 if name == "unigram" else 300
    true = np.array([[0, 3], [12, 7], [2, 2]])
    for seed in range(5):
        s, tc, sc = _draw(name, true, 2, num_sampled, True, range_max, seed, UNIGRAMS, 0.75)
        assert len(np.unique(s)) == num_sampled
        out = np.empty(num_sampled, np.int64)
        table = sampling.UnigramSampler(UNIGRAMS, 0.75)._table if name == "unigram" else None
        tries = _kernels.sample_candidates(KIND.get(name, 2), range_max, table,
                                           np.random.default_rng(seed).bit_generator, True, out)
        np.testing.assert_array_equal(out, s)  # the same draws: the counts' tries are these
        assert tries >= num_sampled
        p = reference.candidate_probability(name, np.arange(range_max), range_max, unigrams=UNIGRAMS,
                                            distortion=0.75)
        np.testing.assert_allclose(sc, reference.expected_count(p[s], num_sampled, tries), rtol=1e-13)
        np.testing.assert_allclose(tc, reference.expected_count(p[true], num_sampled, tries), rtol=1e-13)
        assert tc.shape == true.shape and tc.dtype == np.float64


@pytest.mark.parametrize("name", ["log_uniform", "uniform"])
def test_unique_inclusion_frequency(name):
    """unique=True: how often each class is among the candidates.  TensorFlow's expected count,
    1 - (1 - p)^tries, is the inclusion probability of `tries` independent draws, which the
    rejection's stopping rule makes approximate; 0.03 is four standard errors of 4000 calls."""
    range_max, num_sampled, calls = 200, 20, 4000
    g = np.random.default_rng(5)
    every = np.arange(range_max)[None, :]
    freq = np.zeros(range_max)
    count = np.zeros(range_max)
    for _ in range(calls):
        s, tc, _ = _draw(name, every, range_max, num_sampled, True, range_max, g)
        freq[s] += 1
        count += tc[0]
    assert np.abs(freq / calls - count / calls).max() < 0.03


def test_all_classes_with_unique_and_num_sampled_range_max():
    for name in ("uniform", "log_uniform"):
        s, _, _ = _draw(name, np.array([[4]]), 1, 17, True, 17, 3)
        np.testing.assert_array_equal(np.sort(s), np.arange(17))


def test_reproducible_with_a_seed_and_a_generator():
    t = np.array([[1], [2]])
    a = sampling.log_uniform_candidate_sampler(t, 1, 64, True, 10_000, rng=42)
    b = sampling.log_uniform_candidate_sampler(t, 1, 64, True, 10_000, rng=42)
    c = sampling.log_uniform_candidate_sampler(t, 1, 64, True, 10_000, rng=43)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    g1, g2 = np.random.default_rng(7), np.random.default_rng(7)
    first = sampling.uniform_candidate_sampler(t, 1, 10, False, 100, rng=g1)[0]
    second = sampling.uniform_candidate_sampler(t, 1, 10, False, 100, rng=g1)[0]
    assert not np.array_equal(first, second)  # the generator advances
    np.testing.assert_array_equal(first, sampling.uniform_candidate_sampler(t, 1, 10, False, 100, rng=g2)[0])
    # the thread count does not enter
    try:
        fs.set_num_threads(1)
        one = sampling.log_uniform_candidate_sampler(t, 1, 500, True, 10**6, rng=9)[0]
        fs.set_num_threads(2)
        two = sampling.log_uniform_candidate_sampler(t, 1, 500, True, 10**6, rng=9)[0]
    finally:
        fs.set_num_threads(0)
    np.testing.assert_array_equal(one, two)


def test_unigram_sampler_object():
    u = sampling.UnigramSampler(UNIGRAMS, distortion=0.75)
    assert u.range_max == UNIGRAMS.size
    np.testing.assert_allclose(u.probabilities, reference.candidate_probability(
        "unigram", np.arange(UNIGRAMS.size), UNIGRAMS.size, unigrams=UNIGRAMS, distortion=0.75), rtol=1e-14)
    a = u.sample(np.array([[0]]), 1, 9, True, 13, rng=1)
    b = sampling.fixed_unigram_candidate_sampler(np.array([[0]]), 1, 9, True, 13, unigrams=UNIGRAMS,
                                                 distortion=0.75, rng=1)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    assert not np.isin(a[0], np.flatnonzero(UNIGRAMS == 0)).any()
    # distortion 0: every class equally likely, zero weights too (0 ** 0 = 1, as in TensorFlow)
    np.testing.assert_allclose(sampling.UnigramSampler(UNIGRAMS, 0).probabilities, 1 / UNIGRAMS.size)
    assert "range_max=13" in repr(u)


def test_large_range_log_uniform():
    s, tc, sc = sampling.log_uniform_candidate_sampler(np.array([[0], [999_999]]), 1, 8192, True, 10**6, rng=0)
    assert len(np.unique(s)) == 8192 and s.max() < 10**6
    assert np.all((sc > 0) & (sc <= 1)) and np.all((tc > 0) & (tc <= 1))


@pytest.mark.parametrize("call,exc,match", [
    (lambda: sampling.log_uniform_candidate_sampler([[5]], 1, 3, True, 5), IndexError, "outside"),
    (lambda: sampling.log_uniform_candidate_sampler([[-1]], 1, 3, True, 5), IndexError, "outside"),
    (lambda: sampling.log_uniform_candidate_sampler([[1]], 1, 6, True, 5), ValueError, "num_sampled <= range_max"),
    (lambda: sampling.log_uniform_candidate_sampler([[1]], 1, 0, True, 5), ValueError, "num_sampled"),
    (lambda: sampling.log_uniform_candidate_sampler([[1]], 1, -2, False, 5), ValueError, "num_sampled"),
    (lambda: sampling.log_uniform_candidate_sampler([[1]], 1, 2.0, False, 5), TypeError, "num_sampled"),
    (lambda: sampling.log_uniform_candidate_sampler([[1]], 1, 2, False, 0), ValueError, "range_max"),
    (lambda: sampling.log_uniform_candidate_sampler([[1, 2]], 1, 2, False, 5), ValueError, "num_true"),
    (lambda: sampling.log_uniform_candidate_sampler([1, 2], 1, 2, False, 5), ValueError, "shape"),
    (lambda: sampling.log_uniform_candidate_sampler([[1.0]], 1, 2, False, 5), TypeError, "integer"),
    (lambda: sampling.log_uniform_candidate_sampler([[1]], 1, 2, 1, 5), TypeError, "unique"),
    (lambda: sampling.log_uniform_candidate_sampler([[1]], 1, 2, False, 5, rng="x"), TypeError, "rng"),
    (lambda: sampling.log_uniform_candidate_sampler([[1]], 1, 2, False, 5, rng=np.random.RandomState(0)),
     TypeError, "RandomState"),
    (lambda: sampling.UnigramSampler([1.0, -1.0]), ValueError, "non-negative"),
    (lambda: sampling.UnigramSampler([0.0, 0.0]), ValueError, "positive"),
    (lambda: sampling.UnigramSampler([1.0, np.nan]), ValueError, "finite"),
    (lambda: sampling.UnigramSampler([]), ValueError, "non-empty"),
    (lambda: sampling.UnigramSampler([1.0, 2.0], distortion=np.inf), ValueError, "distortion"),
    (lambda: sampling.UnigramSampler([1.0, 2.0], distortion="a"), TypeError, "distortion"),
    (lambda: sampling.UnigramSampler([1.0, 0.0, 2.0]).sample([[0]], 1, 3, True, 3), ValueError, "nonzero"),
    (lambda: sampling.UnigramSampler([1.0, 2.0]).sample([[0]], 1, 1, True, 3), ValueError, "len"),
])
def test_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
