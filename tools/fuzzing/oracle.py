"""Comparisons of a successful call with :mod:`fastsoftmax.reference`.

The bars are ``reference.TOLERANCES``, applied by the test suite's own helpers
(``tests/conftest.py``: ``assert_softmax_close``, ``assert_value_close``,
``assert_grad_close`` with ``zloss_row_factor`` / ``bce_grad_factor`` for ``r``, the float16
and backward variants), and for the sampled losses the bars of ``tests/test_sampled.py``
(the elementwise bar plus the matrix products' rounding).  Special values must match the
reference exactly (NaN and infinities in the same places).  Each check also verifies the
documented types: dtypes, shapes, scalars for reduced losses, ``out`` returned as the result.

A check gets the call's result, the reference's, and ``p``: its parameters evaluated in the
case's namespace before the call (``p.out`` is the ``out`` object the call was given).
Failures raise AssertionError with the message the reproducer shows.
"""

import importlib.util
import os
import sys

import numpy as np

from fastsoftmax import _kernels, reference
from fastsoftmax import linear as fs_linear

_CONFTEST = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir, "tests", "conftest.py")


def _suite_helpers():
    """tests/conftest.py as a module (the one pytest loaded, when this runs under pytest)."""
    loaded = sys.modules.get("conftest")
    if loaded is not None and os.path.samefile(getattr(loaded, "__file__", os.devnull) or os.devnull, _CONFTEST):
        return loaded
    spec = importlib.util.spec_from_file_location("fastsoftmax_tests_conftest", _CONFTEST)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


bars = _suite_helpers()
F16 = np.dtype(np.float16)


def _compute(dtype):
    return np.dtype(np.float32) if np.dtype(dtype) == F16 else np.dtype(dtype)


def _array(result, dtype, shape, what):
    assert isinstance(result, np.ndarray), f"{what}: a {type(result).__name__}, expected an ndarray"
    assert result.dtype == dtype, f"{what}: dtype {result.dtype}, expected {dtype}"
    assert result.shape == shape, f"{what}: shape {result.shape}, expected {shape}"


def _is_out(result, p, what):
    if p.out is not None:
        assert result is p.out, f"{what}: the result is not the out= array"


def _loss(loss, expected, dtype, reduction, batch_shape, allowance=0.0):
    """A loss's type (scalar of ``dtype``, or array of ``batch_shape`` for "none") and value."""
    if reduction == "none":
        _array(loss, dtype, batch_shape, "loss")
    else:
        assert type(loss) is dtype.type, f"loss: a {type(loss).__name__}, expected a {dtype.type.__name__} scalar"
    bars.assert_value_close(loss, expected, dtype, "loss", allowance)


# ----------------------------------------------------------------------------- the softmax family

def _data_dtype(x):
    """The dtype the softmax family computes and returns for data ``x``: its own float dtype, or
    float64 for integers and bools (SciPy's rule)."""
    return x.dtype if x.dtype.kind == "f" else np.dtype(np.float64)


def softmax(result, expected, p):
    x, dtype = p.x, _data_dtype(p.x)
    _array(result, dtype, x.shape, "softmax")
    _is_out(result, p, "softmax")
    if dtype == F16:
        bars.assert_f16_close(result, expected, "softmax")
    else:
        bars.assert_softmax_close(result, expected, dtype)


def log_softmax(result, expected, p):
    x, dtype = p.x, _data_dtype(p.x)
    _array(result, dtype, x.shape, "log_softmax")
    _is_out(result, p, "log_softmax")
    if dtype == F16:
        bars.assert_f16_close(result, expected, "log_softmax", log_domain=True)
    else:
        bars.assert_value_close(result, expected, dtype, "log_softmax")


def logsumexp(result, expected, p):
    x, dtype = p.x, _data_dtype(p.x)
    _array(result, dtype, tuple(n for k, n in enumerate(x.shape) if k not in p.axes), "logsumexp")
    if dtype == F16:
        bars.assert_f16_close(result, expected, "logsumexp", log_domain=True)
    else:
        bars.assert_value_close(result, expected, dtype, "logsumexp")


def sigmoid(result, expected, p):
    x = p.x
    _array(result, x.dtype, x.shape, "sigmoid")
    _is_out(result, p, "sigmoid")
    if x.dtype == F16:
        bars.assert_f16_close(result, expected, "sigmoid")
    else:
        bars.assert_softmax_close(result, expected, x.dtype, "sigmoid")


def softmax_backward(result, expected, p):
    _array(result, p.y.dtype, p.y.shape, "softmax_backward")
    _is_out(result, p, "softmax_backward")
    bars.assert_softmax_backward_close(result, expected, p.y, p.g, p.y.dtype, p.axis)


def log_softmax_backward(result, expected, p):
    _array(result, p.y.dtype, p.y.shape, "log_softmax_backward")
    _is_out(result, p, "log_softmax_backward")
    bars.assert_log_softmax_backward_close(result, expected, p.y, p.g, p.y.dtype, p.axis)


# ----------------------------------------------------------------------------- the losses

def cross_entropy(result, expected, p):
    """cross_entropy, and CrossEntropyLoss's forward and backward (``p.grad_output``: the
    factor of ``backward``, in float64; the gradient bar's ``r`` is scaled by it)."""
    x = p.logits
    ax = p.axis % x.ndim
    if p.return_grad:
        assert isinstance(result, tuple) and len(result) == 2, f"a {type(result).__name__}, expected (loss, grad)"
        (loss, grad), (loss_ref, grad_ref) = result, expected
    else:
        loss, loss_ref = result, expected
    options = dict(axis=p.axis, z_loss=p.z_loss, weight=p.weight, ignore_index=p.ignore_index,
                   reduction=p.reduction, label_smoothing=p.label_smoothing)
    # README, "Semantics": a float64 row whose finite logits span more than the double range has
    # log-probabilities beyond it; its loss and gradient may be inf or NaN: left out here
    with np.errstate(invalid="ignore", over="ignore"):
        hi, lo = (np.max(x, axis=ax) if x.shape[ax] else np.zeros(0), np.min(x, axis=ax) if x.shape[ax] else np.zeros(0))
        wide = np.isfinite(hi) & np.isfinite(lo) & np.isinf(hi.astype(np.float64) - lo)
    if np.any(wide) and p.reduction != "none":
        return  # the reduced loss, and the gradient through its divisor, are outside the domain
    if np.any(wide):
        loss, loss_ref = np.where(wide, 0.0, loss), np.where(wide, 0.0, loss_ref)
    _loss(loss if not np.any(wide) else loss.astype(_compute(x.dtype)), loss_ref, _compute(x.dtype), p.reduction,
          x.shape[:ax] + x.shape[ax + 1:], bars.zloss_loss_allowance(x, p.target, **options))
    if not p.return_grad:
        return
    _array(grad, x.dtype, x.shape, "grad")
    _is_out(grad, p, "grad")
    if np.any(wide):
        rows = np.broadcast_to(np.expand_dims(wide, ax), x.shape)
        grad, grad_ref = np.where(rows, 0.0, grad).astype(x.dtype), np.where(rows, 0.0, grad_ref)
    r = bars.zloss_row_factor(x, p.target, **options)
    # README, "Semantics": a row whose z-loss coefficient 2 z w |lse| (times the reduction's
    # factor) is beyond the double range has inf or NaN in its gradient; left out here (r holds
    # the class weight for "mean" only: the largest one bounds w for "sum" and "none")
    w = np.abs(np.asarray(p.weight, np.float64)) if p.weight is not None else np.ones(1)
    wmax = max(1.0, float(np.max(w))) if w.size else 1.0
    with np.errstate(invalid="ignore", over="ignore"):
        lse = np.expand_dims(reference.logsumexp(x.astype(np.float64), p.axis), ax)
        beyond = np.broadcast_to(np.isinf(r * wmax) & np.isfinite(lse), x.shape)
    if np.any(beyond):
        grad, grad_ref, r = (np.where(beyond, 0.0, a) for a in (grad, grad_ref, np.broadcast_to(r, x.shape)))
    go = np.abs(p.grad_output)
    if go.ndim:  # one factor per row
        go = np.expand_dims(go, ax)
    bars.assert_any_grad_close(grad, grad_ref, x.dtype, r * go, "grad")


def _bce_loss_in_dtype(loss_ref, p):
    """The reference loss as the API defines it in float32 (README, "Semantics"): each element's
    loss is a number of the compute dtype, inf beyond its range (as in PyTorch), and the
    reductions sum those (in double)."""
    dtype = _compute(p.logits.dtype)
    if dtype == np.float64:
        return loss_ref
    el = reference.binary_cross_entropy_with_logits(p.logits, p.target, weight=p.weight, pos_weight=p.pos_weight,
                                                    reduction="none")
    with np.errstate(over="ignore"):
        el_d = el.astype(dtype).astype(np.float64)
    if p.reduction == "none":
        return el_d
    if not np.any(np.isinf(el_d) & np.isfinite(el)):
        return loss_ref
    total = np.sum(el_d)
    return total if p.reduction == "sum" else total / el.size


def bce(result, expected, p):
    """binary_cross_entropy_with_logits, and BCEWithLogitsLoss's forward and backward."""
    x = p.logits
    if p.return_grad:
        assert isinstance(result, tuple) and len(result) == 2, f"a {type(result).__name__}, expected (loss, grad)"
        (loss, grad), (loss_ref, grad_ref) = result, expected
    else:
        loss, loss_ref = result, expected
    _loss(loss, _bce_loss_in_dtype(loss_ref, p), _compute(x.dtype), p.reduction, x.shape)
    if not p.return_grad:
        return
    _array(grad, x.dtype, x.shape, "grad")
    _is_out(grad, p, "grad")
    shape = x.shape or (1,)  # bce_grad_factor takes the classes from the last axis: a 0-d input is one
    weight = None if p.weight is None else np.reshape(p.weight, p.weight.shape or (1,) * len(shape))
    r = bars.bce_grad_factor(shape, weight, p.pos_weight, p.reduction).reshape(x.shape)
    bars.assert_any_grad_close(grad, grad_ref, x.dtype, r * np.abs(p.grad_output), "grad")


# ----------------------------------------------------------------------------- sampled losses

def _close(got, want, atol, rtol, what):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, expected {want.shape}"
    with np.errstate(invalid="ignore"):
        err = np.abs(got - want)
        bound = rtol * np.abs(want) + atol
        bad = ~(err <= bound) & ~(np.isnan(got) & np.isnan(want)) & ~(got == want)
    if np.any(bad):
        k = np.argwhere(bad)[0] if bad.ndim else ()
        raise AssertionError(f"{what}: {int(bad.sum())} of {bad.size} values outside the bar (first at {list(k)}: "
                             f"{got[tuple(k)]!r}, reference {want[tuple(k)]!r}, bar {np.broadcast_to(bound, bad.shape)[tuple(k)]:.3e})")


def sampled(result, expected, p):
    """The sampled losses against the reference, with tests/test_sampled.py's bars: the
    elementwise bar plus the rounding of the products over D (logits) and over the rows."""
    dtype = np.dtype(p.dtype)
    t = reference.TOLERANCES[dtype]
    rel, u = t["rel"], t["unit_roundoff"]
    w, x, y, sv = (np.asarray(a) for a in (p.W, p.x, p.y, p.sv[0]))
    n, d = x.shape
    nt, s = int(p.num_true), sv.size
    loss, loss_ref = (result[0], expected[0]) if p.return_grad else (result, expected)
    assert np.asarray(loss).dtype == dtype, f"loss: dtype {np.asarray(loss).dtype}, expected {dtype}"
    assert np.shape(loss) == ((n,) if p.reduction == "none" else ()), f"loss: shape {np.shape(loss)}"
    w64, x64 = np.abs(w.astype(np.float64)), np.abs(x.astype(np.float64))
    logit_err = (rel + d * u) * 4 * (np.max(x64 @ w64.T) if n and w.size else 0.0)
    scale = 1 + nt + s if p.nce else 2
    _close(loss, loss_ref, rel + scale * logit_err, rel, "loss")
    if not p.return_grad:
        return
    g, rg = result[1], expected[1]
    go = float(p.grad_output)
    np.testing.assert_array_equal(g.ids, rg.ids, err_msg="ids")
    for name in ("inputs", "weights"):
        assert getattr(g, name).dtype == dtype, f"grad {name}: dtype {getattr(g, name).dtype}, expected {dtype}"
    r = (1.0 / n if p.reduction == "mean" and n else 1.0) * abs(go)
    grad_err = logit_err * r * (1 + nt)

    def check(got, want, k, sum_abs_b, what):
        _close(got, want * go, (rel + k * u) * 4 * r * sum_abs_b + rel * r, rel, what)

    rows = w64[np.concatenate([y.reshape(-1), sv.astype(np.int64)])]
    check(g.inputs, rg.inputs, nt + s, rows.sum(axis=0)[None, :] + grad_err, "grad inputs")
    check(g.weights, rg.weights, n, x64.sum(axis=0)[None, :] + grad_err, "grad weights")
    if rg.biases is None:
        assert g.biases is None, "grad biases: an array, expected None (no biases)"
    else:
        check(g.biases, rg.biases, n, n + grad_err, "grad biases")


def linear(result, expected, p):
    """linear_cross_entropy and LinearCrossEntropyLoss against the float64 composition, with the
    test suite's bars (tests/conftest.py, assert_linear_close); ``p.grad_output`` scales the
    reference's gradients (a loss object's backward)."""
    dtype = np.dtype(p.dtype)
    if not p.return_grad:
        assert np.asarray(result).dtype == dtype, f"loss: dtype {np.asarray(result).dtype}, expected {dtype}"
        result, expected = (result, None), (expected, None)
    loss, g = result
    loss_ref, g_ref = expected
    if g is not None:
        assert isinstance(g, fs_linear.LinearGrads), f"grads: a {type(g).__name__}, expected LinearGrads"
        go = float(p.grad_output)
        g_ref = type(g_ref)(*(None if a is None else a * go for a in g_ref))
    opts = {k: getattr(p, k) for k in ("weight", "ignore_index", "reduction", "label_smoothing", "z_loss")
            if hasattr(p, k)}
    if g is None:  # the loss alone: the same bars, with gradients made up to pass
        zeros = fs_linear.LinearGrads(np.zeros(p.x.shape), np.zeros(p.W.shape), None if p.bias is None
                                      else np.zeros(p.W.shape[0]))
        g, g_ref = (type(zeros)(*(None if a is None else a.astype(dtype) for a in zeros)), zeros)
    scale = abs(float(p.grad_output))
    bars.assert_linear_close(dtype, (loss, g), (loss_ref, g_ref), p.x, p.W, p.bias, np.asarray(p.t), opts,
                             grad_scale=scale)


def sampler(result, expected, p):
    """A candidate sampler's result: types, ranges, distinct candidates with ``unique``, and
    (when no draw can have been rejected) the expected counts of the reference's definition."""
    sampled_, true_count, sampled_count = result
    s = int(p.num_sampled)
    true = np.asarray(p.true)
    _array(sampled_, np.dtype(np.int64), (s,), "sampled_candidates")
    _array(true_count, np.dtype(np.float64), true.shape, "true_expected_count")
    _array(sampled_count, np.dtype(np.float64), (s,), "sampled_expected_count")
    assert sampled_.size == 0 or (sampled_.min() >= 0 and sampled_.max() < p.range_max), "a candidate out of range"
    if p.unique:
        assert np.unique(sampled_).size == s, "unique=True gave a candidate twice"
    q_true = reference.candidate_probability(p.kind, true, p.range_max, unigrams=p.unigrams, distortion=p.distortion)
    q = reference.candidate_probability(p.kind, sampled_, p.range_max, unigrams=p.unigrams, distortion=p.distortion)
    assert np.all(q > 0), "a candidate of probability 0"
    if not p.unique:  # every draw kept: p * num_sampled
        bars.assert_value_close(true_count, reference.expected_count(q_true, s, s), np.float64, "true_expected_count")
        bars.assert_value_close(sampled_count, reference.expected_count(q, s, s), np.float64,
                                "sampled_expected_count")
    else:  # p * num_sampled (no rejection) or the chance of a draw in the tries (<= 1)
        for got, prob, what in ((true_count, q_true, "true"), (sampled_count, q, "sampled")):
            top = np.maximum(1.0, prob * s) * (1 + 1e-12)
            assert np.all((got >= 0) & (got <= top)), f"{what}_expected_count out of [0, max(1, p * num_sampled)]"


def threads(result, expected, p):
    """set_num_threads(n) then get_num_threads(): n for the small counts (threads built in)."""
    assert isinstance(result, int) and result >= 1, f"get_num_threads() gave {result!r}"
    if _kernels.threads_enabled() and p.value in (1, 2, 3):
        assert result == p.value, f"set_num_threads({p.value}) then get_num_threads() gave {result}"


ORACLES = {f.__name__: f for f in (softmax, log_softmax, logsumexp, sigmoid, softmax_backward, log_softmax_backward,
                                   cross_entropy, bce, sampled, linear, sampler, threads)}
#: the oracles that need no reference result
WITHOUT_REFERENCE = {"sampler", "threads"}
