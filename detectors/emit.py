"""Metric points as plain data, and their emission as EMF through Powertools.

One EMF document carries one dimension set, so points are grouped by dimensions and each group
is flushed on its own (a shared ``Metrics`` object would stamp one set on everything).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricResolution, MetricUnit

from sessionwatch.contract import (
    BAD_INPUT_SERVICE_NAME,
    DIMENSION_CAUSE,
    DIMENSION_SERVICE,
    METRIC_BAD_INPUT,
    METRIC_RECORD_FAILED,
    METRIC_SESSIONS_LOST,
    NAMESPACE,
    UNKNOWN_SERVICE_NAME,
    Cause,
)

Dimensions = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class MetricPoint:
    name: str
    value: float
    dimensions: Dimensions


def sessions_lost(service: str | None, cause: Cause, count: int = 1) -> MetricPoint:
    dims = ((DIMENSION_SERVICE, service or UNKNOWN_SERVICE_NAME), (DIMENSION_CAUSE, cause.value))
    return MetricPoint(METRIC_SESSIONS_LOST, count, dims)


def service_point(name: str, service: str, value: float) -> MetricPoint:
    return MetricPoint(name, value, ((DIMENSION_SERVICE, service),))


def bad_input(count: int) -> MetricPoint:
    return MetricPoint(METRIC_BAD_INPUT, count, ((DIMENSION_SERVICE, BAD_INPUT_SERVICE_NAME),))


def record_failed(count: int) -> MetricPoint:
    return MetricPoint(METRIC_RECORD_FAILED, count, ((DIMENSION_SERVICE, BAD_INPUT_SERVICE_NAME),))


def aggregate(points: Iterable[MetricPoint]) -> dict[Dimensions, dict[str, float]]:
    """Sum points with the same name and dimensions; group by dimension set."""
    groups: dict[Dimensions, dict[str, float]] = {}
    for p in points:
        metrics = groups.setdefault(p.dimensions, {})
        metrics[p.name] = metrics.get(p.name, 0.0) + p.value
    return groups


def emit(points: Iterable[MetricPoint], sessions_lost_resolution_s: int = 60) -> None:
    """Print one EMF document per dimension set (stdout; Lambda ships it to CloudWatch).

    ``sessions_lost_resolution_s`` = 1 stores SessionsLost as a high-resolution metric, so an
    alarm with a 10-second period has datapoints to evaluate; every other metric stays standard.
    """
    high = MetricResolution.High if sessions_lost_resolution_s == 1 else MetricResolution.Standard
    for dims, metrics in aggregate(points).items():
        # service="" keeps Powertools from adding its own `service` dimension, which would
        # make these metrics invisible to alarms keyed on ServiceName (+ Cause) only.
        sink = EphemeralMetrics(namespace=NAMESPACE, service="")
        for key, dim_value in dims:
            sink.add_dimension(name=key, value=dim_value)
        for name, total in metrics.items():
            resolution = high if name == METRIC_SESSIONS_LOST else MetricResolution.Standard
            sink.add_metric(name=name, unit=MetricUnit.Count, value=total, resolution=resolution)
        sink.flush_metrics()
