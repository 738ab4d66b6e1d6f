"""`sessionwatch probe` against a real cluster: `python -m server` tasks behind real HAProxy.

The lab's building blocks (lab.task_process.ServerTask, lab.haproxy.HAProxy) make the cluster;
the probe must report no loss while nothing happens, detect and name the loss when a mini rolling
deployment takes its session's task out (maint, delay, SIGTERM), and show the stickiness break
of a client that never stores the rotated cookie. Nothing it prints may carry a raw session id.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lab.haproxy import HAProxy
from lab.task_process import ServerTask
from ops.cli import main
from ops.probe import EXIT_ERROR, EXIT_LOSS, EXIT_OK, run_probe
from server.fingerprint import is_fingerprint

# Task ids with no hex run: the output check below can then forbid any 32-hex token (a raw id).
TASK_ARGS = ["--drain-seconds", "0.5", "--graceful-seconds", "1"]
RAW_SESSION_ID = re.compile(r"[0-9a-f]{32}|[0-9a-f-]{36}")


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[HAProxy, dict[str, ServerTask]]]:
    tasks: dict[str, ServerTask] = {}
    with HAProxy(
        tmp_path_factory.mktemp("haproxy"), slots=6, cookie_maxidle_s=2, health_interval_ms=200
    ) as lb:
        try:
            for task_id in ("task-one", "task-two"):
                start_task(lb, tasks, task_id)
            yield lb, tasks
        finally:
            for task in tasks.values():
                task.kill()


def start_task(lb: HAProxy, tasks: dict[str, ServerTask], task_id: str) -> ServerTask:
    task = ServerTask(args=["--task-id", task_id, *TASK_ARGS])
    tasks[task_id] = task  # registered first, so the fixture kills it even if start fails
    task.start()
    lb.register(task_id, task.port or 0)
    lb.wait_status(task_id, "UP")
    return task


def json_lines(text: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert "summary" in lines[-1]
    return lines[:-1], lines[-1]


def assert_no_raw_session_id(text: str, calls: list[dict[str, Any]]) -> None:
    assert not RAW_SESSION_ID.search(text)
    assert all(c["session"] is None or is_fingerprint(c["session"]) for c in calls)


def test_no_loss_while_nothing_happens(cluster: tuple[HAProxy, dict[str, ServerTask]]) -> None:
    lb, _ = cluster
    out = io.StringIO()
    # Over 5 s HAProxy re-dates (rotates) the cookie at least once; the task must not change.
    code = run_probe(lb.url + "/mcp", interval=0.4, duration=5.5, as_json=True, out=out)
    calls, summary = json_lines(out.getvalue())
    assert code == EXIT_OK and summary["exit_code"] == EXIT_OK
    assert summary["summary"]["sessions_lost"] == 0
    assert summary["summary"]["stickiness_breaks"] == 0
    assert len(summary["summary"]["tasks_seen"]) == 1
    assert {c["event"] for c in calls} == {"ok"}
    assert len([c for c in calls if c["tool"] == "get_session_state"]) >= 10
    rotated = [c for c in calls if c["cookie_rotated"]]
    assert rotated, "the sticky cookie rotates over 5 s"
    assert all(c["cookie_note"].startswith("normal:") for c in rotated)
    assert_no_raw_session_id(out.getvalue(), calls)


def test_stale_cookie_shows_the_stickiness_break(
    cluster: tuple[HAProxy, dict[str, ServerTask]], capsys: pytest.CaptureFixture[str]
) -> None:
    lb, _ = cluster
    # Until loss: HAProxy ignores the stale value after maxidle and load-balances afresh.
    code = main(["probe", lb.url + "/mcp", "--stale-cookie", "--interval", "0.3", "--json"])
    calls, summary = json_lines(capsys.readouterr().out)
    assert code == EXIT_LOSS
    lost = [c for c in calls if c["event"] == "session_lost"]
    assert lost, "with a stale AWSALB value the session is routed away from its task"
    first = lost[0]
    assert first["task_changed"] and first["task_id"] != first["session_task"]
    assert "stale sticky cookie" in first["note"]
    assert summary["summary"]["stickiness_breaks"] >= 1


def test_rolling_deployment_loss_is_detected_and_named(
    cluster: tuple[HAProxy, dict[str, ServerTask]],
) -> None:
    lb, tasks = cluster
    out = io.StringIO()
    result: dict[str, int] = {}
    # Until loss (no --duration); the thread is bounded by the deployment below.
    prober = threading.Thread(
        target=lambda: result.setdefault(
            "code", run_probe(lb.url + "/mcp", interval=0.25, as_json=True, out=out)
        ),
        daemon=True,
    )
    prober.start()
    deadline = time.monotonic() + 10
    holder = None
    while holder is None and time.monotonic() < deadline:
        answered = [json.loads(line) for line in out.getvalue().splitlines() if line]
        holder = next((c["task_id"] for c in answered if c["tool"] == "get_session_state"), None)
        time.sleep(0.05)
    assert holder in tasks
    # The mini rolling deployment: a new task comes up, the holder drains and stops.
    start_task(lb, tasks, "task-three")
    lb.deregister(holder)
    time.sleep(0.5)  # the deregistration delay
    lb.shutdown_sessions(holder)
    tasks[holder].terminate(timeout=15)
    prober.join(timeout=20)
    assert not prober.is_alive()
    calls, summary = json_lines(out.getvalue())
    assert result["code"] == EXIT_LOSS
    lost, *repeats = [c for c in calls if c["event"] == "session_lost"]
    # The write and the read of the cycle can both hit the dead session; it counts once.
    assert calls[-1]["event"] == "session_lost" and len(repeats) <= 1
    assert summary["summary"]["sessions_lost"] == 1
    assert summary["summary"]["lost_sessions"] == [lost["session"]]
    assert lost["http_status"] == 404 and lost["jsonrpc_code"] == -32600
    assert lost["session_task"] == holder and lost["task_id"] not in (None, holder)
    assert f"the session lived on task {holder}" in lost["note"]
    assert summary["summary"]["seconds_to_first_loss"] > 0
    assert_no_raw_session_id(out.getvalue(), calls)


def test_unreachable_endpoint_is_a_connection_error(capsys: pytest.CaptureFixture[str]) -> None:
    from lab.haproxy import free_port

    code = main(["probe", f"http://127.0.0.1:{free_port()}/mcp", "--interval", "0.1"])
    assert code == EXIT_ERROR
    assert "could not open a session" in capsys.readouterr().out


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_probe("not-a-url", out=io.StringIO()) == EXIT_ERROR
    with pytest.raises(SystemExit) as exited:
        main(["probe", "http://127.0.0.1:1/mcp", "--interval", "0"])
    assert exited.value.code == 2


def test_human_output_names_the_task_and_the_verdict(
    cluster: tuple[HAProxy, dict[str, ServerTask]], tmp_path: Path
) -> None:
    lb, _ = cluster
    out = io.StringIO()
    assert run_probe(lb.url + "/mcp", interval=0.2, duration=1.0, out=out) == EXIT_OK
    text = out.getvalue()
    assert "set_session_value" in text and "task=task-" in text
    assert text.strip().splitlines()[-1].startswith("probe: no session lost;")
