"""sigmoid and binary_cross_entropy_with_logits (loss and gradient) against the float64 reference.

Bars (fastsoftmax.reference.TOLERANCES): sigmoid like softmax (|v - ref| <= rel*|ref| +
softmax_abs); BCE loss as assert_value_close (per element for "none", on the reduced value
otherwise); BCE gradient |g - ref| <= rel * (|ref| + r), r = |w| * max(1, |pos_weight|) * s
(conftest.bce_grad_factor).  float16 is covered in test_float16.py.
"""

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference as ref
from conftest import (
    bad_out,
    fd_grad,
    misaligned,
    DTYPES,
    assert_grad_close,
    assert_softmax_close,
    assert_value_close,
    bce_grad_factor,
    make_logits,
    tol,
)

# every test here runs on each instruction-set path with 1 and 2 threads (conftest.backend)
pytestmark = pytest.mark.usefixtures("backend")

TAIL_CS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 129, 1000, 2049, 5000]
REDUCTIONS = ["mean", "sum", "none"]
IMPLS = [pytest.param(fs, id="fastsoftmax"), pytest.param(ref, id="reference")]


def bce(impl, *args, **kw):
    return impl.binary_cross_entropy_with_logits(*args, **kw)


def run_bce(x, t, *, return_grad=True, out=None, **kw):
    """fs and reference on the same inputs; checks types, shapes, bars, no input modified.

    Returns (loss, grad) of fs (grad None without return_grad).
    """
    dt = x.dtype
    reduction = kw.get("reduction", "mean")
    snaps = [a.copy() for a in (x, t, kw.get("weight"), kw.get("pos_weight")) if isinstance(a, np.ndarray)]
    want = bce(ref, x, t, return_grad=return_grad, **kw)
    if out is not None:
        got = bce(fs, x, t, return_grad=return_grad, out=out, **kw)
    else:
        got = bce(fs, x, t, return_grad=return_grad, **kw)
        for a, s in zip([a for a in (x, t, kw.get("weight"), kw.get("pos_weight")) if isinstance(a, np.ndarray)],
                        snaps):
            np.testing.assert_array_equal(a, s, err_msg="an input was modified")
    if return_grad:
        assert isinstance(got, tuple) and len(got) == 2
        loss, grad = got
        loss_ref, grad_ref = want
    else:
        loss, grad, loss_ref, grad_ref = got, None, want, None
    if reduction == "none":
        assert isinstance(loss, np.ndarray), type(loss)
        assert loss.dtype == dt and loss.shape == x.shape, (loss.dtype, loss.shape)
    else:
        assert type(loss) is dt.type, f"loss type {type(loss)}, expected {dt.type}"
    assert_value_close(loss, loss_ref, dt, f"BCE loss ({reduction})")
    if return_grad:
        assert isinstance(grad, np.ndarray) and grad.dtype == dt and grad.shape == x.shape
        if out is not None:
            assert grad is out
        r = bce_grad_factor(x.shape, kw.get("weight"), kw.get("pos_weight"), reduction)
        assert_grad_close(grad, grad_ref, dt, r, f"BCE grad ({reduction})")
    return loss, grad


def make_target(rng, shape, dtype, kind="soft"):
    if kind == "soft":
        return rng.random(shape).astype(dtype)
    if kind == "hard":
        return rng.integers(0, 2, shape).astype(dtype)
    if kind == "bool":
        return rng.random(shape) < 0.5
    return rng.integers(0, 2, shape).astype(kind)


def weight_of(rng, form, shape, dtype):
    """Weight forms broadcastable to ``shape``: scalar, per-row, per-class, full, ..."""
    if form is None:
        return None
    if form == "scalar":
        return dtype(rng.uniform(0.5, 2.0))
    if form == "0d":
        return np.array(rng.uniform(0.5, 2.0), dtype)
    if form == "row":  # one per row: shape (..., 1)
        return rng.uniform(0.5, 2.0, shape[:-1] + (1,)).astype(dtype)
    if form == "class":
        return rng.uniform(0.5, 2.0, shape[-1:]).astype(dtype)
    if form == "full":
        return rng.uniform(0.5, 2.0, shape).astype(dtype)
    if form == "list":
        return [float(v) for v in rng.uniform(0.5, 2.0, shape[-1])]
    raise AssertionError(form)


def pos_weight_of(rng, form, C, dtype):
    if form is None:
        return None
    if form == "scalar":
        return float(rng.uniform(0.3, 3.0))
    if form == "one":
        return np.array([rng.uniform(0.3, 3.0)], dtype)
    return rng.uniform(0.3, 3.0, C).astype(dtype)


# ----------------------------------------------------------------------------- BCE option grid


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("wform", [None, "scalar", "row", "class", "full"])
@pytest.mark.parametrize("pwform", [None, "scalar", "one", "class"])
def test_option_grid(rng, dtype, reduction, wform, pwform):
    shape = (13, 37)
    x = make_logits(rng, shape, dtype)
    t = make_target(rng, shape, dtype)
    kw = dict(weight=weight_of(rng, wform, shape, dtype), pos_weight=pos_weight_of(rng, pwform, 37, dtype),
              reduction=reduction)
    run_bce(x, t, return_grad=False, **kw)
    run_bce(x, t, return_grad=True, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", TAIL_CS)
def test_simd_tails(rng, dtype, C):
    N = 3 if C < 1000 else 2
    x = make_logits(rng, (N, C), dtype)
    t = make_target(rng, (N, C), dtype)
    run_bce(x, t, weight=weight_of(rng, "class", (N, C), dtype), pos_weight=pos_weight_of(rng, "class", C, dtype))
    run_bce(x, t, reduction="none", weight=weight_of(rng, "row", (N, C), dtype))
    run_bce(x[0], t[0], reduction="sum")  # 1-D


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N", [1, 2, 3, 5, 8, 17, 37])
def test_batch_sizes(rng, dtype, N):
    C = 9
    x = make_logits(rng, (N, C), dtype)
    t = make_target(rng, (N, C), dtype, "hard")
    for red in REDUCTIONS:
        run_bce(x, t, reduction=red, weight=weight_of(rng, "row", (N, C), dtype),
                pos_weight=pos_weight_of(rng, "class", C, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 6, 5), (3, 17, 9), (2, 1, 9), (1, 1, 1), (2, 3, 4, 5)])
@pytest.mark.parametrize("wshape", ["none", "scalar", "first", "middle", "last", "last2", "full"])
def test_nd_and_weight_broadcasting(rng, dtype, shape, wshape):
    x = make_logits(rng, shape, dtype)
    t = make_target(rng, shape, dtype)
    nd = len(shape)
    wsh = {"none": None, "scalar": (), "first": (shape[0],) + (1,) * (nd - 1),
           "middle": (1,) * (nd - 2) + (shape[-2], 1), "last": shape[-1:], "last2": shape[-2:], "full": shape}[wshape]
    w = None if wsh is None else rng.uniform(0.5, 2.0, wsh).astype(dtype)
    pw = rng.uniform(0.3, 3.0, shape[-1]).astype(dtype)
    for red in REDUCTIONS:
        run_bce(x, t, weight=w, reduction=red)
        run_bce(x, t, weight=w, pos_weight=pw, reduction=red)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1,), (2,), (7,), (33,), (1000,)])
def test_one_dimensional(rng, dtype, shape):
    x = make_logits(rng, shape, dtype)
    t = make_target(rng, shape, dtype)
    for red in REDUCTIONS:
        run_bce(x, t, reduction=red, weight=rng.uniform(0.5, 2, shape).astype(dtype),
                pos_weight=rng.uniform(0.3, 3, shape).astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(37, 1023), (2, 2 ** 17 + 3)])
def test_large_batch_threads(rng, dtype, shape):
    """Enough elements to be split across threads (and long sums for the reductions)."""
    x = make_logits(rng, shape, dtype)
    t = make_target(rng, x.shape, dtype)
    w = weight_of(rng, "row", x.shape, dtype)
    pw = pos_weight_of(rng, "class", shape[-1], dtype)
    for red in REDUCTIONS:
        run_bce(x, t, weight=w, pos_weight=pw, reduction=red)
    run_bce(x, t, reduction="mean")  # the contiguous, unweighted path


# ----------------------------------------------------------------------------- target forms


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tkind", ["hard", "bool", np.int8, np.uint8, np.int32, np.int64, np.uint64])
def test_integer_and_bool_targets(rng, dtype, tkind):
    x = make_logits(rng, (6, 11), dtype)
    t = make_target(rng, x.shape, dtype, tkind)
    for red in REDUCTIONS:
        run_bce(x, t, reduction=red, pos_weight=pos_weight_of(rng, "class", 11, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tdtype", [np.float16, np.float32, np.float64])
def test_target_of_another_float_dtype(rng, dtype, tdtype):
    """The target is cast to the logits' dtype (the reference does the same cast)."""
    x = make_logits(rng, (7, 13), dtype)
    t = rng.random(x.shape).astype(tdtype)
    for red in REDUCTIONS:
        run_bce(x, t, reduction=red, weight=weight_of(rng, "class", x.shape, np.float64))


@pytest.mark.parametrize("dtype", DTYPES)
def test_weights_of_other_dtypes(rng, dtype):
    x = make_logits(rng, (5, 8), dtype)
    t = make_target(rng, x.shape, dtype)
    other = np.float64 if dtype == np.float32 else np.float32
    run_bce(x, t, weight=rng.integers(1, 4, 8), pos_weight=rng.integers(1, 4, 8))
    run_bce(x, t, weight=rng.uniform(0.5, 2, (5, 1)).astype(other), pos_weight=np.float32(2.5))
    run_bce(x, t, weight=3, pos_weight=2)
    run_bce(x, t, weight=weight_of(rng, "0d", x.shape, dtype), pos_weight=[1.5] * 8, reduction="none")
    run_bce(x, t, weight=weight_of(rng, "list", x.shape, dtype), pos_weight=pos_weight_of(rng, "one", 8, dtype))
    run_bce(x, t, weight=np.arange(16.0, dtype=dtype)[::2], pos_weight=np.arange(24.0, dtype=dtype)[::-3])


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_and_negative_weights(rng, dtype):
    """Weights are real numbers (not range-checked): zero and negative weights are used as given."""
    x = make_logits(rng, (4, 6), dtype)
    t = make_target(rng, x.shape, dtype)
    w = np.array([[0.0], [1.0], [-1.5], [2.0]], dtype)
    for red in REDUCTIONS:
        loss, grad = run_bce(x, t, weight=w, reduction=red)
        assert np.all(grad[0] == 0), "zero weight: exactly zero gradient"
    pw = np.array([0.0, 1.0, 0.5, 2.0, 0.0, 3.0], dtype)
    run_bce(x, t, pos_weight=pw, reduction="none")


# ----------------------------------------------------------------------------- layouts and out=


def _noncontig_cases(rng, dtype):
    b2 = make_logits(rng, (16, 42), dtype)
    b3 = make_logits(rng, (6, 10, 14), dtype)
    return [
        ("sliced", b2[1::2, ::3]),
        ("transposed", b2.T),
        ("negative", b2[::-1, ::-1]),
        ("negative_step", b2[::-3, ::-2]),
        ("fortran", np.asfortranarray(b2)),
        ("3d_mid_sliced", b3[:, ::2, ::-1]),
        ("3d_transposed", b3.transpose(1, 2, 0)),
        ("3d_first", b3[::-1, 1:, ::3]),
        ("broadcast", np.broadcast_to(b2[0], (5, 42))),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(9))
def test_noncontiguous(rng, dtype, case):
    name, x = _noncontig_cases(rng, dtype)[case]
    t = np.flip(make_target(rng, x.shape, dtype), 0).copy()[::-1]  # negative-stride target
    t = t.T.copy().T if t.ndim == 2 else t  # Fortran-ordered target
    w = rng.uniform(0.5, 2.0, x.shape[-1:] + (2,)).astype(dtype)[:, 1]  # strided per-class weight
    wf = rng.uniform(0.5, 2.0, x.shape[::-1]).astype(dtype).T  # transposed full weight
    pw = rng.uniform(0.3, 3.0, 2 * x.shape[-1]).astype(dtype)[::-2]
    for red in REDUCTIONS:
        run_bce(x, t, weight=w, pos_weight=pw, reduction=red)
        run_bce(x, t, weight=wf, reduction=red)
    out = np.full(x.shape, 7.0, dtype)
    run_bce(x, t, weight=w, pos_weight=pw, out=out)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(9, 37), (3, 5, 4), (4097,), (3, 2049)])
def test_out_separate(rng, dtype, reduction, shape):
    x = make_logits(rng, shape, dtype)
    t = make_target(rng, shape, dtype)
    out = np.full(shape, np.nan, dtype)
    run_bce(x, t, out=out, reduction=reduction, weight=weight_of(rng, "full", shape, dtype),
            pos_weight=pos_weight_of(rng, "class", shape[-1], dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(9, 37), (3, 5, 4), (4, 2049)])
@pytest.mark.parametrize("pwform", [None, "class"])
def test_out_in_place(rng, dtype, reduction, shape, pwform):
    x = make_logits(rng, shape, dtype)
    t = make_target(rng, shape, dtype)
    kw = dict(weight=weight_of(rng, "row", shape, dtype), pos_weight=pos_weight_of(rng, pwform, shape[-1], dtype),
              reduction=reduction)
    loss_ref, grad_ref = bce(ref, x, t, return_grad=True, **kw)
    loss, grad = bce(fs, x, t, return_grad=True, out=x, **kw)
    assert grad is x
    assert_value_close(loss, loss_ref, dtype, "in-place loss")
    assert_grad_close(x, grad_ref, dtype, bce_grad_factor(shape, kw["weight"], kw["pos_weight"], reduction),
                      "in-place grad")


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("wform,pwform", [(None, None), ("row", None), (None, "class"), ("full", "scalar"),
                                          ("class", "class")])
@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4), (5,)])
def test_gradient_finite_differences_float64(rng, backend, reduction, wform, pwform, shape):
    """fs gradient vs central differences of the fs loss (float64).

    FD error (h = 1e-5): truncation ~h^2 |f'''| ~ 1e-10, rounding ~1e-16 |f| / h ~ 1e-11;
    the tolerance 1e-7 * (|fd| + r) + 1e-9 leaves a wide margin over both.
    """
    x = make_logits(rng, shape, np.float64, scale=1.5)
    t = make_target(rng, shape, np.float64)
    kw = dict(weight=weight_of(rng, wform, shape, np.float64),
              pos_weight=pos_weight_of(rng, pwform, shape[-1], np.float64), reduction=reduction)
    _, g = bce(fs, x, t, return_grad=True, **kw)

    def f(z):
        return float(np.sum(bce(fs, z, t, **kw)))

    fd = fd_grad(f, x)
    r = bce_grad_factor(shape, kw["weight"], kw["pos_weight"], reduction)
    err = np.abs(g - fd)
    bound = 1e-7 * (np.abs(fd) + r) + 1e-9
    assert np.all(err <= bound), f"max err {err.max():.3e}; grad={g}, fd={fd}"


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_of_none_is_gradient_of_sum(rng, dtype):
    x = make_logits(rng, (12, 19), dtype)
    t = make_target(rng, x.shape, dtype)
    kw = dict(weight=weight_of(rng, "row", x.shape, dtype), pos_weight=pos_weight_of(rng, "class", 19, dtype))
    _, g_none = bce(fs, x, t, reduction="none", return_grad=True, **kw)
    _, g_sum = bce(fs, x, t, reduction="sum", return_grad=True, **kw)
    _, g_ref = bce(ref, x, t, reduction="sum", return_grad=True, **kw)
    r = bce_grad_factor(x.shape, kw["weight"], kw["pos_weight"], "sum")
    assert_grad_close(g_none, g_ref, dtype, r, "grad of none")
    assert_grad_close(g_sum, g_ref, dtype, r, "grad of sum")


# ----------------------------------------------------------------------------- properties


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_pos_weight_one_equals_no_pos_weight(rng, dtype, reduction):
    x = make_logits(rng, (9, 21), dtype)
    t = make_target(rng, x.shape, dtype)
    w = weight_of(rng, "row", x.shape, dtype)
    l0, g0 = bce(fs, x, t, weight=w, reduction=reduction, return_grad=True)
    l1, g1 = bce(fs, x, t, weight=w, pos_weight=np.ones(21, dtype), reduction=reduction, return_grad=True)
    lr, gr = bce(ref, x, t, weight=w, reduction=reduction, return_grad=True)
    r = bce_grad_factor(x.shape, w, None, reduction)
    for loss, grad, name in ((l0, g0, "no pos_weight"), (l1, g1, "pos_weight=1")):
        assert_value_close(loss, lr, dtype, f"loss {name}")
        assert_grad_close(grad, gr, dtype, r, f"grad {name}")
    # and the two agree with each other within the sum of their bars
    t_ = tol(dtype)["rel"]
    assert np.all(np.abs(np.float64(l0) - np.float64(l1)) <= 2 * t_ * (1 + np.abs(lr)))
    assert np.all(np.abs(g0.astype(np.float64) - g1) <= 2 * t_ * (np.abs(gr) + r))


@pytest.mark.parametrize("dtype", DTYPES)
def test_label_flip_symmetry(rng, dtype):
    """BCE(x, t) = BCE(-x, 1 - t) and grad(-x, 1 - t) = -grad(x, t) (no pos_weight)."""
    x = make_logits(rng, (8, 30), dtype)
    t = make_target(rng, x.shape, dtype, "hard")
    w = weight_of(rng, "class", x.shape, dtype)
    la, ga = bce(fs, x, t, weight=w, reduction="none", return_grad=True)
    lb, gb = bce(fs, -x, 1 - t, weight=w, reduction="none", return_grad=True)
    lr, gr = bce(ref, x, t, weight=w, reduction="none", return_grad=True)
    r = bce_grad_factor(x.shape, w, None, "none")
    assert_value_close(lb, lr, dtype, "loss(-x, 1-t)")
    assert_grad_close(-gb.astype(np.float64), gr, dtype, r, "-grad(-x, 1-t)")
    assert_value_close(la, lr, dtype, "loss(x, t)")
    assert_grad_close(ga, gr, dtype, r, "grad(x, t)")


@pytest.mark.parametrize("dtype", DTYPES)
def test_mean_is_sum_over_numel(rng, dtype):
    x = make_logits(rng, (7, 19), dtype)
    t = make_target(rng, x.shape, dtype)
    pw = pos_weight_of(rng, "class", 19, dtype)
    l_mean, g_mean = bce(fs, x, t, pos_weight=pw, return_grad=True)
    l_sum, g_sum = bce(fs, x, t, pos_weight=pw, reduction="sum", return_grad=True)
    lr = bce(ref, x, t, pos_weight=pw, reduction="sum")
    t_ = tol(dtype)["rel"]
    assert abs(np.float64(l_mean) * x.size - lr) <= t_ * (x.size + abs(lr)) * 1.01
    _, gr = bce(ref, x, t, pos_weight=pw, reduction="sum", return_grad=True)
    assert_grad_close(g_mean.astype(np.float64) * x.size, gr, dtype,
                      bce_grad_factor(x.shape, None, pw, "sum"), "mean grad * numel")
    assert_grad_close(g_sum, gr, dtype, bce_grad_factor(x.shape, None, pw, "sum"), "sum grad")


@pytest.mark.parametrize("dtype", DTYPES)
def test_loss_is_nonnegative_and_grad_sign(rng, dtype):
    """For t in {0, 1} and positive weights: loss >= 0, grad > 0 where t = 0 and < 0 where t = 1."""
    x = make_logits(rng, (10, 17), dtype)
    t = make_target(rng, x.shape, dtype, "hard")
    loss, grad = bce(fs, x, t, reduction="none", return_grad=True, pos_weight=pos_weight_of(rng, "class", 17, dtype))
    assert np.all(loss >= 0)
    assert np.all(grad[t == 0] >= 0) and np.all(grad[t == 1] <= 0)


# ----------------------------------------------------------------------------- special values


SPECIAL_X = [0.0, 1e4, -1e4, 88.0, -88.0, 104.0, -104.0, 745.0, -745.0, 20.0, -20.0, 1e-30, -1e-30,
             np.inf, -np.inf, np.nan]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pwform", [None, "class"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_special_values(rng, dtype, pwform, reduction):
    xs = np.array(SPECIAL_X, dtype)
    ts = np.array([0.0, 1.0, 0.5, 0.25], dtype)
    x = np.repeat(xs[:, None], len(ts), axis=1)  # every special logit with every target
    t = np.broadcast_to(ts, x.shape).copy()
    pw = None if pwform is None else np.array([0.5, 2.0, 1.0, 3.0], dtype)
    run_bce(x, t, pos_weight=pw, reduction="none")
    if reduction != "none":
        run_bce(x, t, pos_weight=pw, reduction=reduction)  # NaN / inf positions and values as the reference
    # the finite large logits alone: finite loss and gradient (no overflow)
    fin = np.isfinite(xs)
    loss, grad = run_bce(x[fin], t[fin], pos_weight=pw, reduction=reduction)
    assert np.all(np.isfinite(loss)) and np.isfinite(grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_special_targets_and_weights(rng, dtype, reduction):
    """NaN / inf in target, weight or pos_weight: NaN and inf positions as the reference."""
    x = make_logits(rng, (6, 9), dtype)
    t = make_target(rng, x.shape, dtype)
    t[1, 2] = np.nan
    w = rng.uniform(0.5, 2.0, x.shape).astype(dtype)
    w[2, 3] = np.inf
    w[3, 4] = np.nan
    w[4, 5] = 0.0
    pw = rng.uniform(0.3, 3.0, 9).astype(dtype)
    pw[6] = np.nan
    loss, grad = run_bce(x, t, weight=w, reduction="none")
    assert np.isnan(loss[1, 2]) and np.isnan(loss[3, 4]) and loss[2, 3] == np.inf
    run_bce(x, t, weight=w, pos_weight=pw, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES)
def test_infinite_pos_weight(dtype):
    """pos_weight = inf: as torch (and the reference's formula), lw * sigmoid(x) - pw * t = inf - inf = NaN."""
    x = np.array([[0.3, -1.0, 2.0]], dtype)
    t = np.array([[0.5, 1.0, 0.0]], dtype)
    run_bce(x, t, pos_weight=np.full(3, np.inf, dtype), reduction="sum")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [1, 7, 8, 33, 1000])
def test_large_magnitudes(rng, dtype, C):
    x = np.empty((4, C), dtype)
    x[0] = 1e4
    x[1] = -1e4
    x[2] = rng.uniform(-1e4, 1e4, C)
    x[3] = np.where(rng.random(C) < 0.5, 1e4, -1e4)
    t = make_target(rng, x.shape, dtype)
    for red in REDUCTIONS:
        loss, grad = run_bce(x, t, reduction=red, pos_weight=pos_weight_of(rng, "class", C, dtype))
        assert np.all(np.isfinite(loss)) and np.isfinite(grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_nan_is_isolated(rng, dtype):
    x = make_logits(rng, (6, 19), dtype)
    x[2, 5] = np.nan
    t = make_target(rng, x.shape, dtype)
    loss, grad = run_bce(x, t, reduction="none")
    assert np.isnan(loss[2, 5]) and np.isnan(grad[2, 5])
    assert np.isnan(loss).sum() == 1 and np.isnan(grad).sum() == 1
    loss, grad = run_bce(x, t, reduction="mean")
    assert np.isnan(loss) and np.isnan(grad).sum() == 1


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_finite_logits(dtype):
    big = {np.float32: 3e38, np.float64: 1e308}[dtype]
    x = np.array([[big, -big, 0.0, 1.0], [-big, big, big / 4, -big / 4]], dtype)
    t = np.array([[0.0, 1.0, 0.5, 1.0], [0.0, 1.0, 0.5, 0.5]], dtype)
    for red in REDUCTIONS:  # overflow to inf only where the reference's value is beyond the dtype's range
        loss, grad = run_bce(x, t, reduction=red)
        assert not np.isnan(grad).any()


# ----------------------------------------------------------------------------- empty inputs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(0,), (0, 5), (5, 0), (2, 0, 3), (0, 1)])
@pytest.mark.parametrize("return_grad", [False, True])
def test_empty(dtype, shape, return_grad):
    x = np.zeros(shape, dtype)
    t = np.zeros(shape, dtype)
    C = shape[-1]
    for red in REDUCTIONS:
        for kw in ({}, dict(weight=np.ones(shape, dtype), pos_weight=np.ones(C, dtype))):
            res = bce(fs, x, t, reduction=red, return_grad=return_grad, **kw)
            loss, grad = res if return_grad else (res, None)
            if red == "mean":
                assert type(loss) is np.dtype(dtype).type and np.isnan(loss)
            elif red == "sum":
                assert type(loss) is np.dtype(dtype).type and loss == 0.0
            else:
                assert isinstance(loss, np.ndarray) and loss.shape == shape and loss.dtype == dtype
            if return_grad:
                assert grad.shape == shape and grad.dtype == dtype
            assert_value_close(loss, bce(ref, x, t, reduction=red, **kw), dtype)


# ----------------------------------------------------------------------------- bad inputs


def _raises(impl, exc, x, t, **kw):
    """BCE must raise ``exc`` and leave logits and out (and target) untouched.

    Without an explicit out=, also tried with a separate out= and with out=logits.
    """
    variants = [kw]
    if "out" not in kw and isinstance(x, np.ndarray) and x.dtype in (np.float16, np.float32, np.float64) \
            and x.ndim and x.flags.c_contiguous and x.flags.writeable:
        variants += [dict(kw, return_grad=True, out=np.full(x.shape, 5.0, x.dtype)),
                     dict(kw, return_grad=True, out=x)]
    for v in variants:
        arrays = [a for a in (x, t, v.get("out")) if isinstance(a, np.ndarray)]
        snaps = [a.copy() for a in arrays]
        with pytest.raises(exc):
            bce(impl, x, t, **v)
        for a, s in zip(arrays, snaps):
            np.testing.assert_array_equal(a, s, err_msg="array modified although an exception was raised")


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bad", [np.int32, np.int64, np.uint8, np.bool_, np.complex64, np.complex128, object],
                         ids=lambda d: np.dtype(d).name)
def test_bad_logits_dtype(impl, bad):
    x = np.ones((3, 4)).astype(bad)
    _raises(impl, TypeError, x, np.zeros((3, 4)))
    _raises(impl, TypeError, x, np.zeros((3, 4)), return_grad=True, out=np.zeros((3, 4)))


@pytest.mark.parametrize("impl", IMPLS)
def test_zero_dim_logits(impl):
    """0-d logits are one element (as in torch): the loss of that element, and a 0-d gradient."""
    for x, t, pw in [(1.0, 1.0, None), (-3.0, 0.25, 2.0), (1e4, 0.0, [0.5])]:
        loss, grad = impl.binary_cross_entropy_with_logits(np.array(x), np.array(t), pos_weight=pw,
                                                           reduction="sum", return_grad=True)
        pwv = 1.0 if pw is None else float(np.asarray(pw).reshape(()))
        lw = 1 + (pwv - 1) * t
        expect = (1 - t) * x + lw * (np.log1p(np.exp(-abs(x))) + max(-x, 0.0))
        assert np.shape(grad) == () and abs(float(loss) - expect) <= 1e-12 * (1 + abs(expect))
        sig = 1 / (1 + np.exp(-x))
        assert abs(float(grad) - (lw * sig - pwv * t)) <= 1e-12


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("tshape", [(3,), (4,), (4, 3), (3, 4, 1), (1, 4), (), (3, 5)])
def test_target_shape_mismatch(impl, dtype, tshape):
    _raises(impl, ValueError, np.zeros((3, 4), dtype), np.zeros(tshape, dtype))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("tdtype", [np.complex128, object, "U3"])
def test_target_bad_dtype(impl, tdtype):
    t = np.zeros((3, 4)).astype(tdtype)
    _raises(impl, TypeError, np.zeros((3, 4)), t)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("reduction", ["avg", "MEAN", "", "elementwise_mean", "sum ", None, 1])
def test_bad_reduction(impl, reduction):
    _raises(impl, ValueError, np.zeros((3, 4)), np.zeros((3, 4)), reduction=reduction)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("wshape", [(5,), (4, 1), (2, 3, 4), (3, 5), (1, 3)])
def test_weight_not_broadcastable(impl, dtype, wshape):
    _raises(impl, ValueError, np.zeros((3, 4), dtype), np.zeros((3, 4), dtype), weight=np.ones(wshape))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("pwshape", [(3,), (5,), (2,), (3, 4), (2, 1)])
def test_pos_weight_not_broadcastable(impl, dtype, pwshape):
    """pos_weight must broadcast to (C,) = (4,)."""
    _raises(impl, ValueError, np.zeros((3, 4), dtype), np.zeros((3, 4), dtype), pos_weight=np.ones(pwshape))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("which", ["weight", "pos_weight"])
def test_weight_not_real(impl, which):
    _raises(impl, TypeError, np.zeros((3, 4)), np.zeros((3, 4)), **{which: np.ones(4, np.complex128)})


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", ["dtype", "shape", "shape_T", "noncontig", "fortran", "negative", "readonly",
                                  "no_return_grad", "not_array"])
def test_out_bad(impl, dtype, case):
    x = np.random.default_rng(3).standard_normal((4, 6)).astype(dtype)
    t = np.zeros((4, 6), dtype)
    kw = dict(return_grad=True)
    if case == "no_return_grad":
        out, exc, kw = np.full((4, 6), 3.0, dtype), ValueError, {}
    else:
        out, exc = bad_out(case, dtype)
    if isinstance(out, np.ndarray):
        base = out.base if out.base is not None else out
        snap = base.copy()
    _raises(impl, exc, x, t, out=out, **kw)
    if isinstance(out, np.ndarray):
        np.testing.assert_array_equal(base, snap)


@pytest.mark.parametrize("impl", IMPLS)
def test_readonly_logits_in_place(impl):
    x = np.random.default_rng(4).standard_normal((4, 6))
    x.flags.writeable = False
    with pytest.raises(ValueError):
        bce(impl, x, np.zeros((4, 6)), return_grad=True, out=x)


# ============================================================================= sigmoid


def run_sigmoid(x, out=None):
    dt = x.dtype
    x_before = x.copy()
    want = ref.sigmoid(x)
    got = fs.sigmoid(x) if out is None else fs.sigmoid(x, out=out)
    if out is None:
        np.testing.assert_array_equal(x, x_before, err_msg="input was modified")
    else:
        assert got is out
    got_a = np.asarray(got)
    assert got_a.dtype == dt and got_a.shape == x.shape, (got_a.dtype, got_a.shape)
    assert_softmax_close(got_a, want, dt, "sigmoid")
    return got_a


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", TAIL_CS)
def test_sigmoid_tails(rng, dtype, n):
    run_sigmoid(make_logits(rng, (n,), dtype, scale=8))
    run_sigmoid(make_logits(rng, (2, n), dtype, scale=8))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(), (1,), (3, 4, 5), (2, 1, 7, 3), (37, 129)])
def test_sigmoid_shapes(rng, dtype, shape):
    x = np.asarray(make_logits(rng, shape, dtype, scale=8))
    s = run_sigmoid(x)
    assert s.shape == shape


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_scalar_input(dtype):
    x = np.array(0.75, dtype)
    s = fs.sigmoid(x)
    assert np.asarray(s).shape == () and np.asarray(s).dtype == dtype
    assert_softmax_close(np.asarray(s), ref.sigmoid(x), dtype, "0-d sigmoid")
    s = fs.sigmoid(dtype(-3.0))
    assert np.asarray(s).dtype == dtype
    assert_softmax_close(np.asarray(s), ref.sigmoid(np.array(-3.0, dtype)), dtype, "NumPy scalar sigmoid")


def test_sigmoid_list_input():
    s = fs.sigmoid([[1.0, -2.0, 3.0]])
    assert s.dtype == np.float64
    assert_softmax_close(s, ref.sigmoid(np.array([[1.0, -2.0, 3.0]])), np.float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", range(9))
def test_sigmoid_noncontiguous(rng, dtype, case):
    _, x = _noncontig_cases(rng, dtype)[case]
    run_sigmoid(x)
    run_sigmoid(x, out=np.full(x.shape, 9.0, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_out(rng, dtype):
    x = make_logits(rng, (8, 30), dtype, scale=6)
    run_sigmoid(x, out=np.full(x.shape, 123.0, dtype))
    big = np.zeros((8, 60), dtype)
    out = big[:, ::-2]
    run_sigmoid(x, out=out)
    assert np.all(big[:, ::2] == 0), "wrote outside out"
    # in place, contiguous and on a strided view of a larger buffer
    y = x.copy()
    want = ref.sigmoid(y)
    assert fs.sigmoid(y, out=y) is y
    assert_softmax_close(y, want, dtype, "in-place sigmoid")
    buf = make_logits(rng, (8, 60), dtype, scale=6)
    keep = buf[:, 1::2].copy()
    view = buf[:, ::2]
    want = ref.sigmoid(view)
    fs.sigmoid(view, out=view)
    assert_softmax_close(view, want, dtype, "in-place strided sigmoid")
    np.testing.assert_array_equal(buf[:, 1::2], keep, err_msg="wrote outside the view")
    # 0-d out
    o = np.zeros((), dtype)
    assert fs.sigmoid(np.array(2.0, dtype), out=o) is o
    assert_softmax_close(o, ref.sigmoid(np.array(2.0, dtype)), dtype, "0-d out")


def test_sigmoid_out_partially_overlapping_input(rng):
    buf = make_logits(rng, (6, 41), np.float64)
    x = buf[:, :40]
    want = ref.sigmoid(x.copy())
    out = buf[:, 1:]
    fs.sigmoid(x, out=out)
    assert_softmax_close(out, want, np.float64, "overlapping out")


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_special_values(rng, dtype):
    x = np.array(SPECIAL_X + [-30.0, -50.0, -87.0, -103.0, -700.0, -740.0, 36.0, 17.0, -17.0], dtype)
    for n in (2, 9, 33):  # special values at every lane position and in the tails
        run_sigmoid(np.tile(x, n)[: len(x) * n - n + 1])
        run_sigmoid(np.tile(x, n).reshape(n, -1).T.copy())
    s = run_sigmoid(x)
    assert s[SPECIAL_X.index(np.inf)] == 1.0 and s[SPECIAL_X.index(-np.inf)] == 0.0
    assert np.isnan(s[len(SPECIAL_X) - 1]) and np.isnan(s).sum() == 1
    assert s[0] == 0.5 and s[1] == 1.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_symmetry_and_range(rng, dtype):
    """sigmoid(-x) = 1 - sigmoid(x) within the sum of the two bars; values in [0, 1]; monotone."""
    x = np.sort(np.concatenate([make_logits(rng, (500,), dtype, scale=10), make_logits(rng, (100,), dtype, 0.1)]))
    s_pos = fs.sigmoid(x).astype(np.float64)
    s_neg = fs.sigmoid(-x).astype(np.float64)
    t = tol(dtype)
    r_pos, r_neg = ref.sigmoid(x), ref.sigmoid(-x)
    bound = t["rel"] * (r_pos + r_neg) + 2 * t["softmax_abs"] + 2 * np.finfo(np.float64).eps
    assert np.all(np.abs(s_neg - (1.0 - s_pos)) <= bound)
    assert np.all((s_pos >= 0) & (s_pos <= 1))
    assert np.all(np.diff(s_pos) >= 0), "sigmoid is not monotone"


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_empty(dtype):
    for shape in [(0,), (3, 0), (0, 4, 2)]:
        s = fs.sigmoid(np.zeros(shape, dtype))
        assert s.shape == shape and s.dtype == dtype


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("bad", [np.int32, np.int64, np.uint8, np.bool_, np.complex128, object],
                         ids=lambda d: np.dtype(d).name)
def test_sigmoid_bad_dtype(impl, bad):
    with pytest.raises(TypeError):
        impl.sigmoid(np.ones((3, 4)).astype(bad))


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("case", ["dtype", "shape", "shape_T", "readonly", "in_place_readonly", "not_array"])
def test_sigmoid_out_bad(impl, case):
    x = np.random.default_rng(5).standard_normal((4, 6)).astype(np.float32)
    if case == "in_place_readonly":
        x.flags.writeable = False
        out, exc = x, ValueError
    else:
        out, exc = bad_out(case, x.dtype)
    arrays = [a for a in (x, out) if isinstance(a, np.ndarray)]
    snaps = [a.copy() for a in arrays]
    with pytest.raises(exc):
        impl.sigmoid(x, out=out)
    for a, s in zip(arrays, snaps):
        np.testing.assert_array_equal(a, s)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_sweep(dtype):
    """Every exponent range down to the underflow of the result (and past it)."""
    lo, hi = {np.float32: (-110.0, 100.0), np.float64: (-760.0, 720.0)}[dtype]
    x = np.linspace(lo, hi, 20001).astype(dtype)
    run_sigmoid(x)
    run_sigmoid(x[::-7])


# ----------------------------------------------------------------------------- misaligned arrays


@pytest.mark.parametrize("dtype", DTYPES)
def test_misaligned_arrays(rng, dtype):
    x = make_logits(rng, (7, 37), dtype)
    t = make_target(rng, x.shape, dtype)
    w = weight_of(rng, "row", x.shape, dtype)
    pw = pos_weight_of(rng, "class", 37, dtype)
    xm, tm, wm, pwm = misaligned(x), misaligned(t), misaligned(w), misaligned(pw)
    for red in REDUCTIONS:
        run_bce(xm, tm, weight=wm, pos_weight=pwm, reduction=red)
    run_sigmoid(xm)
    out = misaligned(np.full(x.shape, 3.0, dtype))
    run_sigmoid(xm, out=out)
    # a misaligned gradient out=: either refused with ValueError before anything is written, or correct
    gout = misaligned(np.full(x.shape, 7.0, dtype))
    try:
        run_bce(x, t, weight=w, out=gout)
    except ValueError:
        assert np.all(gout == 7.0), "out written although refused"


# ----------------------------------------------------------------------------- the reference itself


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("wform,pwform", [(None, None), ("full", "class"), ("row", "scalar")])
def test_reference_gradient_is_the_derivative_of_its_loss(rng, reduction, wform, pwform):
    """The reference's analytic BCE gradient vs central differences of the reference loss."""
    shape = (3, 5)
    x = make_logits(rng, shape, np.float64, scale=2.0)
    t = make_target(rng, shape, np.float64)
    kw = dict(weight=weight_of(rng, wform, shape, np.float64),
              pos_weight=pos_weight_of(rng, pwform, 5, np.float64), reduction=reduction)
    _, g = bce(ref, x, t, return_grad=True, **kw)
    fd = fd_grad(lambda z: float(np.sum(bce(ref, z, t, **kw))), x)
    assert np.all(np.abs(g - fd) <= 1e-7 * (np.abs(fd) + bce_grad_factor(shape, kw["weight"], kw["pos_weight"],
                                                                         reduction)) + 1e-9)


def test_reference_matches_scalar_formulas():
    """Reference BCE / sigmoid vs scalar Python math from the definitions."""
    import math

    xs = [-30.0, -3.5, -0.25, 0.0, 0.7, 4.0, 25.0]
    ts = [0.0, 0.3, 1.0, 0.5, 0.9, 0.1, 1.0]
    pw = 1.7
    for x, t in zip(xs, ts):
        sp = math.log1p(math.exp(-abs(x))) + max(-x, 0.0)  # softplus(-x)
        lw = 1 + (pw - 1) * t
        want = (1 - t) * x + lw * sp
        got = ref.binary_cross_entropy_with_logits(np.array([x]), np.array([t]), pos_weight=pw, reduction="sum")
        # the definition's two terms are as large as |x| and cancel for x < 0: its value in double
        # is off by a few units of |x|'s last place (the reference's form has no cancellation)
        assert abs(got - want) <= 1e-15 * (1 + abs(want)) + 4 * 2.0**-53 * (abs(1 - t) * abs(x) + lw * sp)
        s = 1 / (1 + math.exp(-x))
        assert abs(ref.sigmoid(np.array(x)) - s) <= 1e-15 * s
        assert abs(ref.sigmoid(np.array(-x)) - (1 - s)) <= 1e-15 + 1e-15 * (1 - s)
