"""The public functions: argument checks, axes, dtypes, targets and reductions.

Each function validates its arguments completely before any kernel runs (so a
bad argument never leaves a half-written output), lays the arrays out as
(n_outer, n_inner, n_classes) views with the class axis last, and calls one
kernel of :mod:`fastsoftmax._kernels` (which calls the C function of the same
name in ``src/``).  Nothing here loops over rows.
"""

import operator

import numpy as np

from . import _kernels

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy"]

_FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))
_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------- helpers

def _float_array(x, name):
    """x as an ndarray of float32 or float64, or TypeError.  No copy, except
    for the rare misaligned arrays (from a byte buffer at an odd offset),
    which the kernels cannot read."""
    a = np.asarray(x)
    if a.dtype not in _FLOAT_TYPES:
        raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
    if a.ndim == 0:
        raise ValueError(f"{name} must have at least one dimension (the class axis)")
    if not a.flags.aligned:
        a = a.copy()
    return a


def _axis(axis, ndim):
    try:
        axis = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an integer, got {axis!r}") from None
    if not -ndim <= axis < ndim:
        raise np.exceptions.AxisError(axis, ndim)
    return axis % ndim


def _check_out(out, shape, dtype, name="out", contiguous=False):
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype}, got {out.dtype}")
    if out.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {out.shape}")
    if contiguous and not (out.flags.c_contiguous and out.flags.aligned):
        raise ValueError(f"{name} must be C-contiguous and aligned")
    if not out.flags.writeable:
        raise ValueError(f"{name} is read-only")
    return out


def _same_view(a, b):
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.strides == b.strides and a.shape == b.shape)


def _rows(arrays, axis):
    """(n_outer, n_inner, C) views of same-shaped arrays, class axis last.

    The batch dimensions (all but the class axis) are merged where every array
    allows it without a copy.  Returns None when more than two batch
    dimensions remain (the caller then makes its inputs contiguous).
    """
    moved = [np.moveaxis(a, axis, -1) for a in arrays]
    shape = moved[0].shape
    dims = [(shape[k], [m.strides[k] for m in moved]) for k in range(len(shape) - 1) if shape[k] != 1]
    merged = []
    for n, strides in dims:
        if merged:
            pn, pstrides = merged[-1]
            if all(ps == s * n for ps, s in zip(pstrides, strides)):
                merged[-1] = (pn * n, strides)
                continue
        merged.append((n, strides))
    if len(merged) > 2:
        return None
    while len(merged) < 2:
        merged.insert(0, (1, [0] * len(arrays)))
    (n0, s0), (n1, s1) = merged
    return [np.lib.stride_tricks.as_strided(m, shape=(n0, n1, shape[-1]),
                                            strides=(s0[k], s1[k], m.strides[-1]),
                                            writeable=m.flags.writeable)
            for k, m in enumerate(moved)]


# ---------------------------------------------------------------- softmax family

def _softmax_impl(x, axis, out, log):
    x = _float_array(x, "x")
    axis = _axis(axis, x.ndim)
    if out is None:
        out = np.empty_like(x)
    else:
        _check_out(out, x.shape, x.dtype)
        if np.may_share_memory(out, x) and not _same_view(out, x):
            x = x.copy()  # partial overlap: read from a copy
    if x.size == 0:
        return out
    views = _rows([x, out], axis) if out.flags.aligned else None
    if views is not None:
        _kernels.softmax(views[0], views[1], log)
    else:
        tmp = np.empty(x.shape, x.dtype)
        xc, tc = _rows([np.ascontiguousarray(x), tmp], axis)
        _kernels.softmax(xc, tc, log)
        np.copyto(out, tmp)
    return out


def softmax(x, axis=-1, *, out=None):
    """Softmax along ``axis``: ``exp(x - max) / sum(exp(x - max))``.

    Parameters
    ----------
    x : array_like of float32 or float64
        Logits; any shape with at least one dimension, any strides.
    axis : int
        The class axis (default: the last).
    out : ndarray, optional
        Receives the result; same shape and dtype as ``x``, any strides.
        ``out=x`` computes in place.

    Returns
    -------
    ndarray of ``x``'s dtype and shape.  Rows that are all ``-inf`` or contain
    ``+inf`` or NaN give NaN, as ``torch.softmax`` does.
    """
    return _softmax_impl(x, axis, out, False)


def log_softmax(x, axis=-1, *, out=None):
    """Log-softmax along ``axis``: ``x - logsumexp(x)``, computed as
    ``(x - max) - log(sum(exp(x - max)))`` so that large logits lose no digits.

    Same arguments and special values as :func:`softmax`.
    """
    return _softmax_impl(x, axis, out, True)


def logsumexp(x, axis=-1):
    """``log(sum(exp(x)))`` along ``axis``, without overflow.

    Returns an ndarray of ``x``'s dtype with the shape of ``x`` without
    ``axis`` (0-d for 1-D input).  As ``torch.logsumexp``: a row of all
    ``-inf`` (or an empty axis) gives ``-inf``, a row with ``+inf`` gives
    ``+inf``, a row with NaN gives NaN.
    """
    x = _float_array(x, "x")
    axis = _axis(axis, x.ndim)
    shape = x.shape[:axis] + x.shape[axis + 1:]
    if x.shape[axis] == 0:
        return np.full(shape, -np.inf, dtype=x.dtype)
    out = np.empty(int(np.prod(shape, dtype=np.int64)), dtype=x.dtype)
    if out.size:
        views = _rows([x], axis)
        if views is None:
            views = _rows([np.ascontiguousarray(x)], axis)
        _kernels.logsumexp(views[0], out)
    return out.reshape(shape)


# ---------------------------------------------------------------- cross-entropy

def _check_targets(target, batch_shape, n_classes, ignore_index):
    """Class-index targets as a contiguous int64 vector in row order."""
    if target.shape != batch_shape:
        raise ValueError(f"class-index target must have shape {batch_shape} (logits without the class axis), "
                         f"got {target.shape}")
    if target.dtype == np.uint64 and target.size and target.max() > np.iinfo(np.int64).max:
        raise ValueError("class-index target values do not fit in int64")
    t = np.ascontiguousarray(target.reshape(-1), dtype=np.int64)
    bad = (t != ignore_index) & ((t < 0) | (t >= n_classes))
    if bad.any():
        k = int(np.argmax(bad))
        row = np.unravel_index(k, batch_shape) if len(batch_shape) != 1 else k
        if isinstance(row, tuple):
            row = tuple(int(r) for r in row)
        raise IndexError(f"target {t[k]} at row {row} is out of range for {n_classes} classes "
                         f"(valid: 0..{n_classes - 1}, or ignore_index={ignore_index})")
    return t


def cross_entropy(logits, target, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, return_grad=False, out=None):
    """Softmax cross-entropy with the semantics of ``torch.nn.functional.cross_entropy``.

    The loss and, with ``return_grad=True``, its gradient come from one fused
    kernel call: each row of logits is read once for its max and sum of
    exponentials, and the gradient is written in a second pass over the row.

    Parameters
    ----------
    logits : array_like of float32 or float64
        Unnormalised scores; the class axis is ``axis`` (PyTorch uses dim 1).
    target : array_like
        Either integer class indices with the shape of ``logits`` without the
        class axis, or float class probabilities with the shape of ``logits``
        (soft labels).
    axis : int
        The class axis (default: the last).
    weight : array_like, optional
        Class weights, shape ``(C,)``.
    ignore_index : int
        Index targets equal to it contribute neither loss nor gradient
        (index targets only).
    reduction : {"mean", "sum", "none"}
        "mean" with index targets divides by the sum of ``weight[target]``
        over rows not ignored (their count without weights); all rows ignored
        gives NaN.  With probability targets it divides by the number of rows.
    label_smoothing : float in [0, 1]
        Mixes the target with the uniform distribution, as PyTorch does
        (ignored rows contribute nothing to the smoothing term).
    return_grad : bool
        Also return ``d loss / d logits`` (for "none": of ``loss.sum()``).
    out : ndarray, optional
        Receives the gradient: C-contiguous, logits' shape and dtype.
        ``out=logits`` computes the gradient in place (overwriting the logits).

    Returns
    -------
    loss, or ``(loss, grad)`` with ``return_grad=True``.  ``loss`` is a NumPy
    scalar of the logits' dtype for "mean" and "sum", an array with the batch
    shape for "none".
    """
    logits = _float_array(logits, "logits")
    dtype = logits.dtype
    axis = _axis(axis, logits.ndim)
    n_classes = logits.shape[axis]
    batch_shape = logits.shape[:axis] + logits.shape[axis + 1:]
    n_rows = int(np.prod(batch_shape, dtype=np.int64))

    # ---- options
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    try:
        label_smoothing = float(label_smoothing)
    except (TypeError, ValueError):
        raise TypeError(f"label_smoothing must be a number, got {label_smoothing!r}") from None
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    try:
        ignore_index = operator.index(ignore_index)
    except TypeError:
        raise TypeError(f"ignore_index must be an integer, got {ignore_index!r}") from None
    if weight is not None:
        w = np.asarray(weight)
        if w.dtype.kind not in "fiu":
            raise TypeError(f"weight must be real numbers, got {w.dtype}")
        if w.shape != (n_classes,):
            raise ValueError(f"weight must have shape ({n_classes},) (one per class), got {w.shape}")
        weight = np.ascontiguousarray(w, dtype=dtype)
    if out is not None:
        if not return_grad:
            raise ValueError("out= receives the gradient: pass return_grad=True")
        _check_out(out, logits.shape, dtype, contiguous=True)

    # ---- targets
    target = np.asarray(target)
    if target.dtype.kind in "iu":
        index_targets = True
        t = _check_targets(target, batch_shape, n_classes, ignore_index)
        prob = None
    elif target.dtype.kind == "f":
        index_targets = False
        if target.shape != logits.shape:
            raise ValueError(f"probability target must have the logits' shape {logits.shape}, got {target.shape}")
        prob = target.astype(dtype, copy=not target.flags.aligned)
        t = None
    else:
        raise TypeError(f"target must hold integer class indices or float probabilities, got {target.dtype}")

    # ---- reduction factor
    if reduction != "mean":
        denom = 1.0
    elif index_targets:
        valid = t != ignore_index
        if weight is None:
            denom = float(np.count_nonzero(valid))
        else:
            denom = float(weight[t[valid]].sum(dtype=np.float64))
    else:
        denom = float(n_rows)
    with np.errstate(divide="ignore"):
        grad_scale = float(np.float64(1.0) / np.float64(denom))

    # ---- layout: no copies on the fast path (C-contiguous, class axis last)
    grad = None
    if return_grad:
        if out is not None:
            grad = out
            if np.may_share_memory(out, logits) and not _same_view(out, logits):
                logits = logits.copy()
            if prob is not None and np.may_share_memory(out, prob):
                prob = prob.copy()
        else:
            grad = np.empty(logits.shape, dtype)
    loss_rows = np.empty(n_rows, np.float64)  # the kernel writes every row

    if n_rows and n_classes:
        arrays = [logits] + ([prob] if prob is not None else []) + ([grad] if grad is not None else [])
        views = _rows(arrays, axis)
        if views is None:
            logits = np.ascontiguousarray(logits)
            prob = None if prob is None else np.ascontiguousarray(prob)
            arrays = [logits] + ([prob] if prob is not None else []) + ([grad] if grad is not None else [])
            views = _rows(arrays, axis)
        xv = views[0]
        pv = views[1] if prob is not None else None
        gv = views[-1] if grad is not None else None
        total = _kernels.cross_entropy(xv, t, ignore_index, pv, weight, label_smoothing, grad_scale,
                                       loss_rows, gv)
    else:
        total = 0.0  # no rows, or no classes (every index target then is ignored)
        loss_rows.fill(0.0)
        if grad is not None:
            grad.fill(0)

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # inf and NaN losses are results
        if reduction == "none":
            loss = loss_rows.astype(dtype).reshape(batch_shape)
        elif reduction == "sum":
            loss = dtype.type(total)
        elif denom == 0.0:
            # PyTorch's mean is nll_sum / D + smoothing_sum / D, and nll_sum = 0 when D = 0: 0/0 = NaN
            loss = dtype.type(np.nan)
        else:
            loss = dtype.type(np.float64(total) / np.float64(denom))
    return (loss, grad) if return_grad else loss
