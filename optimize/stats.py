"""Interval and paired-test statistics for scores on gold sets."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def wilson_interval(successes: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    """Wilson score interval (95 % by default) for a proportion; (0, 1) when n == 0."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(baseline: Sequence[bool], candidate: Sequence[bool]) -> tuple[int, int, float]:
    """Exact (binomial) McNemar test on paired pass/fail outcomes of the same items.

    Returns:
        (b, c, p): items only the baseline passed, items only the candidate passed, and the
        two-sided p-value of the hypothesis that both programs are equally good.
    """
    if len(baseline) != len(candidate):
        raise ValueError("paired outcomes must have the same length")
    b = sum(1 for x, y in zip(baseline, candidate, strict=True) if x and not y)
    c = sum(1 for x, y in zip(baseline, candidate, strict=True) if y and not x)
    n = b + c
    if n == 0:
        return b, c, 1.0
    k = min(b, c)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2**n
    return b, c, min(1.0, 2 * tail)


def paired_bootstrap(
    baseline: Sequence[float], candidate: Sequence[float], rounds: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """Paired bootstrap of the mean difference (candidate - baseline).

    Returns:
        (low, high, p): the 95 % interval of the difference and the one-sided share of
        resamples in which the candidate did not beat the baseline.
    """
    if len(baseline) != len(candidate) or not baseline:
        raise ValueError("need two equally long, non-empty score lists")
    rng = random.Random(seed)
    diffs = [c - b for b, c in zip(baseline, candidate, strict=True)]
    n = len(diffs)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(rounds))
    not_better = sum(1 for m in means if m <= 0) / rounds
    return means[int(0.025 * rounds)], means[int(0.975 * rounds) - 1], not_better
