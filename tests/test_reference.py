"""Self-checks of the float64 reference (the oracle of every other test).

The reference is compared with naive scalar loops written straight from the
definitions (Python ``math`` with ``math.fsum``), and its analytic cross-entropy
gradient with central finite differences of its own loss.  These tests do not use
the compiled kernels.
"""

import itertools
import math
import os
import re

import numpy as np
import pytest

from fastsoftmax import reference as ref
from conftest import make_index_target, make_prob_target, fd_grad


def naive_log_softmax_row(row):
    m = max(row)
    lse = m + math.log(math.fsum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


def naive_ce(x, t, weight, ignore_index, reduction, eps):
    """Scalar-loop cross-entropy on an (N, C) float64 array, class axis last."""
    N, C = x.shape
    w = [1.0] * C if weight is None else list(weight)
    losses, denom = [], 0.0
    for n in range(N):
        lp = naive_log_softmax_row(list(x[n]))
        if t.dtype.kind == "f":
            ts = [t[n, c] * (1 - eps) + eps / C for c in range(C)]
            losses.append(-math.fsum(w[c] * ts[c] * lp[c] for c in range(C)))
            denom += 1.0
        elif t[n] == ignore_index:
            losses.append(0.0)
        else:
            y = int(t[n])
            li = (1 - eps) * w[y] * -lp[y]
            if eps:
                li += eps / C * math.fsum(w[c] * -lp[c] for c in range(C))
            losses.append(li)
            denom += w[y]
    if reduction == "none":
        return np.array(losses)
    s = math.fsum(losses)
    return s if reduction == "sum" else (s / denom if denom else math.nan)


@pytest.mark.parametrize("shape,axis", [((5, 7), -1), ((5, 7), 0), ((2, 3, 4), 1), ((6,), 0), ((1, 1), -1)])
def test_reference_softmax_family_matches_scalar_loops(rng, shape, axis):
    x = rng.standard_normal(shape) * 5
    xm = np.moveaxis(x, axis, -1).reshape(-1, shape[axis])
    lp_naive = np.array([naive_log_softmax_row(list(r)) for r in xm])
    lp = np.moveaxis(ref.log_softmax(x, axis), axis, -1).reshape(lp_naive.shape)
    p = np.moveaxis(ref.softmax(x, axis), axis, -1).reshape(lp_naive.shape)
    lse = ref.logsumexp(x, axis).reshape(-1)
    np.testing.assert_allclose(lp, lp_naive, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(p, np.exp(lp_naive), rtol=1e-14, atol=0)
    np.testing.assert_allclose(lse, xm[:, 0] - lp_naive[:, 0], rtol=1e-14, atol=1e-14)
    assert np.allclose(p.sum(axis=-1), 1.0, rtol=0, atol=1e-14)


@pytest.mark.parametrize("weighted,ignore,eps,reduction,prob",
                         list(itertools.product([False, True], [False, True], [0.0, 0.3, 1.0],
                                                ["mean", "sum", "none"], [False, True])))
def test_reference_cross_entropy_matches_scalar_loop(rng, weighted, ignore, eps, reduction, prob):
    N, C = 6, 5
    x = rng.standard_normal((N, C)) * 2
    weight = rng.uniform(0.5, 2.0, C) if weighted else None
    ii = 3 if ignore else -100  # an in-range ignore_index is legal (torch semantics)
    t = make_prob_target(rng, (N, C), -1) if prob else make_index_target(rng, (N,), C, ignore_index=ii if ignore else None)
    got = ref.cross_entropy(x, t, weight=weight, ignore_index=ii, reduction=reduction, label_smoothing=eps)
    want = naive_ce(x, t, weight, ii, reduction, eps)
    if reduction == "none":
        assert isinstance(got, np.ndarray) and got.dtype == np.float64 and got.shape == (N,)
    else:
        assert type(got) is np.float64
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)


@pytest.mark.parametrize("weighted,ignore,eps,reduction,prob,axis",
                         list(itertools.product([False, True], [False, True], [0.0, 0.2, 1.0],
                                                ["mean", "sum", "none"], [False, True], [-1, 0])))
def test_reference_gradient_matches_finite_differences(rng, weighted, ignore, eps, reduction, prob, axis):
    shape = (4, 3)
    C = shape[axis]
    batch = (shape[1 - (axis % 2)],)
    x = rng.standard_normal(shape)
    weight = rng.uniform(0.5, 2.0, C) if weighted else None
    t = make_prob_target(rng, shape, axis) if prob else make_index_target(
        rng, batch, C, ignore_index=-100 if ignore else None)
    kw = dict(axis=axis, weight=weight, reduction=reduction, label_smoothing=eps)
    loss, g = ref.cross_entropy(x, t, return_grad=True, **kw)

    def f(z):
        return float(np.sum(ref.cross_entropy(z, t, **kw)))

    fd = fd_grad(f, x)
    np.testing.assert_allclose(g, fd, rtol=1e-7, atol=1e-8)
    np.testing.assert_array_equal(loss, ref.cross_entropy(x, t, **kw))


def test_reference_special_rows():
    x = np.array([[0.0, 1, 2], [-np.inf] * 3, [np.inf, 0, 1], [np.nan, 0, 1], [-np.inf, 0, 1]])
    p = ref.softmax(x)
    lp = ref.log_softmax(x)
    assert np.isnan(p[1:4]).all() and np.isnan(lp[1:4]).all()
    assert np.isfinite(p[[0, 4]]).all()
    assert p[4, 0] == 0.0 and lp[4, 0] == -np.inf
    lse = ref.logsumexp(x)
    assert np.isfinite(lse[0]) and lse[1] == -np.inf and lse[2] == np.inf and np.isnan(lse[3])
    assert np.isfinite(lse[4])
    assert ref.logsumexp(np.zeros((2, 0))).tolist() == [-np.inf, -np.inf]
    loss = ref.cross_entropy(x, np.array([0, 0, 0, 0, 2]), reduction="none")
    assert np.isfinite(loss[[0, 4]]).all() and np.isnan(loss[1:4]).all()
    assert ref.cross_entropy(x[4:], np.array([0]), reduction="none")[0] == np.inf


def test_reference_empty_and_all_ignored():
    x = np.zeros((0, 4))
    assert np.isnan(ref.cross_entropy(x, np.zeros(0, np.int64)))
    assert ref.cross_entropy(x, np.zeros(0, np.int64), reduction="sum") == 0.0
    assert ref.cross_entropy(x, np.zeros(0, np.int64), reduction="none").shape == (0,)
    assert np.isnan(ref.cross_entropy(x, np.zeros((0, 4))))
    loss, g = ref.cross_entropy(np.ones((3, 4)), np.full(3, -100), return_grad=True, label_smoothing=0.1)
    assert np.isnan(loss) and np.all(g == 0)


def test_reference_errors():
    x = np.zeros((4, 5))
    with pytest.raises(IndexError, match=r"target 7 at row 3 .*5 classes"):
        ref.cross_entropy(x, np.array([0, 1, 2, 7]))
    with pytest.raises(IndexError, match=r"target -2 at row \(1, 0\)"):
        ref.cross_entropy(np.zeros((2, 5, 3)), np.array([[0, 1, 2], [-2, 0, 0]]), axis=1)
    with pytest.raises(ValueError):
        ref.cross_entropy(x, np.zeros(3, np.int64))
    with pytest.raises(ValueError):
        ref.cross_entropy(x, np.zeros(4, np.int64), weight=np.ones(4))
    with pytest.raises(ValueError):
        ref.cross_entropy(x, np.zeros(4, np.int64), label_smoothing=1.5)
    with pytest.raises(ValueError):
        ref.cross_entropy(x, np.zeros(4, np.int64), reduction="avg")
    with pytest.raises(TypeError, match="float32.*float64"):
        ref.softmax(np.zeros(3, np.float16))
    with pytest.raises(np.exceptions.AxisError):
        ref.logsumexp(x, axis=2)


def test_the_readme_accuracy_table_is_the_tolerances():
    """README.md's "Accuracy" table states ``reference.TOLERANCES`` (the checkout's README, next
    to tests/; skipped when the tests run without it)."""
    readme = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "README.md")
    if not os.path.exists(readme):
        pytest.skip("no README.md next to tests/")
    with open(readme, encoding="utf-8") as f:
        section = f.read().split("## Accuracy", 1)[1].split("\n## ", 1)[0]
    rows = {line.split("|")[1].strip(): [float(v) for v in re.findall(r"\d+e-\d+", line)]
            for line in section.splitlines() if line.startswith("| ") and "e-" in line}
    f32, f64 = ref.TOLERANCES[np.dtype(np.float32)], ref.TOLERANCES[np.dtype(np.float64)]
    assert rows == {
        "softmax": [f32["rel"], f32["softmax_abs"], f64["rel"], f64["softmax_abs"]],
        "log-softmax, logsumexp, loss": [f32["rel"], f64["rel"]],
        "gradient": [f32["rel"], f64["rel"]],
    }
    assert ref.TOLERANCES[np.dtype(np.float16)] == {"ulp": 1, "rel": f32["rel"]}  # computed in float32
