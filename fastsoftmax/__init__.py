"""fastsoftmax: fast and exact softmax, log-softmax, logsumexp and fused
softmax cross-entropy (loss and gradient in one pass) for NumPy arrays.

Hot loops are C kernels (src/) with explicit SIMD, chosen at run time for the
CPU; :mod:`fastsoftmax.reference` holds plain NumPy float64 implementations of
the same functions, which the test suite uses as its oracle.
"""

from . import _config
from .functional import cross_entropy, log_softmax, logsumexp, softmax

__version__ = "0.1.0"
__all__ = ["softmax", "log_softmax", "logsumexp", "cross_entropy", "__version__"]

_config._from_environment()
