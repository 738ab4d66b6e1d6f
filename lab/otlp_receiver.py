"""A local OTLP/HTTP metrics receiver: what an ADOT collector sidecar would receive, as plain data.

The server exports metrics with the real OTLP/HTTP exporter (protobuf over ``POST /v1/metrics``).
This receiver decodes each export with ``opentelemetry-proto`` into :class:`DataPoint` records so a
test or the lab can assert on metric names, attributes and values without a collector.

Usage::

    with OtlpReceiver() as rx:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": rx.endpoint, "OTEL_METRIC_EXPORT_INTERVAL": "500"}
        ...  # start a server process with env
        point = rx.wait_for("mcp.server.session.created", timeout=10)
        assert point.value == 1 and point.resource["service.name"] == "mcp-server"

Exporters send cumulative temporality by default, so the most recent point of a series carries the
running total: use :meth:`latest` / :meth:`wait_for` with a predicate rather than summing points.
"""

from __future__ import annotations

import gzip
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from lab.loopback_http import LoopbackHTTPService, QuietHandler

PROTOBUF = "application/x-protobuf"
AttrValue = str | bool | int | float | bytes | list[Any] | dict[str, Any] | None


@dataclass(frozen=True)
class DataPoint:
    """One decoded data point.

    ``kind`` is ``sum`` (counters and up-down counters, see ``monotonic``), ``gauge``,
    ``histogram``, ``exponential_histogram`` or ``summary``. ``value`` is set for sum and gauge
    points; ``count``/``sum`` for histograms and summaries.
    """

    name: str
    kind: str
    unit: str
    attributes: dict[str, AttrValue]
    resource: dict[str, AttrValue]
    scope: str
    time_unix_nano: int
    value: float | int | None = None
    count: int | None = None
    sum: float | None = None
    monotonic: bool | None = None
    bucket_counts: tuple[int, ...] = ()
    explicit_bounds: tuple[float, ...] = ()


def _any_value(v: AnyValue) -> AttrValue:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return _attributes(v.kvlist_value.values)
    value: AttrValue = getattr(v, which)
    return value


def _attributes(kvs: Any) -> dict[str, AttrValue]:
    out: dict[str, AttrValue] = {}
    kv: KeyValue
    for kv in kvs:
        out[kv.key] = _any_value(kv.value)
    return out


def decode_export(body: bytes) -> list[DataPoint]:
    """Decode one ``ExportMetricsServiceRequest`` (protobuf bytes) into data points."""
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    points: list[DataPoint] = []
    for rm in request.resource_metrics:
        resource = _attributes(rm.resource.attributes)
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                kind = metric.WhichOneof("data")
                if kind is None:
                    continue
                data = getattr(metric, kind)
                base = {
                    "name": metric.name,
                    "kind": kind,
                    "unit": metric.unit,
                    "resource": resource,
                    "scope": sm.scope.name,
                }
                for dp in data.data_points:
                    extra: dict[str, Any] = {}
                    if kind in ("sum", "gauge"):
                        extra["value"] = getattr(dp, dp.WhichOneof("value") or "as_int")
                        if kind == "sum":
                            extra["monotonic"] = data.is_monotonic
                    else:
                        extra["count"] = dp.count
                        extra["sum"] = dp.sum
                        if kind == "histogram":
                            extra["bucket_counts"] = tuple(dp.bucket_counts)
                            extra["explicit_bounds"] = tuple(dp.explicit_bounds)
                    points.append(
                        DataPoint(
                            attributes=_attributes(dp.attributes),
                            time_unix_nano=dp.time_unix_nano,
                            **base,
                            **extra,
                        )
                    )
    return points


def _matches(point: DataPoint, attrs: dict[str, AttrValue]) -> bool:
    return all(point.attributes.get(k) == v for k, v in attrs.items())


@dataclass
class OtlpReceiver(LoopbackHTTPService):
    """An OTLP/HTTP receiver on ``127.0.0.1:<free port>`` in a daemon thread.

    ``status`` is the HTTP status it answers exports with (set 503 to play a failing collector).
    ``requests`` counts every export request, whatever it was answered; ``exports`` those it
    accepted and decoded; ``bad_requests`` those it could not decode.
    """

    status: int = 200
    requests: int = 0
    exports: int = 0
    bad_requests: int = 0
    _points: list[DataPoint] = field(default_factory=list, repr=False)
    _cond: threading.Condition = field(default_factory=threading.Condition, repr=False)
    thread_name = "otlp-receiver"

    @property
    def endpoint(self) -> str:
        """The value for ``OTEL_EXPORTER_OTLP_ENDPOINT`` (the exporter appends ``/v1/metrics``)."""
        return f"http://127.0.0.1:{self.port}"

    def points(self, name: str | None = None, **attrs: AttrValue) -> list[DataPoint]:
        """All points received so far, optionally filtered by metric name and attributes.

        Attribute names with dots cannot be keyword arguments: pass them as ``**{"a.b": v}``.
        """
        with self._cond:
            return [
                p for p in self._points if (name is None or p.name == name) and _matches(p, attrs)
            ]

    def names(self) -> set[str]:
        with self._cond:
            return {p.name for p in self._points}

    def latest(self, name: str, **attrs: AttrValue) -> DataPoint | None:
        """The most recent point of ``name`` matching ``attrs`` (cumulative: the running total)."""
        found = self.points(name, **attrs)
        return max(found, key=lambda p: p.time_unix_nano) if found else None

    def wait_for(
        self,
        name: str,
        predicate: Callable[[DataPoint], bool] | None = None,
        timeout: float = 15.0,
        **attrs: AttrValue,
    ) -> DataPoint:
        """Block until a point of ``name`` matching ``attrs`` and ``predicate`` arrives; return it.

        Raises ``TimeoutError`` listing the metric names seen, which is what you want to read when
        a test fails.
        """
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for p in reversed(self._points):
                    if (
                        p.name == name
                        and _matches(p, attrs)
                        and (predicate is None or predicate(p))
                    ):
                        return p
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = sorted({p.name for p in self._points})
                    raise TimeoutError(
                        f"no matching point for {name} {attrs} in {timeout}s; seen {seen}"
                    )
                self._cond.wait(remaining)

    def wait_for_requests(self, count: int, timeout: float = 15.0) -> int:
        """Block until ``count`` export requests arrived (any answer); return how many did."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.requests < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{self.requests} export requests in {timeout} s, of {count}"
                    )
                self._cond.wait(remaining)
            return self.requests

    def clear(self) -> None:
        with self._cond:
            self._points.clear()

    def _receive(self, body: bytes) -> None:
        points = decode_export(body)
        with self._cond:
            self.exports += 1
            self._points.extend(points)
            self._cond.notify_all()

    def handler_class(self) -> type[QuietHandler]:
        rx = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if self.path != "/v1/metrics":
                    self.send_body(404, b"", PROTOBUF)
                    return
                with rx._cond:
                    rx.requests += 1
                    rx._cond.notify_all()
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                try:
                    if encoding == "gzip":
                        body = gzip.decompress(body)
                    elif encoding == "deflate":
                        body = zlib.decompress(body)
                    if rx.status == 200:
                        rx._receive(body)
                except (DecodeError, OSError, zlib.error):
                    with rx._cond:
                        rx.bad_requests += 1
                    self.send_body(400, b"", PROTOBUF)
                    return
                response = ExportMetricsServiceResponse().SerializeToString()
                self.send_body(rx.status, response, PROTOBUF)

        return Handler
