"""Spike correlation for services known only by their metrics (pure: no AWS calls here).

For one deployment window, a series spikes when its count inside the window exceeds twice what
the pre-deployment baseline rate predicts for a window that long, by at least one event. Rates,
not totals, so a long deployment is not a spike merely for being long.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BASELINE_S = 30 * 60
PERIOD_S = 60
SPIKE_FACTOR = 2.0
MIN_EXCESS = 1.0


@dataclass(frozen=True)
class SeriesSpike:
    """One metric's window total against its baseline expectation."""

    label: str
    window_total: float
    expected: float
    spiked: bool


def evaluate(
    label: str,
    points: Sequence[tuple[float, float]],
    window_start: float,
    window_end: float,
) -> SeriesSpike:
    """``points`` are (bucket start, sum over PERIOD_S); baseline is BASELINE_S before the window.

    CloudWatch stamps a bucket with its start, so a bucket that began before the deployment
    but reaches into it counts for the window (a loss in the deployment's first seconds must
    not land in the baseline).
    """
    window_s = max(window_end - window_start, PERIOD_S)
    baseline = sum(
        v for t, v in points if window_start - BASELINE_S <= t and t + PERIOD_S <= window_start
    )
    inside = sum(v for t, v in points if t + PERIOD_S > window_start and t <= window_end)
    expected = baseline / BASELINE_S * window_s
    spiked = inside - expected >= MIN_EXCESS and inside > SPIKE_FACTOR * expected
    return SeriesSpike(label, inside, round(expected, 3), spiked)
