"""Detector configuration, read once from the environment (contract: all handlers share it).

Kept as a frozen dataclass built by a plain function so tests can build one without touching
``os.environ`` and handlers build it lazily (no side effects at import).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from sessionwatch.contract import SESSIONS_LOST_RESOLUTION_ENV
from sessionwatch.detectors.facts import BEFORE_DRAIN_S

DEFAULT_GRACE_PERIOD_SECONDS = 120
DEFAULT_LEDGER_TTL_DAYS = 14
DEFAULT_SERVER_METRICS_NAMESPACE = "SessionWatch/MCPServer"
# The spike check's CloudWatch period: 60 (or a multiple) in AWS, where standard-resolution
# metrics have nothing finer; the lab, running time faster, sets a scaled one.
SPIKE_PERIOD_ENV = "SPIKE_PERIOD_SECONDS"
DEFAULT_SPIKE_PERIOD_SECONDS = 60
CLOCK_ERROR_ENV = "CLOCK_ERROR_SECONDS"


class ConfigError(ValueError):
    """A required variable is missing or malformed: a deployment bug, so it fails loudly."""


@dataclass(frozen=True)
class Config:
    """What the detectors watch and how long they wait for late facts."""

    table_name: str
    cluster_name: str
    service_names: frozenset[str] = frozenset()
    report_topic_arn: str | None = None
    grace_period_s: float = DEFAULT_GRACE_PERIOD_SECONDS
    ledger_ttl_days: int = DEFAULT_LEDGER_TTL_DAYS
    deregistration_delay_s: int | None = None
    stop_timeout_s: int | None = None
    server_metrics_namespace: str = DEFAULT_SERVER_METRICS_NAMESPACE
    server_service_name: str | None = None
    # SERVER_SERVICE_NAMES "ecs-service=otel-service,...": the server metrics' name per ECS
    # service (the construct sets it: by default each service's own name); wins over the above.
    server_service_names: tuple[tuple[str, str], ...] = ()
    load_balancer_full_name: str | None = None
    target_group_full_name: str | None = None
    spike_period_s: int = DEFAULT_SPIKE_PERIOD_SECONDS
    # SESSIONS_LOST_STORAGE_RESOLUTION: 1 stores SessionsLost at high resolution, which the
    # construct's 10-second alarms need (high_resolution_alarms); 60 (default) is standard.
    sessions_lost_resolution_s: int = 60
    # The listener rule's target group stickiness duration (AWSALBTG), for the lock-out
    # paragraph of a blue/green report; None: not told (the report says so).
    group_stickiness_s: int | None = None
    # CLOCK_ERROR_SECONDS: how far a server's log stamp may be off ECS's (both clocks' error
    # together), the allowance for a 404 logged before its task's drain (``facts.BEFORE_DRAIN_S``).
    clock_error_s: float = BEFORE_DRAIN_S

    def server_service_for(self, service: str) -> str | None:
        """The OTel ``service.name`` ECS service ``service``'s server reports metrics as."""
        return dict(self.server_service_names).get(service) or self.server_service_name

    def cluster_matches(self, cluster: str | None) -> bool:
        """True for the configured cluster, given either its name or its ARN."""
        return cluster is not None and cluster_short_name(cluster) == self.cluster_name

    def service_in_scope(self, service: str | None) -> bool:
        """An empty SERVICE_NAMES means every service of the cluster."""
        if service is None:
            return False
        return not self.service_names or service in self.service_names


def cluster_short_name(cluster: str) -> str:
    """``arn:aws:ecs:r:a:cluster/NAME`` or ``NAME`` -> ``NAME``."""
    return cluster.rsplit("/", 1)[-1] if cluster.startswith("arn:") else cluster


def _optional_int(env: Mapping[str, str], name: str) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from exc


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    """A zero or negative period would make every GetMetricData call fail: refuse it at start."""
    value = _optional_int(env, name)
    if value is None:
        return default
    if value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value}")
    return value


def _optional_str(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def load_config(env: Mapping[str, str] | None = None) -> Config:
    """Build the config from ``env`` (default: the process environment)."""
    env = os.environ if env is None else env
    table = _optional_str(env, "LEDGER_TABLE_NAME")
    cluster = _optional_str(env, "CLUSTER_NAME")
    if table is None or cluster is None:
        raise ConfigError("LEDGER_TABLE_NAME and CLUSTER_NAME are required")
    services = frozenset(s.strip() for s in env.get("SERVICE_NAMES", "").split(",") if s.strip())
    grace = _optional_int(env, "GRACE_PERIOD_SECONDS")
    ttl = _optional_int(env, "LEDGER_TTL_DAYS")
    return Config(
        table_name=table,
        cluster_name=cluster_short_name(cluster),
        service_names=services,
        report_topic_arn=_optional_str(env, "REPORT_TOPIC_ARN"),
        grace_period_s=DEFAULT_GRACE_PERIOD_SECONDS if grace is None else grace,
        ledger_ttl_days=DEFAULT_LEDGER_TTL_DAYS if ttl is None else ttl,
        deregistration_delay_s=_optional_int(env, "DEREGISTRATION_DELAY_SECONDS"),
        stop_timeout_s=_optional_int(env, "STOP_TIMEOUT_SECONDS"),
        server_metrics_namespace=_optional_str(env, "SERVER_METRICS_NAMESPACE")
        or DEFAULT_SERVER_METRICS_NAMESPACE,
        server_service_name=_optional_str(env, "SERVER_SERVICE_NAME"),
        server_service_names=_pairs(env, "SERVER_SERVICE_NAMES"),
        load_balancer_full_name=_optional_str(env, "LOAD_BALANCER_FULL_NAME"),
        target_group_full_name=_optional_str(env, "TARGET_GROUP_FULL_NAME"),
        spike_period_s=_positive_int(env, SPIKE_PERIOD_ENV, DEFAULT_SPIKE_PERIOD_SECONDS),
        sessions_lost_resolution_s=_storage_resolution(env),
        group_stickiness_s=_optional_int(env, "GROUP_STICKINESS_SECONDS"),
        clock_error_s=_clock_error(env),
    )


def _clock_error(env: Mapping[str, str]) -> float:
    """A negative or unparsable bound is a deployment bug: refuse it at start."""
    raw = env.get(CLOCK_ERROR_ENV, "").strip()
    if not raw:
        return BEFORE_DRAIN_S
    try:
        value = float(raw)
    except ValueError as exc:
        raise ConfigError(f"{CLOCK_ERROR_ENV} must be a number of seconds, got {raw!r}") from exc
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{CLOCK_ERROR_ENV} must be finite and >= 0, got {raw!r}")
    return value


def _pairs(env: Mapping[str, str], name: str) -> tuple[tuple[str, str], ...]:
    pairs = []
    for item in env.get(name, "").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ConfigError(f"{name} must be ecs-service=name pairs, got {item!r}")
        pairs.append((key.strip(), value.strip()))
    return tuple(pairs)


def _storage_resolution(env: Mapping[str, str]) -> int:
    value = _positive_int(env, SESSIONS_LOST_RESOLUTION_ENV, 60)
    if value not in (1, 60):
        raise ConfigError(f"{SESSIONS_LOST_RESOLUTION_ENV} must be 1 or 60, not {value}")
    return value
