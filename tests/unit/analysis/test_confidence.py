"""The reported confidence intervals hold at every look (asymptotically).

Bound: 1,000 sequences at 100 requests/s (10 % canary, 0.5 % errors on both arms, ratio 1) read
after each of 60 minutes; an asymptotic confidence sequence at level α = 5 % may miss the true
ratio at some look in at most about α of them. The test allows 2α = 10 % for the approximation
at the first minutes' few events and asserts the intervals shrink as the evidence grows.
Fixed seed, so the outcome is deterministic.
"""

from __future__ import annotations

import numpy as np

from analysis import confidence

LEVEL = 0.05


def test_a_ratio_of_one_stays_inside_the_interval_at_every_look_in_nearly_every_sequence() -> None:
    rng = np.random.default_rng(31)
    n_c = rng.poisson(600, size=(1000, 60)).cumsum(axis=1)
    n_b = rng.poisson(5400, size=(1000, 60)).cumsum(axis=1)
    x_c = rng.binomial(n_c - np.concatenate([np.zeros((1000, 1), int), n_c[:, :-1]], axis=1), 0.005).cumsum(
        axis=1
    )
    x_b = rng.binomial(n_b - np.concatenate([np.zeros((1000, 1), int), n_b[:, :-1]], axis=1), 0.005).cumsum(
        axis=1
    )
    missed = 0
    widths = []
    for run in range(1000):
        looks = [
            confidence.log_ratio(x_c[run, t], n_c[run, t], x_b[run, t], n_b[run, t], 1.0, LEVEL)
            for t in range(60)
        ]
        bounds = [b for b in looks if b is not None]
        missed += any(low > 0 or high < 0 for low, high in bounds)
        widths.append((bounds[4][1] - bounds[4][0], bounds[-1][1] - bounds[-1][0]))
    print(f"{missed}/1000 sequences missed the true ratio at some look")
    assert missed <= 2 * LEVEL * 1000
    assert all(late < early for early, late in widths)


def test_a_mean_interval_contains_a_constant_and_needs_two_values() -> None:
    assert confidence.mean(confidence.Moments().add(np.array([0.1])), LEVEL) is None
    assert confidence.mean(confidence.Moments().add(np.array([0.2, 0.2, np.nan])), LEVEL) == (0.2, 0.2)
    low, high = confidence.mean(confidence.Moments().add(np.array([0.1, 0.3, 0.2, 0.25])), LEVEL) or (
        1.0,
        -1.0,
    )
    assert low < 0.2125 < high
