from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["log_uniform_candidate_sampler", "uniform_candidate_sampler", "fixed_unigram_candidate_sampler",
           "UnigramSampler"]

_Seed = int | np.random.Generator | None
_Candidates = tuple[NDArray[np.int64], NDArray[np.float64], NDArray[np.float64]]

def log_uniform_candidate_sampler(true_classes: ArrayLike, num_true: int, num_sampled: int, unique: bool,
                                  range_max: int, rng: _Seed = None) -> _Candidates: ...
def uniform_candidate_sampler(true_classes: ArrayLike, num_true: int, num_sampled: int, unique: bool,
                              range_max: int, rng: _Seed = None) -> _Candidates: ...
def fixed_unigram_candidate_sampler(true_classes: ArrayLike, num_true: int, num_sampled: int, unique: bool,
                                    range_max: int, *, unigrams: ArrayLike, distortion: float = 1.0,
                                    rng: _Seed = None) -> _Candidates: ...

class UnigramSampler:
    range_max: int
    distortion: float
    def __init__(self, unigrams: ArrayLike, distortion: float = 1.0) -> None: ...
    def sample(self, true_classes: ArrayLike, num_true: int, num_sampled: int, unique: bool, range_max: int,
               rng: _Seed = None) -> _Candidates: ...
