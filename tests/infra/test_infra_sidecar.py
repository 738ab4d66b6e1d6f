"""The sidecar in a task definition: the demo stack with ``sessionwatch:serverRuntime=typescript``.

One more real synth (the TypeScript SDK's example server behind the sidecar), checked like the
others: the task definition's containers, ordering, ports, logs and sizes; the target group and
the service pointing at the sidecar's port; cdk-nag and cfn-lint; a snapshot of the task
definition, so any change to what a user's task gets shows up in review.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_logs as logs
from aws_cdk.assertions import Template
from cfnlint.api import lint_file

from sessionwatch.infra import adot
from sessionwatch.infra.app import DEMO_STACK
from sessionwatch.infra.demo import TS_SERVER_PORT, DemoServiceProps
from sessionwatch.infra.sidecar import (
    SIDECAR_CONTAINER,
    SIDECAR_PORT,
    SidecarProps,
    add_sessionwatch_sidecar,
)
from tests.infra.conftest import Synth, cdk_json_context, logical_id, synth
from tests.infra.test_infra_compliance import TOLERATED_WARNINGS
from tests.infra.test_infra_snapshot import UPDATE_ENV, _differences, normalized

SNAPSHOT = (
    Path(__file__).resolve().parent / "snapshots" / "DemoServiceStack-typescript.taskdef.json"
)


@pytest.fixture(scope="module")
def ts_synth(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    context = {**cdk_json_context(), "sessionwatch:serverRuntime": "typescript"}
    return synth(tmp_path_factory.mktemp("cdk-out-ts"), context)


def _task_definition(s: Synth) -> dict[str, Any]:
    (task,) = s.demo_template.find_resources("AWS::ECS::TaskDefinition").values()
    return dict(task["Properties"])


def _containers(s: Synth) -> dict[str, dict[str, Any]]:
    return {c["Name"]: c for c in _task_definition(s)["ContainerDefinitions"]}


def test_the_sidecar_fronts_the_typescript_server(ts_synth: Synth) -> None:
    containers = _containers(ts_synth)
    assert set(containers) == {"mcp-server", SIDECAR_CONTAINER, "aws-otel-collector"}
    side, server = containers[SIDECAR_CONTAINER], containers["mcp-server"]
    assert side["Essential"] is True and server["Essential"] is True
    assert side["PortMappings"] == [{"ContainerPort": SIDECAR_PORT, "Protocol": "tcp"}]
    assert "PortMappings" not in server  # reached on loopback only, through the sidecar
    command = side["Command"]
    assert command[:3] == ["python", "-m", "sessionwatch.sidecar"]
    assert command[command.index("--upstream") + 1] == f"http://127.0.0.1:{TS_SERVER_PORT}"
    assert {"Name": "MCP_PORT", "Value": str(TS_SERVER_PORT)} in server["Environment"]
    # Started after the server (and the collector it exports to); stopped first (reversed).
    assert {"ContainerName": "mcp-server", "Condition": "START"} in side["DependsOn"]
    assert {"ContainerName": "aws-otel-collector", "Condition": "START"} in side["DependsOn"]
    # Sized on its own, draining inside its stop timeout, logging to the subscribed group.
    assert side["Cpu"] == 256 and side["Memory"] == 256 and side["MemoryReservation"] == 64
    env = {e["Name"]: e["Value"] for e in side["Environment"]}
    assert int(env["SESSIONWATCH_DRAIN_SECONDS"]) + 10 == side["StopTimeout"] == 30
    assert env["SESSIONWATCH_SERVICE"] == "mcp-server"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == adot.OTLP_ENDPOINT_FOR_SERVER
    group = side["LogConfiguration"]["Options"]["awslogs-group"]
    assert group == {"Ref": logical_id(ts_synth.demo_stack.server_logs)}
    # The example prints raw session ids: its output is not shipped anywhere.
    assert "LogConfiguration" not in server
    assert side["HealthCheck"]["Command"][0] == "CMD"


def test_the_load_balancer_points_at_the_sidecar(ts_synth: Synth) -> None:
    template = ts_synth.demo_template
    (group,) = template.find_resources("AWS::ElasticLoadBalancingV2::TargetGroup").values()
    assert group["Properties"]["Port"] == SIDECAR_PORT
    (service,) = template.find_resources("AWS::ECS::Service").values()
    (target,) = service["Properties"]["LoadBalancers"]
    assert (target["ContainerName"], target["ContainerPort"]) == (SIDECAR_CONTAINER, SIDECAR_PORT)


def test_the_python_demo_has_no_sidecar(synthesized: Synth) -> None:
    assert SIDECAR_CONTAINER not in _containers(synthesized)


def test_nag_and_cfn_lint_pass_with_the_sidecar(ts_synth: Synth) -> None:
    (report,) = ts_synth.validation_report()["pluginReports"]
    assert report["conclusion"] == "success" and report["violations"] == []
    matches = lint_file(ts_synth.outdir / f"{DEMO_STACK}.template.json")
    assert [str(m) for m in matches if m.rule.id not in TOLERATED_WARNINGS] == []


def test_the_sidecar_image_context_is_what_its_dockerfile_copies(ts_synth: Synth) -> None:
    assets = json.loads((ts_synth.outdir / f"{DEMO_STACK}.assets.json").read_text())
    sidecar_assets = [a for a in assets["dockerImages"].values() if a["source"].get("dockerFile")]
    (asset,) = sidecar_assets
    context = ts_synth.outdir / asset["source"]["directory"]
    dockerfile = (context / asset["source"]["dockerFile"]).read_text()
    sources = [
        source.rstrip("/")
        for line in dockerfile.splitlines()
        if line.startswith("COPY ")
        for source in line.split()[1:-1]
    ]
    for source in sources:
        assert (context / source).exists(), source
    assert {p.name for p in context.iterdir()} == {
        "pyproject.toml", "README.md", "sessionwatch", "server", "sidecar"
    }  # fmt: skip
    assert not (context / "sidecar" / "examples").exists()


def test_task_definition_matches_its_snapshot(ts_synth: Synth) -> None:
    current = normalized(_task_definition(ts_synth))
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), f"no snapshot yet: run with {UPDATE_ENV}=1 and commit {SNAPSHOT}"
    differences = _differences(json.loads(SNAPSHOT.read_text()), current)
    assert not differences, "\n".join(differences[:20])


def test_props_refuse_what_cannot_work() -> None:
    with pytest.raises(ValueError, match="serverRuntime"):
        DemoServiceProps(server_runtime="go")
    stack = Stack(App(), "S")
    task = ecs.FargateTaskDefinition(stack, "T")
    app = task.add_container("app", image=ecs.ContainerImage.from_registry("example/app"))
    with pytest.raises(ValueError, match="network namespace"):
        add_sessionwatch_sidecar(
            task,
            SidecarProps(
                image=ecs.ContainerImage.from_registry("example/sidecar"),
                app_container=app,
                app_port=SIDECAR_PORT,
                log_group=logs.LogGroup(stack, "L"),
            ),
        )


def test_a_healthy_dependency_and_upstream_health_pass_through() -> None:
    stack = Stack(App(), "S")
    task = ecs.FargateTaskDefinition(stack, "T")
    app = task.add_container(
        "app",
        image=ecs.ContainerImage.from_registry("example/app"),
        health_check=ecs.HealthCheck(command=["CMD", "true"]),
    )
    sidecar = add_sessionwatch_sidecar(
        task,
        SidecarProps(
            image=ecs.ContainerImage.from_registry("example/sidecar"),
            app_container=app,
            app_port=9000,
            log_group=logs.LogGroup(stack, "L"),
            app_condition=ecs.ContainerDependencyCondition.HEALTHY,
            upstream_health_path="/healthz",
            stop_timeout_seconds=60,
        ),
    )
    (task_resource,) = (
        Template.from_stack(stack).find_resources("AWS::ECS::TaskDefinition").values()
    )
    containers = {c["Name"]: c for c in task_resource["Properties"]["ContainerDefinitions"]}
    side = containers[sidecar.props.container_name]
    assert {"ContainerName": "app", "Condition": "HEALTHY"} in side["DependsOn"]
    command = side["Command"]
    assert command[command.index("--upstream-health-path") + 1] == "/healthz"
    assert command[command.index("--upstream") + 1] == "http://127.0.0.1:9000"
    env = {e["Name"]: e["Value"] for e in side["Environment"]}
    assert env["SESSIONWATCH_DRAIN_SECONDS"] == "50" and side["StopTimeout"] == 60
