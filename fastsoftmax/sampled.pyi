from typing import Literal, NamedTuple, overload

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._typing import FloatArray, Floating, Reduced, Reduction
from .sampling import _Candidates, _Seed, UnigramSampler

__all__ = ["sampled_softmax_loss", "nce_loss", "SampledGrads"]

class SampledGrads(NamedTuple):
    inputs: FloatArray
    ids: NDArray[np.int64]
    weights: FloatArray
    biases: FloatArray | None

_Sampler = Literal["log_uniform", "uniform"] | UnigramSampler

@overload
def sampled_softmax_loss(weights: ArrayLike, biases: ArrayLike | None, labels: ArrayLike, inputs: ArrayLike,
                         num_sampled: int, num_classes: int, *, num_true: int = 1,
                         sampled_values: _Candidates | None = None, remove_accidental_hits: bool = True,
                         subtract_log_q: bool = True, sampler: _Sampler = "log_uniform", unique: bool = True,
                         rng: _Seed = None, reduction: Reduced = "mean",
                         return_grad: Literal[False] = False) -> Floating: ...
@overload
def sampled_softmax_loss(weights: ArrayLike, biases: ArrayLike | None, labels: ArrayLike, inputs: ArrayLike,
                         num_sampled: int, num_classes: int, *, num_true: int = 1,
                         sampled_values: _Candidates | None = None, remove_accidental_hits: bool = True,
                         subtract_log_q: bool = True, sampler: _Sampler = "log_uniform", unique: bool = True,
                         rng: _Seed = None, reduction: Literal["none"],
                         return_grad: Literal[False] = False) -> FloatArray: ...
@overload
def sampled_softmax_loss(weights: ArrayLike, biases: ArrayLike | None, labels: ArrayLike, inputs: ArrayLike,
                         num_sampled: int, num_classes: int, *, num_true: int = 1,
                         sampled_values: _Candidates | None = None, remove_accidental_hits: bool = True,
                         subtract_log_q: bool = True, sampler: _Sampler = "log_uniform", unique: bool = True,
                         rng: _Seed = None, reduction: Reduction = "mean",
                         return_grad: Literal[True]) -> tuple[Floating | FloatArray, SampledGrads]: ...
@overload
def nce_loss(weights: ArrayLike, biases: ArrayLike | None, labels: ArrayLike, inputs: ArrayLike,
             num_sampled: int, num_classes: int, *, num_true: int = 1, sampled_values: _Candidates | None = None,
             remove_accidental_hits: bool = False, subtract_log_q: bool = True, sampler: _Sampler = "log_uniform",
             unique: bool = True, rng: _Seed = None, reduction: Reduced = "mean",
             return_grad: Literal[False] = False) -> Floating: ...
@overload
def nce_loss(weights: ArrayLike, biases: ArrayLike | None, labels: ArrayLike, inputs: ArrayLike,
             num_sampled: int, num_classes: int, *, num_true: int = 1, sampled_values: _Candidates | None = None,
             remove_accidental_hits: bool = False, subtract_log_q: bool = True, sampler: _Sampler = "log_uniform",
             unique: bool = True, rng: _Seed = None, reduction: Literal["none"],
             return_grad: Literal[False] = False) -> FloatArray: ...
@overload
def nce_loss(weights: ArrayLike, biases: ArrayLike | None, labels: ArrayLike, inputs: ArrayLike,
             num_sampled: int, num_classes: int, *, num_true: int = 1, sampled_values: _Candidates | None = None,
             remove_accidental_hits: bool = False, subtract_log_q: bool = True, sampler: _Sampler = "log_uniform",
             unique: bool = True, rng: _Seed = None, reduction: Reduction = "mean",
             return_grad: Literal[True]) -> tuple[Floating | FloatArray, SampledGrads]: ...
