"""The lab's ECS stand-ins for the deployment guards: the hook loop and the two ECS APIs."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from lab.ecs_api import LabEcsApi
from lab.ecs_play import IN_PROGRESS, Played, Stage, _run_gate
from sessionwatch.detectors import stop_on_loss
from sessionwatch.detectors.facts import DeploymentWindow
from world.ecs import ServiceRef

REF = ServiceRef("us-east-1", "111122223333", "lab", "mcp-server")


def stage(gate: Any = None, api: LabEcsApi | None = None) -> Stage:
    return Stage(None, lambda e: None, lambda s: None, REF, "ecs-svc/first", 0, 0, 30.0,  # type: ignore[arg-type]
                 gate=gate, ecs_api=api)  # fmt: skip


def test_the_gate_is_called_again_after_its_delay_with_its_hook_details() -> None:
    seen: list[dict[str, Any]] = []
    answers = iter(
        [
            {"hookStatus": "IN_PROGRESS", "callBackDelay": 0.01, "hookDetails": {"n": 1}},
            {"hookStatus": "IN_PROGRESS", "callBackDelay": 0.01, "hookDetails": {"n": 2}},
            {"hookStatus": "SUCCEEDED"},
        ]
    )

    def gate(payload: dict[str, Any]) -> dict[str, Any]:
        seen.append(dict(payload))
        return next(answers)

    played = Played()
    _run_gate(stage(gate), played, "POST_PRODUCTION_TRAFFIC_SHIFT")
    assert played.gate_calls == 3
    assert [p["hookDetails"] for p in seen] == [{}, {"n": 1}, {"n": 2}]
    assert seen[0]["serviceArn"].endswith(":service/lab/mcp-server")


def test_a_gate_that_fails_would_roll_back_so_the_lab_stops() -> None:
    with pytest.raises(RuntimeError, match="ECS would roll back"):
        _run_gate(stage(lambda p: {"hookStatus": "FAILED"}), Played(), "X")


def test_stop_on_loss_finds_and_stops_the_running_deployment_once() -> None:
    api = LabEcsApi("us-east-1", "111122223333", "lab")
    s = stage(api=api)
    s.event("ecs-svc/1", IN_PROGRESS)  # the play registers its deployment with the API
    window = DeploymentWindow("mcp-server", "ecs-svc/1", api.deployments["ecs-svc/1"].created_at)
    arn = stop_on_loss.stop(api, "lab", window)
    assert arn.endswith("service-deployment/lab/mcp-server/1") and s.stop_requested("ecs-svc/1")
    [(_, listed), (_, stopped)] = api.calls
    assert listed["status"] == ["PENDING", "IN_PROGRESS"] and stopped["stopType"] == "ROLLBACK"
    s.event("ecs-svc/1", "SERVICE_DEPLOYMENT_FAILED")
    with pytest.raises(ClientError, match="ConflictException"):
        api.stop_service_deployment(serviceDeploymentArn=arn, stopType="ROLLBACK")
    # Validated against botocore's ECS model, as the real API would be.
    with pytest.raises(ParamValidationError):
        api.stop_service_deployment(stopType="ROLLBACK")


def test_the_detectors_strategy_read_gets_each_played_deployments_configuration() -> None:
    """The real reader (detectors/ecs_read.py) over the stand-in: a canary while it runs (from
    DescribeServices), and from the service's history once a later deployment replaced it."""
    from lab.ecs_play import traffic_shift_configuration
    from sessionwatch.detectors import ecs_read

    api = LabEcsApi(REF.region, REF.account, REF.cluster)
    canary = "ecs-svc/1111"
    api.register(REF.service, canary, traffic_shift_configuration((25, 100), 60, 120))
    settings = ecs_read.read(api, REF.cluster, REF.service, canary)  # type: ignore[arg-type]
    assert (settings.strategy, settings.step_percent, settings.step_bake_s, settings.bake_s) == (
        "CANARY", 25.0, 60.0, 120.0,
    )  # fmt: skip
    started = api.deployments[canary].created_at
    api.finish(canary, "SUCCESSFUL")
    api.register(REF.service, "ecs-svc/2222", {"strategy": "ROLLING"})
    (listed,) = api.describe_services(cluster=REF.cluster, services=[REF.service])["services"]
    assert [d["id"] for d in listed["deployments"]] == ["ecs-svc/2222"]  # INACTIVE: not listed
    later = ecs_read.read(api, REF.cluster, REF.service, canary, started)  # type: ignore[arg-type]
    assert later.strategy == "CANARY"
    assert ecs_read.read(api, REF.cluster, REF.service, "ecs-svc/2222").strategy == "ROLLING"  # type: ignore[arg-type]
    with pytest.raises(ParamValidationError):
        api.describe_services(cluster=REF.cluster, services="mcp-server")
