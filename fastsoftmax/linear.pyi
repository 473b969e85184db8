from typing import Literal, NamedTuple, overload

from numpy.typing import ArrayLike

from ._typing import FloatArray, Floating, Reduced, Reduction

__all__ = ["linear_cross_entropy", "LinearGrads"]

CHUNK_MIN_BYTES: int
CHUNK_MAX_BYTES: int

class LinearGrads(NamedTuple):
    inputs: FloatArray
    classifier: FloatArray
    bias: FloatArray | None

def default_chunk_size(n_rows: int, n_classes: int, dtype: object) -> int: ...

@overload
def linear_cross_entropy(inputs: ArrayLike, classifier: ArrayLike, target: ArrayLike, *,
                         bias: ArrayLike | None = None, weight: ArrayLike | None = None, ignore_index: int = -100,
                         reduction: Reduced = "mean", label_smoothing: float = 0.0, z_loss: float = 0.0,
                         chunk_size: int | None = None, return_grad: Literal[False] = False) -> Floating: ...
@overload
def linear_cross_entropy(inputs: ArrayLike, classifier: ArrayLike, target: ArrayLike, *,
                         bias: ArrayLike | None = None, weight: ArrayLike | None = None, ignore_index: int = -100,
                         reduction: Literal["none"], label_smoothing: float = 0.0, z_loss: float = 0.0,
                         chunk_size: int | None = None, return_grad: Literal[False] = False) -> FloatArray: ...
@overload
def linear_cross_entropy(inputs: ArrayLike, classifier: ArrayLike, target: ArrayLike, *,
                         bias: ArrayLike | None = None, weight: ArrayLike | None = None, ignore_index: int = -100,
                         reduction: Reduced = "mean", label_smoothing: float = 0.0, z_loss: float = 0.0,
                         chunk_size: int | None = None, return_grad: Literal[True]) -> tuple[Floating, LinearGrads]: ...
@overload
def linear_cross_entropy(inputs: ArrayLike, classifier: ArrayLike, target: ArrayLike, *,
                         bias: ArrayLike | None = None, weight: ArrayLike | None = None, ignore_index: int = -100,
                         reduction: Literal["none"], label_smoothing: float = 0.0, z_loss: float = 0.0,
                         chunk_size: int | None = None, return_grad: Literal[True]
                         ) -> tuple[FloatArray, LinearGrads]: ...
@overload
def linear_cross_entropy(inputs: ArrayLike, classifier: ArrayLike, target: ArrayLike, *,
                         bias: ArrayLike | None = None, weight: ArrayLike | None = None, ignore_index: int = -100,
                         reduction: Reduction = "mean", label_smoothing: float = 0.0, z_loss: float = 0.0,
                         chunk_size: int | None = None, return_grad: bool = False
                         ) -> Floating | FloatArray | tuple[Floating | FloatArray, LinearGrads]: ...
