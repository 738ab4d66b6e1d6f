"""The lab measures when sessions die, and the audit's model predicts it (issue 11).

A small sweep on real HAProxy and server processes: the same rolling deployment with a short and
a long deregistration delay. Every loss must come within one client interval (plus the model's
stated tolerance) after its own task began draining, whatever the delay: the audit's window
(``survival_window``: ``session_cliff_s`` 0) and the lab's measurement agree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lab.forkserver import ForkServer
from lab.sweep import Point, run_sweep, table
from sessionwatch.ops.audit_model import ContainerConfig, ServiceConfig, TargetGroupConfig
from sessionwatch.ops.audit_rules import survival_window
from sessionwatch.ops.audit_survival import TOLERANCE_S, Rollout, drain_starts

pytestmark = [pytest.mark.slow, pytest.mark.requires("haproxy"), pytest.mark.timeout(900)]

# the measure reads events.jsonl only: no dashboard preview drawn
ARGS = ["--warmup", "2", "--after", "2", "--time-scale", "30", "--verbose-probes", "0"]
ARGS += ["--no-dashboard-preview"]


def _audited(point: Point) -> ServiceConfig:
    """The audit's value for the service the lab ran (the audit's own types)."""
    return ServiceConfig(
        cluster="sessionwatch-lab",
        service="mcp-server",
        desired_count=point.tasks,
        deployment_controller="ECS",
        minimum_healthy_percent=point.min_healthy,
        maximum_percent=point.max_percent,
        circuit_breaker_enabled=False,
        circuit_breaker_rollback=False,
        deployment_alarms_enabled=False,
        deployment_alarm_names=(),
        containers=(
            ContainerConfig("mcp-server", True, int(point.stop_timeout_s), 1.0, None, True),
        ),
        target_groups=(TargetGroupConfig("arn:tg", int(point.delay_s), True, "lb_cookie", 86_400),),
    )


def test_sessions_die_when_their_task_starts_draining(
    tmp_path: Path, addon_template: Path, lab_forks: ForkServer
) -> None:
    points = [Point(2, 100, 200, 1, 2), Point(2, 100, 200, 6, 2)]
    results = run_sweep(points, addon_template, tmp_path, ARGS, forks=lab_forks)
    print(table(results))
    for m in results:
        window = survival_window(_audited(m.point))
        assert window.session_cliff_s == 0  # the audit: no survival after draining starts
        assert m.lost > 0 and m.after_drain_max is not None
        # the lab: every loss within one client interval + tolerance of its task's draining
        assert m.within, table(results)
        assert m.after_drain_max <= window.session_cliff_s + m.interval_s + TOLERANCE_S
    # the delay moved the task's end, not the sessions' (both start replacements first: one wave)
    short, long = results
    assert short.after_drain_max is not None and long.after_drain_max is not None
    assert abs(long.after_drain_max - short.after_drain_max) <= m.interval_s + TOLERANCE_S


def test_wave_drain_starts_follow_the_rollout_shape() -> None:
    # replacements first (200 %): one wave, drained once its replacements are healthy
    assert drain_starts(Rollout(2, 100, 200, replacement_ready_s=10)) == [10]
    # old tasks first (4 tasks, 50 %/100 %): two waves, the second after delay + stop + ready
    assert drain_starts(
        Rollout(4, 50, 100, deregistration_delay_s=300, stop_s=30, replacement_ready_s=60)
    ) == [0, 390]
