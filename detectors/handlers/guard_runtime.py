"""Per-container singletons of the deployment guards (built lazily, reset by tests)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import boto3

from sessionwatch.detectors.classify import Decision
from sessionwatch.detectors.emit import emit
from sessionwatch.detectors.guard_config import GuardConfig, load_guard_config
from sessionwatch.detectors.guards import act_on_losses
from sessionwatch.detectors.handlers import runtime


@cache
def guard_config() -> GuardConfig:
    return load_guard_config()


@cache
def _ecs() -> Any:
    """For ListServiceDeployments / StopServiceDeployment (stop on loss)."""
    return boto3.client("ecs")


# A plain callable, so the lab and the tests can put their ECS stand-in in its place.
ecs: Callable[[], Any] = _ecs


def reset() -> None:
    for factory in (guard_config, _ecs):
        factory.cache_clear()


class GuardActionsFailed(RuntimeError):
    """A stop or an alert failed (logged, counted, its claim given back): the retry redoes it."""


def act(decisions: list[Decision]) -> None:
    """Run the deployment guards over an invocation's verdicts; log, emit, raise on failure."""
    gcfg = guard_config()
    if not gcfg.acts_on_losses or not decisions:
        return
    cfg = runtime.config()
    out = act_on_losses(
        decisions, cfg, gcfg, runtime.ledger(), ecs(), runtime.sns(), runtime.clock()
    )
    for message, fields in out.logs:
        runtime.logger.warning(message, extra=fields)
    for failure in out.failures:
        runtime.logger.error("deployment guard failed", extra=failure)
    emit(out.points)
    if out.failures:
        raise GuardActionsFailed(f"{len(out.failures)} guard action(s) failed")
