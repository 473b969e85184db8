"""Pure NumPy float64 reference implementations of the fastsoftmax API.

This module is the oracle the test-suite compares the C kernels against.  It is
written for clarity, directly from the mathematical definitions (never from the
kernels), and computes everything in float64 whatever the input dtype:

* ``softmax(x)[j]      = exp(x[j] - m) / sum_c exp(x[c] - m)``, ``m = max_c x[c]``
* ``log_softmax(x)[j]  = (x[j] - m) - log(sum_c exp(x[c] - m))``
* ``logsumexp(x)       = m + log(sum_c exp(x[c] - m))``
* ``cross_entropy``    = ``torch.nn.functional.cross_entropy`` with the class axis
  given by ``axis`` (default last), optionally with its analytic gradient, plus an
  optional z-loss term ``z_loss * logsumexp(row)**2``.
* ``sigmoid(x)         = 1 / (1 + exp(-x))``
* ``binary_cross_entropy_with_logits`` = ``torch.nn.functional.binary_cross_entropy_with_logits``
  (``weight``, ``pos_weight`` along the last axis), optionally with its gradient.
* ``softmax_backward`` / ``log_softmax_backward``: the vector-Jacobian products
  ``p * (g - sum(p * g))`` and ``g - exp(lp) * sum(g)`` along ``axis``.

The functions have the signatures of the public API (``fastsoftmax.softmax`` ...),
perform the same argument checks and raise the same exception types with the same
kind of messages.  Results are float64: arrays are float64 and reduced losses are
``np.float64`` scalars.  When ``out=`` is given, the float64 result is rounded into
``out`` (which, as for the public API, must have the input's dtype) and ``out`` is
returned.

Special values follow PyTorch (``torch.softmax``, ``torch.nn.functional.cross_entropy``;
README.md, "Semantics"): a row of all ``-inf`` gives a NaN
row, a row containing ``+inf`` gives a NaN (log-)softmax row, a NaN poisons only its
own row, and ``-inf`` entries in an otherwise finite row are masked classes with
probability exactly 0.  ``logsumexp`` follows ``torch.logsumexp``: all ``-inf`` ->
``-inf``; ``+inf`` present (and no NaN) -> ``+inf``; NaN present -> NaN; an empty
class axis -> ``-inf``.

Accuracy bars: :data:`TOLERANCES` holds, per dtype, the bars the kernels meet against
this module's float64 results computed from the same input values (the test suite,
``tests/conftest.py``, and the self-check ``python -m fastsoftmax`` check them).  With
``rel`` and ``softmax_abs`` the entries of the computation's dtype:

======================  =====================================================
quantity                bar
======================  =====================================================
softmax, sigmoid        ``|p - p_ref| <= rel * |p_ref| + softmax_abs``
log_softmax, logsumexp, ``|v - v_ref| <= rel * (1 + |v_ref|)``
losses
loss gradients          ``|g - g_ref| <= rel * (|g_ref| + r)``
softmax_backward        ``|g - g_ref| <= rel * p_j * (|g_j| + sum_k p_k |g_k|)``
log_softmax_backward    ``|g - g_ref| <= rel * (|g_j| + exp(lp_j) * sum_k |g_k|)``
gradients through a     ``|g - g_ref| <= rel * (|g_ref| + r)``
matrix product          ``+ (rel + k * unit_roundoff) * 4 * r * sum_k |B|``
======================  =====================================================

==================  ========  ========
entry               float32   float64
==================  ========  ========
``rel``             2e-6      1e-12
``softmax_abs``     1e-12     1e-300
``unit_roundoff``   2^-24     2^-53
==================  ========  ========

A gradient that comes out of a matrix product with an operand ``B`` over an inner
dimension ``k`` (the sampled losses' gradients of the inputs, weights and biases) gets the
product's rounding allowance on top of the elementwise bar.

``r`` is the row's factor in the reduced loss, so that the bar scales with the
gradient's size: for ``cross_entropy`` the largest factor multiplying the row's
``p_j - [j == target]`` terms (``"sum"`` and ``"none"``: 1; ``"mean"``: the row's class
weight over the mean's divisor, the largest class weight with label smoothing or
probability targets; ignored rows: 0, their gradient is exactly 0), times
``1 + 2 * z_loss * (1 + |logsumexp(row)|)`` with ``z_loss`` (the z-loss term's coefficient
``2 * z_loss * lse`` carries the logsumexp bar's error; and with ``z_loss`` a loss's bar
has ``rel * sum_n r_n * 2 * z_loss * |lse_n| * (1 + |lse_n|)`` on top, per row for "none":
the logsumexp bar carried through ``z_loss * lse**2``); for
``binary_cross_entropy_with_logits`` ``|weight| * max(1, |pos_weight|)``, divided by
the number of elements for ``"mean"``.

float16 logits are computed in float32, so their entry is ``ulp`` (1) and the float32
``rel``: float16 outputs are within ``ulp`` float16 ulps of the reference rounded to
float16, plus ``rel * (1 + |v_ref|)`` for log_softmax and logsumexp (near 0 a float16
ulp is finer than the float32 computation's error) and ``rel * (|g_ref| + r)`` for
gradients; losses (float32) meet the float32 bars.

On top of the bars, NaN and +-inf must appear exactly where the reference has them.

Only NumPy (and the standard library) is imported, so this file can be used on its
own (without the compiled extension) as ``import reference`` after adding its
directory to ``sys.path``.
"""

import math
import numbers
import operator
from collections import namedtuple

import numpy as np

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy", "sigmoid", "binary_cross_entropy_with_logits",
           "softmax_backward", "log_softmax_backward", "TOLERANCES", "candidate_probability", "expected_count", "sampled_softmax_loss", "nce_loss", "SampledGrads",
           "linear_cross_entropy", "LinearGrads"]

#: The accuracy bars, per computation dtype (see the table in the module docstring).
TOLERANCES = {
    np.dtype(np.float32): {"rel": 2e-6, "softmax_abs": 1e-12, "unit_roundoff": 2.0**-24},
    np.dtype(np.float64): {"rel": 1e-12, "softmax_abs": 1e-300, "unit_roundoff": 2.0**-53},
    np.dtype(np.float16): {"ulp": 1, "rel": 2e-6},
}

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: sigmoid and binary_cross_entropy_with_logits also accept float16 (computed in float32 by the API).
_HALF_FLOAT_DTYPES = (np.dtype(np.float16),) + _FLOAT_DTYPES
_REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------- checks


def _as_logits(x, name="x"):
    """Return ``x`` as an ndarray, raising TypeError unless it is float32/float64."""
    x = np.asarray(x)
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    return x


def _real_option(value, name):
    """A real option (not a bool, not a string) as a float: TypeError otherwise, ValueError for
    an integer beyond the float range (outside every option's range)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        return float(value)
    except OverflowError:
        raise ValueError(f"{name} is out of range, got {value!r}") from None


def _normalize_axis(axis, ndim):
    """Map a possibly negative integer axis into ``[0, ndim)``; AxisError when out of range."""
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an integer, got {axis!r}") from None
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(axis, ndim)
    return axis % ndim


def _check_out(out, shape, dtype, require_contiguous):
    """Validate an ``out=`` array (same rules as the public API)."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"out must have dtype {dtype} (float32 or float64, same as the input), got {out.dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"out must have shape {tuple(shape)}, got {out.shape}")
    if require_contiguous and not (out.flags.c_contiguous and out.flags.aligned):
        raise ValueError("out must be C-contiguous and aligned (the gradient is written in place)")
    if not out.flags.writeable:
        raise ValueError("out must be writable (it is read-only)")


# ----------------------------------------------------------------------------- row math
# All helpers below work on float64 arrays whose LAST axis is the class axis.


def _log_softmax_last(x):
    """log_softmax along the last axis of a float64 array (torch special values)."""
    if x.shape[-1] == 0:
        return np.empty(x.shape, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(x, axis=-1, keepdims=True)  # NaN if the row has a NaN
        shifted = x - m  # all -inf row: -inf - -inf = NaN; +inf row: inf - inf = NaN
        return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def _softmax_last(x):
    """softmax along the last axis of a float64 array (torch special values)."""
    if x.shape[-1] == 0:
        return np.empty(x.shape, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(x, axis=-1, keepdims=True)
        e = np.exp(x - m)  # masked classes (-inf) give exactly 0
        return e / np.sum(e, axis=-1, keepdims=True)


def _logsumexp_last(x):
    """logsumexp along the last axis of a float64 array (torch.logsumexp rules)."""
    if x.shape[-1] == 0:
        return np.full(x.shape[:-1], -np.inf)
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        m = np.max(x, axis=-1)  # NaN when a NaN is present, +inf when +inf is present
        finite_m = np.isfinite(m)
        m_safe = np.where(finite_m, m, 0.0)
        s = np.sum(np.exp(x - m_safe[..., None]), axis=-1)
        lse = m_safe + np.log(s)
        # m = -inf: every entry is -inf -> -inf;  m = +inf: +inf;  m = NaN: NaN.
        return np.where(finite_m, lse, m)


# ----------------------------------------------------------------------------- public API


def _as_numbers(x):
    """``x`` for softmax, log_softmax and logsumexp: float32/float64 as it is, integers, bools and
    lists of them as float64 (SciPy's rule); TypeError for other dtypes."""
    x = np.asarray(x)
    if x.dtype.kind in "biu":
        x = x.astype(np.float64)
    return _as_logits(x)


def _reduced_axes(axis, ndim):
    """``axis`` (int, tuple of ints, or None for every axis) as a sorted tuple of axes; the API's
    errors (TypeError, AxisError, ValueError for a repeated axis)."""
    if axis is None:
        return tuple(range(ndim))
    axes = tuple(_normalize_axis(a, ndim) for a in (axis if isinstance(axis, tuple) else (axis,)))
    if len(set(axes)) != len(axes):
        raise ValueError(f"repeated axis in {axis!r}")
    return tuple(sorted(axes))


def _over_axes(fn, x, axes):
    """``fn`` (a function of rows along the last axis) applied with ``axes`` as one last axis;
    the result in ``x``'s layout (same shape)."""
    rest = [k for k in range(x.ndim) if k not in axes]
    moved = np.transpose(x, rest + list(axes))
    rows = moved.reshape(moved.shape[:len(rest)] + (math.prod(x.shape[k] for k in axes),))
    return np.transpose(fn(rows).reshape(moved.shape), np.argsort(rest + list(axes)))


def softmax(x, axis=-1, *, out=None):
    """Softmax of ``x`` over ``axis`` (an int, a tuple of axes, or None for all), in float64.

    Integer, bool and list input is taken as float64 (as SciPy does).  Returns a float64 array
    of ``x``'s shape, or ``out`` (same shape and dtype as ``x``, writable, any strides) filled
    with the result.
    """
    x = _as_numbers(x)
    axes = _reduced_axes(axis, x.ndim)
    if out is not None:
        _check_out(out, x.shape, x.dtype, require_contiguous=False)
    p = _over_axes(_softmax_last, x.astype(np.float64), axes)
    if out is not None:
        out[...] = p
        return out
    return np.array(p, dtype=np.float64, order="C")


def log_softmax(x, axis=-1, *, out=None):
    """Log-softmax of ``x`` over ``axis`` (an int, a tuple of axes, or None for all), in float64.

    Same input rules and results as :func:`softmax`.
    """
    x = _as_numbers(x)
    axes = _reduced_axes(axis, x.ndim)
    if out is not None:
        _check_out(out, x.shape, x.dtype, require_contiguous=False)
    lp = _over_axes(_log_softmax_last, x.astype(np.float64), axes)
    if out is not None:
        out[...] = lp
        return out
    return np.array(lp, dtype=np.float64, order="C")


def logsumexp(x, axis=-1, *, keepdims=False, b=None, return_sign=False):
    """``log(sum(b * exp(x)))`` over ``axis`` (an int, a tuple of axes, or None for all), in float64.

    ``b`` (default 1) broadcasts to ``x``; a negative sum gives NaN, or with ``return_sign`` the
    result is ``(log|sum|, sign(sum))``.  Returns float64 with the shape of ``x`` without the
    reduced axes (kept as length 1 with ``keepdims``; a 0-d array when none remains).
    """
    x = _as_numbers(x)
    axes = _reduced_axes(axis, x.ndim)
    x64 = x.astype(np.float64)
    if b is None and not return_sign:
        rest = [k for k in range(x.ndim) if k not in axes]
        moved = np.transpose(x64, rest + list(axes))
        value = _logsumexp_last(moved.reshape(moved.shape[:len(rest)] + (math.prod(x.shape[k] for k in axes),)))
        sign = None
    else:
        w = np.ones(x.shape) if b is None else np.asarray(b)
        if w.dtype.kind not in "fiub":
            raise TypeError(f"b must be real numbers, got {w.dtype}")
        try:
            w = np.broadcast_to(w.astype(np.float64), x.shape)
        except ValueError:
            raise ValueError(f"b of shape {w.shape} does not broadcast to x's shape {x.shape}") from None
        with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
            # sum_j b_j exp(x_j) = exp(m) sum_j b_j exp(x_j - m), m the largest x_j with b_j != 0
            xm = np.where(w != 0, x64, -np.inf)
            m = np.max(xm, axis=axes, initial=-np.inf, keepdims=True)
            m = np.where(np.isfinite(m), m, 0.0)
            total = np.sum(w * np.exp(xm - m), axis=axes, keepdims=True)
            value = np.squeeze(np.log(np.abs(total)) + m, axis=axes)
            sign = np.squeeze(np.sign(total), axis=axes)
            if not return_sign:
                value = np.where(sign < 0, np.nan, value)
    value = np.asarray(value, dtype=np.float64)
    if keepdims:
        shape = tuple(1 if k in axes else n for k, n in enumerate(x.shape))
        value = value.reshape(shape)
        sign = None if sign is None else np.asarray(sign).reshape(shape)
    return (value, np.asarray(sign, dtype=np.float64)) if return_sign else value


def cross_entropy(
    logits,
    target,
    *,
    axis=-1,
    weight=None,
    ignore_index=-100,
    reduction="mean",
    label_smoothing=0.0,
    z_loss=0.0,
    return_grad=False,
    out=None,
):
    """Cross-entropy between ``softmax(logits)`` and ``target`` (float64 reference).

    Semantics of ``torch.nn.functional.cross_entropy`` with the class axis ``axis``.
    With ``C`` classes, ``eps = label_smoothing``, ``lp = log_softmax(row)`` and
    ``p = softmax(row)``:

    Index targets ``y`` (integer array with the logits' shape minus the class axis)::

        loss_n = (1-eps) * w[y] * (-lp[y]) + (eps/C) * sum_c w[c] * (-lp[c])
        loss_n = 0 for rows whose target equals ``ignore_index``
        mean   = sum_n loss_n / D,  D = sum of w[y_n] over rows not ignored
        grad_j = s_n * ((1-eps) * w[y] * (p_j - [j == y]) + (eps/C) * (W * p_j - w[j]))

    with ``W = sum_c w[c]`` and ``s_n`` the reduction factor (``1/D`` for mean, 1 for
    sum and none, 0 for ignored rows).  All rows ignored: mean is NaN, grad all 0.
    ``D = 0`` with rows not ignored (zero weights on their targets): mean NaN and NaN
    gradient on those rows, as in PyTorch.

    Probability targets ``t`` (float array with the logits' shape)::

        t'     = t * (1-eps) + eps/C
        loss_n = -sum_c w[c] * t'[c] * lp[c]
        mean   = sum_n loss_n / N
        grad_j = s_n * (T * p_j - w[j] * t'[j]),   T = sum_c w[c] * t'[c]

    with ``s_n = 1/N`` for mean and 1 otherwise (``ignore_index`` does not apply).

    z-loss (``z = z_loss >= 0``, ``lse_n = logsumexp`` of the row): every row not
    ignored adds ``w_row * z * lse_n**2`` to its loss and
    ``s_n * w_row * 2 * z * lse_n * p_j`` to its gradient, with ``w_row = w[y_n]``
    for index targets (1 without weights) and ``w_row = 1`` for probability targets.
    The mean divides by the same ``D`` / ``N`` as above.  ``z = 0`` adds nothing
    (not even ``0 * inf``).

    Returns ``loss`` -- an ``np.float64`` for "mean"/"sum", a float64 array with the
    batch shape for "none" -- or ``(loss, grad)`` when ``return_grad`` is true.  The
    gradient is ``d loss / d logits`` (of ``loss.sum()`` for "none"), float64 with the
    logits' shape, or written into ``out`` (C-contiguous, logits' shape and dtype,
    writable; may be ``logits`` itself) which is then returned as ``grad``.
    """
    # ---- argument checks (same order and exception types as the public API)
    logits = _as_logits(logits, "logits")
    ax = _normalize_axis(axis, logits.ndim)
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    eps = _real_option(label_smoothing, "label_smoothing")
    if not 0.0 <= eps <= 1.0:  # also rejects NaN
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
    z = _real_option(z_loss, "z_loss")
    if not (math.isfinite(z) and z >= 0.0):
        raise ValueError(f"z_loss must be a finite number >= 0, got {z_loss!r}")
    # an integer that int64 holds (PyTorch cannot represent any other either)
    if isinstance(ignore_index, (bool, np.bool_)) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an integer, got {ignore_index!r}")
    if not -2**63 <= int(ignore_index) < 2**63:
        raise ValueError(f"ignore_index must fit in int64, got {ignore_index}")
    ignore_index = int(ignore_index)
    C = logits.shape[ax]
    batch_shape = logits.shape[:ax] + logits.shape[ax + 1 :]

    target = np.asarray(target)
    if target.dtype.kind in "iu":
        prob_targets = False
        if target.shape != batch_shape:
            raise ValueError(
                f"index target must have shape {batch_shape} (logits shape {logits.shape} "
                f"without the class axis {ax}), got {target.shape}"
            )
    elif target.dtype.kind == "f":
        prob_targets = True
        if target.shape != logits.shape:
            raise ValueError(
                f"probability target must have the logits' shape {logits.shape}, got {target.shape}"
            )
    else:
        raise TypeError(f"target must be integer class indices or float probabilities, got dtype {target.dtype}")

    if weight is not None:
        weight = np.asarray(weight)
        if weight.dtype.kind not in "fiu":
            raise TypeError(f"weight must be real numbers, got dtype {weight.dtype}")
        weight = weight.astype(np.float64)
        if weight.shape != (C,):
            raise ValueError(f"weight must have shape ({C},), got {weight.shape}")

    if out is not None:
        if not return_grad:
            raise ValueError("out= receives the gradient and requires return_grad=True")
        _check_out(out, logits.shape, logits.dtype, require_contiguous=True)

    if not prob_targets:
        ignored = target == ignore_index
        bad = ~ignored & ((target < 0) | (target >= C))
        if np.any(bad):
            pos = tuple(int(i) for i in np.argwhere(bad)[0])
            row = pos[0] if len(pos) == 1 else pos
            value = int(target[pos])
            raise IndexError(f"target {value} at row {row} is out of range for {C} classes")

    # ---- forward: rows along the last axis, in float64
    x = np.moveaxis(logits.astype(np.float64), ax, -1)  # batch_shape + (C,)
    w = np.ones(C) if weight is None else weight
    lp = _log_softmax_last(x)
    p = _softmax_last(x)

    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        if prob_targets:
            t = np.moveaxis(target.astype(np.float64), ax, -1)
            t_s = t * (1.0 - eps) + (eps / C if C else 0.0)  # C = 0: empty rows, nothing to smooth
            loss_rows = -np.sum(w * t_s * lp, axis=-1)
            w_row = np.ones(batch_shape)  # the z-loss term of a probability-target row has weight 1
            n_rows = int(np.prod(batch_shape, dtype=np.int64))
            denom = float(n_rows)
            active = np.ones(batch_shape, dtype=bool)
        else:
            y = np.where(ignored, 0, target).astype(np.int64)  # placeholder class for ignored rows
            active = ~ignored
            w_y = w[y] if C > 0 else np.zeros(batch_shape)
            lp_y = np.take_along_axis(lp, y[..., None], axis=-1)[..., 0] if C > 0 else np.zeros(batch_shape)
            loss_rows = (1.0 - eps) * w_y * (-lp_y)
            if eps > 0.0 and C > 0:  # C = 0: no classes, nothing to smooth
                loss_rows = loss_rows + (eps / C) * np.sum(w * (-lp), axis=-1)
            w_row = w_y  # the z-loss term is weighted by the class weight of the row's target
        if z > 0.0:
            lse = _logsumexp_last(x)
            loss_rows = loss_rows + (w_row * z * np.abs(lse)) * np.abs(lse)  # (lse**2 can overflow first)
        if not prob_targets:
            loss_rows = np.where(active, loss_rows, 0.0)  # ignored rows: exactly 0 (even if NaN/inf)
            denom = float(np.sum(np.where(active, w_y, 0.0)))

        if reduction == "mean" and denom == 0.0:
            # Every row ignored, an empty batch, or only zero weights on the targets: like
            # torch (whose nll part is then 0/0) the mean is NaN, and so is the gradient of
            # every row that is not ignored (ignored rows keep an exact 0 gradient).
            loss = np.float64(np.nan)
            scale = np.nan
        elif reduction == "mean":
            loss = np.float64(np.sum(loss_rows)) / np.float64(denom)
            scale = np.float64(1.0) / np.float64(denom)
        elif reduction == "sum":
            loss = np.float64(np.sum(loss_rows))
            scale = 1.0
        else:
            loss = np.asarray(loss_rows, dtype=np.float64)
            scale = 1.0

        if not return_grad:
            return loss

        # ---- analytic gradient
        s_n = np.where(active, scale, 0.0)[..., None]  # per-row factor, 0 for ignored rows
        if prob_targets:
            T = np.sum(w * t_s, axis=-1, keepdims=True)
            g = T * p - w * t_s
        else:
            onehot = np.zeros(x.shape)
            if C > 0:
                np.put_along_axis(onehot, y[..., None], 1.0, axis=-1)
            g = (1.0 - eps) * w_y[..., None] * (p - onehot)
            if eps > 0.0 and C > 0:
                g = g + (eps / C) * (np.sum(w) * p - w)
        g = s_n * g
        if z > 0.0:
            # the z-loss term s 2 z w lse p: the row factor s, then p in [0, 1], multiply before
            # lse does (0 where p underflows to 0, not 0 * inf; no overflow that s undoes)
            g = g + ((2.0 * z) * w_row[..., None] * s_n * p) * lse[..., None]
        g = np.where(s_n != 0.0, g, 0.0)  # ignored rows: exactly 0 (even for NaN rows)
        grad = np.ascontiguousarray(np.moveaxis(g, -1, ax))

    if out is not None:
        out[...] = grad
        return loss, out
    return loss, grad


# ----------------------------------------------------------------------------- sigmoid and binary cross-entropy


def _as_half_or_float(x, name):
    """Return ``x`` as an ndarray, raising TypeError unless it is float16/float32/float64."""
    x = np.asarray(x)
    if x.dtype not in _HALF_FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float16, float32 or float64, got {x.dtype}")
    return x


def _sigmoid64(z):
    """``1 / (1 + exp(-z))`` of a float64 array without overflow: with ``e = exp(-|z|)`` in (0, 1],
    ``1 / (1 + e)`` for ``z >= 0`` and ``e / (1 + e)`` for ``z < 0`` (NaN stays NaN)."""
    with np.errstate(invalid="ignore", over="ignore"):
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid(x, *, out=None):
    """Logistic sigmoid ``1 / (1 + exp(-x))`` elementwise, computed in float64.

    ``x``: float16, float32 or float64, any shape (0-d included).  Returns a float64
    array of ``x``'s shape, or ``out`` (same shape and dtype as ``x``, writable, any
    strides; may be ``x``) filled with the rounded result.  ``sigmoid(+inf) = 1``,
    ``sigmoid(-inf) = 0``, NaN stays NaN.
    """
    x = _as_half_or_float(x, "x")
    if out is not None:
        _check_out(out, x.shape, x.dtype, require_contiguous=False)
    s = _sigmoid64(x.astype(np.float64))
    if out is not None:
        out[...] = s
        return out
    return np.array(s, dtype=np.float64, order="C")  # (np.ascontiguousarray would turn 0-d into 1-d)


def binary_cross_entropy_with_logits(logits, target, *, weight=None, pos_weight=None, reduction="mean",
                                     return_grad=False, out=None):
    """Binary cross-entropy on logits (float64 reference), as
    ``torch.nn.functional.binary_cross_entropy_with_logits``.

    Elementwise, with ``x`` the logits, ``t`` the target, ``w`` the weight (1 by default),
    ``pw`` the positive-class weight of the element's class (last axis; 1 by default)::

        lw     = 1 + (pw - 1) * t
        loss   = w * ((1 - t) * x + lw * softplus(-x)),   softplus(-x) = log1p(exp(-|x|)) + max(-x, 0)
        grad   = s * w * (lw * sigmoid(x) - pw * t)

    with ``s = 1/numel`` for "mean" and 1 for "sum" / "none".  "mean" is the sum over all
    elements divided by their number (NaN for an empty input).

    Inputs are taken at the values the API computes with: the target is cast to the
    logits' dtype (float32 for float16 logits; bool and integer targets are cast too),
    ``weight`` and ``pos_weight`` are used in float32 for float16 logits (float64 otherwise).
    ``weight`` must broadcast to ``logits.shape``, ``pos_weight`` to ``(C,)`` with
    ``C = logits.shape[-1]`` (1 for 0-d logits, which are accepted as in torch).

    Returns ``loss`` -- ``np.float64`` for "mean"/"sum", a float64 array of the logits'
    shape for "none" -- or ``(loss, grad)`` with ``return_grad``; ``grad`` is float64, or
    ``out`` (C-contiguous, logits' shape and dtype, writable, may be ``logits``) filled
    with it.
    """
    # ---- argument checks
    logits = _as_half_or_float(logits, "logits")
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    shape = logits.shape
    C = shape[-1] if shape else 1  # a 0-d input is one element of one class, as in torch
    half = logits.dtype == np.float16
    compute_dtype = np.dtype(np.float32) if half else logits.dtype
    weight_dtype = np.dtype(np.float32) if half else np.dtype(np.float64)

    target = np.asarray(target)
    if target.dtype.kind not in "fbiu":
        raise TypeError(f"target must be float, bool or integer, got dtype {target.dtype}")
    if target.shape != shape:
        raise ValueError(f"target must have the logits' shape {shape}, got {target.shape}")

    def _real(a, name, to_shape):
        a = np.asarray(a)
        if a.dtype.kind not in "fiub":  # real numbers (bool as 0 / 1)
            raise TypeError(f"{name} must be real numbers, got dtype {a.dtype}")
        try:
            return np.broadcast_to(a, to_shape)
        except ValueError:
            raise ValueError(f"{name} of shape {a.shape} is not broadcastable to {to_shape}") from None

    w = None if weight is None else _real(weight, "weight", shape)
    pw = None if pos_weight is None else _real(pos_weight, "pos_weight", (C,))
    if pw is not None and not shape:
        pw = pw.reshape(())

    if out is not None:
        if not return_grad:
            raise ValueError("out= receives the gradient and requires return_grad=True")
        _check_out(out, shape, logits.dtype, require_contiguous=True)

    # ---- the values the API computes with, in float64
    x = logits.astype(np.float64)
    t = target.astype(compute_dtype).astype(np.float64)
    w = np.ones(shape) if w is None else w.astype(weight_dtype).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        if pw is None:
            lw = np.ones(shape)
            pwt = t
        else:
            pw = pw.astype(weight_dtype).astype(np.float64)
            lw = 1.0 + (pw - 1.0) * t
            pwt = pw * t
        # (1 - t) x + lw softplus(-x), with softplus(-x) = max(-x, 0) + log1p(exp(-|x|)); for
        # x < 0, (1 - t) x + lw (-x) = -x (lw - 1 + t) = -x pw t, so the same value is
        #     (x >= 0 ? (1 - t) x : -pw t x) + lw log1p(exp(-|x|)),
        # times w, which multiplies the factors before x does: then no intermediate is beyond the
        # float range (lw * -x, or pw t |x| with w < 1, can be) where the loss is not, for finite x.
        # At x = -inf the definition is -inf + inf = NaN whatever t is (PyTorch's too).
        pwt_neg = t if pw is None else pw * t
        loss_el = np.where(x >= 0, (w * (1.0 - t)) * x, (w * pwt_neg) * -x) + (w * lw) * np.log1p(np.exp(-np.abs(x)))
        loss_el = np.where(x == -np.inf, np.nan, loss_el)

        n = loss_el.size
        if reduction == "mean":
            loss = np.float64(np.sum(loss_el)) / np.float64(n) if n else np.float64(np.nan)
            scale = 1.0 / n if n else np.nan
        elif reduction == "sum":
            loss = np.float64(np.sum(loss_el))
            scale = 1.0
        else:
            loss = np.asarray(loss_el, dtype=np.float64)
            scale = 1.0
        if not return_grad:
            return loss
        grad = np.ascontiguousarray(scale * w * (lw * _sigmoid64(x) - pwt)).reshape(shape)  # 0-d stays 0-d

    if out is not None:
        out[...] = grad
        return loss, out
    return loss, grad


# ----------------------------------------------------------------------------- backward of the softmax family


def _backward_args(a, b, axis, out, names):
    """Shared checks of softmax_backward / log_softmax_backward; returns (a, b, axis)."""
    a = _as_logits(a, names[0])
    b = _as_logits(b, names[1])
    if a.dtype != b.dtype:
        raise TypeError(f"{names[0]} ({a.dtype}) and {names[1]} ({b.dtype}) must have the same dtype")
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} {a.shape} and {names[1]} {b.shape} must have the same shape")
    ax = _normalize_axis(axis, a.ndim)
    if out is not None:
        _check_out(out, a.shape, a.dtype, require_contiguous=False)
    return a, b, ax


def _finish(result, ax, out):
    result = np.moveaxis(result, -1, ax)
    if out is not None:
        out[...] = result
        return out
    return np.ascontiguousarray(result)


def softmax_backward(probs, grad_output, axis=-1, *, out=None):
    """Vector-Jacobian product of softmax along ``axis`` (float64):
    ``gx_j = p_j * (g_j - sum_k p_k g_k)``.

    ``probs`` and ``grad_output``: float32 or float64 (the same), the same shape.
    Returns float64, or ``out`` (same shape and dtype, any strides, may alias an input).
    """
    p, g, ax = _backward_args(probs, grad_output, axis, out, ("probs", "grad_output"))
    p = np.moveaxis(p.astype(np.float64), ax, -1)
    g = np.moveaxis(g.astype(np.float64), ax, -1)
    with np.errstate(invalid="ignore", over="ignore"):
        dot = np.sum(p * g, axis=-1, keepdims=True)
        gx = p * (g - dot)
    return _finish(gx, ax, out)


def log_softmax_backward(log_probs, grad_output, axis=-1, *, out=None):
    """Vector-Jacobian product of log_softmax along ``axis`` (float64):
    ``gx_j = g_j - exp(lp_j) * sum_k g_k``.

    Same arguments as :func:`softmax_backward` (``log_probs`` in place of ``probs``).
    """
    lp, g, ax = _backward_args(log_probs, grad_output, axis, out, ("log_probs", "grad_output"))
    lp = np.moveaxis(lp.astype(np.float64), ax, -1)
    g = np.moveaxis(g.astype(np.float64), ax, -1)
    with np.errstate(invalid="ignore", over="ignore"):
        gx = g - np.exp(lp) * np.sum(g, axis=-1, keepdims=True)
    return _finish(gx, ax, out)


# ---------------------------------------------------------------- candidate samplers

def candidate_probability(sampler, classes, range_max, *, unigrams=None, distortion=1.0):
    """The probability Q(c) with which a candidate sampler draws each class of ``classes``
    (float64), from the samplers' definitions (TensorFlow's range samplers):

    * ``"uniform"``: ``1 / range_max``;
    * ``"log_uniform"``: ``log((c + 2) / (c + 1)) / log(range_max + 1)``;
    * ``"unigram"``: ``unigrams[c] ** distortion / sum(unigrams ** distortion)``.
    """
    c = np.asarray(classes, dtype=np.float64)
    if sampler == "uniform":
        return np.full(c.shape, 1.0 / range_max)
    if sampler == "log_uniform":
        return np.log((c + 2.0) / (c + 1.0)) / np.log(range_max + 1.0)
    if sampler == "unigram":
        w = np.asarray(unigrams, dtype=np.float64) ** float(distortion)
        return (w / w.sum())[np.asarray(classes)]
    raise ValueError(f"unknown sampler {sampler!r}")


def expected_count(p, num_sampled, num_tries):
    """The expected count of a class of probability ``p`` among ``num_sampled`` candidates
    drawn in ``num_tries`` tries (TensorFlow's definition): ``p * num_sampled`` when every
    try was kept, else the probability that it was drawn at least once,
    ``1 - (1 - p) ** num_tries``."""
    p = np.asarray(p, dtype=np.float64)
    if num_tries == num_sampled:
        return p * num_sampled
    return -np.expm1(num_tries * np.log1p(-p))


# ---------------------------------------------------------------- sampled losses

#: The gradients of a sampled loss: ``inputs`` (N, D); ``ids`` the sorted distinct classes
#: touched (true and sampled); ``weights`` (len(ids), D) and ``biases`` (len(ids),) or None,
#: the gradient rows of those classes.
SampledGrads = namedtuple("SampledGrads", ["inputs", "ids", "weights", "biases"])

#: What TensorFlow adds to the logit of an accidental hit: float32's most negative finite value.
ACCIDENTAL_HIT = -3.4028234663852886e38


def _sampled_logits(weights, biases, labels, inputs, sampled_values, num_true, remove_accidental_hits,
                    subtract_log_q):
    """TensorFlow's _compute_sampled_logits in float64: the logits (N, num_true + S) of the
    true classes then the sampled ones, and their targets (1/num_true, then 0)."""
    w = np.asarray(weights, dtype=np.float64)
    x = np.asarray(inputs, dtype=np.float64)
    b = None if biases is None else np.asarray(biases, dtype=np.float64)
    n = x.shape[0]
    y = np.asarray(labels).reshape(n, num_true).astype(np.int64)
    sampled, true_count, sampled_count = sampled_values
    sampled = np.asarray(sampled, dtype=np.int64)
    true_logits = np.einsum("nd,nkd->nk", x, w[y])
    sampled_logits = x @ w[sampled].T
    if b is not None:
        true_logits = true_logits + b[y]
        sampled_logits = sampled_logits + b[sampled]
    if remove_accidental_hits:
        hit = (y[:, :, None] == sampled[None, None, :]).any(axis=1)
        sampled_logits = sampled_logits + np.where(hit, ACCIDENTAL_HIT, 0.0)
    if subtract_log_q:
        true_logits = true_logits - np.log(np.asarray(true_count, dtype=np.float64).reshape(n, num_true))
        sampled_logits = sampled_logits - np.log(np.asarray(sampled_count, dtype=np.float64))
    logits = np.concatenate([true_logits, sampled_logits], axis=1)
    targets = np.zeros_like(logits)
    targets[:, :num_true] = 1.0 / num_true
    return logits, targets, w, x, b, y, sampled


def _sampled_loss(row_loss_and_grad, weights, biases, labels, inputs, sampled_values, num_true,
                  remove_accidental_hits, subtract_log_q, reduction, return_grad):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
    logits, targets, w, x, b, y, sampled = _sampled_logits(weights, biases, labels, inputs, sampled_values,
                                                            num_true, remove_accidental_hits, subtract_log_q)
    n = x.shape[0]
    rows, g = row_loss_and_grad(logits, targets)
    if reduction == "mean":  # the mean of no examples is NaN
        loss = rows.sum() / n if n else np.float64(np.nan)
        g = g / n if n else g
    else:
        loss = rows.sum() if reduction == "sum" else rows
    if not return_grad:
        return loss
    g_true, g_sampled = g[:, :num_true], g[:, num_true:]
    d_inputs = np.einsum("nk,nkd->nd", g_true, w[y]) + g_sampled @ w[sampled]
    d_w = np.zeros_like(w)
    np.add.at(d_w, y.ravel(), (g_true[:, :, None] * x[:, None, :]).reshape(-1, x.shape[1]))
    np.add.at(d_w, sampled, g_sampled.T @ x)
    ids = np.unique(np.concatenate([y.ravel(), sampled]))
    d_b = None
    if b is not None:
        d_b = np.zeros_like(b)
        np.add.at(d_b, y.ravel(), g_true.ravel())
        np.add.at(d_b, sampled, g_sampled.sum(axis=0))
        d_b = d_b[ids]
    return loss, SampledGrads(d_inputs, ids, d_w[ids], d_b)


def _softmax_rows(logits, targets):
    lp = _log_softmax_last(logits)
    return -np.sum(targets * lp, axis=1), np.exp(lp) - targets


def _sigmoid_rows(logits, targets):
    # sum_j softplus(z_j) - t_j z_j, and its gradient sigmoid(z) - t
    return np.sum(np.logaddexp(0.0, logits) - targets * logits, axis=1), _sigmoid64(logits) - targets


def sampled_softmax_loss(weights, biases, labels, inputs, sampled_values, *, num_true=1,
                         remove_accidental_hits=True, subtract_log_q=True, reduction="mean", return_grad=False):
    """Sampled softmax loss (float64 reference), TensorFlow's ``sampled_softmax_loss``.

    With ``sampled_values = (sampled (S,), true_expected_count (N, num_true),
    sampled_expected_count (S,))``, the logits of row n are ``<inputs_n, W_c> + b_c`` for its
    true classes and for the sampled ones.  An accidental hit (a sampled class that is one of
    the row's true classes) gets ``ACCIDENTAL_HIT`` added, and with ``subtract_log_q`` each
    logit loses ``log(expected count)``.  The row's loss is the softmax cross-entropy over its
    ``num_true + S`` logits with targets ``1/num_true`` on the true ones.  ``reduction``:
    "mean" over rows, "sum", or "none" (per-row losses; the gradient is that of their sum).
    With ``return_grad``, ``(loss, SampledGrads)``.
    """
    return _sampled_loss(_softmax_rows, weights, biases, labels, inputs, sampled_values, num_true,
                         remove_accidental_hits, subtract_log_q, reduction, return_grad)


def nce_loss(weights, biases, labels, inputs, sampled_values, *, num_true=1, remove_accidental_hits=False,
             subtract_log_q=True, reduction="mean", return_grad=False):
    """Noise-contrastive estimation loss (float64 reference), TensorFlow's ``nce_loss``: the logits
    of :func:`sampled_softmax_loss`, and per row the sum over them of the sigmoid cross-entropy
    with targets ``1/num_true`` (true) and 0 (sampled)."""
    return _sampled_loss(_sigmoid_rows, weights, biases, labels, inputs, sampled_values, num_true,
                         remove_accidental_hits, subtract_log_q, reduction, return_grad)


# ----------------------------------------------------------------------------- linear + cross-entropy

#: The gradients of :func:`linear_cross_entropy` (float64): ``inputs`` (N, D), ``classifier``
#: (C, D), ``bias`` (C,) or None.
LinearGrads = namedtuple("LinearGrads", ["inputs", "classifier", "bias"])


def linear_cross_entropy(inputs, classifier, target, *, bias=None, weight=None, ignore_index=-100,
                         reduction="mean", label_smoothing=0.0, z_loss=0.0, return_grad=False):
    """Cross-entropy of a linear layer's logits (float64 reference): with
    ``logits = inputs @ classifier.T + bias``, the loss is :func:`cross_entropy` of ``logits``,
    and by the chain rule, with ``G = d loss / d logits``::

        d inputs = G @ classifier,   d classifier = G.T @ inputs,   d bias = sum_n G[n]

    Returns ``loss``, or ``(loss, LinearGrads)`` with ``return_grad`` (``bias`` None without a
    bias).
    """
    x = np.asarray(inputs).astype(np.float64)
    w = np.asarray(classifier).astype(np.float64)
    logits = x @ w.T
    if bias is not None:
        logits = logits + np.asarray(bias).astype(np.float64)
    result = cross_entropy(logits, target, weight=weight, ignore_index=ignore_index, reduction=reduction,
                           label_smoothing=label_smoothing, z_loss=z_loss, return_grad=return_grad)
    if not return_grad:
        return result
    loss, g = result
    return loss, LinearGrads(g @ w, g.T @ x, None if bias is None else g.sum(axis=0))
