"""First lost session -> deployment alarm in ALARM: measured in the lab, modelled for AWS.

The lab measures each term on its own run, with the template's own alarm period divided by the
time scale, and puts beside it what the same term costs in AWS, with where that figure comes
from (infra/README.md, "How fast", has the table for 60-s and 10-s periods):

1. Logs subscription delivery: the server's ``session_not_found`` line -> the session-events
   function invoked with it (lab: its pipeline tick; AWS: seconds, no documented figure).
2. Lambda: the handler's own run on that batch (measured; the same code runs in AWS; a cold
   start adds about 1 s there).
3. Metric ingestion: the EMF line -> the datapoint stored (lab: at once, ``put_metric_data``;
   AWS: seconds, undocumented).
4. Alarm evaluation: the datapoint -> the first evaluation in ALARM (the period must close,
   then the alarm evaluates it: up to two periods; lab: replayed with the scaled period).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from lab.alarm_replay import ALARM, AlarmDefinition, Datapoint, Evaluation
from sessionwatch.contract import DIMENSION_CAUSE, METRIC_SESSIONS_LOST, Cause

# AWS's side of each term, per alarm period: (typical seconds, source).
AWS_DELIVERY_S = (2.0, "PutSubscriptionFilter: 'a real-time stream of log events', no figure")
AWS_INGESTION_S = (2.0, "CloudWatch embedded metric format: seconds, undocumented")
AWS_COLD_START_S = 1.0


@dataclass(frozen=True)
class Latency:
    """The measured terms (lab seconds) of one run, None where the run has no such event."""

    first_loss: float
    delivered: float | None  # the session-events invocation that got the not-found line
    lambda_s: float | None
    stored: float | None  # the SessionsLost(deployment) datapoint
    in_alarm: float | None
    period_s: int  # the template's alarm period (AWS seconds)
    time_scale: float


def _stamp(record: dict[str, Any]) -> float | None:
    try:
        return datetime.fromisoformat(str(record.get("timestamp"))).timestamp()
    except ValueError:
        return None


def measure(
    first_loss: float,
    server_records: Sequence[dict[str, Any]],
    invocations: Sequence[Any],
    points: Sequence[Datapoint],
    alarm: AlarmDefinition,
    timeline: Sequence[Evaluation],
    time_scale: float,
) -> Latency:
    """The terms of the first loss of a run (``invocations``: ``detectors_runtime.Invocation``)."""
    written = [
        t
        for r in server_records
        if r.get("event") == "session_not_found"
        and (t := _stamp(r)) is not None
        and t >= first_loss - 1
    ]
    line_at = min(written, default=first_loss)
    counted = [
        i
        for i in invocations
        if i.time >= line_at and isinstance(i.result, dict) and i.result.get("counted")
    ]
    first = min(counted, key=lambda i: i.time, default=None)
    stored = [
        p.timestamp
        for p in points
        if p.metric_name == METRIC_SESSIONS_LOST
        and dict(p.dimensions).get(DIMENSION_CAUSE) == Cause.DEPLOYMENT.value
        and p.value > 0
    ]
    # The replay evaluates a datapoint in its own period however late it came; CloudWatch can
    # only evaluate it once it has arrived: ALARM at the first evaluation tick after arrival.
    arrived = None if first is None else first.time
    period = alarm.period / time_scale
    alarmed = [
        e.time if arrived is None or e.time >= arrived else math.ceil(arrived / period) * period
        for e in timeline
        if e.state == ALARM and e.time >= first_loss
    ]
    return Latency(
        first_loss=first_loss,
        delivered=None if first is None else first.time - first.duration,
        lambda_s=None if first is None else first.duration,
        stored=min(stored, default=None),
        in_alarm=min(alarmed, default=None),
        period_s=alarm.period,
        time_scale=time_scale,
    )


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def lines(m: Latency) -> list[str]:
    """The printout: each term measured, and the AWS model for 60-s and 10-s periods."""
    delivery = None if m.delivered is None else max(0.0, m.delivered - m.first_loss)
    ingestion = None if m.stored is None else 0.0  # put_metric_data as the handler returns
    base = (
        m.delivered + m.lambda_s
        if m.delivered is not None and m.lambda_s is not None
        else m.first_loss
    )
    evaluation = None if m.in_alarm is None else max(0.0, m.in_alarm - base)
    total = None if m.in_alarm is None else m.in_alarm - m.first_loss
    scaled = m.period_s / m.time_scale
    lam = m.lambda_s or 0.0

    def model(period: float) -> tuple[float, float]:
        fixed = AWS_DELIVERY_S[0] + lam + AWS_INGESTION_S[0]
        return fixed + period / 2 + period / 2, fixed + AWS_COLD_START_S + 2 * period

    typical, worst = model(m.period_s)
    typical10, worst10 = model(10)
    return [
        f"First loss -> deployment alarm in ALARM (template period {m.period_s} s, "
        f"{scaled:g} s here at {m.time_scale:g}x):",
        f"  Logs subscription delivery   lab {_s(delivery):>8}   AWS ~{AWS_DELIVERY_S[0]:g} s "
        f"({AWS_DELIVERY_S[1]})",
        f"  Lambda (handler run)         lab {_s(m.lambda_s):>8}   AWS the same code; cold "
        f"start +{AWS_COLD_START_S:g} s",
        f"  metric ingestion (EMF)       lab {_s(ingestion):>8}   AWS ~{AWS_INGESTION_S[0]:g} s "
        f"({AWS_INGESTION_S[1]})",
        f"  alarm evaluation             lab {_s(evaluation):>8}   AWS 0-{m.period_s} s to the "
        f"period's end + up to {m.period_s} s to the evaluation (PutMetricAlarm Period)",
        f"  total                        lab {_s(total):>8}"
        + (
            ""
            if evaluation is None
            else f" (its alarm evaluation, at {m.time_scale:g}x, is "
            f"{evaluation * m.time_scale:.0f} s of AWS time)"
        ),
        f"  modelled in AWS: {m.period_s}-s periods typically {typical:.0f} s, worst "
        f"{worst:.0f} s; 10-s periods (high_resolution_alarms) typically {typical10:.0f} s, "
        f"worst {worst10:.0f} s",
    ]
