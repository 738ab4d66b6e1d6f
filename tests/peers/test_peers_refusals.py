"""The session-cap refusal of a real mcp 1.30 server, as its own release writes it.

mcp 1.30 is a server that never adopted SessionWatch (its own process, its own interpreter in
.venv-peers): with ``max_sessions=1`` the second initialize gets the SDK's 503, and the one
recognizer (``server.refusal``, shared by the instrumentation and the lab) must name it, while
the first answer and an ordinary lost session are not refusals. The mcp 2.x answer is checked
through the instrumentation itself in tests/server/test_refusal_and_clients.py.
"""

from __future__ import annotations

import json

import httpx
import pytest

from sessionwatch import contract
from sessionwatch.server.refusal import recognize_refusal
from tests.peers.conftest import PEERS, PeerProcess, peer_python_or_skip

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def initialize(name: str) -> str:
    params = {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": name, "version": "1"},
    }
    return json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params})


def test_mcp_1_30_refuses_past_its_cap_in_the_form_sessionwatch_recognizes(
    peers: list[PeerProcess],
) -> None:
    command = [peer_python_or_skip("1.30"), str(PEERS / "mcp1_server.py")]
    server = PeerProcess([*command, "--task-id", "cap-1", "--max-sessions", "1"]).start()
    peers.append(server)
    url = server.url("/mcp")
    first = httpx.post(url, headers=HEADERS, content=initialize("first"), timeout=10)
    second = httpx.post(url, headers=HEADERS, content=initialize("second"), timeout=10)
    assert first.status_code == 200 and "mcp-session-id" in first.headers
    assert second.status_code == 503
    assert second.json() == {
        "jsonrpc": "2.0",
        "id": "server-error",
        "error": {"code": -32603, "message": "Too many open sessions"},
    }
    refusal = recognize_refusal(second.status_code, second.content, sent_session=False)
    assert refusal is not None
    assert (refusal.http_status, refusal.jsonrpc_code) == (503, contract.JSONRPC_INTERNAL_ERROR)
    assert recognize_refusal(first.status_code, first.content, sent_session=False) is None
    # The same server's answer to an unknown session is a lost session, not a refusal.
    unknown = httpx.post(
        url,
        headers={**HEADERS, "mcp-session-id": "0" * 32, "mcp-protocol-version": "2025-06-18"},
        content=json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
        timeout=10,
    )
    assert unknown.status_code == 404
    assert recognize_refusal(unknown.status_code, unknown.content, sent_session=True) is None
