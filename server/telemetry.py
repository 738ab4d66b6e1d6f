"""OpenTelemetry metrics for SessionWatch: the meter provider, its exporter, the instruments.

Export happens only when an OTLP endpoint is configured (``OTEL_EXPORTER_OTLP_ENDPOINT`` or an
explicit one); otherwise instruments still record into a provider with no reader, which costs
almost nothing and keeps the request path identical. Export runs on the SDK's background thread,
so a collector that is down never slows a request; its failures are counted, not raised.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import (
    CallbackOptions,
    Counter,
    Histogram,
    Meter,
    Observation,
    UpDownCounter,
)
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
)
from opentelemetry.sdk.resources import Resource

from sessionwatch import contract
from sessionwatch.server.identity import TaskIdentity

SCOPE = "sessionwatch.server"
DEFAULT_EXPORT_INTERVAL_MS = 60_000
DEFAULT_EXPORT_TIMEOUT_S = 5.0
# Bucket advice of the OTel MCP conventions for operation durations (seconds).
OPERATION_BUCKETS: Sequence[float] = (
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300,
)  # fmt: skip
SESSION_BUCKETS: Sequence[float] = (
    1, 10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 86400,
)  # fmt: skip


class CountingOtlpExporter(OTLPMetricExporter):
    """The OTLP/HTTP exporter, reporting each failed export to ``on_failure`` instead of raising."""

    def __init__(self, on_failure: Callable[[str], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_failure = on_failure

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = None, **kwargs: Any
    ) -> MetricExportResult:
        try:
            result = super().export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception as exc:  # never let the export thread die on us
            self._on_failure(type(exc).__name__)
            return MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS:
            self._on_failure("export failed")
        return result


def build_resource(service: str, identity: TaskIdentity) -> Resource:
    """Resource attributes: service.name plus the ECS task and cluster ARNs where known."""
    attrs: dict[str, str] = {contract.RESOURCE_SERVICE_NAME: service}
    optional = {
        contract.RESOURCE_ECS_TASK_ARN: identity.task_arn,
        contract.RESOURCE_ECS_CLUSTER_ARN: identity.cluster,
        contract.RESOURCE_ECS_TASK_FAMILY: identity.family,
        contract.RESOURCE_ECS_TASK_REVISION: identity.revision,
    }
    attrs.update({k: v for k, v in optional.items() if v})
    return Resource.create(attrs)


def build_meter_provider(
    service: str,
    identity: TaskIdentity,
    on_export_failure: Callable[[str], None],
    otlp_endpoint: str | None = None,
    export_interval_ms: int | None = None,
) -> MeterProvider:
    """A provider with an OTLP/HTTP reader when an endpoint is configured, none otherwise."""
    endpoint = otlp_endpoint or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    readers = []
    if endpoint:
        timeout = os.environ.get("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT") or os.environ.get(
            "OTEL_EXPORTER_OTLP_TIMEOUT"
        )
        exporter = CountingOtlpExporter(
            on_export_failure,
            endpoint=f"{endpoint.rstrip('/')}/v1/metrics",
            timeout=float(timeout) if timeout else DEFAULT_EXPORT_TIMEOUT_S,
        )
        interval = export_interval_ms or int(
            os.environ.get("OTEL_METRIC_EXPORT_INTERVAL") or DEFAULT_EXPORT_INTERVAL_MS
        )
        readers.append(PeriodicExportingMetricReader(exporter, export_interval_millis=interval))
    return MeterProvider(metric_readers=readers, resource=build_resource(service, identity))


class ClientLabels:
    """Client names as metric attribute values, bounded: the first ``limit`` distinct names keep
    their own series, later ones share ``other``. ``clientInfo`` is client-supplied, so without a
    bound one client could mint a metric series (and a CloudWatch cost) per request."""

    def __init__(self, limit: int = contract.MAX_CLIENT_LABELS) -> None:
        self._seen: set[str] = set()
        self._limit = limit

    def label(self, name: str | None) -> str:
        if name is None:
            return contract.CLIENT_UNKNOWN
        if name in self._seen:
            return name
        if len(self._seen) >= self._limit:
            return contract.CLIENT_OTHER
        self._seen.add(name)
        return name


# What the middleware knows of the SDK's cap when a collection asks: (task attributes, open
# sessions, max_sessions) or None while no cap is known.
CapReading = Callable[[], "tuple[dict[str, str], int, int] | None"]


def _cap_callbacks(read: CapReading) -> tuple[Callable[..., Iterable[Observation]], ...]:
    def limit(_options: CallbackOptions) -> Iterable[Observation]:
        reading = read()
        return [] if reading is None else [Observation(reading[2], reading[0])]

    def utilization(_options: CallbackOptions) -> Iterable[Observation]:
        reading = read()
        return [] if reading is None else [Observation(reading[1] / reading[2], reading[0])]

    return limit, utilization


@dataclass(frozen=True)
class Instruments:
    """The instruments of docs/architecture.md §4 (names from ``sessionwatch.contract``)."""

    operation_duration: Histogram
    session_duration: Histogram
    session_created: Counter
    session_not_found: Counter
    session_active: UpDownCounter
    session_dropped: Counter
    instrumentation_errors: Counter
    session_refused: Counter
    requests: Counter

    @classmethod
    def create(cls, meter: Meter, cap: CapReading | None = None) -> Instruments:
        """The instruments; ``cap`` feeds the two cap gauges (none are registered without it)."""
        if cap is not None:
            limit, utilization = _cap_callbacks(cap)
            meter.create_observable_gauge(
                contract.METRIC_SESSION_LIMIT,
                callbacks=[limit],
                unit="{session}",
                description="The SDK's session cap on this task (max_sessions).",
            )
            meter.create_observable_gauge(
                contract.METRIC_SESSION_UTILIZATION,
                callbacks=[utilization],
                unit="1",
                description="Open sessions as a share of the cap (1 = new clients refused).",
            )
        return cls(
            operation_duration=meter.create_histogram(
                contract.METRIC_OPERATION_DURATION,
                unit="s",
                description="Duration of MCP requests as seen by the server.",
                explicit_bucket_boundaries_advisory=OPERATION_BUCKETS,
            ),
            session_duration=meter.create_histogram(
                contract.METRIC_SESSION_DURATION,
                unit="s",
                description="Lifetime of MCP sessions, from creation to close.",
                explicit_bucket_boundaries_advisory=SESSION_BUCKETS,
            ),
            session_created=meter.create_counter(
                contract.METRIC_SESSION_CREATED, unit="{session}", description="Sessions created."
            ),
            session_not_found=meter.create_counter(
                contract.METRIC_SESSION_NOT_FOUND,
                unit="{request}",
                description="Requests answered 404 / -32600 Session not found.",
            ),
            session_active=meter.create_up_down_counter(
                contract.METRIC_SESSION_ACTIVE, unit="{session}", description="Open sessions."
            ),
            session_dropped=meter.create_counter(
                contract.METRIC_SESSION_DROPPED,
                unit="{session}",
                description="Sessions still open when the process stopped.",
            ),
            instrumentation_errors=meter.create_counter(
                contract.METRIC_INSTRUMENTATION_ERRORS,
                unit="{error}",
                description="Failures inside SessionWatch's own instrumentation (swallowed).",
            ),
            session_refused=meter.create_counter(
                contract.METRIC_SESSION_REFUSED,
                unit="{request}",
                description="Requests refused a new session: the server held max_sessions.",
            ),
            requests=meter.create_counter(
                contract.METRIC_REQUESTS,
                unit="{request}",
                description="JSON-RPC requests, by protocol era and client name.",
            ),
        )
