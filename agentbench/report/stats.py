"""Statistics for comparing models: confidence intervals, pass@k / pass^k and paired tests.

Pure functions on counts and score lists (no third-party dependencies); definitions are also in
docs/metrics.md.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from statistics import NormalDist


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion ``successes / n``.

    With ``p = successes / n`` and ``z`` the two-sided normal quantile of ``confidence``
    (1.96 for 95%)::

        centre = (p + z²/2n) / (1 + z²/n)
        half   = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)
        interval = [centre - half, centre + half]

    Unlike the normal (Wald) interval it stays within [0, 1] and is not degenerate at 0/n or n/n.
    ``n == 0`` gives ``(0.0, 1.0)``: nothing is known.
    """
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    if n == 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = successes / n
    denominator = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def _check_counts(n: int, c: int, k: int) -> None:
    if not 0 <= c <= n:
        raise ValueError(f"need 0 <= c <= n, got n={n}, c={c}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")


def pass_at_k(n: int, c: int, k: int) -> float | None:
    """pass@k: the chance that at least one of ``k`` runs drawn from ``n`` (``c`` passing) passes.

    The unbiased estimator of the HumanEval paper (Chen et al., 2021)::

        pass@k = 1 - C(n - c, k) / C(n, k)

    ``None`` when ``k > n`` (not estimable from ``n`` runs).
    """
    _check_counts(n, c, k)
    if k > n:
        return None
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def pass_hat_k(n: int, c: int, k: int) -> float | None:
    """pass^k: the chance that all of ``k`` runs drawn from ``n`` (``c`` passing) pass.

    The reliability estimator of tau-bench (Yao et al., 2024)::

        pass^k = C(c, k) / C(n, k)

    ``None`` when ``k > n``. pass^1 == pass@1 == c / n.
    """
    _check_counts(n, c, k)
    if k > n:
        return None
    return math.comb(c, k) / math.comb(n, k)


def mcnemar(b: int, c: int) -> float:
    """Two-sided p-value of the exact McNemar test on the discordant pairs of a paired comparison.

    ``b``: pairs where A passed and B failed; ``c``: pairs where A failed and B passed. Under the
    null hypothesis (A and B are equally good) each discordant pair is a fair coin flip, so
    ``min(b, c)`` follows Binomial(b + c, 1/2)::

        p = min(1, 2 * sum_{i=0}^{min(b,c)} C(b+c, i) / 2^(b+c))

    No discordant pairs (``b + c == 0``) gives 1.0.
    """
    if b < 0 or c < 0:
        raise ValueError(f"discordant counts must be >= 0, got b={b}, c={c}")
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1))
    return min(1.0, 2.0 * tail / 2**n)


def paired_bootstrap_diff(a_scores: Sequence[float], b_scores: Sequence[float], iterations: int = 2000,
                          seed: int = 0, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean paired difference ``mean(a - b)`` and its percentile bootstrap interval.

    The pairs ``(a_i, b_i)`` are resampled with replacement ``iterations`` times (with
    ``random.Random(seed)``, so the result is deterministic); the interval is the
    ``(1 - confidence) / 2`` and ``(1 + confidence) / 2`` percentiles of the resampled mean
    differences. Returns ``(mean_diff, low, high)``.
    """
    if len(a_scores) != len(b_scores):
        raise ValueError(f"paired scores differ in length: {len(a_scores)} vs {len(b_scores)}")
    if not a_scores:
        raise ValueError("no pairs to bootstrap")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    diffs = [a - b for a, b in zip(a_scores, b_scores)]
    n = len(diffs)
    mean_diff = sum(diffs) / n
    rng = random.Random(seed)
    means = sorted(sum(diffs[rng.randrange(n)] for _ in range(n)) / n for _ in range(iterations))
    alpha = (1.0 - confidence) / 2.0
    low = means[min(iterations - 1, math.floor(alpha * iterations))]
    high = means[max(0, math.ceil((1.0 - alpha) * iterations) - 1)]
    return mean_diff, low, high
