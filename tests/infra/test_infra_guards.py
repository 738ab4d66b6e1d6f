"""The deployment guards in the construct: off by default; when on, the drain gate function and
hook (its timeout, its invoke role), stop on loss and the first-loss alert, least privilege."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sessionwatch import contract
from sessionwatch.infra.guards import GATE_HANDLER, GATE_LEDGER_ACTIONS, DrainGateOptions
from tests.infra.conftest import Synth, cdk_json_context, synth

GUARDED = {
    "sessionwatch:demoBlueGreenGuards": True,
    "sessionwatch:stopOnLoss": "2",
    "sessionwatch:firstLossAlert": True,
    "sessionwatch:drainGateMaxHoldSeconds": "1800",
}
GUARD_ENV = {
    contract.ENV_STOP_ON_LOSS,
    contract.ENV_FIRST_LOSS_ALERT,
    contract.ENV_DRAIN_GATE_MAX_HOLD,
    contract.ENV_DRAIN_GATE_CALLBACK,
}


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Synth:
    """A synth with every guard on (cdk-nag runs in it: an unacknowledged finding fails it)."""
    return synth(tmp_path_factory.mktemp("cdk-out-guards"), {**cdk_json_context(), **GUARDED})


def resources(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


def statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(role logical id, statement) of every inline policy."""
    out = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        props = policy["Properties"]
        for role in props.get("Roles", []):
            for st in props["PolicyDocument"]["Statement"]:
                out.append((role["Ref"], st))
    return out


def actions(st: dict[str, Any]) -> list[str]:
    a = st["Action"]
    return [a] if isinstance(a, str) else list(a)


def test_every_guard_is_off_by_default(synthesized: Synth) -> None:
    for template in (synthesized.addon, synthesized.demo):
        functions = resources(template, "AWS::Lambda::Function")
        assert GATE_HANDLER not in {f["Properties"]["Handler"] for f in functions.values()}
        for fn in functions.values():
            env = fn["Properties"].get("Environment", {}).get("Variables", {})
            assert not GUARD_ENV & set(env)
        granted = {a for _, st in statements(template) for a in actions(st)}
        assert "ecs:StopServiceDeployment" not in granted


def test_the_guards_configure_the_detectors_and_the_gate(guarded: Synth) -> None:
    template = guarded.addon
    functions = resources(template, "AWS::Lambda::Function")
    [gate] = [f for f in functions.values() if f["Properties"]["Handler"] == GATE_HANDLER]
    env = gate["Properties"]["Environment"]["Variables"]
    assert env[contract.ENV_DRAIN_GATE_MAX_HOLD] == "1800"
    assert env[contract.ENV_DRAIN_GATE_CALLBACK] == "30"
    assert env[contract.ENV_STOP_ON_LOSS] == "2" and env[contract.ENV_FIRST_LOSS_ALERT] == "true"
    gate_role = gate["Properties"]["Role"]["Fn::GetAtt"][0]
    gate_grants = [st for role, st in statements(template) if role == gate_role]
    # The gate reads the ledger and writes its own item: nothing more (no ECS, no SNS).
    data = [a for st in gate_grants for a in actions(st) if not a.startswith("logs:")]
    assert sorted(data) == sorted(GATE_LEDGER_ACTIONS)


def test_stop_on_loss_is_scoped_to_the_watched_services_deployments(guarded: Synth) -> None:
    template = guarded.addon
    stops = [
        (role, st)
        for role, st in statements(template)
        if "ecs:StopServiceDeployment" in actions(st)
    ]
    # The three deciding detectors, each on service-deployment/<cluster>/<service>/* only.
    assert len({role for role, _ in stops}) == 3
    for _, st in stops:
        assert actions(st) == ["ecs:StopServiceDeployment"]
        joined = str(st["Resource"])
        assert "service-deployment/mcp-cluster/mcp-service/*" in joined
    publishers = {role for role, st in statements(template) if "sns:Publish" in actions(st)}
    assert len(publishers) == 3  # the reporter, and for the first-loss alert the two ingesters


def test_the_demo_gates_its_blue_green_deployments(guarded: Synth) -> None:
    template = guarded.demo
    [service] = resources(template, "AWS::ECS::Service").values()
    config = service["Properties"]["DeploymentConfiguration"]
    assert config["Strategy"] == "BLUE_GREEN"
    [hook] = config["LifecycleHooks"]
    assert hook["LifecycleStages"] == ["POST_PRODUCTION_TRAFFIC_SHIFT"]
    # Past the 1-hour max_hold (the demo's default) by two callbacks and 5 minutes; CONTINUE.
    assert hook["TimeoutConfiguration"] == {"Action": "CONTINUE", "TimeoutInMinutes": 66}
    invoke_role = hook["RoleArn"]["Fn::GetAtt"][0]
    [(_, st)] = [(r, st) for r, st in statements(template) if r == invoke_role]
    assert actions(st) == ["lambda:InvokeFunction"]
    assert st["Resource"] == hook["HookTargetArn"]  # the one function, no version wildcard
    [lb] = service["Properties"]["LoadBalancers"]
    assert set(lb["AdvancedConfiguration"]) >= {"AlternateTargetGroupArn", "ProductionListenerRule"}


def test_hook_timeout_stays_within_ecs_bounds() -> None:
    from aws_cdk import Duration

    assert DrainGateOptions(max_hold=Duration.minutes(10)).hook_timeout_minutes() == 16
    with pytest.raises(ValueError, match="at most 20160"):
        DrainGateOptions(max_hold=Duration.days(14)).hook_timeout_minutes()


def test_guard_context_reaches_the_addon(tmp_path: Path) -> None:
    from sessionwatch.infra.guards import guard_environment

    assert guard_environment(None, None, False) == {}
    with pytest.raises(ValueError, match="at least 1"):
        guard_environment(None, 0, False)


@pytest.mark.parametrize("stack", ["SessionWatchStack", "DemoServiceStack"])
def test_the_guarded_synth_passes_cfn_lint_and_nag(guarded: Synth, stack: str) -> None:
    from cfnlint.api import lint_file

    from tests.infra.test_infra_compliance import TOLERATED_WARNINGS

    matches = lint_file(guarded.outdir / f"{stack}.template.json")
    assert [str(m) for m in matches if m.rule.id not in TOLERATED_WARNINGS] == []
    (report,) = guarded.validation_report()["pluginReports"]
    assert report["conclusion"] == "success" and report["violations"] == []
