"""The middleware and its pure helpers, in-process: streaming, fault isolation, lifecycle rules."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from sessionwatch import contract
from sessionwatch.server.drain_budget import check_drain_budget
from sessionwatch.server.exchange import (
    PEEK_BYTES,
    error_code,
    is_tool_error,
    negotiated_version,
    parse_request,
)
from sessionwatch.server.fingerprint import fingerprint
from sessionwatch.server.identity import (
    MetadataError,
    TaskIdentity,
    parse_task_metadata,
    task_id_from_arn,
)
from sessionwatch.server.instrumentation import SessionWatchMiddleware, instrument
from sessionwatch.server.logs import build_event_logger, scrub
from sessionwatch.server.sessions import SessionTracker

TASK = "0123456789abcdef0123456789abcdef"
SID = "fedcba9876543210fedcba9876543210"


def make(
    app: Any, clock: Callable[[], float] = time.monotonic
) -> tuple[SessionWatchMiddleware, io.StringIO, InMemoryMetricReader]:
    out = io.StringIO()
    reader = InMemoryMetricReader()
    logger = build_event_logger(f"svc-{uuid.uuid4().hex[:8]}", TASK, stream=out)
    middleware = instrument(
        app,
        identity=TaskIdentity(task_id=TASK),
        logger=logger,
        meter_provider=MeterProvider(metric_readers=[reader]),
        clock=clock,
    )
    return middleware, out, reader


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


def request(
    app: Any,
    method: str = "POST",
    body: list[bytes] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[bytes, bytes], bytes, list[dict[str, Any]]]:
    """Drive one ASGI HTTP exchange; return status, headers, body and the messages fed in."""
    chunks = body if body is not None else [b""]
    fed = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    queue = list(fed)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": "/mcp",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    asyncio.run(app(scope, receive, send))
    start = sent[0]
    payload = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), payload, fed


def responder(
    status: int = 200, body: bytes = b"{}", headers: list[tuple[bytes, bytes]] | None = None
) -> Callable[..., Any]:
    async def app(scope: dict, receive: Callable, send: Callable) -> None:
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": status, "headers": headers or []})
        await send({"type": "http.response.body", "body": body})

    return app


def test_ten_megabyte_body_streams_through_untouched() -> None:
    received: list[dict[str, Any]] = []
    digest = hashlib.sha256()

    async def sink(scope: dict, receive: Callable, send: Callable) -> None:
        while True:
            message = await receive()
            received.append(message)
            digest.update(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": digest.hexdigest().encode()})

    middleware, _, _ = make(sink)
    chunks = [bytes([i % 251]) * 65536 for i in range(160)]  # 10 MiB in 64 KiB chunks
    status, headers, body, fed = request(middleware, body=chunks)
    assert status == 200
    assert body.decode() == hashlib.sha256(b"".join(chunks)).hexdigest()
    # The very same message objects reached the app: nothing copied, joined or held back.
    assert len(received) == len(fed) and all(a is b for a, b in zip(received, fed, strict=True))
    assert headers[b"x-mcp-task-id"] == TASK.encode()


def test_task_header_on_every_response_of_any_app() -> None:
    middleware, _, _ = make(responder(status=418, body=b"teapot"))
    status, headers, body, _ = request(middleware, method="GET")
    assert (status, body) == (418, b"teapot")
    assert headers[contract.TASK_ID_HEADER.lower().encode()] == TASK.encode()


def test_session_created_once_and_deleted_once() -> None:
    session_headers = [(b"mcp-session-id", SID.encode())]
    init = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize",
                       "params": {"protocolVersion": "2025-06-18"}}).encode()  # fmt: skip
    middleware, out, reader = make(responder(headers=session_headers))
    request(middleware, body=[init])
    # Later responses repeat the header: not a new session.
    request(middleware, body=[b'{"jsonrpc":"2.0","id":2,"method":"tools/list"}'],
            headers={"mcp-session-id": SID})  # fmt: skip
    request(middleware, method="DELETE", headers={"mcp-session-id": SID})
    request(middleware, method="DELETE", headers={"mcp-session-id": SID})
    events = [r for r in lines(out) if r["event"] not in ("task_started", "instrumentation_mode")]
    assert [e["event"] for e in events] == ["session_created", "session_closed"]
    assert events[0]["session"] == fingerprint(SID)
    assert events[0]["protocol_version"] == "2025-06-18"
    assert events[1]["reason"] == "client_delete"
    assert SID not in out.getvalue()
    sums = metric_values(reader)
    assert sums[contract.METRIC_SESSION_CREATED] == 1
    assert sums[contract.METRIC_SESSION_ACTIVE] == 0


def metric_values(reader: InMemoryMetricReader) -> dict[str, Any]:
    data = reader.get_metrics_data()
    values: dict[str, Any] = {}
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                for point in metric.data.data_points:
                    values[metric.name] = getattr(point, "value", getattr(point, "count", None))
    return values


def test_not_found_needs_404_and_jsonrpc_32600() -> None:
    body = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Session not found"}}'
    middleware, out, reader = make(responder(status=404, body=body))
    request(middleware, body=[b'{"jsonrpc":"2.0","id":3,"method":"tools/call"}'],
            headers={"mcp-session-id": SID})  # fmt: skip
    other, other_out, _ = make(responder(status=404, body=b'{"detail":"no such route"}'))
    request(other, headers={"mcp-session-id": SID})
    (event,) = [r for r in lines(out) if r["event"] == "session_not_found"]
    assert event["session"] == fingerprint(SID) and event["jsonrpc_code"] == -32600
    assert not [r for r in lines(other_out) if r["event"] == "session_not_found"]
    assert metric_values(reader)[contract.METRIC_SESSION_NOT_FOUND] == 1


def test_a_failing_telemetry_path_never_breaks_requests() -> None:
    middleware, out, _ = make(responder(body=b'{"jsonrpc":"2.0","id":1,"result":{}}'))

    class Broken:
        def record(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("exporter exploded")

    object.__setattr__(middleware.instruments, "operation_duration", Broken())
    for _ in range(3):
        status, _, body, _ = request(middleware, body=[b'{"jsonrpc":"2.0","id":1,"method":"ping"}'])
        assert status == 200 and body == b'{"jsonrpc":"2.0","id":1,"result":{}}'
    assert middleware.faults == {"request_accounting": 3}
    logged = [r for r in lines(out) if r["event"] == "instrumentation_error"]
    assert len(logged) == 1 and logged[0]["fault"] == "request_accounting"


def test_shutdown_accounting_is_idempotent() -> None:
    middleware, out, _ = make(responder(headers=[(b"mcp-session-id", SID.encode())]))
    request(middleware, body=[b'{"jsonrpc":"2.0","id":1,"method":"initialize"}'])
    middleware.begin_shutdown("SIGTERM")
    middleware.begin_shutdown("SIGTERM")
    middleware.close()
    middleware.close()
    events = [r["event"] for r in lines(out)]
    assert events.count("shutdown_started") == 1
    assert events.count("session_closed") == 1


def test_scrub_replaces_ids_but_keeps_the_task_id() -> None:
    dashed = str(uuid.uuid4())
    text = f"Created new transport with session ID: {SID}; task {TASK}; other {dashed}"
    cleaned = scrub(text, keep=frozenset({TASK}))
    assert SID not in cleaned and dashed not in cleaned
    assert fingerprint(SID) in cleaned and fingerprint(dashed) in cleaned
    assert TASK in cleaned
    assert scrub("abc 1234 deadbeef") == "abc 1234 deadbeef"


@pytest.mark.parametrize(
    ("prefix", "complete", "method", "version"),
    [
        (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}', True, "tools/call", None),
        (b'{"method":"initialize","params":{"protocolVersion":"2025-11-25"}}', True, "initialize",
         "2025-11-25"),
        (b'[{"method":"ping"}]', True, "ping", None),
        (b"not json", True, None, None),
        (b'{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"arguments":{"v":"xxxx', False,
         "tools/call", None),
        (b"", True, None, None),
    ],
)  # fmt: skip
def test_parse_request(
    prefix: bytes, complete: bool, method: str | None, version: str | None
) -> None:
    info = parse_request(prefix, complete)
    assert (info.method, info.protocol_version) == (method, version)


def test_error_code_and_version_from_json_and_sse() -> None:
    sse = b'event: message\r\ndata: {"jsonrpc":"2.0","id":1,"error":{"code":-32602,"message":"x"}}'
    assert error_code(sse) == -32602
    assert error_code(b'{"jsonrpc":"2.0","id":1,"result":{"error":"not an rpc error"}}') is None
    init = b'data: {"result":{"protocolVersion":"2025-11-25","capabilities":{}}}'
    assert negotiated_version(init) == "2025-11-25"
    assert is_tool_error(b'data: {"result":{"content":[],"isError": true}}')
    assert not is_tool_error(b'data: {"result":{"content":[],"isError":false}}')
    assert PEEK_BYTES <= 64 * 1024


def test_tracker_never_double_counts() -> None:
    tracker = SessionTracker()
    assert tracker.created("a", 0.0, None) is not None
    assert tracker.created("a", 1.0, None) is None
    tracker.created("b", 0.0, None)
    tracker.touch("b", 5.0)
    assert [sid for sid, _ in tracker.idle_since(2.0)] == ["a"]
    assert tracker.closed("a") is None
    assert [sid for sid, _ in tracker.missing_from({"x"})] == ["b"]
    assert len(tracker) == 0


def test_task_metadata_parsing() -> None:
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/c/{TASK}"
    identity = parse_task_metadata({"TaskARN": arn, "Cluster": "c", "Revision": 3})
    assert identity.task_id == TASK == task_id_from_arn(arn)
    assert identity.revision == "3" and identity.availability_zone is None
    for bad in ([], {"TaskARN": 5}, {"TaskARN": "arn:aws:ecs:x:container/y"}):
        with pytest.raises(MetadataError):
            parse_task_metadata(bad)


def test_drain_budget_warns_when_it_does_not_fit_stop_timeout() -> None:
    assert check_drain_budget(10, 5, 30) is None
    assert "stopTimeout" in (check_drain_budget(25, 5, 30) or "")


def test_an_app_without_a_session_manager_says_once_that_idle_expiry_is_estimated() -> None:
    now = [1000.0]  # a fake monotonic clock: the machine's uptime must not matter
    middleware, out, _ = make(responder(), clock=lambda: now[0])
    for _ in range(3):
        request(middleware, body=[b'{"jsonrpc":"2.0","id":1,"method":"ping"}'])
    (mode,) = [r for r in lines(out) if r["event"] == "instrumentation_mode"]
    assert mode["idle_expiry"] == "estimated" and mode["idle_timeout_s"] == 1800.0
    assert mode["idle_timeout_source"] == "sdk_default"
    assert "session_manager=" in mode["message"]
    # A session the app never closed is estimated expired after the timeout, not "dropped".
    middleware.sessions.created(SID, now[0], None)
    now[0] += 1799.0
    middleware.reconcile()
    assert not [r for r in lines(out) if r["event"] == "session_closed"]
    now[0] += 2.0
    middleware.reconcile()
    closed = [r for r in lines(out) if r["event"] == "session_closed"]
    assert closed and closed[0]["reason"] == "idle_timeout"
    assert closed[0]["age_s"] == 1801.0


def test_lost_session_answers_of_every_sdk_are_logged_with_their_form() -> None:
    answers = [
        (404, b'{"jsonrpc":"2.0","error":{"code":-32001,"message":"Session not found"},"id":null}',
         -32001),
        (404, b'{"jsonrpc":"2.0","id":"server-error","error":{"code":-32600,'
              b'"message":"Session not found"}}', -32600),
        (400, b"Bad Request: No valid session ID provided", None),
        (400, b'{"jsonrpc":"2.0","error":{"code":-32000,'
              b'"message":"Bad Request: No valid session ID provided"},"id":null}', -32000),
    ]  # fmt: skip
    for status, body, code in answers:
        middleware, out, reader = make(responder(status=status, body=body))
        request(middleware, body=[b'{"jsonrpc":"2.0","id":3,"method":"tools/call"}'],
                headers={"mcp-session-id": SID})  # fmt: skip
        (event,) = [r for r in lines(out) if r["event"] == "session_not_found"]
        assert (event["http_status"], event["jsonrpc_code"]) == (status, code)
        assert metric_values(reader)[contract.METRIC_SESSION_NOT_FOUND] == 1
        data = reader.get_metrics_data()
        types = {
            dict(point.attributes).get(contract.ATTR_ERROR_TYPE)
            for rm in data.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
            if metric.name == contract.METRIC_OPERATION_DURATION
            for point in metric.data.data_points
        }
        assert types == {str(code if code is not None else status)}
