"""cross_entropy(z_loss=) (loss and fused gradient) against the float64 reference.

Bars (fastsoftmax.reference.TOLERANCES): the cross_entropy bars, with the gradient's r
factor multiplied by (1 + 2 * z_loss * (1 + |lse_n|)) (conftest.zloss_row_factor).
"""

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference as ref
from conftest import (
    make_targets,
    fd_grad,
    DTYPES,
    assert_exact_zero,
    assert_grad_close,
    assert_value_close,
    grad_row_factor,
    make_index_target,
    make_logits,
    make_prob_target,
    tol,
    zloss_row_factor,
)

# every test here runs on each instruction-set path with 1 and 2 threads (conftest.backend)
pytestmark = pytest.mark.usefixtures("backend")

TAIL_CS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 127, 129, 1000, 2049, 5000]
REDUCTIONS = ["mean", "sum", "none"]
ZS = [1e-4, 1.0]


def run_z(logits, target, *, z_loss, return_grad=True, out=None, **kw):
    """fs.cross_entropy(z_loss=...) and the reference on the same inputs; checks everything."""
    dt = logits.dtype
    reduction = kw.get("reduction", "mean")
    logits_before = logits.copy()
    want = ref.cross_entropy(logits, target, z_loss=z_loss, return_grad=return_grad, **kw)
    if out is not None:
        got = fs.cross_entropy(logits, target, z_loss=z_loss, return_grad=return_grad, out=out, **kw)
    else:
        got = fs.cross_entropy(logits, target, z_loss=z_loss, return_grad=return_grad, **kw)
        np.testing.assert_array_equal(logits, logits_before, err_msg="logits were modified")
    if return_grad:
        assert isinstance(got, tuple) and len(got) == 2
        loss, grad = got
        loss_ref, grad_ref = want
    else:
        loss, grad, loss_ref, grad_ref = got, None, want, None
    ax = kw.get("axis", -1) % logits.ndim
    batch_shape = logits.shape[:ax] + logits.shape[ax + 1:]
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.dtype == dt and loss.shape == batch_shape
    else:
        assert type(loss) is dt.type, f"loss type {type(loss)}, expected {dt.type}"
    assert_value_close(loss, loss_ref, dt, f"loss ({reduction}, z_loss={z_loss})")
    if return_grad:
        assert isinstance(grad, np.ndarray) and grad.dtype == dt and grad.shape == logits.shape
        if out is not None:
            assert grad is out
        r = zloss_row_factor(logits_before, target, z_loss=z_loss, **kw)
        assert_grad_close(grad, grad_ref, dt, r, f"grad (z_loss={z_loss})")
    return loss, grad


# ----------------------------------------------------------------------------- option grid


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("z", ZS)
@pytest.mark.parametrize("weighted,eps,ignore_mode", [(False, 0.0, "absent"), (True, 0.0, "default"),
                                                      (True, 0.3, "in_range"), (False, 1.0, "default")])
def test_option_grid(rng, dtype, kind, reduction, z, weighted, eps, ignore_mode):
    shape = (13, 37)
    x = make_logits(rng, shape, dtype)
    t, ii = make_targets(rng, shape, -1, dtype, kind, ignore_mode)
    w = rng.uniform(0.5, 2.0, shape[1]).astype(dtype) if weighted else None
    kw = dict(weight=w, ignore_index=ii, reduction=reduction, label_smoothing=eps)
    run_z(x, t, z_loss=z, return_grad=False, **kw)
    run_z(x, t, z_loss=z, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,axis", [((4, 6, 5), 0), ((3, 17, 9), -2), ((2, 1, 9), 1), ((11,), 0)])
def test_axes(rng, dtype, kind, reduction, shape, axis):
    x = make_logits(rng, shape, dtype)
    t, ii = make_targets(rng, shape, axis, dtype, kind)
    w = rng.uniform(0.5, 2.0, shape[axis]).astype(dtype)
    run_z(x, t, z_loss=0.1, axis=axis, weight=w, reduction=reduction, label_smoothing=0.1)
    run_z(x, t, z_loss=1e-3, axis=axis, reduction=reduction)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("C", TAIL_CS)
def test_simd_tails(rng, dtype, kind, C):
    N = 4 if C < 1000 else 2
    x = make_logits(rng, (N, C), dtype)
    t, ii = make_targets(rng, (N, C), -1, dtype, kind)
    w = rng.uniform(0.5, 2.0, C).astype(dtype)
    run_z(x, t, z_loss=0.05, weight=w, label_smoothing=0.1)
    run_z(x, t, z_loss=1.0, reduction="none")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("N", [1, 2, 3, 5, 8, 17, 37])
def test_batch_sizes(rng, dtype, N):
    x = make_logits(rng, (N, 9), dtype)
    t = rng.integers(0, 9, N)
    for red in REDUCTIONS:
        run_z(x, t, z_loss=0.2, reduction=red, weight=rng.uniform(0.5, 2.0, 9).astype(dtype))


# ----------------------------------------------------------------------------- layouts and out=


def _noncontig_cases(rng, dtype):
    b2 = make_logits(rng, (16, 42), dtype)
    b3 = make_logits(rng, (6, 10, 14), dtype)
    return [
        ("sliced", b2[1::2, ::3], -1),
        ("transposed_first", b2.T, 0),
        ("negative", b2[::-1, ::-1], -1),
        ("negative_axis0", b2[::-3, ::-1], 0),
        ("3d_mid_sliced", b3[:, ::2, ::-1], 1),
        ("3d_transposed", b3.transpose(1, 2, 0), -1),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("case", range(6))
def test_noncontiguous(rng, dtype, kind, case):
    name, x, axis = _noncontig_cases(rng, dtype)[case]
    ax = axis % x.ndim
    if kind == "prob":
        t = np.flip(np.flip(make_prob_target(rng, x.shape, axis, dtype), 0).copy(), 0)
    else:
        batch = x.shape[:ax] + x.shape[ax + 1:]
        t = make_index_target(rng, batch, x.shape[ax], ignore_index=-100)[::-1].copy()[::-1]
    w = rng.uniform(0.5, 2.0, x.shape[ax]).astype(dtype)
    for red in REDUCTIONS:
        run_z(x, t, z_loss=0.1, axis=axis, weight=w, reduction=red, label_smoothing=0.1)
    run_z(x, t, z_loss=0.1, axis=axis, out=np.full(x.shape, 7.0, dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,axis", [((9, 37), -1), ((9, 37), 0), ((3, 5, 4), 1), ((3, 4097), -1)])
def test_out_separate_and_in_place(rng, dtype, kind, reduction, shape, axis):
    x = make_logits(rng, shape, dtype)
    t, ii = make_targets(rng, shape, axis, dtype, kind)
    w = rng.uniform(0.5, 2.0, shape[axis]).astype(dtype)
    kw = dict(axis=axis, weight=w, reduction=reduction, ignore_index=ii, label_smoothing=0.2)
    run_z(x, t, z_loss=0.3, out=np.full(shape, np.nan, dtype), **kw)
    loss_ref, grad_ref = ref.cross_entropy(x, t, z_loss=0.3, return_grad=True, **kw)
    r = zloss_row_factor(x, t, z_loss=0.3, **kw)
    loss, grad = fs.cross_entropy(x, t, z_loss=0.3, return_grad=True, out=x, **kw)
    assert grad is x
    assert_value_close(loss, loss_ref, dtype, "in-place loss")
    assert_grad_close(x, grad_ref, dtype, r, "in-place grad")


# ----------------------------------------------------------------------------- gradients
# (central differences with z_loss: test_cross_entropy.test_gradient_finite_differences_float64)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
def test_z_term_is_the_difference(rng, dtype, kind):
    """loss(z) - loss(0) = z * sum_n w_row lse_n^2 / D and grad(z) - grad(0) = 2 z s_n w_row lse_n p (within bars)."""
    x = make_logits(rng, (15, 23), dtype) + dtype(3)
    t, _ = make_targets(rng, x.shape, -1, dtype, kind, "absent")
    z = 0.25
    l0, g0 = fs.cross_entropy(x, t, reduction="sum", return_grad=True)
    lz, gz = fs.cross_entropy(x, t, reduction="sum", return_grad=True, z_loss=z)
    lse = ref.logsumexp(x)
    p = ref.softmax(x)
    rel = tol(dtype)["rel"]
    l0_ref = ref.cross_entropy(x, t, reduction="sum")
    want = z * np.sum(lse ** 2)
    assert abs((np.float64(lz) - np.float64(l0)) - want) <= rel * (2 + abs(l0_ref) + abs(l0_ref + want))
    r0 = grad_row_factor(x.shape, t, reduction="sum")
    rz = zloss_row_factor(x, t, reduction="sum", z_loss=z)
    _, g0_ref = ref.cross_entropy(x, t, reduction="sum", return_grad=True)
    gz_ref = g0_ref + 2 * z * lse[:, None] * p
    bound = rel * (np.abs(g0_ref) + r0 + np.abs(gz_ref) + rz)
    assert np.all(np.abs((gz.astype(np.float64) - g0) - 2 * z * lse[:, None] * p) <= bound)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_z_loss_is_no_z_loss(rng, dtype):
    x = make_logits(rng, (9, 17), dtype)
    t = rng.integers(0, 17, 9)
    for z0 in (0.0, 0, np.float32(0.0)):
        l0, g0 = fs.cross_entropy(x, t, z_loss=z0, return_grad=True, label_smoothing=0.1)
        l1, g1 = fs.cross_entropy(x, t, return_grad=True, label_smoothing=0.1)
        assert l0 == l1
        np.testing.assert_array_equal(g0, g1)


@pytest.mark.parametrize("z", [0.5, 1, np.float32(0.25), np.float64(2.0), np.int64(1)])
def test_z_loss_number_types(rng, z):
    x = make_logits(rng, (6, 7), np.float64)
    run_z(x, rng.integers(0, 7, 6), z_loss=z)


# ----------------------------------------------------------------------------- ignore_index, weights


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted", [False, True])
def test_all_rows_ignored(rng, dtype, reduction, weighted):
    x = make_logits(rng, (6, 9), dtype)
    t = np.full(6, -100)
    w = rng.uniform(0.5, 2.0, 9).astype(dtype) if weighted else None
    loss, grad = run_z(x, t, z_loss=0.5, weight=w, reduction=reduction, label_smoothing=0.1)
    if reduction == "mean":
        assert np.isnan(loss)
    else:
        assert_exact_zero(loss, "loss")
    assert_exact_zero(grad, "grad of an all-ignored batch")


@pytest.mark.parametrize("dtype", DTYPES)
def test_ignored_rows_exact_zero(rng, dtype):
    x = make_logits(rng, (10, 12), dtype)
    x[3] = -np.inf  # ignored rows with special values (lse = -inf, NaN, +inf): still exactly 0
    x[5, 2] = np.nan
    x[7, 0] = np.inf
    t = rng.integers(0, 12, 10)
    t[t == 4] = 5
    t[[3, 5, 7, 8]] = 4
    w = rng.uniform(0.5, 2, 12).astype(dtype)
    loss, grad = run_z(x, t, z_loss=0.2, ignore_index=4, reduction="none", weight=w, label_smoothing=0.3)
    assert_exact_zero(loss[[3, 5, 7, 8]], "loss of ignored rows")
    assert_exact_zero(grad[[3, 5, 7, 8]], "grad of ignored rows")
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    loss, grad = run_z(x, t, z_loss=0.2, ignore_index=4, weight=w)
    assert np.isfinite(loss) and np.isfinite(grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_weighted_by_target_class_weight(rng, dtype):
    """Index targets: the z term of a row is weighted by w[y_n]; a zero class weight removes it entirely."""
    x = make_logits(rng, (6, 5), dtype) + dtype(4)
    t = np.array([0, 1, 2, 3, 4, 0])
    w = np.array([0.0, 1.0, 2.0, 0.5, 3.0], dtype)
    loss, grad = run_z(x, t, z_loss=0.5, weight=w, reduction="none")
    assert_exact_zero(loss[[0, 5]], "loss of rows whose target has weight 0")
    assert_exact_zero(grad[[0, 5]], "grad of rows whose target has weight 0")
    run_z(x, t, z_loss=0.5, weight=w, reduction="mean")
    run_z(x, t, z_loss=0.5, weight=w, reduction="mean", label_smoothing=0.2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_mean_with_zero_total_weight_is_nan(dtype, eps):
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5], [0.1, 0.2, 0.3]], dtype)
    t = np.array([0, 0, -100])
    w = np.array([0.0, 1.0, 1.0], dtype)
    loss, grad = run_z(x, t, z_loss=0.1, weight=w, label_smoothing=eps)
    assert np.isnan(loss) and np.isnan(grad[:2]).all()
    assert_exact_zero(grad[2], "grad of the ignored row")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_prob_targets_ignore_class_weights_in_z_term(rng, dtype, reduction):
    x = make_logits(rng, (7, 13), dtype)
    t = make_prob_target(rng, x.shape, -1, dtype)
    run_z(x, t, z_loss=0.4, weight=rng.uniform(0.5, 2.0, 13).astype(dtype), reduction=reduction)
    t_un = (rng.random(x.shape) * 2).astype(dtype)  # unnormalised soft targets
    run_z(x, t_un, z_loss=0.4, reduction=reduction, label_smoothing=0.1)


# ----------------------------------------------------------------------------- numerics and special values


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("C", [1, 5, 8, 33, 1000])
def test_large_magnitudes(rng, dtype, kind, C):
    x = np.empty((6, C), dtype)
    x[0] = 1e4
    x[1] = -1e4
    x[2] = rng.uniform(-1e4, 1e4, C)
    x[3] = 1e4 + rng.uniform(-20, 20, C).round(2)
    x[4] = -1e4 + rng.uniform(-20, 20, C).round(2)
    x[5] = np.where(rng.random(C) < 0.5, 1e4, -1e4)
    t, _ = make_targets(rng, x.shape, -1, dtype, kind, "absent")
    for red in REDUCTIONS:
        loss, grad = run_z(x, t, z_loss=1e-4, reduction=red, label_smoothing=0.1)
        assert np.all(np.isfinite(loss)) and np.isfinite(grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("C", [1, 4, 8, 17])
def test_special_rows_are_isolated(rng, dtype, kind, C):
    x = make_logits(rng, (7, C), dtype)
    x[1] = -np.inf
    x[3, C // 2] = np.nan
    x[5, 0] = np.inf
    t, _ = make_targets(rng, x.shape, -1, dtype, kind, "absent")
    loss, grad = run_z(x, t, z_loss=0.1, reduction="none", label_smoothing=0.1)
    bad, ok = [1, 3, 5], [0, 2, 4, 6]
    assert np.isnan(loss[bad]).all() and np.isfinite(loss[ok]).all()
    assert np.isnan(grad[bad]).all() and np.isfinite(grad[ok]).all()
    for red in ("mean", "sum"):
        loss, grad = run_z(x, t, z_loss=0.1, reduction=red)
        assert np.isnan(loss)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("C", [3, 8, 9, 40])
def test_masked_classes(rng, dtype, C):
    N = 8
    x = make_logits(rng, (N, C), dtype)
    mask = rng.random((N, C)) < 0.4
    t = rng.integers(0, C, N)
    mask[np.arange(N), t] = False
    mask[0, :] = np.arange(C) != t[0]
    x[mask] = -np.inf
    for red in REDUCTIONS:
        loss, grad = run_z(x, t, z_loss=0.3, reduction=red)
        assert np.all(np.isfinite(loss)) and np.isfinite(grad).all()
        assert_exact_zero(grad[mask], "grad at masked classes")


@pytest.mark.parametrize("dtype", DTYPES)
def test_extreme_finite_logits(dtype):
    big = {np.float32: 3e38, np.float64: 1e308}[dtype]
    x = np.array([[big, -big, 0, 1], [big / 4, -big / 4, 0, 0], [-big, 1.0, 2.0, -big], [1e4, 0, 0, 0]], dtype)
    t = np.array([1, 0, 2, 0])
    for red in REDUCTIONS:  # lse^2 overflows to inf where the reference's value is beyond the range
        run_z(x, t, z_loss=1e-4, reduction=red, label_smoothing=0.1)


# ----------------------------------------------------------------------------- empty batch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("shape,axis", [((0, 5), -1), ((5, 0), 0), ((0, 3, 4), 1), ((2, 0, 3), 2)])
def test_empty_batch(dtype, kind, shape, axis):
    ax = axis % len(shape)
    batch = shape[:ax] + shape[ax + 1:]
    x = np.zeros(shape, dtype)
    t = np.zeros(shape, dtype) if kind == "prob" else np.zeros(batch, np.int64)
    for red in REDUCTIONS:
        loss, grad = fs.cross_entropy(x, t, axis=axis, reduction=red, return_grad=True, z_loss=0.5)
        assert grad.shape == shape and grad.dtype == dtype
        assert_value_close(loss, ref.cross_entropy(x, t, axis=axis, reduction=red, z_loss=0.5), dtype)


# ----------------------------------------------------------------------------- bad z_loss


IMPLS = [pytest.param(fs, id="fastsoftmax"), pytest.param(ref, id="reference")]


def _raises(impl, exc, x, t, **kw):
    for v in (dict(kw), dict(kw, return_grad=True, out=np.full(x.shape, 5.0, x.dtype)),
              dict(kw, return_grad=True, out=x)):
        arrays = [a for a in (x, v.get("out")) if isinstance(a, np.ndarray)]
        snaps = [a.copy() for a in arrays]
        with pytest.raises(exc) as info:
            impl.cross_entropy(x, t, **v)
        for a, s in zip(arrays, snaps):
            np.testing.assert_array_equal(a, s, err_msg="array modified although an exception was raised")
    return info


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("z", [-0.1, -1e-300, -np.inf, np.inf, np.nan, np.float32(-1), -1])
@pytest.mark.parametrize("kind", ["index", "prob"])
def test_bad_z_loss_value(impl, z, kind):
    x = np.random.default_rng(1).standard_normal((4, 5))
    t = np.array([0, 1, 2, 4]) if kind == "index" else np.full((4, 5), 0.2)
    info = _raises(impl, ValueError, x, t, z_loss=z)
    assert "z_loss" in str(info.value)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("z", ["0.1", None, 1j, [0.1], b"1"], ids=["str", "None", "complex", "list", "bytes"])
def test_z_loss_not_a_number(impl, z):
    x = np.random.default_rng(2).standard_normal((4, 5)).astype(np.float32)
    _raises(impl, TypeError, x, np.array([0, 1, 2, 4]), z_loss=z)


# ----------------------------------------------------------------------------- the reference itself


@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,eps", [(False, 0.0), (True, 0.3)])
def test_reference_gradient_is_the_derivative_of_its_loss(rng, kind, reduction, weighted, eps):
    shape = (4, 5)
    x = make_logits(rng, shape, np.float64, scale=1.5) + 2.0
    t, ii = make_targets(rng, shape, -1, np.float64, kind, "default")
    w = rng.uniform(0.5, 2.0, 5) if weighted else None
    kw = dict(weight=w, ignore_index=ii, reduction=reduction, label_smoothing=eps, z_loss=0.7)
    _, g = ref.cross_entropy(x, t, return_grad=True, **kw)
    fd = fd_grad(lambda z: float(np.sum(ref.cross_entropy(z, t, **kw))), x)
    r = np.broadcast_to(zloss_row_factor(x, t, **kw), shape)
    assert np.all(np.abs(g - fd) <= 1e-7 * (np.abs(fd) + r) + 1e-9)


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_no_classes(reduction):
    """C = 0: probability-target rows have no loss terms but a z-loss of z * logsumexp(empty)**2 = inf;
    index targets must all be ignored, and then contribute nothing (mean: NaN, as without z_loss)."""
    x, p = np.zeros((3, 0)), np.zeros((3, 0))
    for kw in (dict(z_loss=0.1), dict(z_loss=0.1, label_smoothing=0.2), dict(label_smoothing=0.2)):
        got = fs.cross_entropy(x, p, reduction=reduction, **kw)
        want = ref.cross_entropy(x, p, reduction=reduction, **kw)
        assert np.array_equal(np.asarray(got, np.float64), np.asarray(want, np.float64), equal_nan=True)
    got = fs.cross_entropy(x, np.full(3, -100), reduction=reduction, z_loss=0.1)
    want = ref.cross_entropy(x, np.full(3, -100), reduction=reduction, z_loss=0.1)
    assert np.array_equal(np.asarray(got, np.float64), np.asarray(want, np.float64), equal_nan=True)
