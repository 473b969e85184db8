"""fastsoftmax: fast and exact softmax, log-softmax, logsumexp, fused softmax
cross-entropy and binary cross-entropy (loss and gradient in one pass), and
loss objects for NumPy models.

Hot loops are C kernels (src/) with explicit SIMD, chosen at run time for the
CPU; :mod:`fastsoftmax.reference` holds plain NumPy float64 implementations of
the same functions, which the test suite uses as its oracle.
"""

__version__ = "0.1.0"


def _kernels_in(directory):
    import importlib.machinery
    import os

    return any(os.path.exists(os.path.join(directory, "_kernels" + suffix))
               for suffix in importlib.machinery.EXTENSION_SUFFIXES)


# `python -m fastsoftmax` in a source checkout without an in-place build puts the checkout first on
# sys.path: take the compiled module of an installed copy (which `pip install .` built from these sources).
def _use_installed_extension():
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        candidate = os.path.join(os.path.abspath(entry or os.curdir), "fastsoftmax")
        if candidate != here and os.path.isdir(candidate) and _kernels_in(candidate):
            __path__.append(candidate)
            return True
    return False


try:
    from . import _kernels  # noqa: F401
except ImportError as exc:
    if not _use_installed_extension():
        if any(_kernels_in(d) for d in __path__):
            raise  # built, but it does not load: the error says why
        raise ImportError("fastsoftmax's compiled module (fastsoftmax._kernels) is not built: run `pip install .`, "
                          "or `python setup.py build_ext --inplace` in a source checkout") from exc
    from . import _kernels  # noqa: F401

from . import _config, sampling
from ._config import backend_info, get_num_threads, set_num_threads, show_config
from .functional import (binary_cross_entropy_with_logits, cross_entropy, log_softmax, log_softmax_backward,
                         logsumexp, sigmoid, softmax, softmax_backward)
from .linear import LinearGrads, linear_cross_entropy
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, LinearCrossEntropyLoss, NCELoss, SampledSoftmaxLoss
from .sampled import SampledGrads, nce_loss, sampled_softmax_loss

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy", "sigmoid", "binary_cross_entropy_with_logits",
           "softmax_backward", "log_softmax_backward", "CrossEntropyLoss", "BCEWithLogitsLoss", "set_num_threads",
           "get_num_threads", "show_config", "backend_info", "__version__", "sampled_softmax_loss", "nce_loss", "SampledGrads", "SampledSoftmaxLoss", "NCELoss",
           "linear_cross_entropy", "LinearGrads", "LinearCrossEntropyLoss"]

_config._from_environment()
_config._register_with_threadpoolctl()
