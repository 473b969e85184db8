"""The float64 reference of the sampled losses (the oracle of the sampled kernels): against the
full softmax cross-entropy, against finite differences, and against the formulas it stands for."""

import itertools

import numpy as np
import pytest

from fastsoftmax import reference, sampling


def _problem(seed, n=7, c=23, d=5, num_true=1, num_sampled=9, bias=True, unique=True):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c, d))
    b = rng.standard_normal(c) if bias else None
    x = rng.standard_normal((n, d))
    labels = rng.integers(0, c, (n, num_true))
    sampled_values = sampling.log_uniform_candidate_sampler(labels, num_true, num_sampled, unique, c, rng=seed)
    return w, b, labels, x, sampled_values


def test_all_classes_sampled_is_the_full_softmax():
    """Uniform sampler, unique, num_sampled = num_classes: every class is a candidate, the
    true class's sampled copy is an accidental hit, and log Q is the same for every logit."""
    rng = np.random.default_rng(3)
    n, c, d = 11, 17, 6
    w, b, x = rng.standard_normal((c, d)), rng.standard_normal(c), rng.standard_normal((n, d))
    y = rng.integers(0, c, n)
    sv = sampling.uniform_candidate_sampler(y[:, None], 1, c, True, c, rng=4)
    loss, g = reference.sampled_softmax_loss(w, b, y, x, sv, return_grad=True)
    full, g_logits = reference.cross_entropy(x @ w.T + b, y, return_grad=True)
    np.testing.assert_allclose(loss, full, rtol=1e-12)
    np.testing.assert_array_equal(g.ids, np.arange(c))
    np.testing.assert_allclose(g.inputs, g_logits @ w, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(g.weights, g_logits.T @ x, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(g.biases, g_logits.sum(axis=0), rtol=1e-10, atol=1e-14)


def _fd_check(fn, w, b, labels, x, sv, **kw):
    loss, g = fn(w, b, labels, x, sv, return_grad=True, **kw)
    total = lambda w_, b_, x_: np.sum(fn(w_, b_, labels, x_, sv, **kw))  # noqa: E731
    h = 1e-6
    for name, arr in (("inputs", x), ("weights", w), ("biases", b)):
        if arr is None:
            assert g.biases is None
            continue
        num = np.zeros_like(arr)
        for idx in np.ndindex(arr.shape):
            plus, minus = arr.copy(), arr.copy()
            plus[idx] += h
            minus[idx] -= h
            args_p = {"inputs": (w, b, plus), "weights": (plus, b, x), "biases": (w, plus, x)}[name]
            args_m = {"inputs": (w, b, minus), "weights": (minus, b, x), "biases": (w, minus, x)}[name]
            num[idx] = (total(*args_p) - total(*args_m)) / (2 * h)
        if name == "inputs":
            got = g.inputs
        else:
            got = np.zeros_like(arr)
            got[g.ids] = g.weights if name == "weights" else g.biases
            untouched = np.setdiff1d(np.arange(arr.shape[0]), g.ids)
            np.testing.assert_allclose(num[untouched], 0.0, atol=1e-9)
        np.testing.assert_allclose(got, num, rtol=1e-6, atol=1e-8, err_msg=name)


@pytest.mark.parametrize("loss_fn,num_true,hits,log_q,bias,reduction", [
    (fn, nt, hits, lq, bias, red)
    for fn, nt, hits, lq, bias, red in itertools.product(
        [reference.sampled_softmax_loss, reference.nce_loss], [1, 3], [True, False], [True, False], [True, False],
        ["mean", "sum", "none"])
    if (hits, lq, bias) in {(True, True, True), (False, False, False), (True, False, True), (False, True, False)}])
def test_gradients_against_finite_differences(loss_fn, num_true, hits, log_q, bias, reduction):
    w, b, labels, x, sv = _problem(5 + num_true, num_true=num_true, bias=bias, unique=num_true == 1)
    _fd_check(loss_fn, w, b, labels if num_true > 1 else labels[:, 0], x, sv, num_true=num_true,
              remove_accidental_hits=hits, subtract_log_q=log_q, reduction=reduction)


def test_accidental_hits_get_no_probability():
    w, b, labels, x, sv = _problem(1, c=6, num_sampled=5)
    assert np.isin(labels, sv[0]).any()  # some hits in this problem
    _, g = reference.sampled_softmax_loss(w, b, labels[:, 0], x, sv, return_grad=True, reduction="sum")
    logits, _, *_ = reference._sampled_logits(w, b, labels, x, sv, 1, True, True)
    hit = labels == sv[0][None, :]
    assert np.all(logits[:, 1:][hit] < -1e38)
    p = np.exp(reference.log_softmax(logits))
    assert np.all(p[:, 1:][hit] == 0.0)


def test_nce_is_negative_sampling_without_log_q():
    """word2vec's negative sampling: -log sigmoid(true) - sum log sigmoid(-negative)."""
    w, b, labels, x, sv = _problem(2, bias=False)
    got = reference.nce_loss(w, None, labels[:, 0], x, sv, subtract_log_q=False, reduction="none")
    true = np.sum(x * w[labels[:, 0]], axis=1)
    neg = x @ w[sv[0]].T
    expected = np.logaddexp(0, -true) + np.sum(np.logaddexp(0, neg), axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-13)


def test_bad_reduction():
    w, b, labels, x, sv = _problem(0)
    with pytest.raises(ValueError, match="reduction"):
        reference.sampled_softmax_loss(w, b, labels[:, 0], x, sv, reduction="avg")
