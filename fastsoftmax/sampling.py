"""Candidate samplers, with TensorFlow's semantics (``tf.random.*_candidate_sampler``).

A candidate sampler draws ``num_sampled`` classes from a proposal distribution Q over
``[0, range_max)`` and reports how often each true class and each candidate is expected to
be drawn, which the sampled losses use to correct their logits by ``log(expected count)``.

Every sampler returns ``(sampled_candidates, true_expected_count, sampled_expected_count)``:

* ``sampled_candidates``: int64 array of shape ``(num_sampled,)``;
* ``true_expected_count``: float64 array of the shape of ``true_classes``, ``(N, num_true)``;
* ``sampled_expected_count``: float64 array of shape ``(num_sampled,)``.

With ``unique=True`` the candidates are distinct: draws are rejected until ``num_sampled``
distinct classes are in, and every draw counts as a try. The expected count of a class of
probability ``p`` is ``p * num_sampled`` when there were no rejections, and otherwise
``1 - (1 - p)**tries``, the probability that it was drawn at least once (computed as
``-expm1(tries * log1p(-p))``). TensorFlow computes the counts in float32; here they are
float64.

``rng`` follows SPEC 7: ``None`` (fresh entropy), an int seed, or a
``numpy.random.Generator``. The draws come from its bit generator, under the generator's lock,
so that a seeded call gives the same candidates every time, on any thread count.
"""


import numpy as np

from . import _config, _kernels

__all__ = ["log_uniform_candidate_sampler", "uniform_candidate_sampler", "fixed_unigram_candidate_sampler",
           "UnigramSampler"]

_UNIFORM, _LOG_UNIFORM, _UNIGRAM = 0, 1, 2


def _count(value, name, least):
    """An integer argument (Python or NumPy integer, not bool) of at least ``least``."""
    value = _config.integer(value, name)
    if value < least:
        raise ValueError(f"{name} must be at least {least}, got {value}")
    if value >= 2**62:
        raise ValueError(f"{name} must be below 2**62, got {value}")
    return value


def _generator(rng):
    if isinstance(rng, np.random.RandomState):
        raise TypeError("rng must be None, an int seed or a numpy.random.Generator (not a RandomState)")
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError) as e:
        raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator: {e}") from None


def _true_classes(true_classes, num_true, range_max):
    t = np.asarray(true_classes)
    if t.dtype.kind not in "iu":
        raise TypeError(f"true_classes must be an integer array, got dtype {t.dtype}")
    if t.ndim != 2 or t.shape[1] != num_true:
        raise ValueError(f"true_classes must have shape (N, num_true) = (N, {num_true}), got {t.shape}")
    if t.size and (t.min() < 0 or t.max() >= range_max):
        bad = t[(t < 0) | (t >= range_max)].flat[0]
        raise IndexError(f"true class {bad} is outside [0, range_max) = [0, {range_max})")
    return np.require(t, np.int64, "CA")  # contiguous and aligned


def _sample(kind, table, n_possible, true_classes, num_true, num_sampled, unique, range_max, rng):
    num_true = _count(num_true, "num_true", 1)
    num_sampled = _count(num_sampled, "num_sampled", 1)
    range_max = _count(range_max, "range_max", 1)
    if not isinstance(unique, (bool, np.bool_)):
        raise TypeError(f"unique must be a bool, not {type(unique).__name__}")
    t = _true_classes(true_classes, num_true, range_max)
    if unique and num_sampled > range_max:
        raise ValueError(f"unique=True needs num_sampled <= range_max, got {num_sampled} > {range_max}")
    if unique and num_sampled > n_possible:
        raise ValueError(f"unique=True needs num_sampled <= the number of classes of nonzero probability, "
                         f"got {num_sampled} > {n_possible}")
    gen = _generator(rng)
    sampled = np.empty(num_sampled, dtype=np.int64)
    tries = _kernels.sample_candidates(kind, range_max, table, gen.bit_generator, bool(unique), sampled)
    true_count = np.empty(t.size, dtype=np.float64)
    _kernels.expected_counts(kind, range_max, table, t.reshape(-1), num_sampled, tries, true_count)
    sampled_count = np.empty(num_sampled, dtype=np.float64)
    _kernels.expected_counts(kind, range_max, table, sampled, num_sampled, tries, sampled_count)
    return sampled, true_count.reshape(t.shape), sampled_count


def log_uniform_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max, rng=None):
    """Candidates from the log-uniform (Zipfian) distribution over ``[0, range_max)``.

    ``P(c) = log((c + 2) / (c + 1)) / log(range_max + 1)``: class 0 is the most likely, which
    suits classes sorted by decreasing frequency (word ids of a vocabulary sorted by count).
    Same semantics as ``tf.random.log_uniform_candidate_sampler``.

    Parameters
    ----------
    true_classes : array_like of int, shape (N, num_true)
        The target classes of each example, each in ``[0, range_max)``.
    num_true : int
        Number of target classes per example.
    num_sampled : int
        Number of candidates to draw (at least 1).
    unique : bool
        Draw distinct candidates (needs ``num_sampled <= range_max``).
    range_max : int
        Number of classes.
    rng : None, int or numpy.random.Generator, optional
        The source of randomness (SPEC 7).

    Returns
    -------
    sampled_candidates : ndarray of int64, shape (num_sampled,)
    true_expected_count : ndarray of float64, shape (N, num_true)
    sampled_expected_count : ndarray of float64, shape (num_sampled,)
    """
    return _sample(_LOG_UNIFORM, None, range_max, true_classes, num_true, num_sampled, unique, range_max, rng)


def uniform_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max, rng=None):
    """Candidates drawn uniformly from ``[0, range_max)``: ``P(c) = 1 / range_max``.

    Same semantics as ``tf.random.uniform_candidate_sampler``; parameters and return values
    as in :func:`log_uniform_candidate_sampler`.
    """
    return _sample(_UNIFORM, None, range_max, true_classes, num_true, num_sampled, unique, range_max, rng)


class UnigramSampler:
    """Candidates from a fixed distribution ``P(c) ∝ unigrams[c] ** distortion``.

    The alias table (Walker's method) is built once, in O(range_max); each draw then costs
    O(1). word2vec draws its negatives with ``distortion=0.75``.

    Parameters
    ----------
    unigrams : array_like of float, shape (range_max,)
        Non-negative, finite weights (counts or frequencies), at least one positive.
    distortion : float, default 1.0
        The power the weights are raised to (``0 ** 0`` is 1, as in TensorFlow).

    Attributes
    ----------
    range_max : int
        Number of classes.
    probabilities : ndarray of float64, shape (range_max,)
        ``P(c)``.
    """

    def __init__(self, unigrams, distortion=1.0):
        u = np.asarray(unigrams)
        if u.dtype.kind not in "iuf" or u.ndim != 1 or u.size == 0:
            raise ValueError("unigrams must be a non-empty 1-D array of real weights")
        u = u.astype(np.float64)
        if not np.all(np.isfinite(u)):
            raise ValueError("unigrams must be finite (no NaN or inf)")
        if np.any(u < 0):
            raise ValueError("unigrams must be non-negative")
        if isinstance(distortion, (bool, np.bool_)) or not isinstance(distortion, (int, float, np.integer,
                                                                                    np.floating)):
            raise TypeError(f"distortion must be a real number, not {type(distortion).__name__}")
        distortion = float(distortion)
        if not np.isfinite(distortion):
            raise ValueError("distortion must be finite")
        w = u ** distortion
        if not np.all(np.isfinite(w)):
            raise ValueError("unigrams ** distortion overflows")
        if not np.any(w > 0):
            raise ValueError("unigrams must have at least one positive weight")
        if not np.isfinite(w.sum()):
            raise ValueError("the sum of unigrams ** distortion overflows")
        self.range_max = w.size
        self.distortion = distortion
        self._n_possible = int(np.count_nonzero(w))
        self.probabilities = np.empty(w.size)
        q = np.empty(w.size)
        alias = np.empty(w.size, dtype=np.int64)
        _kernels.alias_build(w, self.probabilities, q, alias)
        self._table = (self.probabilities, q, alias)
        self.probabilities.flags.writeable = False

    def __repr__(self):
        return f"UnigramSampler(range_max={self.range_max}, distortion={self.distortion})"

    def sample(self, true_classes, num_true, num_sampled, unique, range_max, rng=None):
        """Draw candidates; parameters and return values as in
        :func:`log_uniform_candidate_sampler` (``range_max`` must equal ``len(unigrams)``)."""
        range_max = _count(range_max, "range_max", 1)
        if range_max != self.range_max:
            raise ValueError(f"range_max ({range_max}) must equal len(unigrams) ({self.range_max})")
        return _sample(_UNIGRAM, self._table, self._n_possible, true_classes, num_true, num_sampled, unique,
                       range_max, rng)


def fixed_unigram_candidate_sampler(true_classes, num_true, num_sampled, unique, range_max, *, unigrams,
                                    distortion=1.0, rng=None):
    """Candidates from ``P(c) ∝ unigrams[c] ** distortion``, as
    ``tf.random.fixed_unigram_candidate_sampler`` (``len(unigrams) == range_max``).

    Builds the alias table on every call: to draw many times from one distribution, build a
    :class:`UnigramSampler` once and call its ``sample``. Parameters and return values as in
    :func:`log_uniform_candidate_sampler`.
    """
    return UnigramSampler(unigrams, distortion).sample(true_classes, num_true, num_sampled, unique, range_max,
                                                      rng=rng)
