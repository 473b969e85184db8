"""Type aliases of the package's stubs (fastsoftmax/*.pyi); not imported at run time."""

from typing import Any, Literal, SupportsIndex

import numpy as np
from numpy.typing import NDArray

Floating = np.floating[Any]
FloatArray = NDArray[np.floating[Any]]
Reduced = Literal["mean", "sum"]
Reduction = Literal["mean", "sum", "none"]
Axis = SupportsIndex
