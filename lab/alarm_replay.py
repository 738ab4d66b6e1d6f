"""Replay CloudWatch metric alarms over datapoints: CloudWatch's evaluation, as plain code.

moto stores alarms but never evaluates them, so the lab evaluates the alarms of the synthesized
template itself. Pure functions over plain data; no AWS call. The semantics replayed:

- Datapoints are aggregated per period (``Statistic``: Sum, Average, Minimum, Maximum,
  SampleCount) into periods aligned on multiples of ``Period`` (as CloudWatch aligns them).
- At the end of each period the alarm looks at the last ``EvaluationPeriods`` (N) periods and
  counts breaching ones (``ComparisonOperator`` against ``Threshold``); ``DatapointsToAlarm`` (M,
  default N) breaching periods put it in ALARM.
- ``TreatMissingData`` (default ``missing``) for periods without datapoints:
  ``breaching`` / ``notBreaching`` count them as such; ``missing``: all N missing gives
  INSUFFICIENT_DATA, fewer than M present gives ALARM only when every present one breaches
  (CloudWatch's documented table: ``- - X`` is ALARM, ``0 - -`` is OK); ``ignore``: fewer than
  M present keeps the current state.
- An alarm starts in INSUFFICIENT_DATA (CloudWatch's state for a new alarm).

Simplifications, on purpose: anomaly-detection and metric-math alarms (``Metrics``) are not
replayed (``alarms_from_template`` skips them and says so); CloudWatch's look-back beyond N for
``missing`` is not modelled; ``period_scale`` shrinks every period so a lab run of one minute
shows what CloudWatch would show over several.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

OK = "OK"
ALARM = "ALARM"
INSUFFICIENT = "INSUFFICIENT_DATA"


class Missing(StrEnum):
    MISSING = "missing"
    IGNORE = "ignore"
    BREACHING = "breaching"
    NOT_BREACHING = "notBreaching"


COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": operator.ge,
    "GreaterThanThreshold": operator.gt,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}

STATISTICS: dict[str, Callable[[list[float]], float]] = {
    "Sum": math.fsum,
    "Average": lambda values: math.fsum(values) / len(values),
    "Minimum": min,
    "Maximum": max,
    "SampleCount": lambda values: float(len(values)),
}


@dataclass(frozen=True)
class AlarmDefinition:
    """The fields of an ``AWS::CloudWatch::Alarm`` that decide its state."""

    logical_id: str
    metric_name: str
    namespace: str
    dimensions: tuple[tuple[str, str], ...]
    statistic: str
    period: int
    evaluation_periods: int
    threshold: float
    comparison: str
    datapoints_to_alarm: int | None = None
    treat_missing_data: Missing = Missing.MISSING
    alarm_name: str | None = None

    @property
    def m(self) -> int:
        return self.datapoints_to_alarm or self.evaluation_periods

    def matches(self, namespace: str, metric_name: str, dimensions: Mapping[str, str]) -> bool:
        """CloudWatch matches a metric by namespace, name and the EXACT dimension set."""
        return (
            namespace == self.namespace
            and metric_name == self.metric_name
            and dict(self.dimensions) == dict(dimensions)
        )


@dataclass(frozen=True)
class Datapoint:
    """One value of one metric, as CloudWatch stores it (``put_metric_data`` or EMF)."""

    namespace: str
    metric_name: str
    dimensions: tuple[tuple[str, str], ...]
    timestamp: float
    value: float


@dataclass(frozen=True)
class Evaluation:
    """The alarm's state after the evaluation at ``time`` (the end of a period)."""

    time: float
    state: str
    breaching: int
    present: int
    values: tuple[float | None, ...] = field(default=())


def _resolve(value: Any, refs: Mapping[str, str]) -> str:
    """A template value as a string: plain values as-is, ``{"Ref": X}`` through ``refs``."""
    if isinstance(value, dict) and "Ref" in value:
        return refs.get(str(value["Ref"]), f"<Ref {value['Ref']}>")
    return str(value)


def alarms_from_template(
    template: Mapping[str, Any], refs: Mapping[str, str] | None = None
) -> tuple[list[AlarmDefinition], list[str]]:
    """Every single-metric alarm of a synthesized template, and the logical ids skipped (why)."""
    refs = refs or {}
    alarms: list[AlarmDefinition] = []
    skipped: list[str] = []
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        props = resource.get("Properties") or {}
        if "MetricName" not in props or "Statistic" not in props:
            skipped.append(f"{logical_id}: metric math or extended statistic, not replayed")
            continue
        name = props.get("AlarmName")
        alarms.append(
            AlarmDefinition(
                logical_id=logical_id,
                alarm_name=_resolve(name, refs) if name is not None else None,
                metric_name=_resolve(props["MetricName"], refs),
                namespace=_resolve(props["Namespace"], refs),
                dimensions=tuple(
                    sorted(
                        (_resolve(d["Name"], refs), _resolve(d["Value"], refs))
                        for d in props.get("Dimensions") or []
                    )
                ),
                statistic=str(props["Statistic"]),
                period=int(props.get("Period", 60)),
                evaluation_periods=int(props["EvaluationPeriods"]),
                datapoints_to_alarm=(
                    int(props["DatapointsToAlarm"]) if "DatapointsToAlarm" in props else None
                ),
                threshold=float(props["Threshold"]),
                comparison=str(props["ComparisonOperator"]),
                treat_missing_data=Missing(props.get("TreatMissingData", "missing")),
            )
        )
    return alarms, skipped


def aggregate(
    alarm: AlarmDefinition, datapoints: Iterable[Datapoint], period: float
) -> dict[int, float]:
    """Period index -> the alarm's statistic over the matching datapoints in that period."""
    buckets: dict[int, list[float]] = {}
    for point in datapoints:
        if alarm.matches(point.namespace, point.metric_name, dict(point.dimensions)):
            buckets.setdefault(math.floor(point.timestamp / period), []).append(point.value)
    statistic = STATISTICS[alarm.statistic]
    return {index: statistic(values) for index, values in buckets.items()}


def decide(
    values: list[float | None], alarm: AlarmDefinition, current: str
) -> tuple[str, int, int]:
    """The state for one evaluation window (oldest first): (state, breaching, present)."""
    compare = COMPARISONS[alarm.comparison]
    present = [v for v in values if v is not None]
    breaching = sum(1 for v in present if compare(v, alarm.threshold))
    missing = len(values) - len(present)
    m = alarm.m
    treatment = alarm.treat_missing_data
    if treatment is Missing.BREACHING:
        return (ALARM if breaching + missing >= m else OK), breaching + missing, len(values)
    if treatment is Missing.NOT_BREACHING:
        return (ALARM if breaching >= m else OK), breaching, len(values)
    if not present:
        return (INSUFFICIENT if treatment is Missing.MISSING else current), 0, 0
    if len(present) < m:
        if treatment is Missing.IGNORE:
            return current, breaching, len(present)
        return (ALARM if breaching == len(present) else OK), breaching, len(present)
    return (ALARM if breaching >= m else OK), breaching, len(present)


def replay(
    alarm: AlarmDefinition,
    datapoints: Iterable[Datapoint],
    start: float,
    end: float,
    *,
    period_scale: float = 1.0,
) -> list[Evaluation]:
    """Evaluate ``alarm`` at the end of every period from ``start`` to ``end`` (epoch seconds).

    The last, partial period is evaluated at ``end`` too, as CloudWatch would at its next tick.
    """
    period = alarm.period / period_scale
    by_period = aggregate(alarm, datapoints, period)
    first = math.floor(start / period)
    last = math.ceil(end / period) - 1  # a period that only begins at ``end`` has no data yet
    state = INSUFFICIENT
    timeline: list[Evaluation] = []
    for index in range(first, last + 1):
        window = range(index - alarm.evaluation_periods + 1, index + 1)
        values = [by_period.get(i) for i in window]
        state, breaching, present = decide(values, alarm, state)
        when = min((index + 1) * period, end)
        timeline.append(Evaluation(when, state, breaching, present, tuple(values)))
    return timeline


def transitions(timeline: Iterable[Evaluation]) -> list[Evaluation]:
    """Only the evaluations where the state changed (what an alarm's history shows)."""
    changes: list[Evaluation] = []
    previous = INSUFFICIENT
    for evaluation in timeline:
        if evaluation.state != previous:
            changes.append(evaluation)
            previous = evaluation.state
    return changes


def first_alarm(timeline: Iterable[Evaluation]) -> float | None:
    """When the alarm first entered ALARM, or None."""
    return next((e.time for e in timeline if e.state == ALARM), None)
