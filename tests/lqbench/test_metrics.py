"""`lqbench.metrics`: the reference statistics, checked against definitions and brute force."""

import itertools
import math
import random

import pytest

from lqbench import metrics


def brute_force_pass_at_k(n: int, c: int, k: int) -> float:
    """Share of all k-subsets of n samples (c of them passing) that contain a pass."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n, c, k", [(1, 0, 1), (1, 1, 1), (5, 2, 1), (5, 2, 3), (6, 0, 2), (7, 5, 3), (8, 1, 8)])
def test_pass_at_k_matches_the_subset_definition(n, c, k):
    assert metrics.pass_at_k(n, c, k) == pytest.approx(brute_force_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_1_is_the_pass_rate_and_bad_input_is_refused():
    assert metrics.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert metrics.mean_pass_at_k([(10, 3), (10, 0), (4, 4)], 1) == pytest.approx((0.3 + 0 + 1) / 3)
    for n, c, k in [(3, 4, 1), (3, 1, 4), (3, 1, 0)]:
        with pytest.raises(ValueError):
            metrics.pass_at_k(n, c, k)


def test_bootstrap_interval_covers_the_mean_and_narrows_with_more_tasks():
    rng = random.Random(1)
    small = [float(rng.random() < 0.4) for _ in range(20)]
    large = [float(rng.random() < 0.4) for _ in range(2000)]
    lo_s, hi_s = metrics.bootstrap_ci(small, seed=3)
    lo_l, hi_l = metrics.bootstrap_ci(large, seed=3)
    assert lo_s <= sum(small) / 20 <= hi_s and lo_l <= sum(large) / 2000 <= hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 4
    # the normal approximation for a proportion: half-width ~ 1.96 sqrt(p(1-p)/n)
    p = sum(large) / len(large)
    assert (hi_l - lo_l) / 2 == pytest.approx(1.96 * math.sqrt(p * (1 - p) / len(large)), rel=0.15)
    assert metrics.bootstrap_ci(small, seed=3) == (lo_s, hi_s)  # seeded


def test_correlations():
    xs = [1.0, 2.0, 3.0, 4.0]
    assert metrics.pearson(xs, [2.0, 4.0, 6.0, 8.0]) == pytest.approx(1.0)
    assert metrics.pearson(xs, [8.0, 6.0, 4.0, 2.0]) == pytest.approx(-1.0)
    assert metrics.pearson(xs, [1.0, 1.0, 1.0, 1.0]) is None and metrics.pearson([1.0], [2.0]) is None
    # monotone but not linear: Spearman sees a perfect relation, Pearson does not
    ys = [1.0, 10.0, 100.0, 1000.0]
    assert metrics.spearman(xs, ys) == pytest.approx(1.0) and metrics.pearson(xs, ys) < 0.95
