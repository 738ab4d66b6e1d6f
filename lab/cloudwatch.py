"""What CloudWatch Logs and the ADOT collector do between the processes and the detectors.

Three conversions, each what the managed service does and moto does not:

- log lines -> the subscription event a filter delivers to a Lambda function: built by
  ``world.server_logs.subscription_payload`` (the one definition the benchmarks and tests use
  too). The lab applies the template's filter pattern before (``lab.filter_pattern``), as
  CloudWatch Logs would.
- ``emf_datapoints``: Embedded Metric Format lines (what the detectors print through Powertools)
  -> one datapoint per metric and dimension set, as CloudWatch Logs extracts them.
- ``AwsEmfBridge``: the server's OTLP metrics -> CloudWatch datapoints as ADOT's ``awsemf``
  exporter writes them: namespace and dimension sets from ``infra.adot`` (the ONE place they
  are configured), resource attributes as labels, and cumulative sums turned into per-export
  deltas (awsemf reports the change since the previous point of a series, not the running total).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from lab.alarm_replay import Datapoint
from lab.otlp_receiver import DataPoint as OtlpPoint
from sessionwatch.infra.adot import DIMENSION_SETS, SERVER_METRICS_NAMESPACE


def emf_datapoints(line: str) -> list[Datapoint]:
    """The datapoints of one EMF line; ``[]`` for any line that is not a valid EMF document."""
    try:
        doc = json.loads(line)
    except ValueError:
        return []
    aws = doc.get("_aws") if isinstance(doc, dict) else None
    if not isinstance(aws, dict) or not isinstance(aws.get("CloudWatchMetrics"), list):
        return []
    timestamp = aws.get("Timestamp")
    if not isinstance(timestamp, int | float):
        return []
    points: list[Datapoint] = []
    for directive in aws["CloudWatchMetrics"]:
        if not isinstance(directive, dict):
            continue
        namespace = directive.get("Namespace")
        for dim_set in directive.get("Dimensions") or [[]]:
            try:
                dims = tuple(sorted((str(k), str(doc[k])) for k in dim_set))
            except (KeyError, TypeError):
                continue  # CloudWatch drops a dimension set whose value is missing
            for metric in directive.get("Metrics") or []:
                name = metric.get("Name") if isinstance(metric, dict) else None
                if not isinstance(name, str):
                    continue
                raw = doc.get(name)
                values = raw if isinstance(raw, list) else [raw]
                for value in values:
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        points.append(
                            Datapoint(str(namespace), name, dims, timestamp / 1000, float(value))
                        )
    return points


def _label(value: object) -> str | None:
    if value is None or isinstance(value, dict | list | bytes):
        return None
    return str(value)


@dataclass
class AwsEmfBridge:
    """OTLP points -> CloudWatch datapoints, the way the awsemf exporter maps them."""

    namespace: str = SERVER_METRICS_NAMESPACE
    dimension_sets: tuple[tuple[str, ...], ...] = DIMENSION_SETS
    _last: dict[tuple[str, tuple[tuple[str, str], ...]], float] = field(default_factory=dict)

    def convert(self, points: Iterable[OtlpPoint]) -> list[Datapoint]:
        """Datapoints for ``points``, given in export order.

        awsemf writes a histogram as a statistic set; the lab keeps only its new ``count`` (what
        a request-rate widget reads), which is all the lab's checks need.
        """
        out: list[Datapoint] = []
        for point in points:
            labels: dict[str, str] = {}
            for key, raw in {**point.resource, **point.attributes}.items():
                text = _label(raw)
                if text is not None:
                    labels[key] = text
            series = (point.name, tuple(sorted(labels.items())))
            value = self._value(point, series)
            if value is None:
                continue
            for dims in self.dimension_sets:
                if all(key in labels for key in dims):
                    dimensions = tuple(sorted((key, labels[key]) for key in dims))
                    out.append(
                        Datapoint(
                            self.namespace,
                            point.name,
                            dimensions,
                            point.time_unix_nano / 1e9,
                            value,
                        )
                    )
        return out

    def _value(
        self, point: OtlpPoint, series: tuple[str, tuple[tuple[str, str], ...]]
    ) -> float | None:
        if point.kind == "sum" and point.value is not None:
            current = float(point.value)
            if point.monotonic is False:
                return current  # an up-down counter is a level (awsemf reports it as is)
            previous = self._last.get(series)
            self._last[series] = current
            if previous is None:
                return current  # first point of the series: everything so far is new
            return max(0.0, current - previous)
        if point.kind == "gauge" and point.value is not None:
            return float(point.value)
        if point.kind == "histogram" and point.count is not None:
            count = float(point.count)
            previous = self._last.get(series)
            self._last[series] = count
            return count if previous is None else max(0.0, count - previous)
        return None


PUT_METRIC_DATA_MAX = 1000


def put_metric_data(cloudwatch: Any, datapoints: Iterable[Datapoint]) -> int:
    """Write ``datapoints`` to (moto) CloudWatch, up to 1,000 metrics per call as the API allows
    ("no more than 1000 different metrics", PutMetricData API reference; 20 before 2023)."""
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for p in datapoints:
        if not math.isfinite(p.value):
            continue
        by_namespace.setdefault(p.namespace, []).append(
            {
                "MetricName": p.metric_name,
                "Dimensions": [{"Name": k, "Value": v} for k, v in p.dimensions],
                "Timestamp": p.timestamp,
                "Value": p.value,
                "Unit": "Count",
            }
        )
    sent = 0
    for namespace, data in by_namespace.items():
        for i in range(0, len(data), PUT_METRIC_DATA_MAX):
            batch = data[i : i + PUT_METRIC_DATA_MAX]
            cloudwatch.put_metric_data(Namespace=namespace, MetricData=batch)
            sent += len(batch)
    return sent
