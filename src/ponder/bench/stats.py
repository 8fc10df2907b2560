"""Small statistics for benchmark reports: intervals, Pareto frontiers and paired comparisons, and
``ConfigStats``, one configuration's summary that the report tabulates and the plots draw.

- Wilson score interval for an accuracy (Wilson 1927): honest at small n and near 0 or 1, where the
  normal "p ± 1.96·se" interval is not.
- Paired comparison of two configurations on the same cells: the exact McNemar test (a two-sided
  binomial test on the discordant pairs; no scipy, the tail is summed with math.comb) and a percentile
  paired-bootstrap 95% CI for the accuracy difference (fixed seed, 2000 resamples, so reports are
  reproducible).
- pass@k, the unbiased estimator of Chen et al. 2021 ("Evaluating Large Language Models Trained on
  Code"): with n samples of a problem of which c are correct, the chance that k of them drawn
  without replacement hold a correct one, 1 - C(n-c, k) / C(n, k), computed as a product so that
  no binomial coefficient is ever formed (the paper's numerically stable form).
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for k successes out of n. n == 0 gives the uninformative (0, 1)."""
    if n == 0:
        return (0.0, 1.0)
    p = k / n
    denom = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    # the interval always holds p; rounding can put a bound a hair past it at k = 0 or k = n
    # (0 out of 11 gave a lower bound of 3e-17), which made the plot's error bar negative
    return (min(p, max(0.0, center - half)), max(p, min(1.0, center + half)))


def pareto_frontier(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost x, accuracy y) that no other point dominates, sorted by x.

    q dominates p when it costs no more, is no less accurate, and is strictly better in one of the two.
    Identical points do not dominate each other, so both are kept.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    frontier: list[int] = []
    best_y = -math.inf
    prev: tuple[float, float] | None = None
    for i in order:
        x, y = points[i]
        if y > best_y or (prev is not None and (x, y) == prev):
            frontier.append(i)
            best_y = max(best_y, y)
            prev = (x, y)
    return frontier


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c are correct: 1 - C(n-c, k) / C(n, k).

    The ratio is the product over i = n-c+1 .. n of (1 - k/i) (Chen et al. 2021, Figure 3), which
    stays within float range for any n; with fewer than k wrong samples it is 1.
    """
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def pass_at_k_ks(n: int) -> list[int]:
    """The k a report shows for n samples per problem: 1, then the powers of 2 up to n."""
    return [1] + [2**i for i in range(1, n.bit_length()) if 2**i <= n]


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts b (only A right) and c (only B right)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def paired_difference(
    a: dict[Hashable, bool], b: dict[Hashable, bool], resamples: int = 2000, seed: int = 0
) -> dict:
    """Compare two configurations on the keys they share (e.g. (problem_id, seed)).

    Returns {n, acc_a, acc_b, diff (= acc_b - acc_a), ci_low, ci_high, b_only_a, c_only_b, p_mcnemar}.
    The CI is a percentile paired bootstrap: resample shared keys with replacement, recompute the
    difference. With n == 0 every statistic is NaN except n and the p-value (1.0).
    """
    keys = sorted(set(a) & set(b), key=repr)
    n = len(keys)
    if n == 0:
        nan = float("nan")
        return dict(n=0, acc_a=nan, acc_b=nan, diff=nan, ci_low=nan, ci_high=nan,
                    b_only_a=0, c_only_b=0, p_mcnemar=1.0)
    xa = np.array([bool(a[k]) for k in keys], dtype=float)
    xb = np.array([bool(b[k]) for k in keys], dtype=float)
    d = xb - xa
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    boot = d[idx].mean(axis=1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    only_a = int(((xa == 1) & (xb == 0)).sum())
    only_b = int(((xa == 0) & (xb == 1)).sum())
    return dict(
        n=n,
        acc_a=float(xa.mean()),
        acc_b=float(xb.mean()),
        diff=float(d.mean()),
        ci_low=float(lo),
        ci_high=float(hi),
        b_only_a=only_a,
        c_only_b=only_b,
        p_mcnemar=mcnemar_exact(only_a, only_b),
    )


@dataclass
class ConfigStats:
    label: str
    strategy: str
    budget: int
    n: int  # rows: (problem, seed) cells
    correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    mean_tokens: float  # prompt + completion, per problem
    mean_completion: float
    mean_calls: float
    mean_latency: float  # seconds
    pareto: bool = False
