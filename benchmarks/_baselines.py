"""Competitor implementations for the benchmarks of this directory.

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
the layout used by every benchmark in this project.  The NumPy and PyTorch softmax and
cross-entropy are those of ``python -m fastsoftmax bench`` (``fastsoftmax/bench.py``),
so that both time the same code.
"""

import numpy as np

from fastsoftmax.bench import (numpy_cross_entropy, numpy_softmax, optional_import, torch_cross_entropy,
                               torch_softmax)

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


def has_torch():
    """True when ``import torch`` works (imports it on first call)."""
    return optional_import("torch") is not None


def has_sklearn():
    """True when ``sklearn._loss.loss.HalfMultinomialLoss`` can be imported."""
    return optional_import("sklearn._loss.loss") is not None


def has_scipy():
    """True when ``import scipy.special`` works."""
    return optional_import("scipy.special") is not None


# ----------------------------------------------------------------------------- NumPy


def numpy_log_softmax(x, axis=-1):
    """Plain NumPy log-softmax: (x - max) - log(sum(exp(x - max)))."""
    s = x - x.max(axis=axis, keepdims=True)
    return s - np.log(np.exp(s).sum(axis=axis, keepdims=True))


def numpy_logsumexp(x, axis=-1):
    """Plain NumPy logsumexp: max + log(sum(exp(x - max)))."""
    m = x.max(axis=axis, keepdims=True)
    r = m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))
    return np.squeeze(r, axis=axis)


# ----------------------------------------------------------------------------- PyTorch


def torch_log_softmax(x, axis=-1):
    """``torch.log_softmax`` on ``torch.from_numpy(x)``, result as NumPy."""
    import torch

    return torch.log_softmax(torch.from_numpy(x), dim=axis).numpy()


def torch_logsumexp(x, axis=-1):
    """``torch.logsumexp`` on ``torch.from_numpy(x)``, result as NumPy."""
    import torch

    return torch.logsumexp(torch.from_numpy(x), dim=axis).numpy()


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
