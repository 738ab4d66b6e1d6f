"""fastmcp 4.x wrapped with ``instrument()``: the whole lifecycle, and no raw id in any output.

A real fastmcp server process (tests/peers/fastmcp_server.py) with no ``session_manager`` passed
(fastmcp builds its own in its lifespan), fastmcp's and mcp's loggers at DEBUG, and a tool whose
exception carries the caller's session id. It must log created, closed by DELETE, closed by idle
expiry (``idle_timeout``, not ``shutdown``), not found and shutdown, and print no raw session id
on stdout or stderr.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest

from sessionwatch import contract
from sessionwatch.ops.client import ProbeClient
from sessionwatch.server.fingerprint import fingerprint
from tests.peers.conftest import PEERS, PYTHON, PeerProcess, assert_no_raw_id

pytestmark = [pytest.mark.slow, pytest.mark.timeout(90)]
TASK = "task-fastmcp-peer"
IDLE_S = 3.0


def test_fastmcp_lifecycle_is_logged_with_the_right_reasons_and_no_raw_id(
    peers: list[PeerProcess],
) -> None:
    server = PeerProcess(
        [PYTHON, str(PEERS / "fastmcp_server.py"), "--idle-timeout", str(IDLE_S)],
        env={"SESSIONWATCH_TASK_ID": TASK},
    ).start()
    peers.append(server)
    mode = server.wait_for("instrumentation_mode")
    assert mode["idle_expiry"] == "session_manager" and mode["manager_source"] == "found_in_app"
    # fastmcp passes no max_sessions: the manager it builds keeps the SDK's cap, read from it.
    assert (mode["max_sessions"], mode["session_idle_timeout_s"]) == (10_000, IDLE_S)

    issued, stray = asyncio.run(_drive(server))
    idle, deleted, active = (fingerprint(raw) for raw in issued)
    for fp in (idle, deleted, active):
        server.wait_for(contract.EVENT_SESSION_CREATED, session=fp)
    closed = server.wait_for(contract.EVENT_SESSION_CLOSED, session=deleted)
    assert closed["reason"] == contract.CLOSE_CLIENT_DELETE
    not_found = server.wait_for(contract.EVENT_SESSION_NOT_FOUND, session=fingerprint(stray))
    assert (not_found["http_status"], not_found["jsonrpc_code"]) == (404, -32600)
    started = server.wait_for(contract.EVENT_SHUTDOWN_STARTED)
    assert started["sessions"] == [active]
    closes = {e["session"]: e["reason"] for e in server.events(contract.EVENT_SESSION_CLOSED)}
    assert closes == {idle: "idle_timeout", deleted: "client_delete", active: "shutdown"}

    output = server.output
    for raw in issued:
        assert raw not in output
    assert_no_raw_id(output)
    # The tool's exception was logged (at DEBUG fastmcp says why a tool failed), scrubbed.
    assert "tool failed for session" in output and fingerprint(issued[2]) in output


async def _drive(server: PeerProcess) -> tuple[list[str], str]:
    """Three sessions: one DELETEd, one left idle until it expires, one kept busy (its tool
    explodes) until the server is stopped; and a request with an id the server never issued."""
    url = server.url()
    stray = uuid.uuid4().hex
    async with (
        ProbeClient(url, name="idle") as idle,
        ProbeClient(url, name="deleted") as deleted,
        ProbeClient(url, name="active") as active,
    ):
        for probe in (deleted, idle, active):
            record = await probe.connect()
            assert record is not None and record.ok, record
        closed = await deleted.close_session()
        assert closed is not None and closed.http_status == 200, server.output[-3000:]
        failed = await active.call_tool("explode", {})
        assert failed.ok  # a tool error is a result with isError, not a JSON-RPC error
        async with httpx.AsyncClient() as client:
            answer = await client.post(
                url,
                headers={
                    "mcp-session-id": stray,
                    "content-type": "application/json",
                    "accept": "application/json, text/event-stream",
                    "mcp-protocol-version": "2025-11-25",
                },
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            )
            assert answer.status_code == 404
        idle_fp = fingerprint(idle.raw_session_ids_for_leak_audit()[0])
        deadline = time.monotonic() + IDLE_S + 8
        # The idle session expires; the busy one must not: stop the server right after.
        while not server.events(contract.EVENT_SESSION_CLOSED, session=idle_fp):
            assert time.monotonic() < deadline, "the idle session was never logged closed"
            assert (await active.call_tool("set_session_value", {"key": "k", "value": "v"})).ok
            await asyncio.sleep(0.3)
        # uvicorn re-raises the SIGTERM it handled once it has shut down: -15 is a clean stop.
        assert await asyncio.to_thread(server.terminate) in (0, -15)
        issued = [p.raw_session_ids_for_leak_audit()[0] for p in (idle, deleted, active)]
        return issued, stray
