"""Servers of other SDKs behind a sticky load balancer: the probe names their losses and exits 1.

Real processes of each SDK (two "tasks" each, behind the lab's HAProxy playing the sticky ALB),
probed by ``sessionwatch probe --no-cookies``: a client that returns no cookie is routed round
robin, so every session meets the other task at its next request, and each server answers that
in its own SDK's form. Every row of the table in server/README.md must come out as a named loss
and exit status 1; a failed answer is never "the session survived". No raw session id may appear
in the probe's output or the peers'.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from lab.haproxy import HAProxy
from sessionwatch.ops.probe import EXIT_LOSS, run_probe
from tests.ops.probe_helpers import json_lines
from tests.peers.conftest import (
    PEERS,
    PeerProcess,
    assert_no_raw_id,
    node_or_skip,
    peer_python_or_skip,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@dataclass(frozen=True)
class Peer:
    name: str
    command: Callable[[str], list[str]]  # task id -> argv
    path: str
    form: str
    sdk: str
    # False: the server stops serving after a client's DELETE (mcp 1.9: an error in a session's
    # run_server cancels the manager's task group), so the probe runs with --no-close.
    survives_delete: bool = True


def _ts(pattern: str) -> Callable[[str], list[str]]:
    return lambda task: [node_or_skip(), str(PEERS / "ts_server.mjs"), "--pattern", pattern,
                         "--task-id", task]  # fmt: skip


def _mcp1(version: str) -> Callable[[str], list[str]]:
    return lambda task: [peer_python_or_skip(version), str(PEERS / "mcp1_server.py"),
                         "--task-id", task]  # fmt: skip


PEER_SERVERS = [
    Peer("typescript-sdk-1.32", _ts("sdk"), "/mcp", "404/-32001", "TypeScript SDK 1.x"),
    Peer(
        "typescript-example-400",
        _ts("example"),
        "/mcp",
        "400/-32000",
        "TypeScript SDK examples (older pattern)",
    ),
    Peer("mcp-1.30", _mcp1("1.30"), "/mcp", "404/-32600", "mcp (Python) 1.27-1.30"),
    Peer("mcp-1.9", _mcp1("1.9"), "/mcp/", "400/text", "mcp (Python) 1.x up to 1.26", False),
]


@pytest.mark.parametrize("peer", PEER_SERVERS, ids=[p.name for p in PEER_SERVERS])
def test_probe_names_every_sdks_lost_session_and_exits_1(
    peer: Peer, lb: HAProxy, peers: list[PeerProcess]
) -> None:
    tasks = [f"{peer.name}-a", f"{peer.name}-b"]
    for task in tasks:
        process = PeerProcess(peer.command(task)).start()
        peers.append(process)
        assert process.port is not None
        lb.register(task, process.port)
    try:
        for task in tasks:
            lb.wait_status(task, "UP")
        out = io.StringIO()
        code = run_probe(
            lb.url + peer.path,
            interval=0.2,
            duration=2.0,
            as_json=True,
            no_cookies=True,
            timeout=5.0,
            out=out,
            # mcp 1.9's manager stops serving after any DELETE (test_mcp_1_9_stops_serving_...)
            close_sessions=peer.survives_delete,
        )
    finally:
        for task in tasks:
            lb.deregister(task)
    calls, summary = json_lines(out.getvalue())
    totals = summary["summary"]
    assert code == EXIT_LOSS == summary["exit_code"], totals
    lost = [c for c in calls if c["event"] == "session_lost"]
    assert lost and totals["sessions_lost"] >= 2, totals
    for call in lost:
        assert (call["lost_form"], call["lost_sdk"]) == (peer.form, peer.sdk)
        assert f"{peer.form} ({peer.sdk})" in call["note"]
    assert not [c for c in calls if c["event"] == "stickiness_break"]
    assert totals["loss_rate"] is not None and totals["loss_rate"] > 0.5
    assert_no_raw_id(out.getvalue(), allowed=[c["task_id"] for c in calls if c["task_id"]])
    for process in peers:
        assert_no_raw_id(process.output)


def test_mcp_1_9_stops_serving_after_a_delete_so_the_probe_can_leave_sessions_open(
    peers: list[PeerProcess],
) -> None:
    """Why ``--no-close`` exists: the real mcp 1.9 server answers every request after a client's
    DELETE with 500 (its session manager's task group is gone), while with ``--no-close`` the
    probe sends no DELETE and the server keeps serving."""
    import httpx

    process = PeerProcess(_mcp1("1.9")("solo")).start()
    peers.append(process)
    url = process.url("/mcp/")
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-03-26",
            "capabilities": {},
            "clientInfo": {"name": "t"},
        },
    }
    with httpx.Client(timeout=5.0) as client:
        out = io.StringIO()
        run_probe(url, interval=0.2, duration=1.0, as_json=True, out=out, close_sessions=False)
        _, summary = json_lines(out.getvalue())
        assert summary["summary"]["sessions_closed"] == 0
        assert client.post(url, json=init, headers=headers).status_code == 200  # still serving
        opened = client.post(url, json=init, headers=headers)
        session = {"mcp-session-id": opened.headers["mcp-session-id"]}
        assert client.delete(url, headers={**headers, **session}).status_code == 200
        time.sleep(0.3)
        assert client.post(url, json=init, headers=headers).status_code == 500  # the SDK's bug
