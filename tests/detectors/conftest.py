"""Detector test fixtures: moto-backed ledger tables, a config, a Lambda context."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sessionwatch.detectors.config import Config
from sessionwatch.detectors.ledger import TABLE_SCHEMA
from sessionwatch.detectors.ledger import DynamoDBLedger as Ledger
from tests.detectors.builders import CLUSTER, SERVICE
from world.aws import answer_calls
from world.harness import detector_harness

_names = itertools.count()


def create_table(client: Any) -> str:
    name = f"ledger-{next(_names)}"
    client.create_table(TableName=name, **TABLE_SCHEMA)
    return name


def report_clients(topic_name: str) -> dict[str, Any]:
    """moto clients a reporter run needs (``db``, ``sns``, ``cw``) and a report ``topic``."""
    sns = boto3.client("sns", region_name="us-east-1")
    return {
        "db": boto3.client("dynamodb", region_name="us-east-1"),
        "sns": sns,
        "cw": boto3.client("cloudwatch", region_name="us-east-1"),
        "topic": sns.create_topic(Name=topic_name)["TopicArn"],
    }


@pytest.fixture(scope="module")
def aws() -> Iterator[None]:
    """One moto backend per test module (tables are cheap, the mock's start is not)."""
    keys = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    with mock_aws():
        yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@dataclass
class LedgerEnv:
    client: Any
    table: str
    ledger: Ledger
    cfg: Config


@pytest.fixture
def ledger_env(aws: None) -> LedgerEnv:
    client = boto3.client("dynamodb", region_name="us-east-1")
    table = create_table(client)
    cfg = Config(table_name=table, cluster_name=CLUSTER, service_names=frozenset({SERVICE}))
    return LedgerEnv(client, table, Ledger(client, table, cfg.ledger_ttl_days), cfg)


class FakeContext:
    """The attributes Powertools' Logger reads from a LambdaContext."""

    function_name = "sessionwatch-test"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:us-east-1:111122223333:function:sessionwatch-test"
    aws_request_id = "req-1"


@pytest.fixture
def lambda_context() -> FakeContext:
    return FakeContext()


@pytest.fixture
def memory_wired() -> Iterator[dict[str, Any]]:
    """The real handlers over an ``InMemoryLedger`` (no moto) at a settable time (``h.now``),
    through ``world.harness``; the ECS client refuses every call (a role without ECS reads:
    the strategy read is ``unavailable``, decided as ROLLING); always restored."""
    from sessionwatch.detectors.ledger import InMemoryLedger

    env: dict[str, str | None] = {
        "LEDGER_TABLE_NAME": "in-memory",
        "CLUSTER_NAME": CLUSTER,
        "SERVICE_NAMES": SERVICE,
        "GRACE_PERIOD_SECONDS": "120",
        # The reporter builds its SNS/CloudWatch clients; with no topic and no spike check
        # configured they are never called.
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "REPORT_TOPIC_ARN": None,
        "SERVER_SERVICE_NAME": None,
        "LOAD_BALANCER_FULL_NAME": None,
    }
    ledger = InMemoryLedger()
    with detector_harness(env, ledger=ledger) as h:
        h.ecs_client = answer_calls(boto3.client("ecs", region_name="us-east-1"), "ecs", {})
        yield {"h": h, "ledger": ledger}
