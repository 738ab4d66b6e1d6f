"""Every lab scenario end to end, each from a cold start, as a `python -m lab` subprocess.

One real CDK synth for the whole run (shared by the parallel workers); each scenario then starts
its own moto_server, HAProxy, server processes and detectors, and must exit 0 (SessionWatch
reached the expected verdict, alarms and per-deployment report counts). Each scenario is its own
test, so pytest-xdist runs as many side by side as it has workers (``lab.suite`` runs them for
`--scenario all`), and the lab's periods run 30x faster than AWS's.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lab.forkserver import ForkServer
from lab.scenarios import SCENARIOS
from lab.suite import Finished, run_one, variant_runs
from sessionwatch.server.fingerprint import is_fingerprint

# A scenario takes 20-40 s on an idle 2-core machine; the bounds leave room for a loaded one.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.spread,  # each scenario is a cold start of its own: as parallel as the workers
    pytest.mark.requires("haproxy", "node"),
    pytest.mark.timeout(400),
]

IN_PROGRESS, COMPLETED, FAILED = (
    "SERVICE_DEPLOYMENT_IN_PROGRESS",
    "SERVICE_DEPLOYMENT_COMPLETED",
    "SERVICE_DEPLOYMENT_FAILED",
)
ROLLED_BACK = [("rollout", IN_PROGRESS), ("rollout", FAILED), ("rollback", IN_PROGRESS)]
# (role, eventName) of the deployment events each deploying scenario must show, in order.
DEPLOYMENT_EVENTS = {
    "rollback": [*ROLLED_BACK, ("rollback", COMPLETED)],
    "rollback-on-alarm": [*ROLLED_BACK, ("rollback", COMPLETED)],
    "rolling-stop-on-loss": [*ROLLED_BACK, ("rollback", COMPLETED)],
}
ARGS = ["--warmup", "2", "--after", "2", "--time-scale", "30", "--verbose-probes", "0"]
# The dashboard preview costs a run about 1.5 CPU-s: drawn over a loss and over a load
# balancer's lock-out (its 503 widget); tests/lab/test_lab_report_output.py draws each widget.
DASHBOARD_DRAWN = {"rolling-deploy", "blue-green"}


@pytest.mark.parametrize(
    "name",
    [
        # A scenario with variants runs them one after the other: one timeout each.
        pytest.param(n, marks=pytest.mark.timeout(400 * variant_runs(n)))
        # the scenarios with variants (the longest) first: workers start them early
        for n in sorted(SCENARIOS, key=lambda n: (-variant_runs(n), n))
    ],
)
def test_scenario_reaches_its_verdict(
    name: str, addon_template: Path, tmp_path: Path, lab_forks: ForkServer
) -> None:
    timeout = 300 * variant_runs(name)
    args = ARGS if name in DASHBOARD_DRAWN else [*ARGS, "--no-dashboard-preview"]
    run = run_one(name, addon_template, tmp_path / name, args, timeout, lab_forks)
    summary = run.summary
    assert run.returncode == 0, run.output[-4000:]
    assert f"== {name}: PASS ==" in run.output
    assert summary["passed"] and summary["problems"] == []
    report = run.report_dir / "report.md"
    assert report.exists() and (run.report_dir / "timeline.png").stat().st_size > 10_000
    assert "| What the infrastructure shows | What SessionWatch shows |" in report.read_text()
    drawn = name in DASHBOARD_DRAWN
    assert (run.report_dir / "dashboard.png").exists() == drawn
    assert ("](dashboard.png)" in report.read_text()) == drawn
    events = [json.loads(line) for line in (run.report_dir / "events.jsonl").open()]
    calls = [e for e in events if e["kind"] == "call"]
    # every session the probes report is a fingerprint (the raw id never leaves the client)
    assert all(e["session"] is None or is_fingerprint(e["session"]) for e in calls)
    scenario = SCENARIOS[name]
    expect = scenario.expect
    lost = {e["session"] for e in calls if e["session_lost"]}
    if expect.loss_cause is None:
        assert not lost
    else:
        assert lost
        assert summary["causes"] == {expect.loss_cause.value: len(lost)}
        assert f"by cause: {expect.loss_cause.value}={len(lost)}" in run.output
    fired = set(summary["alarms_fired"])
    assert expect.alarms_fire <= fired and not (expect.alarms_silent & fired)
    if scenario.deploy:
        roles = {dep: role for role, dep in summary["deployments"].items()}
        seen = [(roles.get(dep, "?"), name_) for dep, name_ in summary["deployment_events"]]
        wanted = DEPLOYMENT_EVENTS.get(name, [("rollout", IN_PROGRESS), ("rollout", COMPLETED)])
        assert [s for s in seen if s[0] != "?"] == wanted
        # every deployment's SNS report counts exactly the losses of the tasks it replaced
        for dep, truth in summary["truth_by_deployment"].items():
            assert summary["report_lost_by"].get(dep) == truth, (dep, summary)
    if expect.refusals:
        # Clients turned away at the SDK's cap: every refusal they saw is a session_refused line.
        assert summary["refused_answers"] > 0
        assert summary["refusals_logged"] == summary["refused_answers"]
    else:
        assert summary["refused_answers"] == 0
    if expect.lb_refused:
        # every client pinned to blue was locked out by the load balancer; the late ones not
        assert summary["locked_out_clients"] == scenario.sessions and summary["lb_503"] > 0
        assert 0 < summary["report_refused"] <= summary["lb_503"]
        assert "refused by the load balancer: " in run.output
    elif expect.lb_refused is False:
        assert summary["lb_503"] == 0 and summary["locked_out_clients"] == 0
    if expect.rolled_back_by:
        assert summary["rolled_back_by"] == expect.rolled_back_by
        assert f"rolled back by the {expect.rolled_back_by}" in run.output
    if name in SIDE_BY_SIDE:
        SIDE_BY_SIDE[name](run)


def _side_by_side(run: Finished) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((run.report_dir / "side-by-side.json").read_text())
    return doc


def the_drain_gate_saves_sessions_beside_the_same_rollout_without_it(run: Finished) -> None:
    doc = _side_by_side(run)
    gate, off = doc["runs"]["blue-green-drain-gate"], doc["runs"]["blue-green-drain-gate-off"]
    assert doc["problems"] == [] and off["passed"], run.output[-3000:]
    assert 0 < gate["lost"] < off["lost"]
    # ECS called the gate more than once (IN_PROGRESS, then again after callBackDelay), and the
    # report of the gated deployment says what it held.
    assert gate["guards"]["gate_calls"] > 1 and off["guards"]["gate_calls"] == 0
    # one line per report: the first, and a follow-up where a late fact changed its count
    lines = gate["guards"]["report_lines"]
    assert lines and all(line.startswith("drain gate held") for line in lines)
    assert "lost at clean-up" in lines[-1]
    assert "== side by side ==" in run.output


def stop_on_loss_rolls_back_seconds_after_the_first_loss(run: Finished) -> None:
    doc = _side_by_side(run)
    runs = doc["runs"]
    stop, alarm, none = (
        runs["rolling-stop-on-loss"],
        runs["rolling-stop-on-loss-alarm"],
        runs["rolling-stop-on-loss-none"],
    )
    assert doc["problems"] == [] and alarm["passed"] and none["passed"], run.output[-3000:]
    assert (stop["rolled_back_by"], alarm["rolled_back_by"], none["rolled_back_by"]) == (
        "stop request",
        "alarm",
        None,
    )
    assert stop["lost"] <= alarm["lost"] < none["lost"]
    guards = stop["guards"]
    # One alert and one stop, each measured from the first loss.
    assert guards["alerts"] == 1
    assert guards["first_loss_alert_s"] > 0 and guards["first_loss_stop_s"] > 0
    [line] = guards["report_lines"]
    assert line.startswith("stopped by SessionWatch (ROLLBACK) after")


# Scenarios run beside variants of themselves: what their side-by-side must show.
SIDE_BY_SIDE = {
    "blue-green-drain-gate": the_drain_gate_saves_sessions_beside_the_same_rollout_without_it,
    "rolling-stop-on-loss": stop_on_loss_rolls_back_seconds_after_the_first_loss,
}
