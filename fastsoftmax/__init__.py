"""fastsoftmax: fast and exact softmax, log-softmax, logsumexp and fused
softmax cross-entropy (loss and gradient in one pass) for NumPy arrays.

Hot loops are C kernels (src/) with explicit SIMD, chosen at run time for the
CPU; :mod:`fastsoftmax.reference` holds plain NumPy float64 implementations of
the same functions, which the test suite uses as its oracle.
"""

__version__ = "0.1.0"

from . import _config
from ._config import backend_info, get_num_threads, set_num_threads, show_config
from .functional import cross_entropy, log_softmax, logsumexp, softmax

__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy", "set_num_threads", "get_num_threads",
           "show_config", "backend_info", "__version__"]

_config._from_environment()
