"""Optional: the reference and the kernels against PyTorch (skipped without torch).

Torch always runs in float64 on the float64-upcast input values, so it plays the role
of a second, independent float64 oracle:

* reference vs torch: agreement to 1e-13 * (1 + |v|) (both are float64 computations),
  NaN / inf positions identical;
* kernels vs torch: the accuracy bars of fastsoftmax.reference.TOLERANCES (conftest
  helpers).
"""

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

import fastsoftmax as fs  # noqa: E402
from fastsoftmax import reference as ref  # noqa: E402
from conftest import (  # noqa: E402
    DTYPES,
    assert_grad_close,
    assert_softmax_close,
    assert_value_close,
    grad_row_factor,
    make_index_target,
    make_prob_target,
)


def assert_f64_agree(a, b, what):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, what
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{what}: NaN positions")
    np.testing.assert_array_equal(a == np.inf, b == np.inf, err_msg=f"{what}: +inf positions")
    np.testing.assert_array_equal(a == -np.inf, b == -np.inf, err_msg=f"{what}: -inf positions")
    fin = np.isfinite(b)
    err = np.abs(a[fin] - b[fin])
    assert np.all(err <= 1e-13 * (1 + np.abs(b[fin]))), f"{what}: max err {err.max() if err.size else 0}"


def torch_ce(x, t, axis, weight, ignore_index, reduction, eps):
    """torch cross_entropy (float64) with the class axis moved to dim 1; (loss, grad of loss.sum())."""
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64).copy()).requires_grad_(True)
    ax = axis % x.ndim
    xx = torch.movedim(xt, ax, 1) if x.ndim > 1 else xt
    if t.dtype.kind == "f":
        tt = torch.from_numpy(np.asarray(t, dtype=np.float64).copy())
        tt = torch.movedim(tt, ax, 1) if x.ndim > 1 else tt
        ignore_index = -100  # torch refuses a non-default ignore_index with probability targets
    else:
        tt = torch.from_numpy(t.astype(np.int64))
    kw = {} if weight is None else {"weight": torch.from_numpy(np.asarray(weight, dtype=np.float64))}
    loss = F.cross_entropy(xx, tt, ignore_index=ignore_index, reduction=reduction, label_smoothing=eps, **kw)
    loss.sum().backward()
    return loss.detach().numpy(), xt.grad.numpy()


SPECIAL = np.array([
    [0.5, 1.0, 2.0, 3.0, -1.0],
    [-np.inf] * 5,
    [np.inf, 1.0, 2.0, 3.0, 0.0],
    [np.nan, 1.0, 2.0, 3.0, 0.0],
    [-np.inf, 1.0, -np.inf, 3.0, 0.0],
    [np.inf, np.inf, 0.0, 0.0, 0.0],
    [np.inf, np.nan, 0.0, 0.0, 0.0],
    [1e4, -1e4, 1e4 - 1, 0.0, 5.0],
    [-1e4, -1e4 + 1, -1e4 + 5, -1e4, -1e4 - 30],
    [np.inf, -np.inf, 0.0, 0.0, 1.0],
])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("axis", [0, 1])
def test_softmax_family_special_values_vs_torch(dtype, axis):
    x = SPECIAL.astype(dtype)
    x = x if axis == 1 else np.ascontiguousarray(x.T)
    xt = torch.from_numpy(x.astype(np.float64))
    want_p = torch.softmax(xt, axis).numpy()
    want_lp = torch.log_softmax(xt, axis).numpy()
    want_lse = torch.logsumexp(xt, axis).numpy()
    assert_f64_agree(ref.softmax(x, axis), want_p, "ref softmax")
    assert_f64_agree(ref.log_softmax(x, axis), want_lp, "ref log_softmax")
    assert_f64_agree(ref.logsumexp(x, axis), want_lse, "ref logsumexp")
    assert_softmax_close(fs.softmax(x, axis), want_p, dtype)
    assert_value_close(fs.log_softmax(x, axis), want_lp, dtype, "log_softmax")
    assert_value_close(fs.logsumexp(x, axis), want_lse, dtype, "logsumexp")


@pytest.mark.parametrize("dtype", DTYPES)
def test_logsumexp_empty_axis_vs_torch(dtype):
    want = torch.logsumexp(torch.zeros(3, 0, dtype=torch.float64), -1).numpy()
    assert_f64_agree(ref.logsumexp(np.zeros((3, 0), dtype)), want, "ref")
    assert_f64_agree(fs.logsumexp(np.zeros((3, 0), dtype)), want, "fs")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((3, 4, 5), 0), ((3, 4, 5), 1), ((3, 4, 5), 2), ((7, 33), -1)])
def test_softmax_family_vs_torch(rng, dtype, shape, axis):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    xt = torch.from_numpy(x.astype(np.float64))
    for name, tf in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax), ("logsumexp", torch.logsumexp)):
        want = tf(xt, axis).numpy()
        assert_f64_agree(getattr(ref, name)(x, axis), want, f"ref {name}")
        check = assert_softmax_close if name == "softmax" else assert_value_close
        check(getattr(fs, name)(x, axis), want, dtype, name)


GRID = list(itertools.product([False, True], ["absent", "default", "in_range"], [0.0, 0.2, 1.0],
                              ["mean", "sum", "none"], ["index", "prob"]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((9, 6), -1), ((3, 5, 4), 1), ((6, 9), 0)])
@pytest.mark.parametrize("weighted,ignore_mode,eps,reduction,kind", GRID)
def test_cross_entropy_vs_torch(rng, dtype, shape, axis, weighted, ignore_mode, eps, reduction, kind):
    ax = axis % len(shape)
    C = shape[ax]
    batch = shape[:ax] + shape[ax + 1:]
    x = (rng.standard_normal(shape) * 2).astype(dtype)
    w = rng.uniform(0.5, 2.0, C).astype(dtype) if weighted else None
    ii = {"absent": -100, "default": -100, "in_range": 2}[ignore_mode]
    if kind == "prob":
        t = make_prob_target(rng, shape, axis, dtype)
    else:
        t = make_index_target(rng, batch, C, ignore_index=None if ignore_mode == "absent" else ii)
    kw = dict(axis=axis, weight=w, ignore_index=ii, reduction=reduction, label_smoothing=eps)
    want_loss, want_grad = torch_ce(x, t, axis, w, ii, reduction, eps)
    rl, rg = ref.cross_entropy(x, t, return_grad=True, **kw)
    assert_f64_agree(rl, want_loss, "ref loss")
    assert_f64_agree(rg, want_grad, "ref grad")
    loss, grad = fs.cross_entropy(x, t, return_grad=True, **kw)
    assert_value_close(loss, want_loss, dtype, "loss")
    assert_grad_close(grad, want_grad, dtype, grad_row_factor(shape, t, **kw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.1])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_special_rows_vs_torch(rng, dtype, reduction, eps, weighted):
    x = SPECIAL.astype(dtype)
    t = np.array([1, 3, 0, 2, 3, 1, 2, 0, 4, 2])
    w = rng.uniform(0.5, 2.0, 5).astype(dtype) if weighted else None
    want_loss, want_grad = torch_ce(x, t, -1, w, -100, reduction, eps)
    kw = dict(weight=w, reduction=reduction, label_smoothing=eps)
    rl, rg = ref.cross_entropy(x, t, return_grad=True, **kw)
    assert_f64_agree(rl, want_loss, "ref loss")
    assert_f64_agree(rg, want_grad, "ref grad")
    loss, grad = fs.cross_entropy(x, t, return_grad=True, **kw)
    assert_value_close(loss, want_loss, dtype, "loss")
    assert_grad_close(grad, want_grad, dtype, grad_row_factor(x.shape, t, **kw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_cross_entropy_all_ignored_and_empty_vs_torch(rng, dtype, reduction, eps):
    x = rng.standard_normal((4, 3)).astype(dtype)
    t = np.full(4, -100)
    want_loss, want_grad = torch_ce(x, t, -1, None, -100, reduction, eps)
    for impl in (ref, fs):
        loss, grad = impl.cross_entropy(x, t, reduction=reduction, label_smoothing=eps, return_grad=True)
        assert_f64_agree(loss, want_loss, f"{impl.__name__} all-ignored loss")
        assert_f64_agree(grad, want_grad, f"{impl.__name__} all-ignored grad")
    xe = np.zeros((0, 3), dtype)
    with torch.no_grad():
        want = F.cross_entropy(torch.zeros(0, 3, dtype=torch.float64), torch.zeros(0, dtype=torch.long),
                               reduction=reduction, label_smoothing=eps).numpy()
    for impl in (ref, fs):
        assert_f64_agree(impl.cross_entropy(xe, np.zeros(0, np.int64), reduction=reduction, label_smoothing=eps),
                         want, f"{impl.__name__} empty")


@pytest.mark.parametrize("dtype", DTYPES)
def test_nonfinite_weight_and_far_first_block_vs_torch(dtype):
    """Cases where the kernels were seen to differ: the reference must agree with torch."""
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]], dtype)
    t = np.array([0, 1])
    w = np.array([1.0, 1.0, np.inf], dtype)
    want_loss, want_grad = torch_ce(x, t, -1, w, -100, "sum", 0.0)
    rl, rg = ref.cross_entropy(x, t, weight=w, reduction="sum", return_grad=True)
    assert_f64_agree(rl, want_loss, "ref loss")
    assert_f64_agree(rg, want_grad, "ref grad")
    x = np.full((1, 2050), -1e5, dtype)
    x[0, 2048:] = [0.3, -0.4]
    tp = np.zeros_like(x)
    tp[0, 2048] = 1.0
    want_loss, want_grad = torch_ce(x, tp, -1, None, -100, "mean", 0.0)
    rl, rg = ref.cross_entropy(x, tp, return_grad=True)
    assert_f64_agree(rl, want_loss, "ref loss")
    assert_f64_agree(rg, want_grad, "ref grad")


@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_zero_total_weight_mean_vs_torch(eps):
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5], [0.1, 0.2, 0.3]])
    t = np.array([0, 0, -100])
    w = np.array([0.0, 1.0, 1.0])
    want_loss, want_grad = torch_ce(x, t, -1, w, -100, "mean", eps)
    rl, rg = ref.cross_entropy(x, t, weight=w, label_smoothing=eps, return_grad=True)
    assert_f64_agree(rl, want_loss, "ref loss")
    assert_f64_agree(rg, want_grad, "ref grad")
