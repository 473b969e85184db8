"""Optional: sigmoid, BCE, softmax/log_softmax backward, z-loss and float16 against PyTorch.

Torch runs in float64 on the float64-upcast input values (a second, independent float64
oracle): reference vs torch agree to 1e-13 * (1 + |v|) with identical NaN / inf
positions; fastsoftmax vs torch meets the accuracy bars of
fastsoftmax.reference.TOLERANCES.
"""

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional
torch.set_num_threads(1)  # tiny tensors: avoid thread-pool overhead (and contention with fastsoftmax's threads)

import fastsoftmax as fs  # noqa: E402
from fastsoftmax import reference as ref  # noqa: E402
from conftest import (  # noqa: E402
    DTYPES,
    assert_f16_close,
    assert_f16_grad_close,
    assert_grad_close,
    assert_log_softmax_backward_close,
    assert_softmax_backward_close,
    assert_softmax_close,
    assert_value_close,
    bce_grad_factor,
    make_index_target,
    make_prob_target,
    zloss_row_factor,
)

F16 = np.float16
REDUCTIONS = ["mean", "sum", "none"]


def assert_f64_agree(a, b, what):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (what, a.shape, b.shape)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b), err_msg=f"{what}: NaN positions")
    np.testing.assert_array_equal(a == np.inf, b == np.inf, err_msg=f"{what}: +inf positions")
    np.testing.assert_array_equal(a == -np.inf, b == -np.inf, err_msg=f"{what}: -inf positions")
    fin = np.isfinite(b)
    err = np.abs(a[fin] - b[fin])
    assert np.all(err <= 1e-13 * (1 + np.abs(b[fin]))), f"{what}: max err {err.max() if err.size else 0}"


def _t(a):
    return None if a is None else torch.from_numpy(np.array(a, dtype=np.float64))


def torch_bce(x, t, weight, pos_weight, reduction):
    """torch BCE-with-logits in float64 on the given values; (loss, grad of loss.sum())."""
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64).copy()).requires_grad_(True)
    loss = F.binary_cross_entropy_with_logits(xt, _t(t), weight=_t(weight), pos_weight=_t(pos_weight),
                                              reduction=reduction)
    loss.sum().backward()
    return loss.detach().numpy(), xt.grad.numpy()


# ----------------------------------------------------------------------------- BCE


def _weight(rng, form, shape):
    if form is None:
        return None
    if form == "scalar":
        return np.array(rng.uniform(0.5, 2.0))
    if form == "row":
        return rng.uniform(0.5, 2.0, shape[:-1] + (1,))
    if form == "class":
        return rng.uniform(0.5, 2.0, shape[-1:])
    return rng.uniform(0.5, 2.0, shape)


BCE_GRID = list(itertools.product(REDUCTIONS, [None, "scalar", "row", "class", "full"], [None, "scalar", "class"]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(9, 6), (3, 5, 4), (7,)])
@pytest.mark.parametrize("reduction,wform,pwform", BCE_GRID)
def test_bce_vs_torch(rng, dtype, shape, reduction, wform, pwform):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    t = rng.random(shape).astype(dtype)
    w = _weight(rng, wform, shape)
    pw = None if pwform is None else (np.array(rng.uniform(0.3, 3.0)) if pwform == "scalar"
                                      else rng.uniform(0.3, 3.0, shape[-1]))
    if w is not None:
        w = w.astype(dtype)
    if pw is not None:
        pw = pw.astype(dtype)
    want_loss, want_grad = torch_bce(x, t, w, pw, reduction)
    kw = dict(weight=w, pos_weight=pw, reduction=reduction)
    rl, rg = ref.binary_cross_entropy_with_logits(x, t, return_grad=True, **kw)
    assert_f64_agree(rl, want_loss, "ref loss")
    assert_f64_agree(rg, want_grad, "ref grad")
    loss, grad = fs.binary_cross_entropy_with_logits(x, t, return_grad=True, **kw)
    assert_value_close(loss, want_loss, dtype, "loss")
    assert_grad_close(grad, want_grad, dtype, bce_grad_factor(shape, w, pw, reduction))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("with_pw", [False, True])
def test_bce_special_values_vs_torch(dtype, reduction, with_pw):
    xs = np.array([0.0, 1e4, -1e4, 88.0, -88.0, 745.0, -745.0, 40.0, -40.0, np.inf, -np.inf, np.nan], dtype)
    ts = np.array([0.0, 1.0, 0.5, 0.2], dtype)
    x = np.repeat(xs[:, None], 4, axis=1)
    t = np.broadcast_to(ts, x.shape).copy()
    pw = np.array([0.5, 2.0, 1.0, 3.0], dtype) if with_pw else None
    want_loss, want_grad = torch_bce(x, t, None, pw, reduction)
    rl, rg = ref.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction=reduction, return_grad=True)
    assert_f64_agree(rl, want_loss, "ref loss")
    assert_f64_agree(rg, want_grad, "ref grad")
    loss, grad = fs.binary_cross_entropy_with_logits(x, t, pos_weight=pw, reduction=reduction, return_grad=True)
    assert_value_close(loss, want_loss, dtype, "loss")
    assert_grad_close(grad, want_grad, dtype, bce_grad_factor(x.shape, None, pw, reduction))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_empty_vs_torch(reduction):
    x = np.zeros((0, 3))
    with torch.no_grad():
        want = F.binary_cross_entropy_with_logits(torch.zeros(0, 3, dtype=torch.float64),
                                                  torch.zeros(0, 3, dtype=torch.float64), reduction=reduction)
    for impl in (ref, fs):
        assert_f64_agree(impl.binary_cross_entropy_with_logits(x, x, reduction=reduction), want.numpy(),
                         f"{impl.__name__} empty")


@pytest.mark.parametrize("dtype", DTYPES)
def test_sigmoid_vs_torch(rng, dtype):
    x = np.concatenate([rng.standard_normal(200) * 10,
                        [0.0, 1e4, -1e4, 88.0, -88.0, 700.0, -700.0, 36.0, -36.0, np.inf, -np.inf, np.nan]])
    x = x.astype(dtype)
    want = torch.sigmoid(torch.from_numpy(x.astype(np.float64))).numpy()
    # torch flushes sigmoid(-745) ... to 0 differently from a correctly rounded float64; agree loosely there
    r = ref.sigmoid(x)
    np.testing.assert_array_equal(np.isnan(r), np.isnan(want))
    fin = np.isfinite(want)
    assert np.all(np.abs(r[fin] - want[fin]) <= 1e-15 * want[fin] + 1e-300)
    assert_softmax_close(fs.sigmoid(x), want, dtype, "sigmoid vs torch")


# ----------------------------------------------------------------------------- softmax / log_softmax backward


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((7, 33), -1), ((3, 4, 5), 0), ((3, 4, 5), 1), ((2, 2049), -1),
                                        ((9,), 0)])
@pytest.mark.parametrize("log", [False, True])
def test_backward_vs_torch_autograd(rng, dtype, shape, axis, log):
    x = rng.standard_normal(shape) * 4
    g = rng.standard_normal(shape)
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    y = torch.log_softmax(xt, axis) if log else torch.softmax(xt, axis)
    y.backward(torch.from_numpy(g))
    y_np = y.detach().numpy()
    fn = "log_softmax_backward" if log else "softmax_backward"
    # float64 reference from torch's forward output == torch autograd
    assert_f64_agree(getattr(ref, fn)(y_np, g, axis), xt.grad.numpy(), f"ref {fn} vs autograd")
    # fs on the same (rounded) values vs torch's backward op on those values
    yd, gd = y_np.astype(dtype), g.astype(dtype)
    op = torch.ops.aten._log_softmax_backward_data if log else torch.ops.aten._softmax_backward_data
    want = op(torch.from_numpy(gd.astype(np.float64)), torch.from_numpy(yd.astype(np.float64)), axis % x.ndim,
              torch.float64).numpy()
    got = getattr(fs, fn)(yd, gd, axis)
    check = assert_log_softmax_backward_close if log else assert_softmax_backward_close
    check(got, want, yd, gd, dtype, axis, f"fs {fn} vs torch")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log", [False, True])
def test_backward_special_values_vs_torch(rng, dtype, log):
    x = rng.standard_normal((6, 7)) * 2
    x[1, 2] = -np.inf  # masked class
    g = rng.standard_normal((6, 7))
    g[2, 3] = np.nan
    g[3, 1] = np.inf
    x[4, 0] = np.nan
    fwd = ref.log_softmax(x) if log else ref.softmax(x)
    yd, gd = fwd.astype(dtype), g.astype(dtype)
    op = torch.ops.aten._log_softmax_backward_data if log else torch.ops.aten._softmax_backward_data
    want = op(torch.from_numpy(gd.astype(np.float64)), torch.from_numpy(yd.astype(np.float64)), 1,
              torch.float64).numpy()
    fn = "log_softmax_backward" if log else "softmax_backward"
    assert_f64_agree(getattr(ref, fn)(yd, gd), want, f"ref {fn}")
    check = assert_log_softmax_backward_close if log else assert_softmax_backward_close
    check(getattr(fs, fn)(yd, gd), want, yd, gd, dtype, -1, f"fs {fn}")


# ----------------------------------------------------------------------------- z-loss


def torch_ce_z(x, t, axis, weight, ignore_index, reduction, eps, z):
    """torch: cross_entropy + z * w_row * logsumexp^2 per row, reduced with the cross_entropy divisor."""
    xt = torch.from_numpy(np.asarray(x, dtype=np.float64).copy()).requires_grad_(True)
    ax = axis % x.ndim
    xx = torch.movedim(xt, ax, -1)  # (..., C)
    C = xx.shape[-1]
    wt = torch.ones(C, dtype=torch.float64) if weight is None else _t(weight)
    if t.dtype.kind == "f":
        tt = torch.movedim(_t(t), ax, -1)
        ce = F.cross_entropy(xx.reshape(-1, C), tt.reshape(-1, C), weight=None if weight is None else wt,
                             reduction="none", label_smoothing=eps).reshape(xx.shape[:-1])
        w_row = torch.ones(xx.shape[:-1], dtype=torch.float64)
        denom = float(np.prod(xx.shape[:-1]))
    else:
        tt = torch.from_numpy(t.astype(np.int64))
        ce = F.cross_entropy(xx.reshape(-1, C), tt.reshape(-1), weight=None if weight is None else wt,
                             ignore_index=ignore_index, reduction="none", label_smoothing=eps).reshape(tt.shape)
        active = tt != ignore_index
        w_row = torch.where(active, wt[torch.where(active, tt, 0)], torch.zeros((), dtype=torch.float64))
        denom = float(w_row.sum())
    lse = torch.logsumexp(xx, -1)
    rows = ce + z * w_row * lse ** 2
    loss = rows.sum() / denom if reduction == "mean" else (rows.sum() if reduction == "sum" else rows)
    loss.sum().backward()
    return loss.detach().numpy(), xt.grad.numpy()


Z_GRID = list(itertools.product([False, True], [0.0, 0.2], REDUCTIONS, ["index", "prob"], [1e-3, 0.5]))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape,axis", [((9, 6), -1), ((3, 5, 4), 1), ((6, 9), 0)])
@pytest.mark.parametrize("weighted,eps,reduction,kind,z", Z_GRID)
def test_z_loss_vs_torch(rng, dtype, shape, axis, weighted, eps, reduction, kind, z):
    ax = axis % len(shape)
    C = shape[ax]
    batch = shape[:ax] + shape[ax + 1:]
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    w = rng.uniform(0.5, 2.0, C).astype(dtype) if weighted else None
    t = make_prob_target(rng, shape, axis, dtype) if kind == "prob" else make_index_target(rng, batch, C,
                                                                                           ignore_index=-100)
    want_loss, want_grad = torch_ce_z(x, t, axis, w, -100, reduction, eps, z)
    kw = dict(axis=axis, weight=w, reduction=reduction, label_smoothing=eps, z_loss=z)
    rl, rg = ref.cross_entropy(x, t, return_grad=True, **kw)
    assert_f64_agree(rl, want_loss, "ref loss")
    assert_f64_agree(rg, want_grad, "ref grad")
    loss, grad = fs.cross_entropy(x, t, return_grad=True, **kw)
    assert_value_close(loss, want_loss, dtype, "loss")
    assert_grad_close(grad, want_grad, dtype, zloss_row_factor(x, t, **kw))


# ----------------------------------------------------------------------------- float16


@pytest.mark.parametrize("axis", [0, -1])
def test_float16_softmax_family_vs_torch(rng, axis):
    x = (rng.standard_normal((9, 37)) * 4).astype(F16)
    x[2, 3] = np.inf
    x[4] = -np.inf
    x[5, 5] = np.nan
    x[6] = 65504
    xt = torch.from_numpy(x.astype(np.float64))
    assert_f16_close(fs.softmax(x, axis), torch.softmax(xt, axis).numpy(), "softmax")
    assert_f16_close(fs.log_softmax(x, axis), torch.log_softmax(xt, axis).numpy(), "log_softmax")
    assert_f16_close(fs.logsumexp(x, axis), torch.logsumexp(xt, axis).numpy(), "logsumexp")
    assert_f16_close(fs.sigmoid(x), torch.sigmoid(xt).numpy(), "sigmoid")


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("kind", ["index", "prob"])
def test_float16_cross_entropy_vs_torch(rng, reduction, kind):
    x = (rng.standard_normal((11, 13)) * 3).astype(F16)
    w = rng.uniform(0.5, 2.0, 13).astype(np.float32)
    t = make_prob_target(rng, x.shape, -1, np.float32) if kind == "prob" else make_index_target(
        rng, (11,), 13, ignore_index=-100)
    want_loss, want_grad = torch_ce_z(x, t, -1, w, -100, reduction, 0.1, 0.01)
    loss, grad = fs.cross_entropy(x, t, weight=w, reduction=reduction, label_smoothing=0.1, z_loss=0.01,
                                  return_grad=True)
    assert_value_close(loss, want_loss, np.float32, "f16 loss")
    r = zloss_row_factor(x, t, weight=w, reduction=reduction, label_smoothing=0.1, z_loss=0.01)
    assert_f16_grad_close(grad, want_grad, r, "f16 grad")


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_float16_bce_vs_torch(rng, reduction):
    x = (rng.standard_normal((11, 13)) * 3).astype(F16)
    t = rng.random(x.shape).astype(np.float32)
    w = rng.uniform(0.5, 2.0, (11, 1)).astype(np.float32)
    pw = rng.uniform(0.3, 3.0, 13).astype(np.float32)
    want_loss, want_grad = torch_bce(x, t, w, pw, reduction)
    loss, grad = fs.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction=reduction,
                                                     return_grad=True)
    assert_value_close(loss, want_loss, np.float32, "f16 BCE loss")
    assert_f16_grad_close(grad, want_grad, bce_grad_factor(x.shape, w, pw, reduction), "f16 BCE grad")


@pytest.mark.parametrize("dtype", DTYPES)
def test_bce_nonfinite_weights_vs_torch(rng, dtype):
    """NaN / inf / 0 in weight, pos_weight and target: the reference follows torch's NaN / inf positions."""
    x = (rng.standard_normal((5, 6)) * 2).astype(dtype)
    t = rng.random((5, 6)).astype(dtype)
    t[0, 1] = np.nan
    w = rng.uniform(0.5, 2.0, (5, 6)).astype(dtype)
    w[1, 2], w[2, 3], w[3, 4] = np.inf, np.nan, 0.0
    pw = rng.uniform(0.3, 3.0, 6).astype(dtype)
    pw[5] = np.nan
    for reduction in REDUCTIONS:
        want_loss, want_grad = torch_bce(x, t, w, pw, reduction)
        rl, rg = ref.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction=reduction,
                                                      return_grad=True)
        assert_f64_agree(rl, want_loss, "ref loss")
        assert_f64_agree(rg, want_grad, "ref grad")
        loss, grad = fs.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, reduction=reduction,
                                                         return_grad=True)
        assert_value_close(loss, want_loss, dtype, "loss")
        assert_grad_close(grad, want_grad, dtype, bce_grad_factor(x.shape, w, pw, reduction))
    pw_inf = np.full(6, np.inf, dtype)  # lw * sigmoid(x) - pw * t = inf - inf: NaN in torch
    want_loss, want_grad = torch_bce(x, np.abs(t), None, pw_inf, "sum")
    rl, rg = ref.binary_cross_entropy_with_logits(x, np.abs(t), pos_weight=pw_inf, reduction="sum", return_grad=True)
    assert_f64_agree(rg, want_grad, "ref grad, pos_weight = inf")
