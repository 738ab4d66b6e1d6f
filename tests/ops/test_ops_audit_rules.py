"""The pure audit rules over the real describe_* response shapes, including the fields moto drops
(deploymentConfiguration on CreateService, metric-math alarms, app_cookie stickiness)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from sessionwatch.ops.audit_model import (
    ServiceConfig,
    alarm_from_response,
    group_stickiness_from_rules,
    service_config_from,
    target_group_from_attributes,
)
from sessionwatch.ops.audit_rules import Severity, findings, survival_window, tasks_per_wave, worst

DATA = Path(__file__).parent / "data"


def load(name: str) -> Any:
    return json.loads((DATA / name).read_text())


def real_config(
    service_patch: dict[str, Any] | None = None, container_patch: dict[str, Any] | None = None
) -> ServiceConfig:
    service = {**load("describe-services-real.json")["services"][0], **(service_patch or {})}
    task_def = load("describe-task-definition-real.json")["taskDefinition"]
    task_def["containerDefinitions"][0].update(container_patch or {})
    tg_arn = service["loadBalancers"][0]["targetGroupArn"]
    tg = target_group_from_attributes(
        tg_arn, load("describe-target-group-attributes-real.json")["Attributes"]
    )
    alarms = [alarm_from_response(a) for a in load("describe-alarms-real.json")["MetricAlarms"]]
    return service_config_from(service, task_def, [tg], alarms)


def test_real_shapes_parse_into_the_config() -> None:
    cfg = real_config()
    assert (cfg.cluster, cfg.service, cfg.desired_count) == ("prod", "mcp-server", 4)
    assert (cfg.minimum_healthy_percent, cfg.maximum_percent) == (50, 150)
    assert cfg.circuit_breaker_enabled and cfg.deployment_alarms_enabled
    (tg,) = cfg.target_groups
    assert tg.name == "targetgroup/mcp-tg/6d0ecf831eec9f09"
    # app_cookie stickiness: the duration is the app cookie's, not the unused lb_cookie's.
    assert (tg.stickiness_type, tg.stickiness_duration_s, tg.deregistration_delay_s) == (
        "app_cookie",
        3600,
        120,
    )
    mcp, collector = cfg.containers
    assert mcp.serves_traffic and not collector.serves_traffic
    assert (mcp.stop_timeout_s, mcp.drain_s, mcp.graceful_s) == (20, 25.0, None)


@pytest.mark.parametrize(
    ("command", "stop_timeout", "fires"),
    [
        ([], 34, False),  # env drain 25 + default graceful 5 + flush 3 = 33 < 34
        ([], 33, True),
        (
            ["python", "-m", "sessionwatch.server", "--drain-seconds", "5"],
            20,
            False,
        ),  # the flag wins
        (
            ["python", "-m", "sessionwatch.server", "--drain-seconds=5", "--graceful-seconds=15"],
            20,
            True,
        ),
    ],
)
def test_drain_budget_follows_the_server_flags_and_env(
    command: list[str], stop_timeout: int, fires: bool
) -> None:
    cfg = real_config(container_patch={"command": command, "stopTimeout": stop_timeout})
    assert any(f.rule == "stop-timeout-below-drain" for f in findings(cfg)) is fires


@pytest.mark.parametrize(
    ("idle_env", "command", "fires"),
    [
        (None, [], False),  # app cookie 3600 s >= the 1800 s default idle timeout
        ("7200", [], True),
        ("7200", ["--session-idle-timeout", "600"], False),  # the flag wins
    ],
)
def test_sticky_cookie_shorter_than_the_session_idle_timeout(
    idle_env: str | None, command: list[str], fires: bool
) -> None:
    env = [{"name": "SESSIONWATCH_DRAIN_SECONDS", "value": "25"}]
    if idle_env is not None:
        env.append({"name": "SESSIONWATCH_SESSION_IDLE_TIMEOUT", "value": idle_env})
    cfg = real_config(container_patch={"environment": env, "command": command, "stopTimeout": 40})
    rules = [f.rule for f in findings(cfg)]
    assert rules == (["stickiness-shorter-than-session"] if fires else [])


def test_metric_math_alarm_counts_as_sessionwatch_alarm() -> None:
    cfg = real_config()
    by_name = {a.name: a for a in cfg.alarms}
    assert by_name["SessionWatch-mcp-server-lost-deployment"].watches_sessionwatch("mcp-server")
    assert not by_name["SessionWatch-mcp-server-lost-deployment"].watches_sessionwatch("other")
    assert not by_name["mcp-5xx"].watches_sessionwatch("mcp-server")


def test_real_service_window_and_its_one_finding() -> None:
    cfg = real_config()
    w = survival_window(cfg)
    # 4 tasks at 50/150: 6 may run, 2 must stay healthy, so 4 old tasks drain in one wave.
    assert (w.tasks_per_wave, w.waves) == (4, 1)
    assert (w.session_cliff_s, w.stop_timeout_s, w.task_gone_by_s) == (0, 20, 140)
    assert w.in_flight_s == 120
    found = findings(cfg)
    assert [f.rule for f in found] == ["stop-timeout-below-drain"]
    assert "stopTimeout 20 s (set), SESSIONWATCH_DRAIN_SECONDS=25 s" in found[0].evidence
    assert "does not fit in stopTimeout 20s" in found[0].evidence  # the server's own wording
    assert "stopTimeout >= 34 s" in found[0].fix
    assert worst(found) is Severity.HIGH


def test_raising_stop_timeout_clears_the_finding() -> None:
    assert findings(real_config(container_patch={"stopTimeout": 40})) == []


def test_missing_deployment_configuration_means_aws_defaults() -> None:
    service = {
        k: v
        for k, v in load("describe-services-real.json")["services"][0].items()
        if k != "deploymentConfiguration"
    }
    task_def = load("describe-task-definition-real.json")["taskDefinition"]
    cfg = service_config_from(service, task_def, [], [])
    assert (cfg.minimum_healthy_percent, cfg.maximum_percent) == (100, 200)
    assert not cfg.circuit_breaker_enabled and not cfg.deployment_alarms_enabled


def test_disabled_deployment_alarms_are_reported_as_disabled() -> None:
    cfg = real_config(
        {
            "deploymentConfiguration": {
                "deploymentCircuitBreaker": {"enable": True, "rollback": True},
                "alarms": {"alarmNames": ["mcp-5xx"], "enable": False, "rollback": False},
            }
        },
        {"stopTimeout": 40},
    )
    (finding,) = findings(cfg)
    assert finding.rule == "no-deployment-alarm" and "disabled" in finding.evidence


def test_code_deploy_controller_is_not_flagged_for_the_rolling_circuit_breaker() -> None:
    cfg = replace(real_config(container_patch={"stopTimeout": 40}), circuit_breaker_enabled=False)
    assert [f.rule for f in findings(cfg)] == ["circuit-breaker-off"]
    blue_green = replace(cfg, deployment_controller="CODE_DEPLOY")
    assert findings(blue_green) == []


@pytest.mark.parametrize(
    ("desired", "min_pct", "max_pct", "per_wave"),
    [
        (2, 100, 200, 2),  # the default: every old task drains at once
        (4, 50, 100, 2),  # no surge: half the tasks at a time
        (10, 100, 120, 2),
        (1, 100, 200, 1),
        (1, 0, 100, 1),
        (3, 100, 100, 0),  # ECS cannot make progress
        (0, 100, 200, 0),
    ],
)
def test_tasks_per_wave_follows_min_and_max_percent(
    desired: int, min_pct: int, max_pct: int, per_wave: int
) -> None:
    assert tasks_per_wave(desired, min_pct, max_pct) == per_wave


def test_findings_are_sorted_worst_first() -> None:
    cfg = replace(
        real_config(),
        desired_count=1,
        circuit_breaker_enabled=False,
        target_groups=(replace(real_config().target_groups[0], stickiness_enabled=False),),
    )
    severities = [f.severity for f in findings(cfg)]
    assert severities == sorted(severities, reverse=True)
    assert severities[0] is Severity.HIGH
    assert survival_window(cfg).session_cliff_s == 0


RULE = load("describe-rules-real.json")["Rules"][0]["RuleArn"]


def blue_green_config(
    bake_minutes: int | None, rules: list[dict[str, Any]] | None = None
) -> ServiceConfig:
    """The real service turned ECS native blue/green (the DescribeServices fields AWS returns
    for it, which moto does not model), its production rule's forward action as DescribeRules
    returns it."""
    service = load("describe-services-real.json")["services"][0]
    deploy = {**service["deploymentConfiguration"], "strategy": "BLUE_GREEN"}
    if bake_minutes is not None:
        deploy["bakeTimeInMinutes"] = bake_minutes
    lb = {
        **service["loadBalancers"][0],
        "advancedConfiguration": {
            "alternateTargetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:111122223333:"
            "targetgroup/mcp-green/73e2d6bc24d8a067",
            "productionListenerRule": RULE,
            "roleArn": "arn:aws:iam::111122223333:role/ecs-blue-green",
        },
    }
    cfg = real_config({"deploymentConfiguration": deploy, "loadBalancers": [lb]})
    raw_rules = load("describe-rules-real.json")["Rules"] if rules is None else rules
    return replace(cfg, group_stickiness_s=group_stickiness_from_rules(raw_rules))


def lockout(cfg: ServiceConfig) -> list[Any]:
    return [f for f in findings(cfg) if f.rule == "group-stickiness-lockout"]


def test_group_stickiness_longer_than_the_bake_is_a_high_lockout() -> None:
    cfg = blue_green_config(bake_minutes=10)
    assert (cfg.strategy, cfg.bake_time_s, cfg.production_rule) == ("BLUE_GREEN", 600, RULE)
    assert cfg.group_stickiness_s == 3600
    (finding,) = lockout(cfg)
    assert finding.severity is Severity.HIGH
    assert "3600 s, bake time 600 s" in finding.evidence
    assert "HTTP 503 from the load balancer itself for up to 3600 s" in finding.evidence
    assert "DurationSeconds far below the bake time" in finding.fix


def test_group_stickiness_shorter_than_the_bake_still_locks_out_active_clients() -> None:
    rules = load("describe-rules-real.json")["Rules"]
    action = rules[0]["Actions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"]
    action["DurationSeconds"] = 30
    (finding,) = lockout(blue_green_config(bake_minutes=10, rules=rules))
    assert finding.severity is Severity.MEDIUM
    assert "for up to 30 s" in finding.evidence and "outlives the bake" not in finding.evidence
    # no bake time configured: the cookie outlives it
    assert lockout(blue_green_config(None, rules))[0].severity is Severity.HIGH


def test_no_group_stickiness_or_a_rolling_service_is_no_lockout() -> None:
    rules = load("describe-rules-real.json")["Rules"]
    rules[0]["Actions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"]["Enabled"] = False
    assert lockout(blue_green_config(bake_minutes=10, rules=rules)) == []
    assert group_stickiness_from_rules([{"Actions": [{"Type": "fixed-response"}]}]) is None
    rolling = replace(real_config(), group_stickiness_s=3600)  # strategy ROLLING
    assert lockout(rolling) == []
