"""fs.sampled_softmax_loss and fs.nce_loss against the float64 reference (reference.sampled_softmax_loss,
reference.nce_loss), within the accuracy bars plus the product allowance of reference.TOLERANCES."""

import itertools

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference, sampling

from conftest import kernel_threads

TOL = reference.TOLERANCES


def _problem(dtype, seed, n=13, c=41, d=8, num_true=1, num_sampled=11, bias=True, unique=True):
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((c, d)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype) if bias else None
    x = rng.standard_normal((n, d)).astype(dtype)
    labels = rng.integers(0, c, (n, num_true))
    if not unique:
        labels[::2] = rng.integers(0, 3, (labels[::2].shape[0], num_true))  # a class twice in some rows
    # small class ids are frequent: a few accidental hits (and with unique=False, repeated candidates)
    sv = sampling.log_uniform_candidate_sampler(labels, num_true, num_sampled, unique, c, rng=seed)
    return w, b, labels, x, sv


def _check_grad(got, ref, r, k, sum_abs_b, dtype):
    t = TOL[np.dtype(dtype)]
    bound = t["rel"] * (np.abs(ref) + r) + (t["rel"] + k * t["unit_roundoff"]) * 4 * r * sum_abs_b
    err = np.abs(got.astype(np.float64) - ref)
    assert np.all(err <= bound), float(np.max(err / bound))


CASES = [(fn, nt, hits, lq, bias, red)
         for fn, nt, hits, lq, bias, red in itertools.product(
             ["sampled_softmax_loss", "nce_loss"], [1, 3], [True, False], [True, False], [True, False],
             ["mean", "sum", "none"])
         if (hits, lq, bias) in {(True, True, True), (False, False, False), (True, False, True), (False, True, False)}]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,num_true,hits,log_q,bias,reduction", CASES)
def test_against_the_reference(isa, dtype, name, num_true, hits, log_q, bias, reduction):
    _check_against_the_reference(dtype, name, num_true, hits, log_q, bias, reduction, True)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sampled_softmax_loss", "nce_loss"])
@pytest.mark.parametrize("num_true,hits,log_q,bias", [(1, True, True, True), (3, True, True, True),
                                                      (3, False, True, False), (1, False, False, True)])
def test_repeated_candidates_and_labels(isa, dtype, name, num_true, hits, log_q, bias):
    """unique=False: a class drawn more than once (its gradient rows summed into one row of ids),
    and a row with the same true class more than once; on every instruction-set path."""
    _check_against_the_reference(dtype, name, num_true, hits, log_q, bias, "sum", False)


def _check_against_the_reference(dtype, name, num_true, hits, log_q, bias, reduction, unique):
    w, b, labels, x, sv = _problem(dtype, 3 + num_true, num_true=num_true, bias=bias, unique=unique)
    if not unique:
        assert np.unique(sv[0]).size < sv[0].size
    lab = labels if num_true > 1 else labels[:, 0]
    opts = dict(num_true=num_true, remove_accidental_hits=hits, subtract_log_q=log_q, reduction=reduction)
    loss, g = getattr(fs, name)(w, b, lab, x, 11, w.shape[0], sampled_values=sv, return_grad=True, **opts)
    ref_loss, rg = getattr(reference, name)(w, b, lab, x, sv, return_grad=True, **opts)
    t = TOL[np.dtype(dtype)]
    d = x.shape[1]
    # the loss: the elementwise bar, plus the rounding of the logits' products over D
    logit_err = (t["rel"] + d * t["unit_roundoff"]) * 4 * np.max(np.abs(x).astype(np.float64) @ np.abs(w.T))
    scale = 1 + num_true + 11 if name == "nce_loss" else 2
    np.testing.assert_allclose(np.asarray(loss, np.float64), ref_loss, rtol=t["rel"],
                               atol=t["rel"] + scale * logit_err)
    assert np.asarray(loss).dtype == dtype
    np.testing.assert_array_equal(g.ids, rg.ids)
    assert g.inputs.dtype == dtype and g.weights.dtype == dtype
    n, k = x.shape[0], num_true + 11
    r = 1.0 / n if reduction == "mean" else 1.0
    # d inputs: G (N, k) times the k weight rows; d weights: G.T (k, N) times inputs; d biases: sums over N
    w_rows = np.abs(w[np.concatenate([labels.reshape(-1), sv[0]])].astype(np.float64))
    grad_err = logit_err * r * (1 + num_true)
    _check_grad(g.inputs, rg.inputs, r, k, w_rows.sum(axis=0)[None, :] + grad_err, dtype)
    _check_grad(g.weights, rg.weights, r, n, np.abs(x).sum(axis=0)[None, :] + grad_err, dtype)
    if bias:
        _check_grad(g.biases, rg.biases, r, n, n + grad_err, dtype)
    else:
        assert g.biases is None


def test_all_classes_sampled_equals_cross_entropy():
    rng = np.random.default_rng(0)
    c, d, n = 19, 6, 10
    w, b, x = rng.standard_normal((c, d)), rng.standard_normal(c), rng.standard_normal((n, d))
    y = rng.integers(0, c, n)
    loss = fs.sampled_softmax_loss(w, b, y, x, c, c, sampler="uniform", unique=True, rng=1)
    np.testing.assert_allclose(loss, fs.cross_entropy(x @ w.T + b, y), rtol=1e-12)


def test_sampler_draws_and_seed():
    w, b, labels, x, _ = _problem(np.float64, 1, c=500)
    a = fs.sampled_softmax_loss(w, b, labels[:, 0], x, 20, 500, rng=7)
    sv = sampling.log_uniform_candidate_sampler(labels, 1, 20, True, 500, rng=7)
    np.testing.assert_allclose(a, fs.sampled_softmax_loss(w, b, labels[:, 0], x, 20, 500, sampled_values=sv),
                               rtol=0)
    u = sampling.UnigramSampler(np.arange(1, 501.0), 0.75)
    sv_u = u.sample(labels, 1, 20, True, 500, rng=3)
    np.testing.assert_allclose(fs.nce_loss(w, b, labels, x, 20, 500, sampler=u, rng=3),
                               fs.nce_loss(w, b, labels, x, 20, 500, sampled_values=sv_u), rtol=0)


def test_sgd_step_with_the_gradient_rows():
    w, b, labels, x, sv = _problem(np.float64, 2)
    loss, g = fs.sampled_softmax_loss(w, b, labels, x, 11, w.shape[0], sampled_values=sv, return_grad=True)
    w2, b2 = w.copy(), b.copy()
    w2[g.ids] -= 0.1 * g.weights
    b2[g.ids] -= 0.1 * g.biases
    assert fs.sampled_softmax_loss(w2, b2, labels, x, 11, w.shape[0], sampled_values=sv) < loss


@pytest.mark.parametrize("kwargs,exc,match", [
    ({"labels": [[41]] * 13}, IndexError, "outside"),
    ({"labels": np.zeros((13, 2), int)}, ValueError, "labels must have shape"),
    ({"labels": np.zeros(13)}, TypeError, "integers"),
    ({"num_sampled": 0}, ValueError, "num_sampled"),
    ({"inputs": np.zeros((13, 8), np.float32)}, TypeError, "one dtype"),
    ({"inputs": np.zeros((13, 7))}, ValueError, "inputs must have shape"),
    ({"biases": np.zeros(40)}, ValueError, "biases"),
    ({"num_classes": 40}, ValueError, "weights must have shape"),
    ({"reduction": "avg"}, ValueError, "reduction"),
    ({"sampler": "zipf"}, ValueError, "sampler"),
    ({"sampler": 3}, TypeError, "sampler"),
    ({"sampled_values": (np.array([0, 50]), np.ones((13, 1)), np.ones(2)), "num_sampled": 2}, IndexError,
     "outside"),
    ({"sampled_values": (np.array([0, 1]), np.ones((13, 1)), np.ones(3)), "num_sampled": 2}, ValueError,
     "expected counts"),
])
def test_bad_input(kwargs, exc, match):
    w, b, labels, x, _ = _problem(np.float64, 0)
    args = dict(weights=w, biases=b, labels=labels[:, 0], inputs=x, num_sampled=5, num_classes=41)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        fs.sampled_softmax_loss(**args)


@pytest.mark.parametrize("cls,fn", [(fs.SampledSoftmaxLoss, fs.sampled_softmax_loss), (fs.NCELoss, fs.nce_loss)])
def test_loss_objects(cls, fn):
    w, b, labels, x, sv = _problem(np.float64, 6)
    c = w.shape[0]
    loss_fn = cls(11, c, rng=3)
    with pytest.raises(RuntimeError, match="before a forward"):
        loss_fn.backward()
    loss = loss_fn(w, b, labels[:, 0], x, sampled_values=sv)
    ref, g_ref = fn(w, b, labels[:, 0], x, 11, c, sampled_values=sv, return_grad=True)
    assert loss == ref
    g = loss_fn.backward(2.0)
    np.testing.assert_allclose(g.inputs, 2 * g_ref.inputs, rtol=1e-13)
    np.testing.assert_allclose(g.weights, 2 * g_ref.weights, rtol=1e-13)
    np.testing.assert_allclose(g.biases, 2 * g_ref.biases, rtol=1e-13)
    with pytest.raises(RuntimeError, match="already"):
        loss_fn.backward()
    # reduction "none" with one factor per example: the gradient of sum(f_n loss_n)
    f = np.linspace(0.5, 2.0, x.shape[0])
    per = cls(11, c, reduction="none")
    losses = per(w, b, labels[:, 0], x, sampled_values=sv)
    assert losses.shape == (x.shape[0],)
    g = per.backward(f)
    _, g_sum = fn(w, b, labels[:, 0], x, 11, c, sampled_values=sv, reduction="none", return_grad=True)
    # the rows of d inputs scale with their factor
    np.testing.assert_allclose(g.inputs, f[:, None] * g_sum.inputs, rtol=1e-12, atol=1e-15)
    # the weight rows mix the examples: a finite difference of sum(f_n loss_n)
    h = 1e-6
    k = 0
    wp, wm = w.copy(), w.copy()
    wp[g.ids[k], 0] += h
    wm[g.ids[k], 0] -= h
    num = (np.sum(f * fn(wp, b, labels[:, 0], x, 11, c, sampled_values=sv, reduction="none"))
           - np.sum(f * fn(wm, b, labels[:, 0], x, 11, c, sampled_values=sv, reduction="none"))) / (2 * h)
    np.testing.assert_allclose(g.weights[k, 0], num, rtol=1e-6, atol=1e-9)
    # sampling with the object's generator: reproducible from the seed
    a = cls(11, c, rng=5)(w, b, labels[:, 0], x)
    assert a == cls(11, c, rng=5)(w, b, labels[:, 0], x)
    assert "num_true" not in repr(cls(11, c))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sampled_softmax_loss", "nce_loss"])
def test_every_instruction_set_and_thread_count(isa, dtype, name):
    """The sampled losses' own kernels (gather, true logits, hits, gradient rows) on every
    instruction-set path (the isa fixture) and on 1, 2 and 3 threads with the threading
    threshold at one element (every kernel split): bitwise the same on every thread count
    (NumPy's products see the same inputs each time)."""
    w, b, labels, x, sv = _problem(dtype, 11, n=67, c=301, d=37, num_true=2, num_sampled=45, unique=False)
    results = []
    for threads in (1, 2, 3):
        with kernel_threads(threads, (1, 0)):
            results.append(getattr(fs, name)(w, b, labels, x, 45, 301, num_true=2, sampled_values=sv,
                                             remove_accidental_hits=True, return_grad=True))
    for loss, g in results[1:]:
        assert np.asarray(loss).tobytes() == np.asarray(results[0][0]).tobytes()
        for got, first in zip(g, results[0][1]):
            assert got.tobytes() == first.tobytes()
