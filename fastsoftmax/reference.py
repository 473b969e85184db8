"""Pure NumPy float64 reference implementations of the fastsoftmax API.

This module is the oracle the test-suite compares the C kernels against.  It is
written for clarity, directly from the mathematical definitions (never from the
kernels), and computes everything in float64 whatever the input dtype:

* ``softmax(x)[j]      = exp(x[j] - m) / sum_c exp(x[c] - m)``, ``m = max_c x[c]``
* ``log_softmax(x)[j]  = (x[j] - m) - log(sum_c exp(x[c] - m))``
* ``logsumexp(x)       = m + log(sum_c exp(x[c] - m))``
* ``cross_entropy``    = ``torch.nn.functional.cross_entropy`` with the class axis
  given by ``axis`` (default last), optionally with its analytic gradient.

The functions have the signatures of the public API (``fastsoftmax.softmax`` ...),
perform the same argument checks and raise the same exception types with the same
kind of messages.  Results are float64: arrays are float64 and reduced losses are
``np.float64`` scalars.  When ``out=`` is given, the float64 result is rounded into
``out`` (which, as for the public API, must have the input's dtype) and ``out`` is
returned.

Special values follow PyTorch (see notes/SPEC.md): a row of all ``-inf`` gives a NaN
row, a row containing ``+inf`` gives a NaN (log-)softmax row, a NaN poisons only its
own row, and ``-inf`` entries in an otherwise finite row are masked classes with
probability exactly 0.  ``logsumexp`` follows ``torch.logsumexp``: all ``-inf`` ->
``-inf``; ``+inf`` present (and no NaN) -> ``+inf``; NaN present -> NaN; an empty
class axis -> ``-inf``.

Only NumPy is imported, so this file can be used on its own (without the compiled
extension) as ``import reference`` after adding its directory to ``sys.path``.
"""

import operator

import numpy as np

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy"]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_REDUCTIONS = ("mean", "sum", "none")


# ----------------------------------------------------------------------------- checks


def _as_logits(x, name="x"):
    """Return ``x`` as an ndarray, raising TypeError unless it is float32/float64."""
    x = np.asarray(x)
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"{name} must have dtype float32 or float64, got {x.dtype}")
    return x


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
    if require_contiguous and not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous")
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


def softmax(x, axis=-1, *, out=None):
    """Softmax of ``x`` along ``axis``, computed in float64.

    Returns a float64 array of ``x``'s shape, or ``out`` (same shape and dtype as
    ``x``, writable, any strides) filled with the result.
    """
    x = _as_logits(x)
    ax = _normalize_axis(axis, x.ndim)
    if out is not None:
        _check_out(out, x.shape, x.dtype, require_contiguous=False)
    p = np.moveaxis(_softmax_last(np.moveaxis(x.astype(np.float64), ax, -1)), -1, ax)
    if out is not None:
        out[...] = p
        return out
    return np.ascontiguousarray(p)


def log_softmax(x, axis=-1, *, out=None):
    """Log-softmax of ``x`` along ``axis``, computed in float64.

    Returns a float64 array of ``x``'s shape, or ``out`` (same shape and dtype as
    ``x``, writable, any strides) filled with the result.
    """
    x = _as_logits(x)
    ax = _normalize_axis(axis, x.ndim)
    if out is not None:
        _check_out(out, x.shape, x.dtype, require_contiguous=False)
    lp = np.moveaxis(_log_softmax_last(np.moveaxis(x.astype(np.float64), ax, -1)), -1, ax)
    if out is not None:
        out[...] = lp
        return out
    return np.ascontiguousarray(lp)


def logsumexp(x, axis=-1):
    """``log(sum(exp(x)))`` along ``axis`` in float64.

    Returns a float64 ndarray with the shape of ``x`` without ``axis`` (a 0-d array
    when ``x`` is 1-D).
    """
    x = _as_logits(x)
    ax = _normalize_axis(axis, x.ndim)
    return np.asarray(_logsumexp_last(np.moveaxis(x.astype(np.float64), ax, -1)), dtype=np.float64)


def cross_entropy(
    logits,
    target,
    *,
    axis=-1,
    weight=None,
    ignore_index=-100,
    reduction="mean",
    label_smoothing=0.0,
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
    eps = float(label_smoothing)
    if not 0.0 <= eps <= 1.0:  # also rejects NaN
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing!r}")
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
        weight = np.asarray(weight, dtype=np.float64)
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
            t_s = t * (1.0 - eps) + eps / C
            loss_rows = -np.sum(w * t_s * lp, axis=-1)
            n_rows = int(np.prod(batch_shape, dtype=np.int64))
            denom = float(n_rows)
            active = np.ones(batch_shape, dtype=bool)
        else:
            y = np.where(ignored, 0, target).astype(np.int64)  # placeholder class for ignored rows
            active = ~ignored
            w_y = w[y] if C > 0 else np.zeros(batch_shape)
            lp_y = np.take_along_axis(lp, y[..., None], axis=-1)[..., 0] if C > 0 else np.zeros(batch_shape)
            loss_rows = (1.0 - eps) * w_y * (-lp_y)
            if eps > 0.0:
                loss_rows = loss_rows + (eps / C) * np.sum(w * (-lp), axis=-1)
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
            if eps > 0.0:
                g = g + (eps / C) * (np.sum(w) * p - w)
        g = np.where(s_n != 0.0, s_n * g, 0.0)  # ignored rows: exactly 0 (even for NaN rows)
        grad = np.ascontiguousarray(np.moveaxis(g, -1, ax))

    if out is not None:
        out[...] = grad
        return loss, out
    return loss, grad
