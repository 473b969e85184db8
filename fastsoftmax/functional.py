"""The public functions: argument checks, axes, dtypes, targets and reductions.

Each function validates its arguments completely before any kernel runs (so a
bad argument never leaves a half-written output), lays the arrays out as
(n_outer, n_inner, n_classes) views with the class axis last, and calls one
kernel of :mod:`fastsoftmax._kernels` (which calls the C function of the same
name in ``src/``).  Nothing here loops over rows.
"""

import functools
import math
import numbers
import operator

import numpy as np

from . import _config, _kernels

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy", "sigmoid", "binary_cross_entropy_with_logits",
           "softmax_backward", "log_softmax_backward"]

_FLOAT_TYPES = (np.dtype(np.float32), np.dtype(np.float64))
_HALF = np.dtype(np.float16)
_REDUCTIONS = ("mean", "sum", "none")


# ---------------------------------------------------------------- helpers

def _takes_axis(f):
    """``f``, whose class axis is ``axis=``, with a hint for PyTorch's ``dim=`` in the TypeError
    of an unexpected keyword (nothing is checked on a call that binds)."""
    @functools.wraps(f)
    def call(*args, **kwargs):
        try:
            return f(*args, **kwargs)
        except TypeError as exc:
            if "dim" in kwargs and "'dim'" in str(exc):
                name = f.__qualname__.replace(".__init__", "")
                raise TypeError(f"{name}() got an unexpected keyword argument 'dim': the axis is "
                                "axis= here (PyTorch's dim=)") from None
            raise
    return call


def _float_array(x, name, half=True, scalar=False):
    """x as an ndarray of float32 or float64 (or float16 when ``half``), or
    TypeError; 0-d only when ``scalar``.  No copy, except for the rare
    misaligned arrays (from a byte buffer at an odd offset), which the kernels
    cannot read."""
    a = np.asarray(x)
    if a.dtype not in _FLOAT_TYPES and not (half and a.dtype == _HALF):
        kinds = "float16, float32 or float64" if half else "float32 or float64"
        raise TypeError(f"{name} must be {kinds}, got {a.dtype}")
    if a.ndim == 0 and not scalar:
        raise ValueError(f"{name} must have at least one dimension (the class axis)")
    if not a.flags.aligned:
        a = a.copy()
    return a


def _compute_dtype(dtype):
    """The dtype the kernels compute in (and of class weights, probability
    targets and losses): float32 for float16 data, else the data's dtype."""
    return np.dtype(np.float32) if dtype == _HALF else dtype


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


def _real(value, name):
    """value as a float, or TypeError unless it is a real number (not bool, not a string)."""
    if type(value) is float:  # the common case, before the slower ABC checks
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {value!r}")
    try:
        return float(value)
    except OverflowError:  # an int beyond the float range: out of every option's range
        raise ValueError(f"{name} is out of range: an integer beyond the float range") from None


def _nonnegative(value, name):
    """value as a finite float >= 0, or TypeError / ValueError."""
    v = _real(value, name)
    if not (math.isfinite(v) and v >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return v


def _same_view(a, b):
    return (a.__array_interface__["data"][0] == b.__array_interface__["data"][0]
            and a.strides == b.strides and a.shape == b.shape)


def _rows(arrays, axis):
    """(n_outer, n_inner, C) views of same-shaped arrays, class axis last.

    The batch dimensions (all but the class axis) are merged where every array
    allows it without a copy.  Returns None when more than two batch
    dimensions remain (the caller then makes its inputs contiguous).
    """
    if axis in (-1, arrays[0].ndim - 1) and arrays[0].shape[-1] and all(a.flags.c_contiguous for a in arrays):
        # the common case, without moveaxis / as_strided (which cost more than a small kernel call)
        c = arrays[0].shape[-1]
        return [a.reshape(1, a.size // c, c) for a in arrays]
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

def _inputs_for(out, inputs):
    """The inputs, each copied if it overlaps ``out`` without being the same
    view (an exact alias is fine: the kernels read each element before they
    write it)."""
    return [a.copy() if np.may_share_memory(out, a) and not _same_view(out, a) else a for a in inputs]


def _apart(out, a):
    """``a``, or a copy of it when it may share memory with ``out`` (None stays None)."""
    return a.copy() if a is not None and np.may_share_memory(out, a) else a


def _map_rows(kernel, inputs, out, axis):
    """out = kernel(*inputs) row by row along ``axis``: one kernel call over
    (outer, inner, C) views, or over contiguous copies when the layout does
    not merge into such a view."""
    if out.size == 0:
        return out
    views = _rows(inputs + [out], axis) if out.flags.aligned else None
    if views is not None:
        kernel(*views)
    else:
        tmp = np.empty(out.shape, out.dtype)
        kernel(*_rows([np.ascontiguousarray(a) for a in inputs] + [tmp], axis))
        np.copyto(out, tmp)
    return out


def _numeric_array(x, name):
    """``x`` as an ndarray for softmax, log_softmax and logsumexp: float16/32/64 as it is,
    integers, bools and lists of them in float64 (as SciPy computes them); TypeError for other
    dtypes."""
    a = np.asarray(x)
    if a.dtype.kind in "biu":
        a = a.astype(np.float64)
    return _float_array(a, name, scalar=True)


def _axes(axis, ndim):
    """``axis`` (an int, a tuple of ints, or None for all) as a sorted tuple of distinct axes in
    [0, ndim), or TypeError / AxisError / ValueError."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, tuple):
        axes = tuple(_axis(a, ndim) for a in axis)
        if len(set(axes)) != len(axes):
            raise ValueError(f"repeated axis in {axis!r}")
        return tuple(sorted(axes))
    return (_axis(axis, ndim),)


def _merged(x, axes):
    """``x`` with ``axes`` moved last and merged into one (a copy unless they already are)."""
    rest = [k for k in range(x.ndim) if k not in axes]
    moved = np.transpose(x, rest + list(axes))
    return moved.reshape(moved.shape[:len(rest)] + (math.prod(x.shape[k] for k in axes),))


def _softmax_impl(x, axis, out, log):
    x = _numeric_array(x, "x")
    if isinstance(axis, tuple) or axis is None or x.ndim == 0:
        return _softmax_axes(x, _axes(axis, x.ndim), out, log)
    axis = _axis(axis, x.ndim)
    if out is None:
        out = np.empty_like(x)
    else:
        _check_out(out, x.shape, x.dtype)
        (x,) = _inputs_for(out, [x])
    return _map_rows(lambda xv, ov: _kernels.softmax(xv, ov, log), [x], out, axis)


def _softmax_axes(x, axes, out, log):
    """softmax / log_softmax over several axes (None: all, as SciPy), through one merged axis."""
    if out is not None:
        _check_out(out, x.shape, x.dtype)
    if x.ndim == 0 or not axes:  # a softmax over one element
        result = np.full(x.shape, 0.0 if log else 1.0, x.dtype)
        result[np.isnan(x) | np.isinf(x)] = np.nan
    else:
        rest = [k for k in range(x.ndim) if k not in axes]
        merged = _merged(x, axes)
        y = np.empty(merged.shape, x.dtype)
        if y.size:
            _map_rows(lambda xv, ov: _kernels.softmax(xv, ov, log), [merged], y, -1)
        moved_shape = tuple(x.shape[k] for k in rest) + tuple(x.shape[k] for k in axes)
        result = np.transpose(y.reshape(moved_shape), np.argsort(rest + list(axes)))
    if out is None:
        return result.copy(order="C")  # (np.ascontiguousarray would make a 0-d result 1-d)
    np.copyto(out, result)
    return out


@_takes_axis
def softmax(x, axis=-1, *, out=None):
    """Softmax along ``axis``: ``exp(x - max) / sum(exp(x - max))``.

    Parameters
    ----------
    x : array_like of float16, float32 or float64
        Logits; any shape with at least one dimension, any strides.  float16
        is computed in float32 inside the kernel, one block of rows at a time,
        and rounded once to float16.
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


@_takes_axis
def log_softmax(x, axis=-1, *, out=None):
    """Log-softmax along ``axis``: ``x - logsumexp(x)``, computed as
    ``(x - max) - log(sum(exp(x - max)))`` so that large logits lose no digits.

    Same arguments and special values as :func:`softmax`.
    """
    return _softmax_impl(x, axis, out, True)


@_takes_axis
def logsumexp(x, axis=-1, *, keepdims=False, b=None, return_sign=False):
    """``log(sum(exp(x)))`` along ``axis``, without overflow.

    Returns an ndarray of ``x``'s dtype with the shape of ``x`` without
    ``axis`` (0-d for 1-D input).  As ``torch.logsumexp``: a row of all
    ``-inf`` (or an empty axis) gives ``-inf``, a row with ``+inf`` gives
    ``+inf``, a row with NaN gives NaN.

    SciPy's options (``scipy.special.logsumexp``) are here too, with one
    difference: the default ``axis`` is the last, not all of them.  ``axis``
    may be a tuple of axes or None (all); ``keepdims=True`` keeps the reduced
    axes with length 1; ``b`` (broadcastable to ``x``) weights the
    exponentials, ``log(sum(b * exp(x)))``, and with ``return_sign=True`` the
    result is ``(log|sum|, sign(sum))`` (without it a negative sum gives NaN).
    Integer, bool and list input is computed in float64.  With ``b`` the sum is
    formed in float64 by NumPy (a float32 result is then rounded once).
    """
    x = _numeric_array(x, "x")
    axes = _axes(axis, x.ndim)
    if b is not None or return_sign:
        result = _logsumexp_b(x, axes, b, return_sign)
    elif len(axes) == 1 and x.ndim:
        a = axes[0]
        shape = x.shape[:a] + x.shape[a + 1:]
        if x.shape[a] == 0:
            result = np.full(shape, -np.inf, dtype=x.dtype)
        else:
            result = np.empty(math.prod(shape), dtype=x.dtype)
            if result.size:
                views = _rows([x], a)
                if views is None:
                    views = _rows([np.ascontiguousarray(x)], a)
                _kernels.logsumexp(views[0], result)
            result = result.reshape(shape)
    else:
        merged = _merged(x, axes) if x.ndim else x.reshape(1)
        result = logsumexp(merged if merged.ndim else merged.reshape(1), -1)
    if keepdims:
        keep = lambda r: r.reshape(tuple(1 if k in axes else n for k, n in enumerate(x.shape)))  # noqa: E731
        result = (keep(result[0]), keep(result[1])) if isinstance(result, tuple) else keep(result)
    return result


def _logsumexp_b(x, axes, b, return_sign):
    """logsumexp with weights ``b`` and/or the sign, in float64 by NumPy: elements of weight 0
    count for nothing (as in SciPy), the max of the others is factored out."""
    x64 = x.astype(np.float64)
    if b is None:
        w = np.ones(x.shape)
    else:
        w = np.asarray(b)
        if w.dtype.kind not in "fiub":
            raise TypeError(f"b must be real numbers, got {w.dtype}")
        try:
            w = np.broadcast_to(w.astype(np.float64), x.shape)
        except ValueError:
            raise ValueError(f"b of shape {w.shape} does not broadcast to x's shape {x.shape}") from None
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        xm = np.where(w != 0, x64, -np.inf)
        m = np.max(xm, axis=axes, keepdims=True, initial=-np.inf)
        m = np.where(np.isfinite(m), m, 0.0)
        total = np.sum(w * np.exp(xm - m), axis=axes, keepdims=True)
        sign = np.sign(total)
        value = np.log(np.abs(total)) + m
        if not return_sign:
            value = np.where(total < 0, np.nan, value)
        value = np.squeeze(value, axis=axes).astype(x.dtype)
        sign = np.squeeze(sign, axis=axes).astype(x.dtype)
    return (value, sign) if return_sign else value


# ---------------------------------------------------------------- cross-entropy

def _ignore_index(value):
    """value as an int64-representable Python int, or TypeError / ValueError (PyTorch cannot
    represent a larger one either)."""
    value = _config.integer(value, "ignore_index")
    if not -2**63 <= value < 2**63:
        raise ValueError(f"ignore_index must fit in int64, got {value}")
    return value


def _ce_options(weight, ignore_index, reduction, label_smoothing, z_loss, n_classes, dtype):
    """The cross-entropy's options, checked: (weight as a contiguous array of ``dtype`` or None,
    ignore_index, label_smoothing, z_loss), or TypeError / ValueError."""
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    label_smoothing = _real(label_smoothing, "label_smoothing")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    z_loss = _nonnegative(z_loss, "z_loss")
    ignore_index = _ignore_index(ignore_index)
    if weight is not None:
        w = np.asarray(weight)
        if w.dtype.kind not in "fiu":
            raise TypeError(f"weight must be real numbers, got {w.dtype}")
        if w.shape != (n_classes,):
            raise ValueError(f"weight must have shape ({n_classes},) (one per class), got {w.shape}")
        weight = np.require(w.astype(dtype, copy=False), requirements="CA")  # contiguous and aligned
    return weight, ignore_index, label_smoothing, z_loss


def _row(k, batch_shape):
    """The position of flat row ``k`` in the batch: an int for one batch axis, else a tuple."""
    return k if len(batch_shape) == 1 else tuple(int(r) for r in np.unravel_index(k, batch_shape))


def _layout_hint(target_shape, logits_shape, axis):
    """A hint for class-index targets whose shape fits the class axis 1 (PyTorch's layout
    (N, C, d1, ...)) when another axis was given, or ''."""
    if len(logits_shape) >= 3 and axis != 1 and tuple(target_shape) == logits_shape[:1] + logits_shape[2:]:
        return "; with PyTorch's layout (N, C, d1, ...) the classes are on axis 1: pass axis=1"
    return ""


def _check_targets(target, batch_shape, n_classes, ignore_index, weight):
    """Class-index targets as a contiguous int64 vector in row order, the
    denominator of the "mean" reduction (the number of targets not ignored, or
    with ``weight`` the sum of their weights), and whether every target is a
    class, none ignored (the kernel then does not check them again).  One pass
    in C (the checks in NumPy took five passes, as long as the 65536 x 10
    kernel itself)."""
    if target.shape != batch_shape:
        raise ValueError(f"class-index target must have shape {batch_shape} (logits without the class axis), "
                         f"got {target.shape}")
    if target.dtype == np.uint64 and target.size and target.max() > np.iinfo(np.int64).max:
        # beyond int64, so beyond every class and every ignore_index: the first one is out of range
        k = int(np.argmax(target.reshape(-1) > np.iinfo(np.int64).max))
        raise IndexError(f"target {int(target.reshape(-1)[k])} at row {_row(k, batch_shape)} is out of range "
                         f"for {n_classes} classes")
    t = target.reshape(-1)
    if t.dtype != np.int64 or not (t.flags.c_contiguous and t.flags.aligned):
        # contiguous and aligned (a view of bytes may not be); np.require costs 2.5 us a call
        # even when it has nothing to do, a fifth of a small cross_entropy call
        t = np.require(t, np.int64, "CA")
    w64 = None if weight is None else np.ascontiguousarray(weight, dtype=np.float64)
    k, n_valid, weight_sum = _kernels.check_targets(t, n_classes, ignore_index, w64)
    if k >= 0:
        raise IndexError(f"target {t[k]} at row {_row(k, batch_shape)} is out of range for {n_classes} classes "
                         f"(valid: 0..{n_classes - 1}, or ignore_index={ignore_index})")
    return t, (float(n_valid) if weight is None else weight_sum), n_valid == t.size


_F32_MAX = float(np.finfo(np.float32).max)


def _loss_scalar(value, dtype):
    """A float loss as a NumPy scalar of ``dtype``; a float32 overflow gives inf, as a result
    (without the errstate context on the common path: it costs more than a small kernel)."""
    if dtype == np.float32 and _F32_MAX < abs(value) < math.inf:
        with np.errstate(over="ignore"):
            return dtype.type(value)
    return dtype.type(value)


@_takes_axis
def cross_entropy(logits, target, *, axis=-1, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0, z_loss=0.0, return_grad=False, out=None):
    """Softmax cross-entropy with the semantics of ``torch.nn.functional.cross_entropy``.

    The loss and, with ``return_grad=True``, its gradient come from one fused
    kernel call: each row of logits is read once for its max and sum of
    exponentials, and the gradient is written in a second pass over the row.

    Parameters
    ----------
    logits : array_like of float16, float32 or float64
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
    z_loss : float >= 0
        Adds ``z_loss * logsumexp(row)**2`` to each row's loss (the auxiliary
        loss of PaLM that keeps the softmax normaliser near 1), in the fused
        gradient too.  It is weighted and reduced like the main term: with
        index targets and ``weight`` it is multiplied by ``weight[target]``
        (with probability targets by 1); ignored rows contribute nothing.
    return_grad : bool
        Also return ``d loss / d logits`` (for "none": of ``loss.sum()``).
    out : ndarray, optional
        Receives the gradient: C-contiguous, logits' shape and dtype.
        ``out=logits`` computes the gradient in place (overwriting the logits).

    Returns
    -------
    loss, or ``(loss, grad)`` with ``return_grad=True``.  ``loss`` is a NumPy
    scalar of the logits' dtype for "mean" and "sum", an array with the batch
    shape for "none"; float32 for float16 logits (which are computed in
    float32, with the gradient rounded to float16).
    """
    logits = _float_array(logits, "logits")
    dtype = logits.dtype
    cdtype = _compute_dtype(dtype)  # of weights, probability targets and the loss
    axis = _axis(axis, logits.ndim)
    n_classes = logits.shape[axis]
    batch_shape = logits.shape[:axis] + logits.shape[axis + 1:]
    n_rows = math.prod(batch_shape)

    # ---- options
    weight, ignore_index, label_smoothing, z_loss = _ce_options(weight, ignore_index, reduction, label_smoothing,
                                                                z_loss, n_classes, cdtype)
    if out is not None:
        if not return_grad:
            raise ValueError("out= receives the gradient: pass return_grad=True")
        _check_out(out, logits.shape, dtype, contiguous=True)

    # ---- targets
    target = np.asarray(target)
    if target.dtype.kind in "iu":
        index_targets = True
        if target.shape != batch_shape:
            raise ValueError(f"class-index target must have shape {batch_shape} (logits without the class axis "
                             f"{axis}), got {target.shape}{_layout_hint(target.shape, logits.shape, axis)}")
        t, index_denom, targets_checked = _check_targets(target, batch_shape, n_classes, ignore_index, weight)
        prob = None
    elif target.dtype.kind == "f":
        index_targets = False
        if target.shape != logits.shape:
            hint = ""
            if target.shape == batch_shape:
                hint = ("; class indices must have an integer dtype (target.astype(np.int64)); float targets "
                        "are class probabilities")
            raise ValueError(f"probability target must have the logits' shape {logits.shape}, got "
                             f"{target.shape}{hint}")
        prob = target.astype(cdtype, copy=not target.flags.aligned)
        t = None
        targets_checked = False
    else:
        raise TypeError(f"target must hold integer class indices or float probabilities, got {target.dtype}")

    # ---- reduction factor
    if reduction != "mean":
        denom = 1.0
    elif index_targets:
        denom = index_denom
    else:
        denom = float(n_rows)
    grad_scale = 1.0 / denom if denom != 0.0 else math.copysign(math.inf, denom)  # as float64 1 / denom

    # ---- layout: no copies on the fast path (C-contiguous, class axis last)
    grad = None
    if return_grad:
        if out is not None:
            grad = out
            (logits,) = _inputs_for(out, [logits])
            # every other array argument is read while out is written, in another order: apart
            prob, weight, t = (_apart(out, a) for a in (prob, weight, t))
        else:
            grad = np.empty(logits.shape, dtype)
    # the kernel writes every row's loss for "none"; for "mean" and "sum" it returns their sum
    # without an array of them (at 2 classes it would be as large as the logits)
    loss_rows = np.empty(n_rows, np.float64) if reduction == "none" else None

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
        options = _kernels.CrossEntropyOptions(
            target=t, prob=pv, weight=weight, ignore_index=ignore_index, label_smoothing=label_smoothing,
            grad_scale=grad_scale, z_loss=z_loss, targets_checked=targets_checked)
        total = _kernels.cross_entropy(xv, options, loss_rows, gv)
    else:
        # no rows, or no classes: every index target then is ignored; a probability-target row
        # has no loss terms, but its z-loss is z * logsumexp(empty)**2 = z * (-inf)**2 = inf
        empty_z = prob is not None and n_rows and z_loss > 0.0
        total = np.inf if empty_z else 0.0
        if loss_rows is not None:
            loss_rows.fill(np.inf if empty_z else 0.0)
        if grad is not None:
            grad.fill(0)

    if reduction == "none":
        with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN losses are results
            loss = loss_rows.astype(cdtype).reshape(batch_shape)
    elif reduction == "sum":
        loss = _loss_scalar(total, cdtype)
    elif denom == 0.0:
        # PyTorch's mean is nll_sum / D + smoothing_sum / D, and nll_sum = 0 when D = 0: 0/0 = NaN
        loss = cdtype.type(np.nan)
    else:
        loss = _loss_scalar(total / denom, cdtype)  # Python floats: inf and NaN propagate, no warning
    return (loss, grad) if return_grad else loss


# ---------------------------------------------------------------- sigmoid and binary cross-entropy

def sigmoid(x, *, out=None):
    """The logistic function ``1 / (1 + exp(-x))``, elementwise.

    Computed as ``1 / (1 + e)`` or ``e / (1 + e)`` with ``e = exp(-|x|)``, so
    that neither side loses digits.  ``x`` may have any shape (0-d too) and
    dtype float16, float32 or float64; ``out`` (same shape and dtype, any
    strides) receives the result, ``out=x`` computes in place.
    """
    x = _float_array(x, "x", scalar=True)
    if out is None:
        out = np.empty_like(x)
    else:
        _check_out(out, x.shape, x.dtype)
        (x,) = _inputs_for(out, [x])
    if x.ndim == 0:
        _map_rows(_kernels.sigmoid, [x.reshape(1)], out.reshape(1), 0)
        return out
    return _map_rows(_kernels.sigmoid, [x], out, -1)


def _broadcast_param(value, shape, dtype, name):
    """A real array broadcast (without a copy) to ``shape``, in ``dtype``."""
    a = np.asarray(value)
    if a.dtype.kind not in "fiub":
        raise TypeError(f"{name} must be real numbers, got {a.dtype}")
    try:
        return np.broadcast_to(a.astype(dtype, copy=False), shape)
    except ValueError:
        raise ValueError(f"{name} of shape {a.shape} does not broadcast to {shape}") from None


def binary_cross_entropy_with_logits(logits, target, *, weight=None, pos_weight=None, reduction="mean",
                                     return_grad=False, out=None):
    """Binary cross-entropy on logits, one logistic regression per element,
    with the semantics of ``torch.nn.functional.binary_cross_entropy_with_logits``.

    For multi-label problems: each logit is the score of one label, and
    ``target`` says (or gives the probability) that the label applies::

        loss = weight * ((1 - t) * x + (1 + (pos_weight - 1) * t) * log(1 + exp(-x)))

    computed without overflow for any ``|x|`` and without cancellation.  With
    ``return_grad=True`` the gradient comes from the same kernel pass:
    ``s * weight * ((1 + (pos_weight - 1) * t) * sigmoid(x) - pos_weight * t)``.

    Parameters
    ----------
    logits : array_like of float16, float32 or float64
        Any shape (0-d too).
    target : array_like
        The logits' shape; floats in [0, 1] (soft labels allowed), bool or
        integer 0/1.  Values are not range-checked (as in PyTorch).
    weight : array_like, optional
        Broadcastable to the logits' shape: per element, per row, per label...
    pos_weight : array_like, optional
        Weight of the positive term per label, broadcastable to ``(C,)`` with
        ``C = logits.shape[-1]``.
    reduction : {"mean", "sum", "none"}
        "mean" divides the sum by the number of elements (NaN when there are
        none); "none" returns the loss of every element.
    return_grad : bool
        Also return ``d loss / d logits`` (for "none": of ``loss.sum()``).
    out : ndarray, optional
        Receives the gradient: C-contiguous, logits' shape and dtype;
        ``out=logits`` overwrites the logits.

    Returns
    -------
    loss, or ``(loss, grad)``.  ``loss`` is a NumPy scalar of the logits'
    dtype for "mean" and "sum", an array of the logits' shape for "none";
    float32 for float16 logits.
    """
    logits = _float_array(logits, "logits", scalar=True)
    dtype = logits.dtype
    cdtype = _compute_dtype(dtype)
    if not isinstance(reduction, str) or reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    shape = logits.shape
    n_classes = shape[-1] if shape else 1
    target = np.asarray(target)
    if target.dtype.kind not in "fiub":
        raise TypeError(f"target must be real numbers (floats in [0, 1], or bool), got {target.dtype}")
    if target.shape != shape:
        raise ValueError(f"target must have the logits' shape {shape}, got {target.shape}")
    target = target.astype(cdtype, copy=not target.flags.aligned)
    if return_grad and isinstance(out, np.ndarray):
        # the weights are read while out is written, in another order (pos_weight for every row,
        # a broadcast weight many times): apart from it, in their own layout
        weight = None if weight is None else _apart(out, np.asarray(weight))
        pos_weight = None if pos_weight is None else _apart(out, np.asarray(pos_weight))
    if weight is not None:
        weight = _broadcast_param(weight, shape, cdtype, "weight")
        if not weight.flags.aligned:
            weight = np.broadcast_to(weight.copy(), shape)
    if pos_weight is not None:
        pos_weight = np.require(_broadcast_param(pos_weight, (n_classes,), cdtype, "pos_weight"), requirements="CA")
    if out is not None:
        if not return_grad:
            raise ValueError("out= receives the gradient: pass return_grad=True")
        _check_out(out, shape, dtype, contiguous=True)

    grad = None
    if return_grad:
        grad = out if out is not None else np.empty(shape, dtype)
        if out is not None:
            logits, target = _inputs_for(out, [logits, target])
    loss_el = np.empty(shape, cdtype) if reduction == "none" else None
    numel = logits.size
    grad_scale = 1.0 / numel if reduction == "mean" and numel else 1.0

    total = 0.0
    if numel:
        # kernel views: rows along the last axis (a 0-d input is one row of one)
        arrays = [a for a in (logits, target, weight, loss_el, grad) if a is not None]
        if logits.ndim == 0:
            arrays = [a.reshape(1) for a in arrays]
        views = _rows(arrays, -1)
        if views is None:  # the outputs are C-contiguous: contiguous inputs merge
            n_in = 2 if weight is None else 3
            views = _rows([np.ascontiguousarray(a) if k < n_in else a for k, a in enumerate(arrays)], -1)
        views = iter(views)
        xv, tv = next(views), next(views)
        wv = next(views) if weight is not None else None
        lv = next(views) if loss_el is not None else None
        gv = next(views) if grad is not None else None
        row_sums = np.empty(xv.shape[0] * xv.shape[1], np.float64)
        total = _kernels.bce_logits(xv, tv, wv, pos_weight, grad_scale, row_sums, lv, gv)

    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if reduction == "none":
            loss = loss_el
        elif reduction == "sum":
            loss = cdtype.type(total)
        elif numel == 0:
            loss = cdtype.type(np.nan)  # the mean of no elements, as in PyTorch
        else:
            loss = cdtype.type(np.float64(total) / np.float64(numel))
    return (loss, grad) if return_grad else loss


# ---------------------------------------------------------------- backward of softmax and log-softmax

def _backward_impl(y, grad_output, axis, out, log):
    names = ("log_probs", "grad_output") if log else ("probs", "grad_output")
    y = _float_array(y, names[0], half=False)
    g = _float_array(grad_output, names[1], half=False)
    if g.dtype != y.dtype:
        raise TypeError(f"{names[1]} must have the dtype of {names[0]} ({y.dtype}), got {g.dtype}")
    if g.shape != y.shape:
        raise ValueError(f"{names[1]} must have the shape of {names[0]} {y.shape}, got {g.shape}")
    axis = _axis(axis, y.ndim)
    if out is None:
        out = np.empty(y.shape, y.dtype)
    else:
        _check_out(out, y.shape, y.dtype)
        y, g = _inputs_for(out, [y, g])
    return _map_rows(lambda yv, gv, ov: _kernels.softmax_backward(yv, gv, ov, log), [y, g], out, axis)


@_takes_axis
def softmax_backward(probs, grad_output, axis=-1, *, out=None):
    """Vector-Jacobian product of :func:`softmax`: the gradient with respect
    to the logits, given ``probs = softmax(x, axis)`` and the gradient
    ``grad_output`` with respect to ``probs``::

        grad_x = probs * (grad_output - sum(probs * grad_output, axis))

    One fused pass per row (the sum in double, then the output).  float32 or
    float64, both arguments of one dtype and shape, any strides; ``out`` (any
    strides) may be either argument (in place).
    """
    return _backward_impl(probs, grad_output, axis, out, False)


@_takes_axis
def log_softmax_backward(log_probs, grad_output, axis=-1, *, out=None):
    """Vector-Jacobian product of :func:`log_softmax`, given
    ``log_probs = log_softmax(x, axis)`` and ``grad_output``::

        grad_x = grad_output - exp(log_probs) * sum(grad_output, axis)

    Same arguments as :func:`softmax_backward`.
    """
    return _backward_impl(log_probs, grad_output, axis, out, True)
