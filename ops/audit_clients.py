"""Who would going stateless affect? The clients still holding sessions, from server metrics.

The instrumented server counts every JSON-RPC request in ``mcp.server.requests`` with its
protocol era (``handshake``: it holds a session; ``modern``: 2026-07-28, sessionless) and the
client's self-declared name; the ADOT collector writes them to CloudWatch with the dimension set
(``service.name``, ``mcp.protocol.era``, ``mcp.client.name``). The audit reads those series
(``cloudwatch:ListMetrics`` and ``cloudwatch:GetMetricStatistics``): plain metric reads that work
the same against CloudWatch and moto, where Logs Insights queries over the server's log group
would not (moto's Logs Insights ignores ``filter`` and ``stats``). A missing permission degrades
this section to a sentence; it never fails the audit.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sessionwatch import contract

DEFAULT_LOOKBACK_S = 7 * 86_400  # a week: weekly users (CI agents, batch jobs) are seen too
CLIENT_DIMENSIONS = frozenset(
    {
        contract.RESOURCE_SERVICE_NAME,
        contract.ATTR_MCP_PROTOCOL_ERA,
        contract.ATTR_MCP_CLIENT_NAME,
    }
)


@dataclass(frozen=True)
class ClientUsage:
    """One client's requests over the look-back, by era."""

    client: str
    handshake: float = 0.0
    modern: float = 0.0


@dataclass(frozen=True)
class StatelessReadiness:
    """The answer to "can we go stateless yet, and whom would it affect?"."""

    server_service: str
    lookback_s: int
    clients: tuple[ClientUsage, ...] = ()
    error: str | None = None  # why the metrics could not be read

    @property
    def affected(self) -> list[ClientUsage]:
        """Clients with handshake-era requests: they hold sessions and lose them when the
        server stops serving that era. Most requests first."""
        held = [c for c in self.clients if c.handshake > 0]
        return sorted(held, key=lambda c: (-c.handshake, c.client))

    @property
    def share_held(self) -> float | None:
        total = sum(c.handshake + c.modern for c in self.clients)
        return None if total == 0 else sum(c.handshake for c in self.clients) / total

    def to_dict(self) -> dict[str, Any]:
        return {
            "server_service": self.server_service,
            "lookback_s": self.lookback_s,
            "share_of_requests_holding_sessions": self.share_held,
            "affected_clients": [
                {"client": c.client, "handshake_requests": c.handshake, "modern_requests": c.modern}
                for c in self.affected
            ],
            "error": self.error,
        }

    def lines(self) -> list[str]:
        days = self.lookback_s / 86_400
        head = f"Going stateless (protocol 2026-07-28): requests of the last {days:g} day(s)"
        if self.error is not None:
            return [head, f"  not read: {self.error}"]
        share = self.share_held
        if share is None:
            return [
                head,
                f"  no mcp.server.requests for service.name={self.server_service}: is the "
                "server instrumented and exporting metrics (ADOT sidecar)?",
            ]
        out = [head, f"  {share:.1%} of requests still hold sessions (handshake era)"]
        if not self.affected:
            out.append("  no client holds sessions: serving 2026-07-28 only affects nobody")
        for c in self.affected:
            total = c.handshake + c.modern
            out.append(
                f"  affected: {c.client:<32} {c.handshake:g} of {total:g} requests with a session"
            )
        return out


def summarize(rows: Iterable[tuple[str, str, float]]) -> tuple[ClientUsage, ...]:
    """(era, client, requests) rows -> one usage per client (eras other than the two ignored)."""
    eras: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for era, client, count in rows:
        eras[client][era] += count
    return tuple(
        ClientUsage(
            client,
            by_era.get(contract.ERA_HANDSHAKE, 0.0),
            by_era.get(contract.ERA_MODERN, 0.0),
        )
        for client, by_era in sorted(eras.items())
    )


@dataclass
class _Series:
    era: str
    client: str
    dimensions: list[dict[str, str]] = field(default_factory=list)


def fetch_rows(
    cloudwatch: Any, server_service: str, now: datetime, lookback_s: int
) -> list[tuple[str, str, float]]:
    """(era, client, requests) for every client series of ``server_service`` over the window."""
    series: dict[tuple[str, str], _Series] = {}
    paginator = cloudwatch.get_paginator("list_metrics")
    for page in paginator.paginate(
        Namespace=contract.SERVER_METRICS_NAMESPACE,
        MetricName=contract.METRIC_REQUESTS,
        Dimensions=[{"Name": contract.RESOURCE_SERVICE_NAME, "Value": server_service}],
    ):
        for metric in page.get("Metrics", []):
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            if set(dims) != CLIENT_DIMENSIONS:
                continue  # the same counter under its other dimension sets
            era, client = dims[contract.ATTR_MCP_PROTOCOL_ERA], dims[contract.ATTR_MCP_CLIENT_NAME]
            # Once per series: a listing may name one series more than once (moto does).
            series.setdefault(
                (era, client),
                _Series(era, client, [{"Name": k, "Value": v} for k, v in sorted(dims.items())]),
            )
    period = max(60, lookback_s - lookback_s % 60)
    rows = []
    for s in series.values():
        stats = cloudwatch.get_metric_statistics(
            Namespace=contract.SERVER_METRICS_NAMESPACE,
            MetricName=contract.METRIC_REQUESTS,
            Dimensions=s.dimensions,
            StartTime=now - timedelta(seconds=lookback_s),
            EndTime=now,
            Period=period,
            Statistics=["Sum"],
        )
        rows.append((s.era, s.client, sum(float(p["Sum"]) for p in stats.get("Datapoints", []))))
    return rows
