"""float16 inputs: softmax, log_softmax, logsumexp, sigmoid, cross_entropy, binary_cross_entropy_with_logits.

Bars (fastsoftmax.reference.TOLERANCES, float16: ulp = 1 and the float32 rel), against the
float64 reference computed from the same float16 values:
  * softmax / sigmoid outputs (float16): within 1 float16 ulp of the reference rounded to
    float16 (conftest.assert_f16_close); log_softmax / logsumexp: that, plus the float32
    value bar of the computation (rel * (1 + |ref|), which near 0 is coarser than a
    float16 ulp);
  * losses (float32): the float32 bars (assert_value_close with float32);
  * gradients (float16): |g - ref| <= 1 f16 ulp(round16(ref)) + rel * (|ref| + r).
Class weights, pos_weight, weight and probability targets are used in float32 for float16
logits, so the reference gets them rounded to float32.
"""

import numpy as np
import pytest

import fastsoftmax as fs
from fastsoftmax import reference as ref
from conftest import (
    misaligned,
    assert_f16_close,
    assert_f16_grad_close,
    assert_value_close,
    bce_grad_factor,
    make_index_target,
    make_logits,
    make_prob_target,
    zloss_row_factor,
)

# every test here runs on each instruction-set path with 1 and 2 threads (conftest.backend)
pytestmark = pytest.mark.usefixtures("backend")

F16 = np.float16
TAIL_CS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 127, 129, 1000, 2049, 5000]
REDUCTIONS = ["mean", "sum", "none"]


def f32(a):
    return None if a is None else np.asarray(a).astype(np.float32)


# ----------------------------------------------------------------------------- softmax family


def check_all(x, axis=-1):
    assert x.dtype == F16
    x_before = x.copy()
    x64 = x.astype(np.float64)
    p = fs.softmax(x, axis)
    lp = fs.log_softmax(x, axis)
    lse = fs.logsumexp(x, axis)
    for name, v in (("softmax", p), ("log_softmax", lp), ("logsumexp", lse)):
        assert isinstance(v, np.ndarray) and v.dtype == F16, (name, type(v), getattr(v, "dtype", None))
    ax = axis % x.ndim
    assert p.shape == x.shape and lp.shape == x.shape and lse.shape == x.shape[:ax] + x.shape[ax + 1:]
    assert_f16_close(p, ref.softmax(x64, axis), "softmax f16")
    assert_f16_close(lp, ref.log_softmax(x64, axis), "log_softmax f16", log_domain=True)
    assert_f16_close(lse, ref.logsumexp(x64, axis), "logsumexp f16", log_domain=True)
    np.testing.assert_array_equal(x, x_before, err_msg="input was modified")
    return p, lp, lse


@pytest.mark.parametrize("C", TAIL_CS)
def test_softmax_family_tails(rng, C):
    N = 3 if C < 1000 else 2
    check_all(make_logits(rng, (N, C), F16))
    check_all(make_logits(rng, (C,), F16, scale=8))


@pytest.mark.parametrize("N", [1, 2, 3, 5, 8, 17, 37])
def test_softmax_family_batch_sizes(rng, N):
    x = make_logits(rng, (N, 9), F16)
    check_all(x)
    check_all(x, 0)


@pytest.mark.parametrize("shape", [(3, 4, 5), (5, 17, 9), (2, 33, 1)])
@pytest.mark.parametrize("axis", [0, 1, 2, -1])
def test_softmax_family_3d(rng, shape, axis):
    check_all(make_logits(rng, shape, F16), axis)


def _f16_views(rng):
    base = make_logits(rng, (14, 40), F16)
    b3 = make_logits(rng, (6, 9, 22), F16)
    return {
        "sliced_cols": (base[:, ::3], -1),
        "transposed_first": (base.T, 0),
        "neg_strides": (base[::-1, ::-1], -1),
        "fortran": (np.asfortranarray(base), -1),
        "3d_sliced_mid": (b3[:, ::2, 1:], 1),
        "3d_transposed": (b3.transpose(2, 0, 1), -1),
        "3d_neg_last": (b3[::-1, :, ::-2], -1),
    }


@pytest.mark.parametrize("case", list(_f16_views(np.random.default_rng(0))))
def test_softmax_family_noncontiguous(rng, case):
    x, axis = _f16_views(rng)[case]
    check_all(x, axis)


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_family_out(rng, fn):
    x = make_logits(rng, (9, 37), F16)
    want = getattr(ref, fn)(x.astype(np.float64))
    out = np.full(x.shape, 123.0, F16)
    assert getattr(fs, fn)(x, out=out) is out
    assert_f16_close(out, want, f"{fn} out=", log_domain=fn != "softmax")
    big = np.zeros((9, 74), F16)
    o = big[:, ::-2]
    assert getattr(fs, fn)(x, out=o) is o
    assert_f16_close(o, want, f"{fn} strided out=", log_domain=fn != "softmax")
    assert np.all(big[:, ::2] == 0), "wrote outside out"
    y = x.copy()
    assert getattr(fs, fn)(y, out=y) is y
    assert_f16_close(y, want, f"{fn} in place", log_domain=fn != "softmax")
    y = x.T.copy()
    assert getattr(fs, fn)(y, 0, out=y) is y
    assert_f16_close(y, want.T, f"{fn} in place axis 0", log_domain=fn != "softmax")


@pytest.mark.parametrize("C", [1, 3, 8, 16, 37])
def test_softmax_family_special_rows(rng, C):
    x = make_logits(rng, (10, C), F16)
    x[1] = -np.inf
    x[3, C // 2] = np.nan
    x[5, C - 1] = np.inf
    x[6] = 65504.0  # largest float16
    x[7] = -65504.0
    x[8, ::2] = -65504.0  # log_softmax below the float16 range: -inf (the reference rounds to it too)
    x[9, ::2] = 60000.0
    x[9, 1::2] = -np.inf  # masked classes
    p, lp, lse = check_all(x)
    assert np.isnan(p[[1, 3, 5]]).all()
    assert np.isfinite(p[[0, 2, 4, 6, 7, 8, 9]]).all()


@pytest.mark.parametrize("C", [2, 9, 40, 1000])
def test_softmax_family_subnormal_probabilities(rng, C):
    """Probabilities below the smallest normal float16 (6.1e-5) must be rounded, not flushed."""
    x = np.zeros((4, C), F16)
    x[:, 1:] = -rng.uniform(9.0, 17.0, (4, C - 1)).astype(F16)  # p in [4e-8, 1.2e-4]
    check_all(x)


@pytest.mark.parametrize("x", [[0.0, -10.25, -10.25], [0.0] + [-16.625] * 14, [3.0, -7.25, -7.25, -7.25]])
def test_log_softmax_and_logsumexp_near_zero(x):
    """Rows dominated by one class: log_softmax of that class and logsumexp - max are tiny
    (|v| ~ 1e-6 .. 1e-4), where one float16 ulp is ~1e-10 .. 6e-8 -- below float32's
    resolution of log(sum) near 1 (6e-8), so log(sum) must not be rounded near 1."""
    check_all(np.array(x, F16))
    check_all(np.tile(np.array(x, F16), (5, 1)))


@pytest.mark.parametrize("C", [1, 7, 8, 33, 1000])
def test_softmax_family_large_magnitudes(rng, C):
    x = np.empty((4, C), F16)
    x[0] = 1e4
    x[1] = -1e4
    x[2] = rng.uniform(-6e4, 6e4, C)
    x[3] = np.where(rng.random(C) < 0.5, 6e4, -6e4)
    p, lp, lse = check_all(x)
    assert np.isfinite(p).all() and np.isfinite(lse).all()


def test_softmax_family_empty():
    for shape, axis in [((0, 5), -1), ((3, 0), -1), ((2, 0, 3), 1)]:
        x = np.zeros(shape, F16)
        for fn in ("softmax", "log_softmax"):
            r = getattr(fs, fn)(x, axis)
            assert r.shape == shape and r.dtype == F16
    lse = fs.logsumexp(np.zeros((3, 0), F16))
    assert lse.dtype == F16 and np.all(lse == -np.inf)


def test_softmax_family_out_wrong_dtype():
    x = np.zeros((3, 4), F16)
    for fn in ("softmax", "log_softmax"):
        for odt in (np.float32, np.float64):
            out = np.full((3, 4), 5.0, odt)
            with pytest.raises(TypeError):
                getattr(fs, fn)(x, out=out)
            assert np.all(out == 5.0)
        out = np.full((3, 4), 5.0, F16)
        with pytest.raises(TypeError):
            getattr(fs, fn)(np.zeros((3, 4), np.float32), out=out)
        assert np.all(out == 5.0)


# ----------------------------------------------------------------------------- sigmoid


@pytest.mark.parametrize("n", TAIL_CS)
def test_sigmoid_tails(rng, n):
    x = make_logits(rng, (n,), F16, scale=8)
    s = fs.sigmoid(x)
    assert s.dtype == F16 and s.shape == x.shape
    assert_f16_close(s, ref.sigmoid(x), "sigmoid f16")
    x2 = make_logits(rng, (3, n), F16, scale=8)[:, ::-1]
    assert_f16_close(fs.sigmoid(x2), ref.sigmoid(x2), "sigmoid f16 2-D reversed")


def test_sigmoid_special_values_and_out(rng):
    x = np.array([0.0, 1e4, -1e4, 65504, -65504, 17.0, -17.0, 11.0, -11.0, -16.6, -24.0, 6e-8, -6e-8,
                  np.inf, -np.inf, np.nan], F16)
    s = fs.sigmoid(x)
    assert_f16_close(s, ref.sigmoid(x), "sigmoid f16 specials")
    assert s[0] == 0.5 and s[13] == 1.0 and s[14] == 0.0 and np.isnan(s[15])
    for n in (2, 9, 33):
        xx = np.tile(x, n)[:-1]
        assert_f16_close(fs.sigmoid(xx), ref.sigmoid(xx), "sigmoid f16 specials tiled")
    # out= and in place, 0-d
    out = np.full(x.shape, 3.0, F16)
    assert fs.sigmoid(x, out=out) is out
    assert_f16_close(out, ref.sigmoid(x), "sigmoid f16 out=")
    y = x.copy()
    assert fs.sigmoid(y, out=y) is y
    assert_f16_close(y, ref.sigmoid(x), "sigmoid f16 in place")
    z = fs.sigmoid(np.array(2.0, F16))
    assert np.asarray(z).dtype == F16 and np.asarray(z).shape == ()
    assert_f16_close(np.asarray(z), ref.sigmoid(np.array(2.0, F16)), "sigmoid f16 0-d")
    with pytest.raises(TypeError):
        fs.sigmoid(x, out=np.zeros(x.shape, np.float32))


def test_sigmoid_symmetry(rng):
    x = make_logits(rng, (1000,), F16, scale=6)
    s_pos = fs.sigmoid(x).astype(np.float64)
    s_neg = fs.sigmoid(-x).astype(np.float64)
    from conftest import f16_ulp

    bound = f16_ulp(ref.sigmoid(x)) + f16_ulp(ref.sigmoid(-x))
    assert np.all(np.abs(s_neg - (1.0 - s_pos)) <= bound)


# ----------------------------------------------------------------------------- cross_entropy


def run_ce16(x, t, *, return_grad=True, out=None, z_loss=0.0, **kw):
    """fs.cross_entropy on float16 logits vs the reference on the same values (float32 weights / soft targets)."""
    assert x.dtype == F16
    reduction = kw.get("reduction", "mean")
    x_before = x.copy()
    t_ref = t.astype(np.float32) if t.dtype.kind == "f" else t
    kw_ref = dict(kw, weight=f32(kw.get("weight")))
    want = ref.cross_entropy(x.astype(np.float64), t_ref, return_grad=return_grad, z_loss=z_loss, **kw_ref)
    extra = {} if z_loss == 0.0 else {"z_loss": z_loss}
    if out is not None:
        got = fs.cross_entropy(x, t, return_grad=return_grad, out=out, **extra, **kw)
    else:
        got = fs.cross_entropy(x, t, return_grad=return_grad, **extra, **kw)
        np.testing.assert_array_equal(x, x_before, err_msg="logits were modified")
    loss, grad = got if return_grad else (got, None)
    loss_ref, grad_ref = want if return_grad else (want, None)
    ax = kw.get("axis", -1) % x.ndim
    batch = x.shape[:ax] + x.shape[ax + 1:]
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.dtype == np.float32 and loss.shape == batch
    else:
        assert type(loss) is np.float32, f"loss type {type(loss)}, expected numpy.float32"
    assert_value_close(loss, loss_ref, np.float32, f"f16 cross_entropy loss ({reduction})")
    if return_grad:
        assert isinstance(grad, np.ndarray) and grad.dtype == F16 and grad.shape == x.shape
        if out is not None:
            assert grad is out
        r = zloss_row_factor(x_before, t, z_loss=z_loss, **kw_ref)
        assert_f16_grad_close(grad, grad_ref, r, "f16 cross_entropy grad")
    return loss, grad


def _targets(rng, shape, axis, kind, tdtype=np.float32, ignore_index=-100):
    ax = axis % len(shape)
    if kind == "prob":
        return make_prob_target(rng, shape, axis, tdtype)
    batch = shape[:ax] + shape[ax + 1:]
    return make_index_target(rng, batch, shape[ax], ignore_index=ignore_index)


@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("weighted,eps,z", [(False, 0.0, 0.0), (True, 0.0, 0.0), (True, 0.2, 0.0),
                                            (False, 0.1, 0.1), (True, 0.3, 1e-3)])
def test_cross_entropy_options(rng, kind, reduction, weighted, eps, z):
    x = make_logits(rng, (13, 37), F16)
    t = _targets(rng, x.shape, -1, kind)
    w = rng.uniform(0.5, 2.0, 37) if weighted else None
    run_ce16(x, t, weight=w, reduction=reduction, label_smoothing=eps, z_loss=z, return_grad=False)
    run_ce16(x, t, weight=w, reduction=reduction, label_smoothing=eps, z_loss=z)


@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("C", TAIL_CS)
def test_cross_entropy_tails(rng, kind, C):
    N = 4 if C < 1000 else 2
    x = make_logits(rng, (N, C), F16)
    t = _targets(rng, x.shape, -1, kind)
    run_ce16(x, t, weight=rng.uniform(0.5, 2.0, C).astype(F16), label_smoothing=0.1)
    run_ce16(x, t, reduction="none", z_loss=0.01)


@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("shape,axis", [((4, 6, 5), 0), ((4, 6, 5), 1), ((4, 6, 5), 2), ((11,), 0)])
def test_cross_entropy_axes(rng, kind, shape, axis):
    x = make_logits(rng, shape, F16)
    t = _targets(rng, shape, axis, kind)
    for red in REDUCTIONS:
        run_ce16(x, t, axis=axis, reduction=red, label_smoothing=0.1)


@pytest.mark.parametrize("kind", ["index", "prob"])
@pytest.mark.parametrize("tdtype", [np.float16, np.float32, np.float64])
def test_cross_entropy_prob_target_dtypes(rng, kind, tdtype):
    x = make_logits(rng, (7, 13), F16)
    t = _targets(rng, x.shape, -1, "prob", tdtype) if kind == "prob" else _targets(rng, x.shape, -1, kind)
    run_ce16(x, t, weight=rng.uniform(0.5, 2.0, 13), label_smoothing=0.1)


@pytest.mark.parametrize("kind", ["index", "prob"])
def test_cross_entropy_noncontiguous_and_out(rng, kind):
    b = make_logits(rng, (16, 42), F16)
    for x, axis in ((b[1::2, ::3], -1), (b.T, 0), (b[::-1, ::-2], -1)):
        t = _targets(rng, x.shape, axis, kind)
        run_ce16(x, t, axis=axis, label_smoothing=0.1)
        run_ce16(x, t, axis=axis, out=np.full(x.shape, 7.0, F16), z_loss=0.1)
    x = make_logits(rng, (9, 37), F16)
    t = _targets(rng, x.shape, -1, kind)
    w = rng.uniform(0.5, 2.0, 37)
    t_ref = t.astype(np.float32) if kind == "prob" else t
    loss_ref, grad_ref = ref.cross_entropy(x.astype(np.float64), t_ref, weight=f32(w), return_grad=True)
    r = zloss_row_factor(x, t, weight=f32(w))
    loss, grad = fs.cross_entropy(x, t, weight=w, return_grad=True, out=x)
    assert grad is x and type(loss) is np.float32
    assert_value_close(loss, loss_ref, np.float32, "in-place loss")
    assert_f16_grad_close(x, grad_ref, r, "in-place grad")


@pytest.mark.parametrize("kind", ["index", "prob"])
def test_cross_entropy_special_rows(rng, kind):
    x = make_logits(rng, (9, 8), F16)
    x[1] = -np.inf
    x[3, 2] = np.nan
    x[5, 0] = np.inf
    x[6] = 65504.0
    x[7, ::2] = -65504.0
    x[8] = rng.uniform(-6e4, 6e4, 8).astype(F16)
    t = _targets(rng, x.shape, -1, kind, ignore_index=None)  # no ignored rows
    for red in REDUCTIONS:
        run_ce16(x, t, reduction=red, label_smoothing=0.1)
    loss, grad = run_ce16(x, t, reduction="none")
    assert np.isnan(loss[[1, 3, 5]]).all() and np.isfinite(loss[[0, 2, 4, 6, 7, 8]]).all()
    assert np.isfinite(grad[[0, 2, 4, 6, 7, 8]]).all()


def test_cross_entropy_masked_and_ignored(rng):
    x = make_logits(rng, (8, 9), F16)
    x[:, 3] = -np.inf
    t = rng.integers(0, 9, 8)
    t[t == 3] = 4
    t[[0, 5]] = -100
    for red in REDUCTIONS:
        loss, grad = run_ce16(x, t, reduction=red, z_loss=0.05)
        assert np.all(grad[:, 3] == 0) and np.all(grad[[0, 5]] == 0)


@pytest.mark.parametrize("kind", ["index", "prob"])
def test_cross_entropy_empty(kind):
    x = np.zeros((0, 5), F16)
    t = np.zeros((0, 5), np.float32) if kind == "prob" else np.zeros(0, np.int64)
    for red in REDUCTIONS:
        loss, grad = fs.cross_entropy(x, t, reduction=red, return_grad=True)
        assert grad.dtype == F16 and grad.shape == (0, 5)
        if red == "none":
            assert loss.dtype == np.float32 and loss.shape == (0,)
        else:
            assert type(loss) is np.float32
            assert np.isnan(loss) if red == "mean" else loss == 0


def test_cross_entropy_out_must_be_float16(rng):
    x = make_logits(rng, (4, 5), F16)
    for odt in (np.float32, np.float64):
        out = np.full((4, 5), 3.0, odt)
        snap = x.copy()
        with pytest.raises(TypeError):
            fs.cross_entropy(x, np.array([0, 1, 2, 3]), return_grad=True, out=out)
        assert np.all(out == 3.0)
        np.testing.assert_array_equal(x, snap)


# ----------------------------------------------------------------------------- binary cross-entropy


def run_bce16(x, t, *, return_grad=True, out=None, **kw):
    """fs BCE on float16 logits vs the reference (which applies the documented float32 casts itself)."""
    assert x.dtype == F16
    reduction = kw.get("reduction", "mean")
    x_before = x.copy()
    want = ref.binary_cross_entropy_with_logits(x, t, return_grad=return_grad, **kw)
    if out is not None:
        got = fs.binary_cross_entropy_with_logits(x, t, return_grad=return_grad, out=out, **kw)
    else:
        got = fs.binary_cross_entropy_with_logits(x, t, return_grad=return_grad, **kw)
        np.testing.assert_array_equal(x, x_before, err_msg="logits were modified")
    loss, grad = got if return_grad else (got, None)
    loss_ref, grad_ref = want if return_grad else (want, None)
    if reduction == "none":
        assert isinstance(loss, np.ndarray) and loss.dtype == np.float32 and loss.shape == x.shape
    else:
        assert type(loss) is np.float32, f"loss type {type(loss)}, expected numpy.float32"
    assert_value_close(loss, loss_ref, np.float32, f"f16 BCE loss ({reduction})")
    if return_grad:
        assert isinstance(grad, np.ndarray) and grad.dtype == F16 and grad.shape == x.shape
        if out is not None:
            assert grad is out
        r = bce_grad_factor(x.shape, kw.get("weight"), kw.get("pos_weight"), reduction)
        assert_f16_grad_close(grad, grad_ref, r, "f16 BCE grad")
    return loss, grad


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("wform", [None, "scalar", "row", "class", "full"])
@pytest.mark.parametrize("pw", [False, True])
def test_bce_options(rng, reduction, wform, pw):
    shape = (13, 37)
    x = make_logits(rng, shape, F16)
    t = rng.random(shape).astype(np.float32)
    wsh = {None: None, "scalar": (), "row": (13, 1), "class": (37,), "full": shape}[wform]
    w = None if wsh is None else rng.uniform(0.5, 2.0, wsh)
    pwv = rng.uniform(0.3, 3.0, 37) if pw else None
    run_bce16(x, t, weight=w, pos_weight=pwv, reduction=reduction, return_grad=False)
    run_bce16(x, t, weight=w, pos_weight=pwv, reduction=reduction)


@pytest.mark.parametrize("C", TAIL_CS)
def test_bce_tails(rng, C):
    N = 3 if C < 1000 else 2
    x = make_logits(rng, (N, C), F16)
    t = rng.integers(0, 2, x.shape).astype(F16)
    run_bce16(x, t, pos_weight=rng.uniform(0.3, 3.0, C).astype(F16))
    run_bce16(x[0], t[0], reduction="none")


@pytest.mark.parametrize("tdtype", [np.float16, np.float32, np.float64, np.bool_, np.int64])
def test_bce_target_dtypes(rng, tdtype):
    x = make_logits(rng, (6, 11), F16)
    t = rng.random(x.shape) if np.dtype(tdtype).kind == "f" else rng.integers(0, 2, x.shape)
    for red in REDUCTIONS:
        run_bce16(x, t.astype(tdtype), reduction=red)


def test_bce_noncontiguous_out_and_in_place(rng):
    b = make_logits(rng, (16, 42), F16)
    for x in (b[1::2, ::3], b.T, b[::-1, ::-2]):
        t = rng.random(x.shape).astype(np.float32)
        run_bce16(x, t, pos_weight=rng.uniform(0.3, 3.0, x.shape[-1]))
        run_bce16(x, t, out=np.full(x.shape, 7.0, F16), reduction="sum")
    x = make_logits(rng, (9, 37), F16)
    t = rng.random(x.shape)
    w = rng.uniform(0.5, 2.0, (9, 1))
    loss_ref, grad_ref = ref.binary_cross_entropy_with_logits(x, t, weight=w, return_grad=True)
    loss, grad = fs.binary_cross_entropy_with_logits(x, t, weight=w, return_grad=True, out=x)
    assert grad is x and type(loss) is np.float32
    assert_value_close(loss, loss_ref, np.float32, "in-place loss")
    assert_f16_grad_close(x, grad_ref, bce_grad_factor(x.shape, w, None, "mean"), "in-place grad")


def test_bce_special_values(rng):
    xs = np.array([0.0, 1e4, -1e4, 65504, -65504, 17.0, -17.0, np.inf, -np.inf, np.nan], F16)
    ts = np.array([0.0, 1.0, 0.5, 0.25], np.float32)
    x = np.repeat(xs[:, None], 4, axis=1)
    t = np.broadcast_to(ts, x.shape).copy()
    for red in REDUCTIONS:
        run_bce16(x, t, reduction=red)
        run_bce16(x, t, reduction=red, pos_weight=np.array([0.5, 2.0, 1.0, 3.0]))
    fin = np.isfinite(xs)
    loss, grad = run_bce16(x[fin], t[fin], reduction="none")
    assert np.isfinite(loss).all() and np.isfinite(grad).all()


def test_bce_empty_and_out_dtype():
    x = np.zeros((0, 4), F16)
    loss, grad = fs.binary_cross_entropy_with_logits(x, np.zeros((0, 4), F16), return_grad=True)
    assert type(loss) is np.float32 and np.isnan(loss) and grad.dtype == F16 and grad.shape == (0, 4)
    x = np.zeros((3, 4), F16)
    for odt in (np.float32, np.float64):
        out = np.full((3, 4), 3.0, odt)
        with pytest.raises(TypeError):
            fs.binary_cross_entropy_with_logits(x, np.zeros((3, 4)), return_grad=True, out=out)
        assert np.all(out == 3.0)


# ----------------------------------------------------------------------------- backward: float32/float64 only


@pytest.mark.parametrize("fn", ["softmax_backward", "log_softmax_backward"])
def test_backward_rejects_float16(fn):
    a = np.full((3, 4), 0.25, F16)
    with pytest.raises(TypeError):
        getattr(fs, fn)(a, a.copy())


# ----------------------------------------------------------------------------- misaligned float16 arrays


def test_misaligned_float16(rng):
    x = make_logits(rng, (7, 37), F16)
    xm = misaligned(x)
    check_all(xm)
    check_all(xm, 0)
    out = misaligned(np.full(x.shape, 3.0, F16))
    fs.softmax(xm, out=out)
    assert_f16_close(out, ref.softmax(x.astype(np.float64)), "misaligned softmax out=")
    assert_f16_close(fs.sigmoid(xm), ref.sigmoid(x), "misaligned sigmoid")
    t = rng.integers(0, 37, 7)
    run_ce16(xm, t, label_smoothing=0.1, z_loss=0.01)
    run_ce16(xm, misaligned(make_prob_target(rng, x.shape, -1, np.float32)), reduction="none")
    run_bce16(xm, misaligned(rng.random(x.shape).astype(np.float32)),
              pos_weight=misaligned(rng.uniform(0.3, 3.0, 37).astype(np.float32)))


@pytest.mark.parametrize("shape", [(1, 2 ** 17), (3, 2 ** 15 + 3), (2049, 3)])
def test_long_rows_and_many_rows(rng, shape):
    """Rows longer than the float32 conversion blocks, and many short rows (threads split them)."""
    x = make_logits(rng, shape, F16)
    check_all(x)
    t = rng.integers(0, shape[1], shape[0])
    run_ce16(x, t, label_smoothing=0.1, z_loss=1e-3)
    run_bce16(x, rng.random(shape).astype(np.float32), reduction="sum")
    assert_f16_close(fs.sigmoid(x), ref.sigmoid(x), "sigmoid long")


def test_conversions_exact(isa):
    """The float16 <-> float32 conversions of the kernels (F16C or the portable code, per path):
    every float16 value round-trips exactly through a one-class logsumexp (lse(x) = x + log 1),
    and float32 results are rounded to nearest even exactly as NumPy rounds them."""
    h = np.arange(1 << 16, dtype=np.uint16).view(F16)
    for hh in (h, h[::-3]):  # contiguous, and strided backwards
        y = fs.logsumexp(hh.reshape(-1, 1), axis=1)
        same = (y.view(np.uint16) == hh.view(np.uint16)) | (np.isnan(hh) & np.isnan(y))
        same |= (hh == 0) & (y == 0)  # -0 + log(1) = +0 in float32 already
        assert same.all(), hh[~same][:5]
    rng = np.random.default_rng(7)
    x = (rng.standard_normal(1 << 18) * 10.0 ** rng.integers(-6, 2, 1 << 18)).astype(F16)
    x[:6] = [0, -0.0, np.inf, -np.inf, np.nan, 6e-8]
    want = fs.sigmoid(x.astype(np.float32)).astype(F16)  # the float32 kernel, rounded by NumPy
    got = fs.sigmoid(x)
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan)
    assert np.array_equal(got[~nan].view(np.uint16), want[~nan].view(np.uint16))
