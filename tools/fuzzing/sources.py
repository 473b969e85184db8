"""Where the case generator's choices come from.

Both sources have the same methods; the generator calls nothing else, so one generator
serves the seeded ``random`` mode and the coverage-guided ``atheris`` mode.  The first
option of every ``pick`` is the common, valid one: an exhausted atheris input (whose
provider then returns zeros) gives an ordinary case.
"""

import numpy as np


def _cumulative(weights):
    total = 0
    out = []
    for w in weights:
        total += int(round(w * 1000))
        out.append(total)
    return out


class RandomSource:
    """Choices from ``np.random.default_rng(seed)``."""

    def __init__(self, seed):
        self._rng = np.random.default_rng(seed)

    def integer(self, lo, hi):
        """An integer in [lo, hi]."""
        return int(self._rng.integers(lo, hi, endpoint=True))

    def chance(self, p):
        """True with probability p."""
        return bool(self._rng.random() < p)

    def pick(self, options, weights=None):
        """One of ``options`` (with relative ``weights``: default equal)."""
        if weights is None:
            return options[int(self._rng.integers(len(options)))]
        cum = _cumulative(weights)
        k = int(self._rng.integers(cum[-1]))
        return options[next(i for i, c in enumerate(cum) if k < c)]

    def seed(self):
        """A seed for the values of one array."""
        return int(self._rng.integers(2**32))


class FuzzedSource:
    """Choices from an atheris ``FuzzedDataProvider`` (the fuzzer's input bytes)."""

    def __init__(self, provider):
        self._fdp = provider

    def integer(self, lo, hi):
        return int(self._fdp.ConsumeIntInRange(lo, hi))

    def chance(self, p):
        return self._fdp.ConsumeProbability() > 1.0 - p

    def pick(self, options, weights=None):
        if weights is None:
            return options[self._fdp.ConsumeIntInRange(0, len(options) - 1)]
        cum = _cumulative(weights)
        k = self._fdp.ConsumeIntInRange(0, cum[-1] - 1)
        return options[next(i for i, c in enumerate(cum) if k < c)]

    def seed(self):
        return int(self._fdp.ConsumeIntInRange(0, 2**32 - 1))
