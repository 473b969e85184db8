"""Competitor implementations used by ``python -m fastsoftmax`` and ``benchmarks/``.

These are deliberately the straightforward versions a user would write, so that the
timings answer "how much faster is fastsoftmax than what I would do otherwise":

* plain NumPy (computes in the input dtype, so float32 stays float32);
* PyTorch (CPU) when it is importable -- torch is imported lazily, inside the
  functions, and is never required;
* SciPy (``scipy.special``) when it is importable, same lazy import;
* scikit-learn's ``HalfMultinomialLoss().loss_gradient`` (a private but stable Cython
  kernel, the one ``HistGradientBoostingClassifier`` uses) when it is importable;
* a memory-copy baseline (``np.copyto``) showing the memory-bandwidth ceiling for an
  operation that reads and writes one array of the same size.

All functions take NumPy arrays and return NumPy arrays / scalars.  The class axis is
the last one for the cross-entropy baselines (index targets, "mean" reduction), which is
the layout used by every benchmark in this project.
"""

import numpy as np

__all__ = [
    "has_torch",
    "has_scipy",
    "numpy_softmax",
    "numpy_log_softmax",
    "numpy_logsumexp",
    "numpy_cross_entropy",
    "torch_softmax",
    "torch_log_softmax",
    "torch_logsumexp",
    "torch_cross_entropy",
    "scipy_softmax",
    "scipy_log_softmax",
    "scipy_logsumexp",
    "memcpy",
    "has_sklearn",
    "sklearn_multinomial_loss",
]


def _optional_import(name):
    try:
        return __import__(name, fromlist=["_"])
    except Exception:  # ImportError, or a broken installation
        return None


def has_torch():
    """True when ``import torch`` works (imports it on first call)."""
    return _optional_import("torch") is not None


def has_sklearn():
    """True when ``sklearn._loss.loss.HalfMultinomialLoss`` can be imported."""
    return _optional_import("sklearn._loss.loss") is not None


def has_scipy():
    """True when ``import scipy.special`` works."""
    return _optional_import("scipy.special") is not None


# ----------------------------------------------------------------------------- NumPy


def numpy_softmax(x, axis=-1):
    """Plain NumPy softmax: subtract the max, exponentiate, divide by the sum."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def numpy_log_softmax(x, axis=-1):
    """Plain NumPy log-softmax: (x - max) - log(sum(exp(x - max)))."""
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def numpy_logsumexp(x, axis=-1):
    """Plain NumPy logsumexp: max + log(sum(exp(x - max)))."""
    m = x.max(axis=axis, keepdims=True)
    r = m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
    return np.squeeze(r, axis=axis)


def numpy_cross_entropy(logits, target, return_grad=True):
    """Plain NumPy cross-entropy, index targets, mean reduction, class axis last.

    logits: (N, C) array (float32 stays float32); target: (N,) integer class indices.
    Forward: log-softmax via max / logsumexp, loss = -mean(logp[n, target[n]]).
    Backward (``return_grad=True``): grad = (softmax - onehot) / N.
    Returns ``loss`` or ``(loss, grad)``.
    """
    n = logits.shape[0]
    rows = np.arange(n)
    s = logits - logits.max(axis=1, keepdims=True)
    lse = np.log(np.exp(s).sum(axis=1, keepdims=True))
    logp = s - lse
    loss = -logp[rows, target].mean()
    if not return_grad:
        return loss
    grad = np.exp(logp)
    grad[rows, target] -= 1
    grad /= n
    return loss, grad


# ----------------------------------------------------------------------------- PyTorch


def torch_softmax(x, axis=-1):
    """``torch.softmax`` on ``torch.from_numpy(x)`` (zero-copy), result as NumPy."""
    import torch

    return torch.softmax(torch.from_numpy(x), dim=axis).numpy()


def torch_log_softmax(x, axis=-1):
    """``torch.log_softmax`` on ``torch.from_numpy(x)``, result as NumPy."""
    import torch

    return torch.log_softmax(torch.from_numpy(x), dim=axis).numpy()


def torch_logsumexp(x, axis=-1):
    """``torch.logsumexp`` on ``torch.from_numpy(x)``, result as NumPy."""
    import torch

    return torch.logsumexp(torch.from_numpy(x), dim=axis).numpy()


def torch_cross_entropy(logits, target, return_grad=True):
    """``torch.nn.functional.cross_entropy`` (mean reduction), forward (+ backward).

    The logits tensor is made from the NumPy array with ``torch.from_numpy`` (no copy)
    and ``requires_grad``; ``loss.backward()`` computes the gradient.  ``target`` should
    be an int64 NumPy array (``torch.from_numpy`` is then free; other integer dtypes are
    converted).  Returns ``loss`` (a NumPy scalar) or ``(loss, grad)``.
    """
    import torch
    import torch.nn.functional as F

    if target.dtype != np.int64:
        target = target.astype(np.int64)
    t = torch.from_numpy(target)
    if not return_grad:
        with torch.no_grad():
            return F.cross_entropy(torch.from_numpy(logits), t).numpy()[()]
    x = torch.from_numpy(logits).requires_grad_(True)
    loss = F.cross_entropy(x, t)
    loss.backward()
    return loss.detach().numpy()[()], x.grad.numpy()


# ----------------------------------------------------------------------------- SciPy


def scipy_softmax(x, axis=-1):
    """``scipy.special.softmax``."""
    from scipy.special import softmax

    return softmax(x, axis=axis)


def scipy_log_softmax(x, axis=-1):
    """``scipy.special.log_softmax``."""
    from scipy.special import log_softmax

    return log_softmax(x, axis=axis)


def scipy_logsumexp(x, axis=-1):
    """``scipy.special.logsumexp``."""
    from scipy.special import logsumexp

    return logsumexp(x, axis=axis)


# ----------------------------------------------------------------------------- scikit-learn


def sklearn_multinomial_loss(n_classes):
    """``sklearn._loss.loss.HalfMultinomialLoss(n_classes=C)`` (imported lazily).

    Its ``loss_gradient(y_true, raw_prediction, sample_weight=None, loss_out=None,
    gradient_out=None, n_threads=1)`` (scikit-learn 1.1+) takes C-contiguous float32 or
    float64 ``raw_prediction`` of shape (N, C) and float labels ``y_true`` (N,) of the same
    dtype, and returns the per-sample loss (N,) and the gradient softmax - onehot (N, C)
    -- no reduction, so its gradient is N times fastsoftmax's "mean" gradient; the work
    per element is the same.
    """
    from sklearn._loss.loss import HalfMultinomialLoss

    return HalfMultinomialLoss(n_classes=n_classes)


# ----------------------------------------------------------------------------- memcpy


def memcpy(x, out):
    """Memory-bandwidth baseline: ``np.copyto(out, x)`` (reads and writes x.nbytes)."""
    np.copyto(out, x)
    return out
