"""Spike correlation for services known only by their metrics (pure: no AWS calls here).

For one deployment window, a series spikes when its count inside the window exceeds twice what
the pre-deployment baseline rate predicts for a window that long, by at least one event. Rates,
not totals, so a long deployment is not a spike merely for being long.

Every duration here is a number of metric periods (``SPIKE_PERIOD_SECONDS``, 60 in AWS), not of
seconds: the rule is about buckets of data, so a smaller period (the lab runs time 20 times
faster) keeps the same shape: a 30-bucket baseline, windows of at least one bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BASELINE_PERIODS = 30  # 30 minutes at AWS's 60 s period
SPIKE_FACTOR = 2.0
MIN_EXCESS = 1.0


@dataclass(frozen=True)
class SeriesSpike:
    """One metric's window total against its baseline expectation."""

    label: str
    window_total: float
    expected: float
    spiked: bool


def baseline_seconds(period_s: int) -> int:
    """How far before a deployment the baseline reaches, for buckets of ``period_s``."""
    return BASELINE_PERIODS * period_s


def evaluate(
    label: str,
    points: Sequence[tuple[float, float]],
    window_start: float,
    window_end: float,
    *,
    period_s: int,
) -> SeriesSpike:
    """``points`` are (bucket start, sum over ``period_s``); the baseline precedes the window.

    CloudWatch stamps a bucket with its start, so a bucket that began before the deployment
    but reaches into it counts for the window (a loss in the deployment's first seconds must
    not land in the baseline).
    """
    baseline_s = baseline_seconds(period_s)
    window_s = max(window_end - window_start, period_s)
    baseline = sum(
        v for t, v in points if window_start - baseline_s <= t and t + period_s <= window_start
    )
    inside = sum(v for t, v in points if t + period_s > window_start and t <= window_end)
    expected = baseline / baseline_s * window_s
    spiked = inside - expected >= MIN_EXCESS and inside > SPIKE_FACTOR * expected
    return SeriesSpike(label, inside, round(expected, 3), spiked)
