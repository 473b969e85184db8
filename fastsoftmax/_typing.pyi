# Shared aliases of the stubs (not a runtime module).
from typing import Any, Literal, SupportsIndex

import numpy as np
from numpy.typing import ArrayLike, NDArray

Floating = np.floating[Any]
FloatArray = NDArray[np.floating[Any]]
Reduced = Literal["mean", "sum"]
Reduction = Literal["mean", "sum", "none"]
Axis = SupportsIndex
