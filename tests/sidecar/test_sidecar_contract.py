"""The log contract through the sidecar: two tasks, each a sidecar in front of a real MCP server.

The upstream is the real reference server without instrumentation (the mcp SDK's own answers,
no SessionWatch of its own: ``tests/ops/bare_server.py``); the sidecar's own
lines must say everything an in-process instrumentation says: task identity, session created, not
found on the other task with the same fingerprint, closed by DELETE, idle expiry (estimated),
shutdown accounting after a SIGTERM drain, and never a raw session id.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import httpx
import pytest

from lab.forkserver import ForkServer
from lab.task_process import ServerTask
from sessionwatch import contract
from sessionwatch.server.fingerprint import fingerprint
from tests.lab.conftest import SdkServer
from tests.ops.bare_server import start_bare_reference_server
from tests.peers.conftest import assert_no_raw_id
from tests.server.conftest import PROTOCOL, mcp_post, run_client, tool_call
from tests.sidecar.conftest import sidecar

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

Task = tuple[ServerTask, SdkServer]  # (sidecar, upstream server)


def _task(name: str, *sidecar_args: str, forks: ForkServer | None = None) -> Iterator[Task]:
    up = start_bare_reference_server(f"up-{name}")
    args = ("--task-id", name, *sidecar_args)
    try:
        with sidecar(f"http://127.0.0.1:{up.port}", *args, forkserver=forks) as side:
            yield side, up
    finally:
        up.stop()


@pytest.fixture(scope="module")
def task_a(task_forks: ForkServer) -> Iterator[Task]:
    yield from _task("side-a", "--session-idle-timeout", "600", forks=task_forks)


@pytest.fixture(scope="module")
def task_b(task_forks: ForkServer) -> Iterator[Task]:
    yield from _task("side-b", forks=task_forks)


def test_a_lost_session_is_seen_on_both_sidecars_with_one_fingerprint(
    task_a: Task, task_b: Task
) -> None:
    (side_a, _), (side_b, _) = task_a, task_b
    run = run_client(side_a.url, [("set_session_value", {"key": "k", "value": "v"})])
    assert run.session_id and set(run.task_ids) == {"side-a"}
    fp = fingerprint(run.session_id)
    created = side_a.wait_for_event(contract.EVENT_SESSION_CREATED, session=fp)
    assert created["task_id"] == "side-a" and created["protocol_version"] == PROTOCOL

    response = mcp_post(side_b.url, run.session_id, tool_call("get_session_state", {}))
    assert response.status_code == 404  # the upstream's answer, passed through as it is
    assert response.headers[contract.TASK_ID_HEADER] == "side-b"
    lost = side_b.wait_for_event(contract.EVENT_SESSION_NOT_FOUND, session=fp)
    assert (lost["http_status"], lost["jsonrpc_code"]) == (404, contract.JSONRPC_SESSION_NOT_FOUND)
    assert not side_b.events(contract.EVENT_SESSION_CREATED, session=fp)
    (mode,) = side_a.events("instrumentation_mode")
    assert mode["idle_expiry"] == "estimated" and mode["idle_timeout_s"] == 600


def test_a_delete_through_the_sidecar_closes_the_session(task_a: Task) -> None:
    side_a, _ = task_a
    run = run_client(side_a.url, [("whoami", {})], terminate_on_close=True)
    assert run.session_id
    closed = side_a.wait_for_event(
        contract.EVENT_SESSION_CLOSED, session=fingerprint(run.session_id)
    )
    assert closed["reason"] == contract.CLOSE_CLIENT_DELETE


def test_idle_expiry_is_estimated_from_the_timeout_given(task_forks: ForkServer) -> None:
    for side, _ in _task("side-idle", "--session-idle-timeout", "1", forks=task_forks):
        run = run_client(side.url, [("whoami", {})])
        assert run.session_id
        closed = side.wait_for_event(
            contract.EVENT_SESSION_CLOSED, session=fingerprint(run.session_id), timeout=10
        )
        assert closed["reason"] == contract.CLOSE_IDLE_TIMEOUT


def test_sigterm_drains_then_accounts_for_the_open_sessions() -> None:
    # `python -m`, as the image runs it (the other tests fork theirs, task_forks)
    for side, _ in _task("side-drain", "--drain-seconds", "1.5"):
        run = run_client(side.url, [("set_session_value", {"key": "k", "value": "v"})])
        assert run.session_id
        fp = fingerprint(run.session_id)
        side.signal(signal.SIGTERM)
        started = side.wait_for_event(contract.EVENT_SHUTDOWN_STARTED)
        assert started["active_sessions"] == 1 and started["sessions"] == [fp]
        # Still serving while it drains.
        time.sleep(0.3)
        response = mcp_post(side.url, run.session_id, tool_call("get_session_state", {}))
        assert response.status_code == 200
        assert side.wait(timeout=30) == 0
        closed = side.events(contract.EVENT_SESSION_CLOSED, session=fp)
        assert [c["reason"] for c in closed] == [contract.CLOSE_SHUTDOWN]
        assert_no_raw_id(side.output, allowed=["side-drain"])


def test_no_raw_session_id_in_anything_the_sidecars_wrote(task_a: Task, task_b: Task) -> None:
    for side, _ in (task_a, task_b):
        assert side.events(contract.EVENT_TASK_STARTED)
        assert_no_raw_id(side.output)
    assert httpx.get(f"{task_a[0].url}/health", timeout=5).json()["status"] == "ok"
