"""Confidence intervals for the effects the judge reports, valid whenever they are read.

Asymptotic confidence sequences from running sums: the normal-mixture boundary of Robbins
(1970) on the estimate's information, as in Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas,
"Time-uniform central limit theory and asymptotic confidence sequences" (Annals of Statistics,
2024). With information `I` (the inverse of the estimate's variance),

    |θ̂ − θ| ≤ √((I + ρ) · ln((I + ρ) / (ρ α²))) / I

holds at every look at once with probability ≥ 1 − α (asymptotically, as the information
grows). Only sums enter, so what a look costs does not grow with the window. The bounds are for
reading, not for deciding: verdicts come from the e-processes in `evidence`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
# Where the boundary is tightest, in units of information: about 50 bad events for a count ratio
# (the canary's first minutes at 100 requests/s on a 0.5 % error rate), 10 intervals for a gauge.
RATIO_TIGHT_AT = 50.0
MEAN_TIGHT_AT = 10.0


def radius(information: float, level: float, tight_at: float) -> float:
    """Half-width of the two-sided confidence sequence at this information."""
    grown = information + tight_at
    return math.sqrt(grown * math.log(grown / (tight_at * level**2))) / information


def log_ratio(
    x_c: float, n_c: float, x_b: float, n_b: float, dispersion: float, level: float
) -> tuple[float, float] | None:
    """Bounds on the log of (canary's bad rate / baseline's), from pooled counts; None without data.

    Half an event is added to each count, so the estimate is finite when one arm saw none.
    """
    if n_c <= 0 or n_b <= 0:
        return None
    estimate = math.log((x_c + 0.5) / (n_c + 1.0)) - math.log((x_b + 0.5) / (n_b + 1.0))
    information = 1.0 / (max(dispersion, 1.0) * (1.0 / (x_c + 0.5) + 1.0 / (x_b + 0.5)))
    half = radius(information, level, RATIO_TIGHT_AT)
    return estimate - half, estimate + half


@dataclasses.dataclass(frozen=True)
class Moments:
    """Count, mean and sum of squared deviations of the finite values seen so far (Welford's
    update, one value at a time, so a series cut anywhere folds to the same figures)."""

    count: float = 0.0
    centre: float = 0.0
    squares: float = 0.0

    def add(self, values: FloatArray) -> Moments:
        count, centre, squares = self.count, self.centre, self.squares
        with np.errstate(over="ignore", invalid="ignore"):
            for value in values[np.isfinite(values)].tolist():
                count += 1.0
                delta = value - centre
                centre += delta / count
                squares += delta * (value - centre)
        return Moments(count, centre, squares)


def mean(moments: Moments, level: float) -> tuple[float, float] | None:
    """Bounds on the mean of per-interval values; None with fewer than two."""
    if moments.count < 2:
        return None
    spread = math.sqrt(moments.squares / (moments.count - 1)) if moments.squares >= 0 else math.nan
    centre = moments.centre
    if not (math.isfinite(spread) and math.isfinite(centre)):
        return None  # values near the float range's ends (a baseline of 1e-308): no usable bound
    if spread == 0.0:
        return centre, centre
    # Information in units of intervals, the boundary in units of the values' spread.
    half = spread * radius(moments.count, level, MEAN_TIGHT_AT)
    return centre - half, centre + half
