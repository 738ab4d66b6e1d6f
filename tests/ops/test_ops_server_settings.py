"""The audit reads the server's settings under the names the server itself parses (one source)."""

from __future__ import annotations

import pytest

from sessionwatch.contract import (
    ENV_DRAIN_SECONDS,
    ENV_SESSION_IDLE_TIMEOUT,
    FLAG_DRAIN_SECONDS,
    FLAG_GRACEFUL_SECONDS,
    FLAG_SESSION_IDLE_TIMEOUT,
)
from sessionwatch.ops.audit_model import service_config_from
from sessionwatch.server.__main__ import parse_args


def audited(container: dict[str, object]) -> tuple[float | None, float | None, float | None]:
    service = {"serviceName": "s", "clusterArn": "arn:aws:ecs:r:1:cluster/c"}
    task_definition = {"containerDefinitions": [{"name": "mcp", **container}]}
    (c,) = service_config_from(service, task_definition, [], []).containers
    return c.drain_s, c.graceful_s, c.idle_timeout_s


def test_flags_mean_the_same_to_the_server_and_the_audit() -> None:
    argv = [FLAG_DRAIN_SECONDS, "7", FLAG_GRACEFUL_SECONDS, "4", FLAG_SESSION_IDLE_TIMEOUT, "60"]
    args = parse_args(argv)
    assert (args.drain_seconds, args.graceful_seconds, args.session_idle_timeout) == (7, 4, 60)
    assert audited({"command": ["python", "-m", "sessionwatch.server", *argv]}) == (7, 4, 60)


def test_env_vars_mean_the_same_to_the_server_and_the_audit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(ENV_DRAIN_SECONDS, "9")
    monkeypatch.setenv(ENV_SESSION_IDLE_TIMEOUT, "120")
    args = parse_args([])
    assert (args.drain_seconds, args.session_idle_timeout) == (9, 120)
    env = [
        {"name": ENV_DRAIN_SECONDS, "value": "9"},
        {"name": ENV_SESSION_IDLE_TIMEOUT, "value": "120"},
    ]
    assert audited({"environment": env}) == (9, None, 120)
