"""Servers that SessionWatch cannot wrap in process, watched through the sidecar.

Each peer runs as two "tasks": the real server process (the TypeScript SDK's own example server
``simpleStreamableHttp.js``, a TypeScript fastmcp 4.20 server, the mcp 1.30 Python server) with a
real ``python -m sessionwatch.sidecar`` in front of it, both sidecars behind the lab's HAProxy
playing the sticky ALB. ``sessionwatch probe --no-cookies`` is routed round robin, so every session
meets the other task at its next request: the probe must name the loss in the peer's own form,
and the sidecars' lines must tell the same story the in-process instrumentation tells (created on
one task, not found on the other with the same fingerprint), without a raw session id.
"""

from __future__ import annotations

import io
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from lab.haproxy import HAProxy, free_port
from lab.task_process import ServerTask
from sessionwatch import contract
from sessionwatch.ops.probe import EXIT_LOSS, run_probe
from tests.ops.probe_helpers import json_lines
from tests.peers.conftest import (
    NODE_MODULES,
    PEERS,
    PeerProcess,
    assert_no_raw_id,
    node_or_skip,
    peer_python_or_skip,
)
from tests.sidecar.conftest import sidecar

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

SDK_EXAMPLE = NODE_MODULES / "dist" / "esm" / "examples" / "server" / "simpleStreamableHttp.js"


@dataclass(frozen=True)
class Upstream:
    name: str
    start: Callable[[str], PeerProcess]  # task id -> a started, listening server
    form: str
    sdk: str


def _wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def _sdk_example(task: str) -> PeerProcess:
    """The TypeScript SDK's own example, unchanged: its port from MCP_PORT (it prints raw
    session ids, which is why only the sidecar's output is held to the no-raw-id rule)."""
    node = node_or_skip()
    if not SDK_EXAMPLE.exists():
        pytest.skip(f"{SDK_EXAMPLE} is missing from the installed TypeScript SDK")
    port = free_port()
    process = PeerProcess([node, str(SDK_EXAMPLE)], env={"MCP_PORT": str(port)})
    process.port = port  # it prints its port in prose; the socket says when it listens
    process.start()
    _wait_listening(port)
    return process


def _fastmcp_ts(task: str) -> PeerProcess:
    node = node_or_skip()
    if not (PEERS / "node_modules" / "fastmcp").exists():
        pytest.skip("TypeScript fastmcp is not installed (make setup: npm ci in tests/peers)")
    port = free_port()
    cmd = [node, str(PEERS / "fastmcp_ts_server.mjs"), "--port", str(port), "--task-id", task]
    return PeerProcess(cmd).start()


def _mcp130(task: str) -> PeerProcess:
    python = peer_python_or_skip("1.30")
    return PeerProcess([python, str(PEERS / "mcp1_server.py"), "--task-id", task]).start()


UPSTREAMS = [
    Upstream("typescript-sdk-example", _sdk_example, "404/-32001", "TypeScript SDK 1.x"),
    Upstream("typescript-fastmcp-4.20", _fastmcp_ts, "404/-32001", "TypeScript SDK 1.x"),
    Upstream("mcp-1.30", _mcp130, "404/-32600", "mcp (Python) 1.27-1.30"),
]


@pytest.mark.parametrize("upstream", UPSTREAMS, ids=[u.name for u in UPSTREAMS])
def test_the_sidecar_watches_a_server_it_cannot_wrap(
    upstream: Upstream, lb: HAProxy, peers: list[PeerProcess]
) -> None:
    tasks = [f"{upstream.name}-a", f"{upstream.name}-b"]
    sidecars: dict[str, ServerTask] = {}
    try:
        for task in tasks:
            server = upstream.start(task)
            peers.append(server)
            side = sidecar(f"http://127.0.0.1:{server.port}", "--task-id", task).start()
            sidecars[task] = side
            assert side.port is not None
            lb.register(task, side.port)
        for task in tasks:
            lb.wait_status(task, "UP")
        out = io.StringIO()
        code = run_probe(
            lb.url + "/mcp",
            interval=0.2,
            duration=2.0,
            as_json=True,
            no_cookies=True,
            timeout=5.0,
            out=out,
        )
    finally:
        for task in sidecars:
            lb.deregister(task)
        for side in sidecars.values():
            side.terminate(timeout=20)
    calls, summary = json_lines(out.getvalue())
    totals = summary["summary"]
    assert code == EXIT_LOSS == summary["exit_code"], totals
    lost = [c for c in calls if c["event"] == "session_lost"]
    assert lost and totals["sessions_lost"] >= 2, totals
    for call in lost:
        assert (call["lost_form"], call["lost_sdk"]) == (upstream.form, upstream.sdk)
        assert call["task_id"] in tasks  # the sidecar's X-Mcp-Task-Id names the answering task

    # Each not-found on one sidecar is a session the other sidecar saw created.
    side_a, side_b = (sidecars[t] for t in tasks)
    created = {
        name: {e["session"] for e in side.events(contract.EVENT_SESSION_CREATED)}
        for name, side in sidecars.items()
    }
    pairs = 0
    for here, there in ((side_a, tasks[1]), (side_b, tasks[0])):
        for line in here.events(contract.EVENT_SESSION_NOT_FOUND):
            assert line["jsonrpc_code"] == int(upstream.form.split("/")[1])
            assert line["session"] in created[there], line
            pairs += 1
    assert pairs >= 2
    # Shutdown accounting: the sessions still open on each sidecar were closed at SIGTERM.
    for side in sidecars.values():
        assert side.events(contract.EVENT_SHUTDOWN_STARTED)
        assert side.returncode == 0
        assert_no_raw_id(side.output, allowed=tasks)
    assert_no_raw_id(out.getvalue(), allowed=tasks)
