"""The lost-session recognizer against the answers real SDKs send (captured from their sources).

The bodies are the bytes each SDK writes (server/README.md, "Lost-session answers"); the real
servers themselves answer in tests/peers/. Non-answers matter as much: a 404 of a wrong path,
a 400 to a request that sent no session id, a 5xx.
"""

from __future__ import annotations

import json

import pytest

from sessionwatch.server.lost_session import read_error_body, recognize


def rpc(code: int, message: str, ident: object = None) -> bytes:
    error = {"code": code, "message": message}
    return json.dumps({"jsonrpc": "2.0", "id": ident, "error": error}).encode()


LOST = [
    # (server, status, body, jsonrpc_code, sdk)
    ("mcp 2.x", 404, rpc(-32600, "Session not found"), -32600, "mcp (Python) 2.x"),
    (
        "mcp 1.27-1.30",
        404,
        rpc(-32600, "Session not found", "server-error"),
        -32600,
        "mcp (Python) 1.27-1.30",
    ),
    (
        "mcp <= 1.26",
        400,
        b"Bad Request: No valid session ID provided",
        None,
        "mcp (Python) 1.x up to 1.26",
    ),
    (
        "mcp 1.x terminated",
        404,
        rpc(-32600, "Not Found: Session has been terminated", "server-error"),
        -32600,
        "mcp (Python) 1.27-1.30",
    ),
    ("TypeScript SDK 1.x", 404, rpc(-32001, "Session not found"), -32001, "TypeScript SDK 1.x"),
    (
        "older TypeScript example",
        400,
        rpc(-32000, "Bad Request: No valid session ID provided"),
        -32000,
        "TypeScript SDK examples (older pattern)",
    ),
    (
        "TypeScript single transport restarted",
        400,
        rpc(-32000, "Bad Request: Server not initialized"),
        -32000,
        "TypeScript SDK 1.x (single transport, restarted)",
    ),
    ("a 404 -32001 with another text", 404, rpc(-32001, "Gone"), -32001, "TypeScript SDK 1.x"),
    ("plain 404 naming the session", 404, b"session expired", None, "another server"),
]


@pytest.mark.parametrize(
    ("server", "status", "body", "code", "sdk"), LOST, ids=[c[0] for c in LOST]
)
def test_every_sdk_form_is_a_lost_session(
    server: str, status: int, body: bytes, code: int | None, sdk: str
) -> None:
    answer = recognize(status, body, sent_session=True)
    assert answer is not None, server
    assert (answer.http_status, answer.jsonrpc_code, answer.sdk) == (status, code, sdk)
    assert answer.error_type == str(code if code is not None else status)


def test_sse_framed_error_is_read() -> None:
    body = b"event: message\ndata: " + rpc(-32600, "Session not found") + b"\n\n"
    answer = recognize(404, body, sent_session=True, content_type="text/event-stream")
    assert answer is not None and answer.form == "404/-32600"


NOT_LOST = [
    ("no session id was sent", 400, b"Bad Request: No valid session ID provided", False),
    ("wrong path", 404, b"Not Found", True),
    ("wrong path, JSON", 404, rpc(-32600, "Not Found"), True),
    ("method not found", 404, rpc(-32601, "Method not found"), True),
    ("missing header", 400, rpc(-32000, "Bad Request: Mcp-Session-Id header is required"), True),
    ("bad JSON", 400, rpc(-32700, "Parse error"), True),
    ("server error", 500, rpc(-32603, "Session not found"), True),
    ("ok", 200, b'{"jsonrpc":"2.0","id":1,"result":{}}', True),
    ("no status", None, b"", True),
]


@pytest.mark.parametrize(("case", "status", "body", "sent"), NOT_LOST, ids=[c[0] for c in NOT_LOST])
def test_other_answers_are_not_lost_sessions(
    case: str, status: int | None, body: bytes, sent: bool
) -> None:
    assert recognize(status, body, sent_session=sent) is None, case


def test_odd_bodies_never_raise() -> None:
    for body in (b"", b"\xff\xfe", b"[1,2", b"null", b'{"error": 3}', "{}", None, b"data: x"):
        read_error_body(body)
        recognize(404, body, sent_session=True)
    long = b"No valid session " + b"x" * 10_000
    answer = recognize(400, long, sent_session=True)
    assert answer is not None and len(answer.message) == 200
