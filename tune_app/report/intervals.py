"""How sure a difference is: a bootstrap interval for two groups of trials, a t interval over seeds.

Both at 90% by default. A report says a winner only when its interval leaves out 0;
otherwise the plain words of :data:`NOT_DISTINGUISHABLE`.

Example:
    >>> low, high = bootstrap_difference([0.9, 0.91, 0.92], [0.7, 0.71, 0.72])
    >>> 0.18 < low < high < 0.22
    True
    >>> low, high = mean_interval([0.90, 0.92, 0.94])
    >>> round(low, 3), round(high, 3)
    (0.886, 0.954)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

LEVEL = 0.9
RESAMPLES = 2_000  # enough for 5% tails; 0.2 s for two groups of 5,000 trials
SEED = 0  # the same trials give the same interval in every report
NOT_DISTINGUISHABLE = "not distinguishable with these trials"


def bootstrap_difference(first: Sequence[float], second: Sequence[float], level: float = LEVEL,
                         resamples: int = RESAMPLES, seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of ``mean(first) - mean(second)``, each group resampled on its own.

    NaN bounds when a group has fewer than 2 values: one trial says nothing about its spread.
    """
    a, b = _finite(first), _finite(second)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means_a, means_b = _resampled_means(a, resamples, rng), _resampled_means(b, resamples, rng)
    tail = (1 - level) / 2
    low, high = np.quantile(means_a - means_b, [tail, 1 - tail])
    return float(low), float(high)


def mean_interval(values: Sequence[float], level: float = LEVEL) -> tuple[float, float]:
    """Student's t interval of the mean (the seeds of one config are few: no bootstrap); NaN below 2 values."""
    x = _finite(values)
    if len(x) < 2:
        return math.nan, math.nan
    from scipy.stats import t  # scipy comes with scikit-learn; imported only here (about 0.3 s)

    half = float(t.ppf(1 - (1 - level) / 2, len(x) - 1)) * float(x.std(ddof=1)) / math.sqrt(len(x))
    return float(x.mean()) - half, float(x.mean()) + half


def excludes_zero(low: float, high: float) -> bool:
    """True when the interval lies on one side of 0 (a NaN interval never does)."""
    return not (math.isnan(low) or math.isnan(high)) and (low > 0 or high < 0)


def _resampled_means(x: np.ndarray, resamples: int, rng: np.random.Generator, cells: int = 4_000_000
                     ) -> np.ndarray:
    """The means of ``resamples`` bootstrap resamples of ``x``, drawn in chunks (10,000 trials stay in 32 MB)."""
    step = max(1, cells // len(x))
    return np.concatenate([x[rng.integers(0, len(x), (min(step, resamples - start), len(x)))].mean(axis=1)
                           for start in range(0, resamples, step)])


def _finite(values: Sequence[float]) -> np.ndarray:
    x = np.asarray([float(v) for v in values], dtype=float)
    return x[np.isfinite(x)]
