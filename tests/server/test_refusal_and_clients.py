"""Refusals at the SDK's cap, and who holds sessions: through the real mcp SDK app, in process.

The server is the reference app (real ``MCPServer``, real ``StreamableHTTPSessionManager``) with
a small ``max_sessions`` and sessions that never expire, so the third client is refused by the
SDK itself; the middleware must log and count that, and name each client that opened a session.
"""

from __future__ import annotations

import asyncio
import io
import json
import uuid
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from sessionwatch import contract
from sessionwatch.server.app import build_app, build_mcp_server
from sessionwatch.server.exchange import clean_client_text, parse_request, protocol_era
from sessionwatch.server.identity import TaskIdentity
from sessionwatch.server.instrumentation import SessionWatchMiddleware, instrument
from sessionwatch.server.logs import build_event_logger
from sessionwatch.server.refusal import recognize_refusal
from sessionwatch.server.telemetry import ClientLabels

TASK = "cafe0123456789abcdef0123456789ab"
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
MODERN = "2026-07-28"


def rpc_error(code: int, message: str, ident: object) -> bytes:
    error = {"code": code, "message": message}
    return json.dumps({"jsonrpc": "2.0", "id": ident, "error": error}).encode()


# ---- the recognizer, over the bytes each SDK writes (server/README.md, "Refusals") ----

REFUSED = [
    # mcp 2.3 streamable_http_manager._error_response("Too many open sessions", 503, INTERNAL_ERROR)
    ("mcp 2.x", 503, rpc_error(-32603, "Too many open sessions", None), -32603),
    # mcp 1.30: the same helper, but its error bodies carry id "server-error"
    ("mcp 1.30", 503, rpc_error(-32603, "Too many open sessions", "server-error"), -32603),
]
NOT_REFUSED = [
    # A load balancer with no healthy target (ALB's and HAProxy's own 503 pages).
    ("load balancer 503", 503, b"<html><body><h1>503 Service Unavailable</h1></body></html>"),
    ("JSON 503 of another kind", 503, rpc_error(-32603, "Internal error", None)),
    ("a 500 naming sessions", 500, rpc_error(-32603, "Too many open sessions", None)),
    ("lost session", 404, rpc_error(-32600, "Session not found", None)),
]


@pytest.mark.parametrize(("server", "status", "body", "code"), REFUSED)
def test_recognizes_each_sdk_refusal(server: str, status: int, body: bytes, code: int) -> None:
    answer = recognize_refusal(status, body, sent_session=False)
    assert answer is not None, server
    assert (answer.http_status, answer.jsonrpc_code) == (status, code)
    # The same answer to a request that carried a session is not a refusal of a new one.
    assert recognize_refusal(status, body, sent_session=True) is None


@pytest.mark.parametrize(("what", "status", "body"), NOT_REFUSED)
def test_other_answers_are_not_refusals(what: str, status: int, body: bytes) -> None:
    assert recognize_refusal(status, body, sent_session=False) is None, what


# ---- pure helpers: client text, era, label bound ----


def test_client_text_is_bounded_and_loses_control_characters() -> None:
    forged = 'ok\n{"event":"session_created"}\x1b[31m\u202e' + "x" * 500
    cleaned = clean_client_text(forged)
    assert cleaned is not None
    assert len(cleaned) == contract.MAX_CLIENT_TEXT
    assert all(ch.isprintable() for ch in cleaned)
    assert "\n" not in cleaned and "\x1b" not in cleaned and "\u202e" not in cleaned
    assert clean_client_text(" \x00\t ") is None
    assert clean_client_text(42) is None


def test_client_info_read_from_a_cut_off_initialize() -> None:
    big = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "clientInfo": {"name": "cli\u0007-agent", "version": "3.1"},
            "capabilities": {"experimental": {"pad": "p" * 8000}},
        },
    }
    prefix = json.dumps(big).encode()[:4096]
    info = parse_request(prefix, complete=False)
    assert (info.method, info.protocol_version) == ("initialize", "2025-06-18")
    assert (info.client_name, info.client_version) == ("cli-agent", "3.1")


def test_era_follows_the_sdk_routing_rule() -> None:
    assert protocol_era(None) == contract.ERA_HANDSHAKE
    for version in contract.HANDSHAKE_PROTOCOL_VERSIONS:
        assert protocol_era(version) == contract.ERA_HANDSHAKE
    assert protocol_era(MODERN) == contract.ERA_MODERN
    assert protocol_era("2027-01-01") == contract.ERA_MODERN


def test_client_labels_are_bounded() -> None:
    labels = ClientLabels(limit=2)
    assert [labels.label(n) for n in ("a", "b", "c", "a", None)] == [
        "a",
        "b",
        contract.CLIENT_OTHER,
        "a",
        contract.CLIENT_UNKNOWN,
    ]


# ---- the middleware around the real SDK app ----


def initialize(name: str, version: str = "1.0") -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": name, "version": version},
        },
    }


def modern_call(name: str) -> tuple[dict[str, str], dict[str, Any]]:
    headers = {
        **HEADERS,
        "mcp-protocol-version": MODERN,
        "mcp-method": "tools/call",
        "mcp-name": "whoami",
    }
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": {"name": name, "version": "9"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {
        "jsonrpc": "2.0",
        "id": 5,
        "method": "tools/call",
        "params": {"name": "whoami", "arguments": {}, "_meta": meta},
    }
    return headers, body


def capped_server(max_sessions: int) -> tuple[SessionWatchMiddleware, Any, io.StringIO, Any]:
    identity = TaskIdentity(task_id=TASK)
    mcp = build_mcp_server(identity)
    app = build_app(mcp, session_idle_timeout=None, max_sessions=max_sessions)
    out = io.StringIO()
    reader = InMemoryMetricReader()
    middleware = instrument(
        app,
        identity=identity,
        logger=build_event_logger(f"svc-{uuid.uuid4().hex[:8]}", TASK, stream=out),
        meter_provider=MeterProvider(metric_readers=[reader]),
        session_manager=mcp.session_manager,
    )
    return middleware, mcp.session_manager, out, reader


def events(out: io.StringIO, name: str) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    return [r for r in rows if r.get("event") == name]


def points(data: Any, name: str) -> list[tuple[dict[str, Any], float]]:
    found = []
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    found += [(dict(p.attributes or {}), p.value) for p in metric.data.data_points]
    return found


def test_third_client_refused_at_the_cap_is_logged_counted_and_named() -> None:
    middleware, manager, out, reader = capped_server(max_sessions=2)
    answers: list[httpx.Response] = []
    collected: list[Any] = []

    async def scenario() -> None:
        async with manager.run():
            transport = httpx.ASGITransport(app=middleware)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                for name in ("editor-agent", "cli\x1b[2J-agent", "late-agent"):
                    body = json.dumps(initialize(name))
                    answers.append(await client.post("/mcp", headers=HEADERS, content=body))
            collected.append(reader.get_metrics_data())  # a collection while the task serves

    asyncio.run(scenario())
    assert [a.status_code for a in answers] == [200, 200, 503]  # the SDK refused the third
    assert answers[2].json()["error"] == {"code": -32603, "message": "Too many open sessions"}

    created = events(out, contract.EVENT_SESSION_CREATED)
    assert [(c["client_name"], c["client_version"]) for c in created] == [
        ("editor-agent", "1.0"),
        ("cli[2J-agent", "1.0"),  # the escape character is gone
    ]
    [refused] = events(out, contract.EVENT_SESSION_REFUSED)
    assert refused["http_status"] == 503
    assert refused["jsonrpc_code"] == contract.JSONRPC_INTERNAL_ERROR
    assert refused["active_sessions"] == 2
    assert refused["max_sessions"] == 2
    assert refused["client_name"] == "late-agent"
    assert refused["level"] == "WARNING"

    [data] = collected
    assert [v for _, v in points(data, contract.METRIC_SESSION_REFUSED)] == [1]
    assert points(data, contract.METRIC_SESSION_LIMIT) == [({contract.ATTR_ECS_TASK_ID: TASK}, 2)]
    assert points(data, contract.METRIC_SESSION_UTILIZATION) == [
        ({contract.ATTR_ECS_TASK_ID: TASK}, 1.0)
    ]
    by_client = {
        a[contract.ATTR_MCP_CLIENT_NAME]: v
        for a, v in points(data, contract.METRIC_SESSION_CREATED)
    }
    assert by_client == {"editor-agent": 1, "cli[2J-agent": 1}


def test_requests_counted_by_era_and_client() -> None:
    middleware, manager, out, reader = capped_server(max_sessions=10)

    async def scenario() -> None:
        async with manager.run():
            transport = httpx.ASGITransport(app=middleware)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                opened = await client.post(
                    "/mcp", headers=HEADERS, content=json.dumps(initialize("old-editor"))
                )
                session = {
                    **HEADERS,
                    "mcp-session-id": opened.headers["mcp-session-id"],
                    "mcp-protocol-version": "2025-11-25",
                }
                listed = await client.post(
                    "/mcp",
                    headers=session,
                    content=json.dumps({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
                )
                assert listed.status_code == 200
                headers, body = modern_call("new-agent")
                for _ in range(3):
                    modern = await client.post("/mcp", headers=headers, content=json.dumps(body))
                    assert modern.status_code == 200, modern.text
                    assert "mcp-session-id" not in modern.headers

    asyncio.run(scenario())
    counted = {
        (a[contract.ATTR_MCP_PROTOCOL_ERA], a[contract.ATTR_MCP_CLIENT_NAME]): v
        for a, v in points(reader.get_metrics_data(), contract.METRIC_REQUESTS)
    }
    # The tools/list carried only the session id: its client is the session's.
    assert counted == {
        (contract.ERA_HANDSHAKE, "old-editor"): 2,
        (contract.ERA_MODERN, "new-agent"): 3,
    }
    assert len(events(out, contract.EVENT_SESSION_CREATED)) == 1
    assert events(out, contract.EVENT_SESSION_REFUSED) == []
