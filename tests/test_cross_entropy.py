"""cross_entropy (loss and fused gradient) against the float64 reference."""

import itertools

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference as ref
from conftest import (
    kernel_threads,
    tol,
    zloss_row_factor,
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
)

# every test here runs on each instruction-set path with 1 and 2 threads (conftest.backend)
pytestmark = pytest.mark.usefixtures("backend")

TAIL_CS = list(range(1, 34)) + [63, 65, 127, 1000, 1023, 4097]
REDUCTIONS = ["mean", "sum", "none"]


def run_ce(logits, target, *, return_grad=True, out=None, **kw):
    """Call fs.cross_entropy and the reference on the same inputs; check everything.

    Returns (loss, grad) of the kernel (grad None without return_grad).
    """
    dt = logits.dtype
    reduction = kw.get("reduction", "mean")
    logits_before = logits.copy()
    want = ref.cross_entropy(logits, target, return_grad=return_grad, **kw)
    if out is not None:
        got = fs.cross_entropy(logits, target, return_grad=return_grad, out=out, **kw)
    else:
        got = fs.cross_entropy(logits, target, return_grad=return_grad, **kw)
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
        assert isinstance(loss, np.ndarray), type(loss)
        assert loss.dtype == dt and loss.shape == batch_shape
    else:
        assert type(loss) is dt.type, f"loss type {type(loss)}, expected {dt.type}"
    assert_value_close(loss, loss_ref, dt, f"loss ({reduction})")
    if return_grad:
        assert isinstance(grad, np.ndarray) and grad.dtype == dt and grad.shape == logits.shape
        if out is not None:
            assert grad is out
        r = grad_row_factor(logits.shape, target, **{k: v for k, v in kw.items()})
        assert_grad_close(grad, grad_ref, dt, r, "grad")
    return loss, grad


# ----------------------------------------------------------------------------- option grid


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("return_grad", [False, True])
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("ignore_mode", ["absent", "default", "in_range"])
@pytest.mark.parametrize("weighted", [False, True])
def test_option_grid(rng, dtype, return_grad, kind, reduction, eps, ignore_mode, weighted):
    shape = (13, 37)
    x = make_logits(rng, shape, dtype)
    t, ii = make_targets(rng, shape, -1, dtype, kind, ignore_mode)
    w = rng.uniform(0.5, 2.0, shape[1]).astype(dtype) if weighted else None
    run_ce(x, t, return_grad=return_grad, weight=w, ignore_index=ii, reduction=reduction, label_smoothing=eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,eps", [(False, 0.0), (True, 0.0), (True, 0.3), (False, 0.3)])
@pytest.mark.parametrize("shape,axis", [((4, 6, 5), 0), ((4, 6, 5), 1), ((4, 6, 5), 2), ((4, 6, 5), -2),
                                        ((3, 17, 9), 1), ((2, 1, 9), 1)])
def test_3d_class_axis(rng, dtype, kind, reduction, weighted, eps, shape, axis):
    x = make_logits(rng, shape, dtype)
    t, ii = make_targets(rng, shape, axis, dtype, kind, "default")
    w = rng.uniform(0.5, 2.0, shape[axis]).astype(dtype) if weighted else None
    run_ce(x, t, axis=axis, weight=w, ignore_index=ii, reduction=reduction, label_smoothing=eps)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("C", TAIL_CS)
def test_simd_tails(rng, isa, dtype, kind, C):
    N = 6 if C < 1000 else 3
    x = make_logits(rng, (N, C), dtype)
    t, ii = make_targets(rng, (N, C), -1, dtype, kind, "default")
    w = rng.uniform(0.5, 2.0, C).astype(dtype)
    run_ce(x, t, weight=w, ignore_index=ii, label_smoothing=0.1)
    run_ce(x, t, reduction="none")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (3, 1), (1, 2 ** 17), (2, 2 ** 17 - 3), (257, 1000), (1, 4097)])
@pytest.mark.parametrize("kind", ["index", "prob"])
def test_shapes(rng, dtype, shape, kind):
    x = make_logits(rng, shape, dtype)
    t, ii = make_targets(rng, shape, -1, dtype, kind, "absent")
    run_ce(x, t)
    run_ce(x, t, reduction="none", label_smoothing=0.05)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
def test_single_row_1d_logits(rng, dtype, kind):
    x = make_logits(rng, (11,), dtype)
    t = make_prob_target(rng, (11,), 0, dtype) if kind == "prob" else np.array(4)
    for red in REDUCTIONS:
        run_ce(x, t, reduction=red, label_smoothing=0.1)


@pytest.mark.parametrize("tdtype", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                                    np.uint64])
def test_target_integer_dtypes(rng, tdtype):
    x = make_logits(rng, (10, 7), np.float64)
    t = rng.integers(0, 7, 10).astype(tdtype)
    loss, grad = run_ce(x, t)
    loss64, grad64 = fs.cross_entropy(x, t.astype(np.int64), return_grad=True)
    assert loss == loss64
    np.testing.assert_array_equal(grad, grad64)


def test_target_layouts(rng):
    """Index targets that are not native, contiguous int64 (byte-swapped, strided, 2-D
    Fortran-ordered) give what their contiguous int64 copy gives."""
    x = make_logits(rng, (6, 10, 7), np.float32)
    t = rng.integers(0, 7, (6, 10))
    loss64, grad64 = fs.cross_entropy(x, t, return_grad=True, ignore_index=3)
    wide = np.zeros((6, 20), np.int64)
    wide[:, ::2] = t
    for tv in (t.astype(">i8"), wide[:, ::2], np.asfortranarray(t)):
        assert not (tv.dtype == np.int64 and tv.flags.c_contiguous)
        loss, grad = fs.cross_entropy(x, tv, return_grad=True, ignore_index=3)
        assert loss == loss64
        np.testing.assert_array_equal(grad, grad64)


def test_forward_only_equals_return_grad_loss(rng):
    for dtype, kind, red, eps, weighted in itertools.product(DTYPES, ["index", "prob"], REDUCTIONS, [0.0, 0.3],
                                                             [False, True]):
        x = make_logits(rng, (33, 129), dtype)
        t, ii = make_targets(rng, x.shape, -1, dtype, kind, "default")
        w = rng.uniform(0.5, 2.0, 129).astype(dtype) if weighted else None
        kw = dict(weight=w, ignore_index=ii, reduction=red, label_smoothing=eps)
        fwd = fs.cross_entropy(x, t, **kw)
        both, _ = fs.cross_entropy(x, t, return_grad=True, **kw)
        assert type(fwd) is type(both)
        np.testing.assert_array_equal(fwd, both, err_msg=f"{dtype.__name__} {kind} {red} eps={eps} w={weighted}")


# ----------------------------------------------------------------------------- layouts and out=


def _noncontig_cases(rng, dtype):
    b2 = make_logits(rng, (16, 42), dtype)
    b3 = make_logits(rng, (6, 10, 14), dtype)
    return [
        ("sliced", b2[1::2, ::3], -1),
        ("transposed_last", b2.T, -1),
        ("transposed_first", b2.T, 0),
        ("negative", b2[::-1, ::-1], -1),
        ("negative_axis0", b2[::-3, ::-1], 0),
        ("fortran", np.asfortranarray(b2), -1),
        ("3d_mid_sliced", b3[:, ::2, ::-1], 1),
        ("3d_transposed", b3.transpose(1, 2, 0), -1),
        ("3d_first", b3[::-1, 1:, ::3], 0),
    ]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("case", range(9))
def test_noncontiguous_logits_andmake_targets(rng, dtype, kind, case):
    name, x, axis = _noncontig_cases(rng, dtype)[case]
    ax = axis % x.ndim
    if kind == "prob":
        t = make_prob_target(rng, x.shape, axis, dtype)
        t = np.flip(np.flip(t, 0).copy(), 0)  # negative-stride target
    else:
        batch = x.shape[:ax] + x.shape[ax + 1:]
        t = make_index_target(rng, batch, x.shape[ax], ignore_index=-100)
        t = np.asfortranarray(t) if t.ndim == 2 else t[::-1].copy()[::-1]
    w = rng.uniform(0.5, 2.0, x.shape[ax]).astype(dtype)
    for red in REDUCTIONS:
        run_ce(x, t, axis=axis, weight=w, reduction=red, label_smoothing=0.1)
    # out= with non-contiguous logits (out itself must be C-contiguous)
    out = np.full(x.shape, 7.0, dtype)
    run_ce(x, t, axis=axis, out=out, label_smoothing=0.1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,axis", [((9, 37), -1), ((9, 37), 0), ((3, 5, 4), 1)])
def test_out_separate(rng, dtype, kind, reduction, shape, axis):
    x = make_logits(rng, shape, dtype)
    t, ii = make_targets(rng, shape, axis, dtype, kind, "default")
    out = np.full(shape, np.nan, dtype)
    run_ce(x, t, axis=axis, out=out, reduction=reduction, ignore_index=ii, label_smoothing=0.1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape,axis", [((9, 37), -1), ((9, 37), 0), ((3, 5, 4), 1), ((4, 4097), -1)])
def test_out_in_place(rng, dtype, kind, reduction, shape, axis):
    x = make_logits(rng, shape, dtype)
    t, ii = make_targets(rng, shape, axis, dtype, kind, "default")
    w = rng.uniform(0.5, 2.0, shape[axis]).astype(dtype)
    kw = dict(axis=axis, weight=w, reduction=reduction, ignore_index=ii, label_smoothing=0.2)
    loss_ref, grad_ref = ref.cross_entropy(x, t, return_grad=True, **kw)
    loss, grad = fs.cross_entropy(x, t, return_grad=True, out=x, **kw)
    assert grad is x
    assert_value_close(loss, loss_ref, dtype, "in-place loss")
    assert_grad_close(x, grad_ref, dtype, grad_row_factor(shape, t, **kw), "in-place grad")


# ----------------------------------------------------------------------------- gradients


@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,eps,ignore_mode", [(False, 0.0, "absent"), (True, 0.0, "default"),
                                                      (False, 0.3, "in_range"), (True, 0.3, "default"),
                                                      (True, 1.0, "absent")])
@pytest.mark.parametrize("shape,axis", [((3, 4), -1), ((5, 3), 0), ((2, 3, 4), 1)])
@pytest.mark.parametrize("z_loss", [0.0, 0.7])
def test_gradient_finite_differences_float64(rng, kind, reduction, weighted, eps, ignore_mode, shape, axis, z_loss):
    """Kernel gradient vs central differences of the kernel loss (float64), with and without z-loss.

    FD error (h = 1e-5): truncation ~h^2 |f'''| ~ 1e-10, rounding ~1e-16 |f| / h ~ 1e-11;
    the tolerance 1e-7 * (|fd| + r) + 1e-9 leaves a wide margin over both.
    """
    # with z-loss, logits shifted so that lse is away from 0 and the z term matters
    x = make_logits(rng, shape, np.float64, scale=1.5) + (2.0 if z_loss else 0.0)
    t, ii = make_targets(rng, shape, axis, np.float64, kind, ignore_mode)
    w = rng.uniform(0.5, 2.0, shape[axis]) if weighted else None
    kw = dict(axis=axis, weight=w, ignore_index=ii, reduction=reduction, label_smoothing=eps, z_loss=z_loss)
    _, g = fs.cross_entropy(x, t, return_grad=True, **kw)

    def f(z):
        return float(np.sum(fs.cross_entropy(z, t, **kw)))

    fd = fd_grad(f, x)
    r = np.broadcast_to(zloss_row_factor(x, t, **kw), shape)
    err = np.abs(g - fd)
    bound = 1e-7 * (np.abs(fd) + r) + 1e-9
    assert np.all(err <= bound), f"max err {err.max():.3e}; grad={g}, fd={fd}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("C", [3, 10, 17])
def test_many_rows_sums_and_denominators(rng, dtype, weighted, C):
    """Over several 1024-row blocks of the fixed-order sums (losses, target count, weight sum),
    with ignored rows in every block: mean, sum and none against the reference, and the sum
    equal to the sum of the per-row losses."""
    n = 3 * 1024 + 77
    x = make_logits(rng, (n, C), dtype)
    t = make_index_target(rng, (n,), C, ignore_index=-100, frac_ignored=0.2)
    w = rng.uniform(0.1, 2.0, C).astype(dtype) if weighted else None
    for red in REDUCTIONS:
        run_ce(x, t, weight=w, reduction=red)
    total = fs.cross_entropy(x, t, weight=w, reduction="sum")
    rows = fs.cross_entropy(x, t, weight=w, reduction="none").astype(np.float64)
    assert_value_close(total, rows.sum(), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_gradient_of_none_is_gradient_of_sum(rng, dtype):
    x = make_logits(rng, (12, 19), dtype)
    t = make_index_target(rng, (12,), 19, ignore_index=-100)
    w = rng.uniform(0.5, 2.0, 19).astype(dtype)
    kw = dict(weight=w, label_smoothing=0.1)
    _, g_none = fs.cross_entropy(x, t, reduction="none", return_grad=True, **kw)
    _, g_sum = fs.cross_entropy(x, t, reduction="sum", return_grad=True, **kw)
    _, g_ref = ref.cross_entropy(x, t, reduction="sum", return_grad=True, **kw)
    r = grad_row_factor(x.shape, t, reduction="sum", **kw)
    assert_grad_close(g_none, g_ref, dtype, r)
    assert_grad_close(g_sum, g_ref, dtype, r)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
def test_gradient_rows_sum_to_zero(rng, dtype, kind):
    """Unweighted: each row's gradient is s_n (p - t'), which sums to 0 over classes."""
    x = make_logits(rng, (15, 23), dtype)
    t, _ = make_targets(rng, x.shape, -1, dtype, kind, "absent")
    _, g = fs.cross_entropy(x, t, reduction="sum", label_smoothing=0.1, return_grad=True)
    tolr = tol(dtype)["rel"]
    # each |g_j - g_ref_j| <= tol (|g_ref_j| + 1) and sum_j |g_ref_j| <= 2
    assert np.all(np.abs(g.astype(np.float64).sum(axis=1)) <= tolr * (2 + 23) + 23 * 4e-16)


# ----------------------------------------------------------------------------- ignore_index


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.4])
@pytest.mark.parametrize("weighted", [False, True])
def test_all_rows_ignored(rng, dtype, reduction, eps, weighted):
    x = make_logits(rng, (6, 9), dtype)
    t = np.full(6, -100)
    w = rng.uniform(0.5, 2.0, 9).astype(dtype) if weighted else None
    loss, grad = run_ce(x, t, weight=w, reduction=reduction, label_smoothing=eps)
    if reduction == "mean":
        assert np.isnan(loss)
    else:
        assert_exact_zero(loss, "loss")
    assert_exact_zero(grad, "grad of all-ignored batch")


@pytest.mark.parametrize("dtype", DTYPES)
def test_ignored_rows_have_exact_zero_loss_and_grad(rng, dtype):
    x = make_logits(rng, (10, 12), dtype)
    x[3] = -np.inf  # an ignored row of all -inf and one with NaN: still exactly 0
    x[5, 2] = np.nan
    x[7, 0] = np.inf
    t = rng.integers(0, 12, 10)
    t[[3, 5, 7, 8]] = 4
    loss, grad = run_ce(x, t, ignore_index=4, reduction="none", label_smoothing=0.3,
                        weight=rng.uniform(0.5, 2, 12).astype(dtype))
    assert_exact_zero(loss[[3, 5, 7, 8]], "loss of ignored rows")
    assert_exact_zero(grad[[3, 5, 7, 8]], "grad of ignored rows")
    assert np.isfinite(loss).all() and np.isfinite(grad).all()
    loss_m, grad_m = run_ce(x, t, ignore_index=4, label_smoothing=0.3)
    assert np.isfinite(loss_m) and np.isfinite(grad_m).all()


# ----------------------------------------------------------------------------- numerics


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("C", [1, 5, 8, 33, 1000])
def test_large_magnitudes_no_overflow(rng, dtype, kind, C):
    x = np.empty((6, C), dtype)
    x[0] = 1e4
    x[1] = -1e4
    x[2] = rng.uniform(-1e4, 1e4, C)
    x[3] = 1e4 + rng.uniform(-20, 20, C).round(2)
    x[4] = -1e4 + rng.uniform(-20, 20, C).round(2)
    x[5] = np.where(rng.random(C) < 0.5, 1e4, -1e4)
    t, _ = make_targets(rng, x.shape, -1, dtype, kind, "absent")
    for red in REDUCTIONS:
        loss, grad = run_ce(x, t, reduction=red, label_smoothing=0.1)
        assert np.all(np.isfinite(loss)) and np.isfinite(grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 0.25])
@pytest.mark.parametrize("C", [3, 8, 9, 40])
def test_masked_classes(rng, dtype, eps, C):
    N = 8
    x = make_logits(rng, (N, C), dtype)
    mask = rng.random((N, C)) < 0.4
    t = rng.integers(0, C, N)
    mask[np.arange(N), t] = False  # target never masked ...
    mask[0, :] = np.arange(C) != t[0]  # ... including a row with only the target unmasked
    x[mask] = -np.inf
    w = rng.uniform(0.5, 2.0, C).astype(dtype)
    for red in REDUCTIONS:
        loss, grad = run_ce(x, t, reduction=red, label_smoothing=eps)
        loss_w, grad_w = run_ce(x, t, reduction=red, label_smoothing=eps, weight=w)
        if eps == 0:
            assert np.all(np.isfinite(loss)) and np.all(np.isfinite(loss_w))
            assert_exact_zero(grad[mask], "grad at masked classes")  # p = 0 exactly, not the target
            assert_exact_zero(grad_w[mask], "grad at masked classes (weighted)")
        else:  # smoothing puts mass eps/C on every class: masked classes give inf
            assert np.all(np.isinf(loss)) if red != "none" else np.all(np.isinf(loss[mask.any(axis=1)]))
        assert np.isfinite(grad).all() and np.isfinite(grad_w).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_masked_target_gives_inf(rng, dtype):
    x = make_logits(rng, (4, 6), dtype)
    x[2, 3] = -np.inf
    t = np.array([0, 1, 3, 5])
    loss, grad = run_ce(x, t, reduction="none")
    assert loss[2] == np.inf and np.isfinite(loss[[0, 1, 3]]).all()
    assert np.isfinite(grad).all()
    loss, _ = run_ce(x, t, reduction="mean")
    assert loss == np.inf


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("C", [1, 4, 8, 17])
def test_special_rows_are_isolated(rng, dtype, kind, C):
    x = make_logits(rng, (7, C), dtype)
    x[1] = -np.inf  # all -inf: NaN
    x[3, C // 2] = np.nan  # NaN: only that row
    x[5, 0] = np.inf  # +inf: NaN
    t, _ = make_targets(rng, x.shape, -1, dtype, kind, "absent")
    loss, grad = run_ce(x, t, reduction="none", label_smoothing=0.1)
    bad, ok = [1, 3, 5], [0, 2, 4, 6]
    assert np.isnan(loss[bad]).all() and np.isfinite(loss[ok]).all()
    assert np.isnan(grad[bad]).all() and np.isfinite(grad[ok]).all()
    for red in ("mean", "sum"):
        loss, grad = run_ce(x, t, reduction=red)
        assert np.isnan(loss)
        assert np.isnan(grad[bad]).all() and np.isfinite(grad[ok]).all()


# ----------------------------------------------------------------------------- empty batch


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("shape,axis", [((0, 5), -1), ((5, 0), 0), ((0, 3, 4), 1), ((2, 4, 0), 1), ((2, 0, 3), 2)])
@pytest.mark.parametrize("return_grad", [False, True])
def test_empty_batch(rng, dtype, kind, shape, axis, return_grad):
    ax = axis % len(shape)
    batch = shape[:ax] + shape[ax + 1:]
    x = np.zeros(shape, dtype)
    t = np.zeros(shape, dtype) if kind == "prob" else np.zeros(batch, np.int64)
    w = np.ones(shape[ax], dtype)
    for red in REDUCTIONS:
        for weight in (None, w):
            res = fs.cross_entropy(x, t, axis=axis, reduction=red, return_grad=return_grad, weight=weight)
            loss, grad = res if return_grad else (res, None)
            if red == "mean":
                assert type(loss) is np.dtype(dtype).type and np.isnan(loss)
            elif red == "sum":
                assert type(loss) is np.dtype(dtype).type and loss == 0.0
            else:
                assert isinstance(loss, np.ndarray) and loss.shape == batch and loss.dtype == dtype
            if return_grad:
                assert grad.shape == shape and grad.dtype == dtype
            assert_value_close(loss, ref.cross_entropy(x, t, axis=axis, reduction=red, weight=weight), dtype)


# ----------------------------------------------------------------------------- more argument forms


@pytest.mark.parametrize("dtype", DTYPES)
def test_ignore_index_outside_class_range(rng, dtype):
    x = make_logits(rng, (8, 5), dtype)
    t = rng.integers(0, 5, 8)
    t[[1, 6]] = 1000  # equal to ignore_index: ignored, not out of range
    for red in REDUCTIONS:
        loss, grad = run_ce(x, t, ignore_index=1000, reduction=red, label_smoothing=0.1)
        assert_exact_zero(grad[[1, 6]], "grad of ignored rows")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("eps", [0.0, 0.3])
def test_unnormalized_and_signed_probmake_targets(rng, dtype, reduction, eps):
    """The formulas hold for any soft target (torch does not normalise): rows need not sum to 1."""
    x = make_logits(rng, (9, 21), dtype)
    t_pos = (rng.random((9, 21)) * 3).astype(dtype)  # row sums ~ 30
    t_sgn = rng.standard_normal((9, 21)).astype(dtype)  # negative entries too
    w = rng.uniform(0.5, 2.0, 21).astype(dtype)
    for t in (t_pos, t_sgn):
        run_ce(x, t, reduction=reduction, label_smoothing=eps)
        run_ce(x, t, reduction=reduction, label_smoothing=eps, weight=w)


def test_prob_targets_of_another_float_dtype(rng):
    x = make_logits(rng, (7, 13), np.float32)
    t64 = make_prob_target(rng, x.shape, -1, np.float64)
    for t in (t64, t64.astype(np.float16)):
        run_ce(x, t, label_smoothing=0.1)
    x64 = make_logits(rng, (7, 13), np.float64)
    run_ce(x64, t64.astype(np.float32), reduction="none")


@pytest.mark.parametrize("dtype", DTYPES)
def test_weight_forms(rng, dtype):
    x = make_logits(rng, (10, 4), dtype)
    t = rng.integers(0, 4, 10)
    run_ce(x, t, weight=[1.0, 2.0, 0.5, 1.5])  # list
    run_ce(x, t, weight=np.array([1, 2, 3, 1]))  # integer array
    run_ce(x, t, weight=np.array([0.5, 0.0, 2.0, 1.0], np.float64 if dtype == np.float32 else np.float32))
    run_ce(x, t, weight=np.array([1.0, 0.0, 2.0, 1.0], dtype), label_smoothing=0.2, reduction="none")
    run_ce(x, t, weight=np.arange(8.0, dtype=dtype)[::2])  # strided weight


@pytest.mark.parametrize("eps", [0, 1, np.float32(0.25), np.float64(0.5)])
def test_label_smoothing_number_types(rng, eps):
    x = make_logits(rng, (6, 7), np.float64)
    run_ce(x, rng.integers(0, 7, 6), label_smoothing=eps)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_aliasing_prob_target(rng, dtype):
    x = make_logits(rng, (8, 11), dtype)
    t = make_prob_target(rng, x.shape, -1, dtype)
    kw = dict(label_smoothing=0.1)
    loss_ref, grad_ref = ref.cross_entropy(x, t, return_grad=True, **kw)
    loss, grad = fs.cross_entropy(x, t, return_grad=True, out=t, **kw)
    assert grad is t
    assert_value_close(loss, loss_ref, dtype, "loss")
    assert_grad_close(t, grad_ref, dtype, grad_row_factor(x.shape, np.zeros_like(t), **kw))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("axis", [0, 1, 2, 3])
def test_4d_non_mergeable_layouts(rng, dtype, kind, axis):
    """4-D views whose batch dimensions cannot be merged into two strides."""
    base = make_logits(rng, (5, 6, 7, 8), dtype)
    x = base.transpose(2, 0, 3, 1)[::-1, :, ::2, 1:]  # shape (7, 5, 4, 5)
    ax = axis
    batch = x.shape[:ax] + x.shape[ax + 1:]
    if kind == "prob":
        t = make_prob_target(rng, x.shape, axis, dtype).transpose(1, 0, 2, 3).copy().transpose(1, 0, 2, 3)
    else:
        t = make_index_target(rng, batch, x.shape[ax], ignore_index=-100)
    for red in REDUCTIONS:
        run_ce(x, t, axis=axis, reduction=red, label_smoothing=0.1)
    out = np.zeros(x.shape, dtype)
    run_ce(x, t, axis=axis, out=out)
    # softmax family on the same layout, and out= with a non-mergeable layout too
    from conftest import assert_softmax_close

    assert_softmax_close(fs.softmax(x, axis), ref.softmax(x, axis), dtype)
    o = np.zeros((8, 5, 7, 5), dtype).transpose(2, 1, 0, 3)[:, :, ::2, :]
    assert o.shape == x.shape
    fs.log_softmax(x, axis, out=o)
    assert_value_close(o, ref.log_softmax(x, axis), dtype, "log_softmax out= 4-D")
    assert_value_close(fs.logsumexp(x, axis), ref.logsumexp(x, axis), dtype, "logsumexp 4-D")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_extreme_finite_logits(dtype, eps):
    big = {np.float32: 3e38, np.float64: 1e308}[dtype]
    x = np.array([[big, -big, 0, 1], [big, big, big, 0.0], [-big, -big, -big, -big], [big / 4, -big / 4, 0, 0],
                  [-big, 1.0, 2.0, -big]], dtype)
    t = np.array([1, 0, 2, 0, 2])
    for red in REDUCTIONS:
        loss, grad = run_ce(x, t, reduction=red, label_smoothing=eps)
        assert not np.isnan(grad).any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind,eps", [("prob", 0.0), ("prob", 0.1), ("index", 0.1), ("index", 0.5)])
@pytest.mark.parametrize("C", [2, 6, 40, 258])
def test_first_logit_far_below_the_max(rng, dtype, kind, eps, C):
    """An outlier first logit (magnitude <= 1e4) must not cost accuracy in the other terms.

    Targets put their mass near the row max, so the loss is small while |x_0 - max| is ~1e4.
    """
    N = 400
    x = (rng.standard_normal((N, C)) * rng.choice([1.0, 20.0], size=(N, 1))).astype(dtype)
    x[:, 0] = (-1e4 * rng.uniform(0.5, 1.0, N)).astype(dtype)
    top = np.argmax(x, axis=1)
    if kind == "prob":
        t = rng.dirichlet(np.ones(C) * 0.1, size=N)
        t[: N // 2] = 0.0
        t[np.arange(N // 2), top[: N // 2]] = 1.0  # one-hot on the max for half the rows
        t = t.astype(dtype)
    else:
        t = top
    for red in REDUCTIONS:
        run_ce(x, t, reduction=red, label_smoothing=eps)


def test_first_logit_far_below_the_max_minimal_float64():
    """Minimal case (2 classes, probability target, float64): torch gives 2.8047372487915337e-06."""
    x = np.array([[-8283.22811205336, -6.039460589918826]])
    t = np.array([[3.388514345744245e-10, 0.9999999996611486]])
    loss = fs.cross_entropy(x, t)
    assert_value_close(loss, ref.cross_entropy(x, t), np.float64, "loss")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [1e4, 1e5])
def test_first_block_far_below_the_max(rng, dtype, scale):
    """Rows longer than one 2048-class block whose first block lies far below the row max.

    Probability targets on the max keep the loss small, so any cancellation between
    terms of size |x - max| ~ scale shows up against the bar.
    """
    N, C = 64, 2050
    x = np.empty((N, C))
    x[:, :2048] = -scale * rng.uniform(0.82, 1.0, (N, 1)) + rng.standard_normal((N, 2048))
    x[:, 2048:] = rng.standard_normal((N, 2))
    x[0, :2048] = -scale
    x[0, 2048:] = [0.3, -0.4]
    x = x.astype(dtype)
    t = np.zeros((N, C), dtype)
    t[np.arange(N), np.argmax(x, axis=1)] = 1.0
    for red in REDUCTIONS:
        run_ce(x, t, reduction=red)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["sum", "none"])
def test_infinite_weight_of_an_untargeted_class_without_smoothing(dtype, reduction):
    """Without label smoothing only w[y] enters loss and gradient (torch: finite grad here)."""
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5]], dtype)
    t = np.array([0, 1])
    w = np.array([1.0, 1.0, np.inf], dtype)
    loss, grad = run_ce(x, t, weight=w, reduction=reduction)
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("eps", [0.0, 0.2])
def test_mean_with_zero_total_weight_is_nan(dtype, eps):
    """D = sum of w[y] = 0 with rows not ignored: torch gives a NaN mean and NaN gradients."""
    x = np.array([[0.5, -1.0, 2.0], [1.0, 0.0, -0.5], [0.1, 0.2, 0.3]], dtype)
    t = np.array([0, 0, -100])
    w = np.array([0.0, 1.0, 1.0], dtype)
    loss, grad = run_ce(x, t, weight=w, label_smoothing=eps)
    assert np.isnan(loss) and np.isnan(grad[:2]).all()
    assert_exact_zero(grad[2], "grad of the ignored row")


def _rows_sum(v):
    """The fixed order of the kernels' sum of per-row losses (src/rows.h): blocks of 1024
    rows, each as eight running sums (row i into sum i % 8) added in a fixed tree, the blocks'
    sums added in row order."""
    total = 0.0
    for b in range(0, len(v), 1024):
        s = [0.0] * 8
        for i, value in enumerate(v[b:b + 1024].tolist()):
            s[i % 8] += value
        total += ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]))
    return total


# (classes, rows): several blocks of 1024 rows and a partial one; rows of at most 256 classes
# are summed block by block from 16 blocks on (CE_BLOCK_SUM_MIN_ROWS), through a per-row
# array below that
@pytest.mark.parametrize("C,N", [(2, 5000), (2, 17361), (10, 5000), (10, 17361), (33, 17361), (100, 5000),
                                 (100, 17361), (256, 17361), (257, 5000), (3000, 700)])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_loss_sum_without_per_row_array(C, N, threads):
    """"mean" and "sum" take the kernels' sum without an array of per-row losses (block by
    block for short rows in long batches): the same bits as the fixed-order sum of the "none"
    losses, on any thread count, in place or not, with ignored rows, weights and label
    smoothing."""
    rng = np.random.default_rng(C)
    x = rng.standard_normal((N, C)) * 3
    t = make_index_target(rng, (N,), C, ignore_index=-100)
    w = rng.uniform(0.5, 2.0, C)
    with kernel_threads(threads, (1, 0)):
        for kw in (dict(), dict(weight=w), dict(label_smoothing=0.1)):
            rows = fs.cross_entropy(x, t, reduction="none", **kw)
            want = _rows_sum(rows)
            assert fs.cross_entropy(x, t, reduction="sum", **kw) == want
            g = x.copy()
            loss, g = fs.cross_entropy(g, t, reduction="sum", return_grad=True, out=g, **kw)
            assert loss == want
            if "weight" not in kw:
                assert fs.cross_entropy(x, t, **kw) == want / np.count_nonzero(t != -100)
    xf = x.astype(np.float32)
    sums = []
    for nt in (1, 2, 3):
        with kernel_threads(nt, (1, 0)):
            sums.append(fs.cross_entropy(xf, t, reduction="sum", return_grad=True)[0])
    assert sums[0] == sums[1] == sums[2]
