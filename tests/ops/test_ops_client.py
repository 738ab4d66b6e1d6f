"""The probe client against the real mcp SDK server: sessions, the loss signature, stateless."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator

import httpx
import pytest

from sessionwatch.ops.client import (
    CallRecord,
    ProbeClient,
    ProbeMode,
    parse_jsonrpc_body,
    run_probe,
    sticky_cookie_from,
)
from sessionwatch.server.fingerprint import is_fingerprint
from tests.lab.conftest import SdkServer
from tests.ops.bare_server import start_bare_reference_server

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def bare_servers() -> Iterator[Callable[[str], SdkServer]]:
    """Real reference servers without the instrumentation (no X-Mcp-Task-Id), stopped at the end."""
    started: list[SdkServer] = []

    def make(task_id: str) -> SdkServer:
        started.append(start_bare_reference_server(task_id))
        return started[-1]

    yield make
    for srv in started:
        srv.stop()


def test_parse_sse_picks_the_message_with_the_request_id() -> None:
    body = (
        b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n'
        b'event: message\ndata: {"jsonrpc":"2.0","id":7,"result":{"ok":true}}\n\n'
    )
    assert parse_jsonrpc_body("text/event-stream", body, 7) == {
        "jsonrpc": "2.0",
        "id": 7,
        "result": {"ok": True},
    }


def test_parse_json_error_with_null_id_is_the_answer() -> None:
    body = b'{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"Session not found"}}'
    assert parse_jsonrpc_body("application/json", body, 3)["error"]["code"] == -32600


@pytest.mark.parametrize("body", [b"", b"not json", b"[1,2]", b'data: {"id": 9}'])
def test_parse_garbage_gives_empty(body: bytes) -> None:
    assert parse_jsonrpc_body("text/event-stream", body, 1) == {}


def test_sticky_cookie_from_reads_only_awsalb() -> None:
    headers = httpx.Headers(
        [("set-cookie", "other=1; Path=/"), ("set-cookie", "AWSALB=abc|1; Path=/")]
    )
    assert sticky_cookie_from(headers) == "abc|1"
    assert sticky_cookie_from(httpx.Headers([("set-cookie", "other=1")])) is None


def test_session_not_found_signature() -> None:
    base = dict(time=0.0, probe="p", call_number=1, tool="t", task_id="x", session="0" * 16)
    assert CallRecord(**base, http_status=404, jsonrpc_code=-32600).session_not_found
    assert CallRecord(**base, http_status=404, jsonrpc_code=-32001).session_lost
    text = "Bad Request: No valid session ID provided"
    plain = CallRecord(**base, http_status=400, answer_text=text)
    assert plain.session_lost and plain.lost_form == "400/text"
    unsent = {**base, "session": None}
    assert not CallRecord(**unsent, http_status=404, jsonrpc_code=-32600).session_lost
    assert not CallRecord(**base, http_status=404, jsonrpc_code=None).session_not_found
    assert not CallRecord(**base, http_status=200).session_not_found
    assert CallRecord(**base, http_status=200).ok
    assert not CallRecord(**base, http_status=200, jsonrpc_code=-32602).ok


async def test_session_cycle_records_task_and_fingerprint(sdk_servers) -> None:  # type: ignore[no-untyped-def]
    srv: SdkServer = sdk_servers("task-aaaa")
    async with ProbeClient(srv.url, name="p1") as probe:
        init = await probe.connect()
        assert init is not None and init.ok and init.tool == "initialize"
        first, second = await probe.cycle()
        assert [first.tool, second.tool] == ["set_session_value", "get_session_state"]
        assert first.ok and second.ok
        assert {first.task_id, second.task_id} == {"task-aaaa"}
        assert is_fingerprint(first.session) and first.session == probe.session
        raw = probe._session_id
        assert raw and raw not in repr(probe) and raw not in json.dumps(first.to_dict())
        assert raw not in first.line()
        assert {first.task_source, second.task_source} == {"header"}
        # The initialized notification is part of the handshake: it shares initialize's number,
        # so the numbers a caller sees (initialize, then the cycle) have no gap.
        assert [(r.tool, r.call_number) for r in probe.records] == [
            ("initialize", 1),
            ("initialized", 1),
            ("set_session_value", 2),
            ("get_session_state", 3),
        ]
        closed = await probe.close_session()
        assert closed is not None and closed.http_status == 200


async def test_session_on_another_task_is_404_session_not_found(sdk_servers) -> None:  # type: ignore[no-untyped-def]
    old: SdkServer = sdk_servers("task-old")
    new: SdkServer = sdk_servers("task-new")
    async with ProbeClient(old.url, name="p2") as probe:
        await probe.connect()
        (ok, _) = await probe.cycle()
        assert ok.ok
        probe.url = new.url  # what the load balancer does when the old target is gone
        lost, _ = await probe.cycle()
        assert lost.session_not_found
        assert lost.http_status == 404 and lost.jsonrpc_code == -32600
        assert lost.jsonrpc_message == "Session not found"
        assert lost.task_id == "task-new" and lost.session == ok.session


async def test_stateless_mode_has_no_session(sdk_servers) -> None:  # type: ignore[no-untyped-def]
    srv: SdkServer = sdk_servers("task-st")
    async with ProbeClient(srv.url, mode=ProbeMode.STATELESS, name="p3") as probe:
        assert await probe.connect() is None
        records = await probe.cycle()
        assert all(r.ok and r.session is None for r in records)
        assert probe.session is None


async def test_run_probe_reconnects_after_loss(sdk_servers) -> None:  # type: ignore[no-untyped-def]
    srv: SdkServer = sdk_servers("task-rp")
    seen: list[CallRecord] = []
    records = await run_probe(srv.url, cycles=2, interval=0.01, on_record=seen.append)
    assert [r.tool for r in seen] == [
        "initialize",
        "set_session_value",
        "get_session_state",
        "set_session_value",
        "get_session_state",
    ]
    assert all(r.ok for r in records)


async def test_run_probe_against_dead_endpoint_ends(sdk_servers) -> None:  # type: ignore[no-untyped-def]
    records = await asyncio.wait_for(
        run_probe("http://127.0.0.1:9/mcp", cycles=2, interval=0.01, timeout=1.0), 10
    )
    assert len(records) == 2
    assert all(r.transport_error and r.http_status is None for r in records)


async def test_without_the_header_the_task_comes_from_tool_results(bare_servers) -> None:  # type: ignore[no-untyped-def]
    srv: SdkServer = bare_servers("task-bare")
    async with ProbeClient(srv.url, name="p5") as probe:
        init = await probe.connect()
        assert init is not None and init.ok
        assert init.task_id is None and init.task_source is None  # no header, no tool result
        who = await probe.whoami()
        first, second = await probe.cycle()
        for record in (who, first, second):
            assert record.ok and record.task_id == "task-bare" and record.task_source == "result"
        assert who.tool == "whoami" and who.session == probe.session
        raw = probe._session_id
        assert raw and all(raw not in json.dumps(r.to_dict()) for r in probe.records)


async def test_without_the_header_a_404_names_no_task(bare_servers) -> None:  # type: ignore[no-untyped-def]
    old: SdkServer = bare_servers("task-bare-old")
    new: SdkServer = bare_servers("task-bare-new")
    async with ProbeClient(old.url, name="p6") as probe:
        await probe.connect()
        (ok, _) = await probe.cycle()
        assert ok.task_id == "task-bare-old"
        probe.url = new.url
        lost, _ = await probe.cycle()
        # An error answer carries no tool result: the answering task is unknown, not guessed.
        assert lost.session_not_found and lost.task_id is None and lost.task_source is None


async def test_run_probe_asks_whoami_once_per_headerless_session(bare_servers) -> None:  # type: ignore[no-untyped-def]
    srv: SdkServer = bare_servers("task-bare-run")
    seen: list[CallRecord] = []
    await run_probe(srv.url, cycles=2, interval=0.01, on_record=seen.append)
    assert [(r.tool, r.call_number) for r in seen] == [
        ("initialize", 1),
        ("whoami", 2),
        ("set_session_value", 3),
        ("get_session_state", 4),
        ("set_session_value", 5),
        ("get_session_state", 6),
    ]
    assert all(r.ok for r in seen)
    assert {r.task_id for r in seen[1:]} == {"task-bare-run"}


async def test_run_probe_skips_whoami_when_the_header_names_the_task(sdk_servers) -> None:  # type: ignore[no-untyped-def]
    srv: SdkServer = sdk_servers("task-hdr")
    seen: list[CallRecord] = []
    await run_probe(srv.url, cycles=1, interval=0.01, on_record=seen.append)
    assert [r.tool for r in seen] == ["initialize", "set_session_value", "get_session_state"]
    assert [r.call_number for r in seen] == [1, 2, 3]
