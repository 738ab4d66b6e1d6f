"""`sessionwatch probe` against servers without SessionWatch's `X-Mcp-Task-Id` header.

Two real reference servers built without the instrumentation, behind real HAProxy (the lab's
sticky ALB). The probe must still verify routing by task id: it asks `whoami` once per session
and reads the task from each tool result, so the holder is known and a rolling-away loss is named
against it. The 404 itself carries no task (an error has no tool result): reported as unidentified,
never guessed. Call numbers have no gap.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from lab.haproxy import BACKEND, HAProxy
from sessionwatch.contract import TASK_ID_HEADER
from sessionwatch.ops.probe import EXIT_LOSS, EXIT_OK, run_probe
from tests.lab.conftest import SdkServer
from tests.ops.bare_server import start_bare_reference_server
from tests.ops.probe_helpers import BackgroundProbe, assert_no_raw_session_id, json_lines
from tests.requirements import require

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def bare_lb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HAProxy, list[str]]]:
    require("haproxy")
    tasks: list[SdkServer] = []
    try:
        tasks = [start_bare_reference_server(f"bare-{n}") for n in ("one", "two")]
        with HAProxy(
            Path(tmp_path_factory.mktemp("haproxy")), slots=4, health_interval_ms=200
        ) as lb:
            for task in tasks:
                lb.register(task.task_id, task.port)
            for task in tasks:
                lb.wait_status(task.task_id, "UP")
            yield lb, [t.task_id for t in tasks]
    finally:
        for task in tasks:
            task.stop()


def test_headerless_probe_verifies_routing_by_task_id(bare_lb: tuple[HAProxy, list[str]]) -> None:
    lb, task_ids = bare_lb
    out = io.StringIO()
    code = run_probe(lb.url + "/mcp", interval=0.2, duration=1.5, as_json=True, out=out)
    calls, summary = json_lines(out.getvalue())
    assert code == EXIT_OK and summary["summary"]["sessions_lost"] == 0
    assert [c["tool"] for c in calls[:3]] == ["initialize", "whoami", "set_session_value"]
    assert [c["call_number"] for c in calls] == list(range(1, len(calls) + 1))
    assert calls[0]["task_id"] is None  # initialize: no header, no tool result
    holder = calls[1]["task_id"]
    assert holder in task_ids and summary["summary"]["tasks_seen"] == [holder]
    for call in calls[1:]:
        assert call["event"] == "ok" and call["task_source"] == "result"
        assert call["task_id"] == holder and call["session_task"] == holder
    assert [c["tool"] for c in calls].count("whoami") == 1  # once per session, not per cycle
    assert_no_raw_session_id(out.getvalue(), calls)


def test_headerless_loss_is_named_against_the_holder(bare_lb: tuple[HAProxy, list[str]]) -> None:
    lb, _ = bare_lb
    probe = BackgroundProbe(lb.url + "/mcp", interval=0.2)
    holder = probe.wait_for_holder()
    try:
        lb.deregister(holder)  # maint: even requests with its sticky cookie go elsewhere
        probe.join(timeout=15)
    finally:
        lb.command(f"set server {BACKEND}/{lb.targets[holder]} state ready")
    calls, summary = json_lines(probe.out.getvalue())
    assert probe.code == EXIT_LOSS == summary["exit_code"]
    lost = next(c for c in calls if c["event"] == "session_lost")
    assert lost["task_id"] is None and lost["task_source"] is None
    assert lost["session_task"] == holder
    assert (
        f"unidentified task (no {TASK_ID_HEADER} header), the session lived on task {holder}"
        in lost["note"]
    )
    assert summary["summary"]["sessions_lost"] == 1
    assert_no_raw_session_id(probe.out.getvalue(), calls)
