"""`sessionwatch probe` against a real cluster: `python -m server` tasks behind real HAProxy.

The lab's "ECS service" (lab.cluster.Cluster: real server processes with ECS metadata stubs,
HAProxy as the sticky ALB, stops in ECS's order) is the cluster. The probe must report no loss
while nothing happens, detect and name the loss when a rolling deployment takes its session's
task out (maint, deregistration delay, SIGTERM), and show the stickiness break of a client that
never stores the rotated cookie. Nothing it prints may carry a raw session id.
"""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from lab.cluster import Cluster, LabTask
from lab.forkserver import ForkServer
from lab.haproxy import HAProxy
from lab.task_process import ServerTask, task_starter
from sessionwatch.ops.cli import main
from sessionwatch.ops.probe import EXIT_ERROR, EXIT_LOSS, EXIT_OK, run_probe
from tests.ops.probe_helpers import BackgroundProbe, assert_no_raw_session_id, json_lines
from tests.requirements import require
from world.ecs import ServiceRef

# Real processes; a probe that never detects the loss it waits for fails here, not at 300 s.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]
DELAY_S = 0.5  # the lab's deregistration delay
STOP_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, task_forks: ForkServer) -> Iterator[Cluster]:
    require("haproxy")
    ref = ServiceRef(region="eu-west-1", account="123456789012", cluster="lab", service="mcp")
    with HAProxy(
        tmp_path_factory.mktemp("haproxy"), slots=8, cookie_maxidle_s=2, health_interval_ms=200
    ) as lb:
        lab = Cluster(
            ref,
            lb,
            emit=lambda event: None,  # the ECS events are the detectors' input, not the probe's
            say=lambda line: None,
            server_env={"SESSIONWATCH_DRAIN_SECONDS": "0.5"},
            start_task=task_starter("python", task_forks),
        )
        try:
            lab.launch(2, "ecs-svc/1111", "1")
            yield lab
        finally:
            lab.shutdown()


def lb_url(cluster: Cluster) -> str:
    return cluster.lb.url + "/mcp"


def test_no_loss_while_nothing_happens(cluster: Cluster) -> None:
    out = io.StringIO()
    # Over 5 s HAProxy re-dates (rotates) the cookie at least once; the task must not change.
    code = run_probe(lb_url(cluster), interval=0.4, duration=5.5, as_json=True, out=out)
    calls, summary = json_lines(out.getvalue())
    assert code == EXIT_OK and summary["exit_code"] == EXIT_OK
    assert summary["summary"]["sessions_lost"] == 0
    assert summary["summary"]["stickiness_breaks"] == 0
    assert len(summary["summary"]["tasks_seen"]) == 1
    assert {c["event"] for c in calls} == {"ok"}
    # about 13 cycles on an idle machine; a loaded CI worker makes fewer, never none
    assert len([c for c in calls if c["tool"] == "get_session_state"]) >= 5
    rotated = [c for c in calls if c["cookie_rotated"]]
    assert rotated, "the sticky cookie rotates over 5 s"
    assert all(c["cookie_note"].startswith("normal:") for c in rotated)
    assert_no_raw_session_id(out.getvalue(), calls)


def test_stale_cookie_shows_the_stickiness_break(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    # Until loss: HAProxy ignores the stale value after maxidle and load-balances afresh.
    code = main(["probe", lb_url(cluster), "--stale-cookie", "--interval", "0.3", "--json"])
    calls, summary = json_lines(capsys.readouterr().out)
    assert code == EXIT_LOSS
    lost = [c for c in calls if c["event"] == "session_lost"]
    assert lost, "with a stale AWSALB value the session is routed away from its task"
    first = lost[0]
    assert first["task_changed"] and first["task_id"] != first["session_task"]
    assert "stale sticky cookie" in first["note"]
    assert summary["summary"]["losses_routed_away"] >= 1
    assert summary["summary"]["cookie_mode"].startswith("stale-cookie")


def test_a_client_without_cookies_loses_its_sessions_and_the_probe_keeps_counting(
    cluster: Cluster, capsys: pytest.CaptureFixture[str]
) -> None:
    # Two tasks, round robin, no cookie ever returned: every session dies at its next request.
    args = ["--no-cookies", "--json", "--interval", "0.2", "--duration", "2.5"]
    code = main(["probe", lb_url(cluster), *args])
    out = capsys.readouterr().out
    calls, summary = json_lines(out)
    assert code == EXIT_LOSS == summary["exit_code"]
    totals = summary["summary"]
    assert totals["sessions_lost"] >= 3 and totals["loss_rate"] >= 0.9
    lost = [c for c in calls if c["event"] == "session_lost" and "already" not in c["note"]]
    assert len(lost) == totals["sessions_lost"]
    assert all(c["task_changed"] and "returns no cookies" in c["note"] for c in lost)
    assert all(c["lost_form"] == "404/-32600" for c in lost)
    # After each loss the next exchange is a new initialize (no session id), within a cycle.
    for loss in lost[:-1]:
        following = calls[calls.index(loss) + 1]
        assert following["tool"] == "initialize" and following["session"] != loss["session"]
        assert following["time"] - loss["time"] < 0.2 + 1.0  # one interval, loaded CI
    assert not any(c["event"] == "stickiness_break" for c in calls)
    assert totals["stickiness_breaks"] == 0 and totals["losses_routed_away"] >= 3
    assert totals["cookie_mode"].startswith("no-cookies")
    # Every dead session was DELETEd before the next initialize, and the last one at the end.
    assert totals["close_failures"] == []
    assert totals["sessions_closed"] + totals["sessions_not_found_on_close"] == len(
        totals["sessions"]
    )
    assert totals["sessions_closed"] >= 1  # round robin takes some DELETEs to the session's task
    assert_no_raw_session_id(out, calls)


def probe_through_deployment(
    cluster: Cluster, duration: float | None
) -> tuple[int, list[dict[str, Any]], dict[str, Any], str]:
    """Run the probe while a rolling deployment replaces the task holding its session."""
    probe = BackgroundProbe(lb_url(cluster), interval=0.25, duration=duration)
    holder = probe.wait_for_holder()
    old: LabTask = next(t for t in cluster.running() if t.task_id == holder)
    # ECS's order: the new task is up and healthy, then the old one is deregistered (maint),
    # drained for the delay, SIGTERMed.
    cluster.launch(1, "ecs-svc/2222", "2")
    cluster.stop(old, deregistration_delay=DELAY_S, stop_timeout=STOP_TIMEOUT_S)
    probe.join(timeout=30)
    calls, summary = json_lines(probe.out.getvalue())
    assert_no_raw_session_id(probe.out.getvalue(), calls)
    assert probe.code is not None
    return probe.code, calls, summary["summary"], old.task_id


def test_rolling_deployment_loss_is_detected_and_named(cluster: Cluster) -> None:
    code, calls, summary, holder = probe_through_deployment(cluster, None)
    assert code == EXIT_LOSS
    lost, *repeats = [c for c in calls if c["event"] == "session_lost"]
    # Until loss: the run stops at the loss. The cycle's write and read may both hit the dead
    # session; it counts once.
    assert calls[-1]["event"] == "session_lost" and len(repeats) <= 1
    assert summary["sessions_lost"] == 1 and summary["lost_sessions"] == [lost["session"]]
    assert lost["http_status"] == 404 and lost["jsonrpc_code"] == -32600
    assert lost["session_task"] == holder and lost["task_id"] not in (None, holder)
    assert f"the session lived on task {holder}" in lost["note"]
    assert summary["seconds_to_first_loss"] > 0


def test_with_duration_the_probe_reconnects_and_keeps_counting(cluster: Cluster) -> None:
    # Long enough for the replacement task to start on a loaded machine (the run's clock starts
    # before the deployment does).
    code, calls, summary, holder = probe_through_deployment(cluster, 12.0)
    assert code == EXIT_LOSS
    assert summary["sessions_lost"] == 1 and len(summary["sessions"]) == 2
    # After the loss a new session opens on a live task and is served there without loss.
    after = calls[max(i for i, c in enumerate(calls) if c["event"] == "session_lost") + 1 :]
    assert after[0]["tool"] == "initialize" and after[0]["task_id"] != holder
    assert {c["event"] for c in after} == {"ok"} and len(after) >= 3


def test_unreachable_endpoint_is_a_connection_error(capsys: pytest.CaptureFixture[str]) -> None:
    from lab.haproxy import free_port

    port = free_port()
    code = main(["probe", f"http://127.0.0.1:{port}/mcp", "--interval", "0.1"])
    assert code == EXIT_ERROR
    out = capsys.readouterr().out
    assert "could not open a session" in out
    # What failed, where and why: not a bare exception name.
    assert f"error=ConnectError to 127.0.0.1:{port}: " in out and "refused" in out.lower()


def test_endpoint_dying_mid_run_is_a_connection_error_not_a_loss(task_forks: ForkServer) -> None:
    out = io.StringIO()
    result: dict[str, int] = {}
    args = ["--task-id", "task-lone", "--drain-seconds", "0.5"]
    with ServerTask(args=args, forkserver=task_forks) as task:
        url = task.url + "/mcp"
        prober = threading.Thread(
            target=lambda: result.setdefault(
                "code", run_probe(url, interval=0.2, duration=3.0, as_json=True, out=out)
            ),
            daemon=True,
        )
        prober.start()
        time.sleep(1.0)
        task.kill()  # SIGKILL: no answer at all from now on
        prober.join(timeout=15)
    assert not prober.is_alive()
    calls, summary = json_lines(out.getvalue())
    assert result["code"] == EXIT_ERROR == summary["exit_code"]
    assert summary["summary"]["sessions_lost"] == 0
    assert summary["summary"]["transport_errors"] >= 1
    assert any(c["event"] == "transport_error" and c["transport_error"] for c in calls)


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_probe("not-a-url", out=io.StringIO()) == EXIT_ERROR
    with pytest.raises(SystemExit) as exited:
        main(["probe", "http://127.0.0.1:1/mcp", "--interval", "0"])
    assert exited.value.code == 2


def test_human_output_names_the_task_and_the_verdict(cluster: Cluster) -> None:
    out = io.StringIO()
    assert run_probe(lb_url(cluster), interval=0.2, duration=1.0, out=out) == EXIT_OK
    text = out.getvalue()
    running = {t.task_id for t in cluster.running()}
    assert "set_session_value" in text
    assert any(f"task={task_id[:8]}" in text for task_id in running)
    assert text.strip().splitlines()[-1].startswith("probe: no session lost;")
