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
from collections.abc import Callable, Iterator
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
    Peer("mcp-1.9", _mcp1("1.9"), "/mcp/", "400/text", "mcp (Python) 1.x up to 1.26"),
]


@pytest.fixture(scope="module")
def lb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HAProxy]:
    with HAProxy(tmp_path_factory.mktemp("haproxy"), slots=12, health_interval_ms=200) as proxy:
        yield proxy


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
