"""The lab's AWS account in moto, wired from the real template: routing, detectors, reports."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.detectors_runtime import (
    ECS_HANDLER,
    REPORTER_HANDLER,
    SESSION_HANDLER,
    LabAccount,
    scaled_env,
)
from lab.moto import ACCOUNT, MotoServer
from lab.template import AddonTemplate
from sessionwatch.detectors.config import load_config
from world.ecs import ServiceRef, deployment_event, new_deployment_id


@pytest.fixture(scope="module")
def account(addon_template: Path) -> Iterator[LabAccount]:
    with MotoServer() as moto:
        acct = LabAccount(moto, AddonTemplate.load(addon_template), env_overrides=scaled_env(20))
        acct.setup()
        yield acct


def test_the_spike_period_is_scaled_to_whole_seconds() -> None:
    assert scaled_env(1) == {"SPIKE_PERIOD_SECONDS": "60"}
    assert [scaled_env(s)["SPIKE_PERIOD_SECONDS"] for s in (20, 30, 7, 200)] == ["3", "2", "9", "1"]


def test_every_function_gets_the_scaled_spike_period_on_its_template_environment(
    account: LabAccount,
) -> None:
    for handler in (ECS_HANDLER, SESSION_HANDLER, REPORTER_HANDLER):
        env = account.function_env(handler)
        assert env["GRACE_PERIOD_SECONDS"] == "5"  # the template's own values stay
        assert load_config(env).spike_period_s == 3


def test_the_templates_rule_routes_only_this_clusters_events(account: LabAccount) -> None:
    ours = ServiceRef("us-east-1", ACCOUNT, "sessionwatch-lab", "mcp-server")
    other = ServiceRef("us-east-1", ACCOUNT, "sessionwatch-lab-2", "mcp-server")
    now = time.time()
    account.put_ecs_event(
        deployment_event(other, new_deployment_id(), "SERVICE_DEPLOYMENT_IN_PROGRESS", now)
    )
    account.put_ecs_event(
        deployment_event(ours, new_deployment_id(), "SERVICE_DEPLOYMENT_IN_PROGRESS", now)
    )
    before = len(account.invocations)
    assert account.deliver_ecs_events() == 1
    invocation = account.invocations[before]
    assert invocation.handler == ECS_HANDLER and invocation.error is None
    assert invocation.result == {"stored": 1, "ignored": 0, "bad_input": 0}


def test_reporter_runs_with_its_template_environment_and_emits_metrics(
    account: LabAccount,
) -> None:
    env = account.function_env(REPORTER_HANDLER)
    assert env["LEDGER_TABLE_NAME"] == "sessionwatch-lab-ledger"
    assert env["REPORT_TOPIC_ARN"].startswith("arn:aws:sns:us-east-1:")
    ours = ServiceRef("us-east-1", ACCOUNT, "sessionwatch-lab", "mcp-server")
    account.put_ecs_event(
        deployment_event(ours, new_deployment_id(), "SERVICE_DEPLOYMENT_IN_PROGRESS", time.time())
    )
    assert account.deliver_ecs_events() == 1  # this test's own deployment, whatever ran before
    invocation = account.invoke(REPORTER_HANDLER, {"id": "tick"})
    assert invocation.error is None
    names = {p.metric_name for p in account.detector_points}
    assert {"DeploymentsInProgress", "Invocations", "Errors"} <= names
    # the deployment is still in progress: the reporter says so (>= 1: another test's may be)
    in_progress = [p for p in account.detector_points if p.metric_name == "DeploymentsInProgress"]
    assert in_progress[-1].value >= 1.0
    assert account.reports() == []  # no deployment has ended: no report
