"""Lazily built, per-container singletons the handlers share (nothing happens at import).

Tests reset them with ``reset()`` after changing the environment or entering ``mock_aws``.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from aws_lambda_powertools import Logger
from botocore.config import Config as BotoConfig

from sessionwatch import contract
from sessionwatch.detectors.classify import Decision
from sessionwatch.detectors.config import Config, load_config
from sessionwatch.detectors.facts import BadInput
from sessionwatch.detectors.ledger import DynamoDBLedger, LedgerStore

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_ecs import ECSClient
    from mypy_boto3_sns import SNSClient
else:
    CloudWatchClient = ECSClient = SNSClient = Any

READ_WIDTH = 50
# Contract default service name; Powertools' own default would be "service_undefined".
logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "sessionwatch")


def clock() -> float:
    """Wall-clock now; tests replace it to replay a scenario at its own time."""
    return time.time()


@cache
def config() -> Config:
    return load_config()


_ledger_override: LedgerStore | None = None


def use_ledger(store: LedgerStore | None) -> None:
    """Put another ``LedgerStore`` (the in-memory one: tests, the lab, the benchmark) behind
    the handlers; None goes back to DynamoDB. ``reset()`` does not undo it: the caller does."""
    global _ledger_override
    _ledger_override = store


def ledger() -> LedgerStore:
    return _ledger_override if _ledger_override is not None else _dynamodb_ledger()


@cache
def _dynamodb_ledger() -> LedgerStore:
    cfg = config()
    # 50 connections: a batch's BatchGetItem chunks go out concurrently (one read round trip).
    client = boto3.client("dynamodb", config=BotoConfig(max_pool_connections=READ_WIDTH))
    return DynamoDBLedger(client, cfg.table_name, cfg.ledger_ttl_days)


@cache
def sns() -> SNSClient:
    return boto3.client("sns")


@cache
def cloudwatch() -> CloudWatchClient:
    return boto3.client("cloudwatch")


@cache
def _ecs() -> ECSClient:
    """For the one ECS read per deployment (a failing read is degraded, see ecs_read)."""
    return boto3.client("ecs")


# A plain callable, so the tests and the benchmarks can put a stubbed client in its place.
ecs: Callable[[], Any] = _ecs


def reset() -> None:
    for factory in (config, _dynamodb_ledger, sns, cloudwatch, _ecs):
        factory.cache_clear()


def log_failed(failed: list[BadInput]) -> None:
    """One error line per record that could not be stored or decided (retried, then queued)."""
    for item in failed:
        logger.error("detector record failed", extra={"reason": item.reason, **item.context})


def log_bad_input(bad: list[BadInput]) -> None:
    """One warning per rejected input, with where it came from (never its raw content)."""
    for item in bad:
        logger.warning("detector bad input", extra={"reason": item.reason, **item.context})


def log_decisions(decisions: list[Decision]) -> None:
    """One line per decided or parked loss: fingerprints only, never a raw session id; a
    revised verdict gets a warning naming both causes."""
    for d in decisions:
        fields = {
            "session": d.occurrence.fingerprint,
            "cause": d.verdict.cause.value,
            "ecs_service": d.verdict.service,
            "origin_task": d.verdict.origin_task,
            "serving_task": d.occurrence.task_id,
            "deployment_id": d.verdict.deployment_id,
            "basis": d.verdict.basis,
            "counted": d.counted,
        }
        if d.repeats:  # later 404s of the session whose counts this one took back
            fields["repeats_taken_back"] = ",".join(c.value for c in d.repeats)
        message = contract.VERDICT_LOG_MESSAGE if d.verdict.final else contract.PENDING_LOG_MESSAGE
        logger.info(message, extra=fields)
        if d.revised_from is not None:
            logger.warning(
                contract.REVISED_LOG_MESSAGE, extra=fields | {"revised_from": d.revised_from.value}
            )
