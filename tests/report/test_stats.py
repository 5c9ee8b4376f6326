"""The statistics behind intervals, pass@k / pass^k and paired comparisons, against known values."""

from __future__ import annotations

import math
import random

import pytest

from agentbench.report.stats import mcnemar, paired_bootstrap_diff, pass_at_k, pass_hat_k, wilson_interval


@pytest.mark.parametrize(("successes", "n", "low", "high"), [
    (0, 10, 0.0, 0.2775),  # published 95% Wilson intervals (e.g. Brown, Cai & DasGupta 2001; R binom.wilson)
    (5, 10, 0.2366, 0.7634),
    (10, 10, 0.7225, 1.0),
    (17, 20, 0.6396, 0.9476),
])
def test_wilson_interval_known_values(successes: int, n: int, low: float, high: float) -> None:
    got = wilson_interval(successes, n)
    assert got[0] == pytest.approx(low, abs=1e-3) and got[1] == pytest.approx(high, abs=1e-3)


def test_wilson_interval_edges() -> None:
    assert wilson_interval(0, 0) == (0.0, 1.0)
    narrow, wide = wilson_interval(50, 100, 0.90), wilson_interval(50, 100, 0.99)
    assert wide[0] < narrow[0] < 0.5 < narrow[1] < wide[1]
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_pass_at_k_and_pass_hat_k_hand_computed() -> None:
    # n=5, c=2, k=2: C(5,2)=10, C(3,2)=3, C(2,2)=1
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)
    assert pass_hat_k(5, 2, 2) == pytest.approx(1 / 10)
    # k=1: both are c/n
    assert pass_at_k(4, 3, 1) == pytest.approx(0.75) and pass_hat_k(4, 3, 1) == pytest.approx(0.75)
    # n=3, c=2, k=3: some failure among all 3 but at least one pass
    assert pass_at_k(3, 2, 3) == 1.0 and pass_hat_k(3, 2, 3) == 0.0
    assert pass_at_k(3, 0, 2) == 0.0 and pass_hat_k(3, 3, 2) == 1.0
    assert pass_at_k(2, 1, 3) is None and pass_hat_k(2, 1, 3) is None
    with pytest.raises(ValueError):
        pass_at_k(2, 3, 1)


def test_mcnemar_exact_p_values() -> None:
    assert mcnemar(10, 0) == pytest.approx(2 / 2**10)  # 0.001953
    assert mcnemar(0, 10) == pytest.approx(2 / 2**10)
    assert mcnemar(3, 3) == 1.0
    assert mcnemar(0, 0) == 1.0
    # b=8, c=2: 2 * (C(10,0)+C(10,1)+C(10,2)) / 1024 = 2 * 56 / 1024
    assert mcnemar(8, 2) == pytest.approx(112 / 1024)


def test_paired_bootstrap_is_deterministic_and_covers_the_true_difference() -> None:
    rng = random.Random(42)
    a = [rng.random() for _ in range(200)]
    b = [x - 0.1 + rng.uniform(-0.05, 0.05) for x in a]  # A is better by 0.1 on average
    first = paired_bootstrap_diff(a, b, seed=7)
    assert first == paired_bootstrap_diff(a, b, seed=7)
    mean_diff, low, high = first
    assert mean_diff == pytest.approx(sum(x - y for x, y in zip(a, b)) / len(a))
    assert low < 0.1 < high and low < mean_diff < high and high - low < 0.02
    same = paired_bootstrap_diff(a, a)
    assert same == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        paired_bootstrap_diff([1.0], [1.0, 0.0])
    assert not math.isnan(paired_bootstrap_diff([1.0], [0.0])[0])
