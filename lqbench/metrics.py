"""The statistics lqbench reports, in plain Python: pass@k, bootstrap intervals, correlations.

The named SQL queries compute the same quantities inside DuckDB (so any DuckDB client gets them from the
file); these functions are the readable reference the tests hold the SQL to, and what Python callers use.
"""

from __future__ import annotations

import math
from typing import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c passed (Chen et al., 2021): 1 - C(n-c, k) / C(n, k)."""
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"need 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:  # every k-subset contains a passing sample
        return 1.0
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """pass@k of a config: the mean over tasks of pass_at_k(n, c, k) for each task's (n, c)."""
    values = [pass_at_k(n, c, k) for n, c in counts]
    return sum(values) / len(values)


def bootstrap_ci(
    values: Sequence[float], resamples: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `values` (one value per task), resampling tasks."""
    import numpy as np

    x = np.asarray(values, dtype=float)
    if x.size == 0:
        raise ValueError("no values to bootstrap")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(resamples, x.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return float(lo), float(hi)


def pearson(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Pearson correlation; None when undefined (fewer than 2 points or a constant series)."""
    if len(xs) != len(ys):
        raise ValueError("series differ in length")
    n = len(xs)
    if n < 2:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    sxx = sum((x - mx) ** 2 for x in xs)
    syy = sum((y - my) ** 2 for y in ys)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def _ranks(values: Sequence[float]) -> list[float]:
    """Competition ranks (1, 2, 2, 4), as SQL's rank() gives them."""
    order = sorted(values)
    return [float(order.index(v) + 1) for v in values]


def spearman(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Rank correlation: Pearson on ranks (ties share the lowest rank, as SQL's rank())."""
    return pearson(_ranks(xs), _ranks(ys))
