from typing import Any

from numpy.typing import ArrayLike

from ._typing import Axis, FloatArray, Floating, Reduction
from .linear import LinearGrads
from .sampled import SampledGrads, _Sampler
from .sampling import _Candidates, _Seed

__all__ = ["CrossEntropyLoss", "BCEWithLogitsLoss", "SampledSoftmaxLoss", "NCELoss", "LinearCrossEntropyLoss"]

class CrossEntropyLoss:
    axis: int
    weight: FloatArray | None
    ignore_index: int
    reduction: Reduction
    label_smoothing: float
    z_loss: float
    inplace: bool
    def __init__(self, weight: ArrayLike | None = None, *, axis: Axis = -1, ignore_index: int = -100,
                 reduction: Reduction = "mean", label_smoothing: float = 0.0, z_loss: float = 0.0,
                 inplace: bool = False) -> None: ...
    def forward(self, logits: ArrayLike, target: ArrayLike) -> Any: ...
    def __call__(self, logits: ArrayLike, target: ArrayLike) -> Any: ...
    def backward(self, grad_output: ArrayLike = 1.0) -> FloatArray: ...

class BCEWithLogitsLoss:
    weight: FloatArray | None
    pos_weight: FloatArray | None
    reduction: Reduction
    inplace: bool
    def __init__(self, weight: ArrayLike | None = None, *, pos_weight: ArrayLike | None = None,
                 reduction: Reduction = "mean", inplace: bool = False) -> None: ...
    def forward(self, logits: ArrayLike, target: ArrayLike) -> Any: ...
    def __call__(self, logits: ArrayLike, target: ArrayLike) -> Any: ...
    def backward(self, grad_output: ArrayLike = 1.0) -> FloatArray: ...

class LinearCrossEntropyLoss:
    weight: FloatArray | None
    ignore_index: int
    reduction: Reduction
    label_smoothing: float
    z_loss: float
    chunk_size: int | None
    def __init__(self, weight: ArrayLike | None = None, *, ignore_index: int = -100, reduction: Reduction = "mean",
                 label_smoothing: float = 0.0, z_loss: float = 0.0, chunk_size: int | None = None) -> None: ...
    def forward(self, inputs: ArrayLike, classifier: ArrayLike, target: ArrayLike,
                bias: ArrayLike | None = None) -> Any: ...
    def __call__(self, inputs: ArrayLike, classifier: ArrayLike, target: ArrayLike,
                 bias: ArrayLike | None = None) -> Any: ...
    def backward(self, grad_output: ArrayLike = 1.0) -> LinearGrads: ...

class _SampledLoss:
    num_sampled: int
    num_classes: int
    num_true: int
    remove_accidental_hits: bool
    subtract_log_q: bool
    sampler: _Sampler
    unique: bool
    reduction: Reduction
    def __init__(self, num_sampled: int, num_classes: int, *, num_true: int = 1, remove_accidental_hits: bool = True,
                 subtract_log_q: bool = True, sampler: _Sampler = "log_uniform", unique: bool = True, rng: _Seed = None,
                 reduction: Reduction = "mean") -> None: ...
    def forward(self, weights: ArrayLike, biases: ArrayLike | None, labels: ArrayLike, inputs: ArrayLike,
                sampled_values: _Candidates | None = None) -> Any: ...
    def __call__(self, weights: ArrayLike, biases: ArrayLike | None, labels: ArrayLike, inputs: ArrayLike,
                 sampled_values: _Candidates | None = None) -> Any: ...
    def backward(self, grad_output: ArrayLike = 1.0) -> SampledGrads: ...

class SampledSoftmaxLoss(_SampledLoss): ...

class NCELoss(_SampledLoss):
    def __init__(self, num_sampled: int, num_classes: int, *, remove_accidental_hits: bool = False,
                 **options: Any) -> None: ...
