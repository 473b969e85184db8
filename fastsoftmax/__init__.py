"""fastsoftmax: fast and exact softmax, log-softmax, logsumexp, fused softmax
cross-entropy and binary cross-entropy (loss and gradient in one pass), and
loss objects for NumPy models.

Hot loops are C kernels (src/) with explicit SIMD, chosen at run time for the
CPU; :mod:`fastsoftmax.reference` holds plain NumPy float64 implementations of
the same functions, which the test suite uses as its oracle.
"""

__version__ = "0.1.0"


def _use_installed_extension():
    """Make ``fastsoftmax._kernels`` importable when this package is a source
    checkout without an in-place build (``pip install .`` followed by
    ``python -m fastsoftmax`` in the checkout puts the checkout first on
    ``sys.path``): the compiled module of the installed copy is used, which
    that ``pip install .`` built from these same sources."""
    import importlib.machinery
    import os
    import sys

    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        candidate = os.path.join(os.path.abspath(entry or os.curdir), "fastsoftmax")
        if candidate == here or not os.path.isdir(candidate):
            continue
        if any(os.path.exists(os.path.join(candidate, "_kernels" + suffix))
               for suffix in importlib.machinery.EXTENSION_SUFFIXES):
            __path__.append(candidate)
            return True
    return False


try:
    from . import _kernels  # noqa: F401
except ImportError:
    if not _use_installed_extension():
        raise
    from . import _kernels  # noqa: F401

from . import _config
from ._config import backend_info, get_num_threads, set_num_threads, show_config
from .functional import (binary_cross_entropy_with_logits, cross_entropy, log_softmax, log_softmax_backward,
                         logsumexp, sigmoid, softmax, softmax_backward)
from .losses import BCEWithLogitsLoss, CrossEntropyLoss

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy", "sigmoid", "binary_cross_entropy_with_logits",
           "softmax_backward", "log_softmax_backward", "CrossEntropyLoss", "BCEWithLogitsLoss", "set_num_threads",
           "get_num_threads", "show_config", "backend_info", "__version__"]

_config._from_environment()
_config._register_with_threadpoolctl()
