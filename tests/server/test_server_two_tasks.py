"""Two real server tasks: a session made on A is not found on B, seen in logs, headers, metrics."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from lab.ecs_metadata import EcsMetadataStub
from lab.otlp_receiver import OtlpReceiver
from lab.task_process import ServerTask
from sessionwatch import contract
from sessionwatch.server.fingerprint import fingerprint, is_fingerprint
from tests.server.conftest import mcp_post, run_client, tool_call

Tasks = tuple[ServerTask, ServerTask, EcsMetadataStub, EcsMetadataStub]
REQUIRED_KEYS = {"timestamp", "level", "service", "message", "event", "task_id"}


@pytest.fixture(scope="module")
def lost_session(two_tasks: Tasks) -> dict[str, object]:
    """Open a session on A with a legacy client, then send its id to B (a re-routed client)."""
    task_a, task_b, _, _ = two_tasks
    run = run_client(
        task_a.url,
        [
            ("set_session_value", {"key": "cart", "value": "3 apples"}),
            ("get_session_state", {}),
            ("whoami", {}),
        ],
    )
    assert run.session_id
    response = mcp_post(task_b.url, run.session_id, tool_call("get_session_state", {}))
    return {"run": run, "response": response}


def test_session_state_lives_on_task_a(two_tasks: Tasks, lost_session: dict) -> None:
    _, _, md_a, _ = two_tasks
    run = lost_session["run"]
    assert run.results["get_session_state"]["values"] == {"cart": "3 apples"}
    assert run.results["whoami"]["task_id"] == md_a.task_id
    assert run.results["whoami"]["task_arn"] == md_a.task_arn
    # Every response of the session carried A's task id.
    assert run.task_ids and set(run.task_ids) == {md_a.task_id}


def test_task_b_answers_404_session_not_found(two_tasks: Tasks, lost_session: dict) -> None:
    _, _, _, md_b = two_tasks
    response = lost_session["response"]
    assert response.status_code == 404
    assert response.json()["error"]["code"] == contract.JSONRPC_SESSION_NOT_FOUND
    assert response.headers[contract.TASK_ID_HEADER] == md_b.task_id


def test_logs_on_both_sides_carry_the_same_fingerprint(
    two_tasks: Tasks, lost_session: dict
) -> None:
    task_a, task_b, md_a, md_b = two_tasks
    fp = fingerprint(lost_session["run"].session_id)
    created = task_a.wait_for_event(contract.EVENT_SESSION_CREATED, session=fp)
    assert created["task_id"] == md_a.task_id
    assert created["protocol_version"] == "2025-11-25"
    not_found = task_b.wait_for_event(contract.EVENT_SESSION_NOT_FOUND, session=fp)
    assert not_found["task_id"] == md_b.task_id
    assert not_found["http_method"] == "POST"
    assert not_found["jsonrpc_code"] == contract.JSONRPC_SESSION_NOT_FOUND
    assert not_found["http_status"] == 404
    assert not task_b.events(contract.EVENT_SESSION_CREATED, session=fp)
    assert not task_a.events(contract.EVENT_SESSION_NOT_FOUND, session=fp)


def test_task_started_names_the_task(two_tasks: Tasks) -> None:
    for task, md in ((two_tasks[0], two_tasks[2]), (two_tasks[1], two_tasks[3])):
        (started,) = task.events(contract.EVENT_TASK_STARTED)
        assert started["task_id"] == md.task_id
        assert started["task_arn"] == md.task_arn
        assert started["cluster"] == md.cluster_arn
        assert started["family"] == md.family
        assert started["revision"] == md.revision
        assert started["availability_zone"] == md.availability_zone


def test_raw_session_id_never_written(two_tasks: Tasks, lost_session: dict) -> None:
    task_a, task_b, _, _ = two_tasks
    raw = lost_session["run"].session_id
    task_b.wait_for_event(contract.EVENT_SESSION_NOT_FOUND)
    for task in (task_a, task_b):
        assert task.output.strip(), "expected some output to check"
        assert raw not in task.output
        assert raw.upper() not in task.output.upper()


def test_every_line_is_json_in_the_schema(two_tasks: Tasks, lost_session: dict) -> None:
    for task in two_tasks[:2]:
        assert task.stderr_lines == []
        for line in task.stdout_lines:
            record = json.loads(line)
            assert record.keys() >= REQUIRED_KEYS, record
            stamp = dt.datetime.fromisoformat(record["timestamp"])
            assert stamp.utcoffset() == dt.timedelta(0)
            if "session" in record:
                assert is_fingerprint(record["session"]), record


def test_metrics_exported_over_otlp(
    two_tasks: Tasks, lost_session: dict, otlp: OtlpReceiver
) -> None:
    _, _, md_a, md_b = two_tasks
    task_a_attr = {contract.ATTR_ECS_TASK_ID: md_a.task_id}
    task_b_attr = {contract.ATTR_ECS_TASK_ID: md_b.task_id}
    created = otlp.wait_for(contract.METRIC_SESSION_CREATED, lambda p: p.value >= 1, **task_a_attr)
    assert created.monotonic is True
    assert created.resource[contract.RESOURCE_SERVICE_NAME] == "mcp-server"
    assert created.resource[contract.RESOURCE_ECS_TASK_ARN] == md_a.task_arn
    assert created.resource[contract.RESOURCE_ECS_CLUSTER_ARN] == md_a.cluster_arn
    active = otlp.wait_for(contract.METRIC_SESSION_ACTIVE, lambda p: p.value == 1, **task_a_attr)
    assert active.monotonic is False
    otlp.wait_for(contract.METRIC_SESSION_NOT_FOUND, lambda p: p.value == 1, **task_b_attr)
    lost_call = otlp.wait_for(
        contract.METRIC_OPERATION_DURATION,
        lambda p: p.count == 1,
        **{
            contract.ATTR_ERROR_TYPE: "-32600",
            contract.ATTR_MCP_METHOD_NAME: "tools/call",
            contract.ATTR_MCP_PROTOCOL_VERSION: "2025-11-25",
            **task_b_attr,
        },
    )
    assert lost_call.unit == "s"
    ok_calls = otlp.wait_for(
        contract.METRIC_OPERATION_DURATION,
        lambda p: p.count >= 3 and contract.ATTR_ERROR_TYPE not in p.attributes,
        **{contract.ATTR_MCP_METHOD_NAME: "tools/call", **task_a_attr},
    )
    assert ok_calls.attributes[contract.ATTR_MCP_PROTOCOL_VERSION] == "2025-11-25"
    otlp.wait_for(
        contract.METRIC_OPERATION_DURATION,
        **{contract.ATTR_MCP_METHOD_NAME: "initialize", **task_a_attr},
    )


def test_no_session_identifier_in_metric_attributes(
    two_tasks: Tasks, lost_session: dict, otlp: OtlpReceiver
) -> None:
    raw = lost_session["run"].session_id
    otlp.wait_for(contract.METRIC_SESSION_NOT_FOUND)
    values = [str(v) for p in otlp.points() for v in (*p.attributes.values(), *p.resource.values())]
    assert values
    assert raw not in values and fingerprint(raw) not in values
    assert not any(raw in v for v in values)


def test_client_delete_closes_the_session(two_tasks: Tasks, otlp: OtlpReceiver) -> None:
    task_a, _, md_a, _ = two_tasks
    run = run_client(task_a.url, [("whoami", {})], terminate_on_close=True)
    fp = fingerprint(run.session_id)
    closed = task_a.wait_for_event(contract.EVENT_SESSION_CLOSED, session=fp)
    assert closed["reason"] == contract.CLOSE_CLIENT_DELETE
    assert closed["age_s"] >= 0
    # Closed once, never again as idle.
    assert len(task_a.events(contract.EVENT_SESSION_CLOSED, session=fp)) == 1
    otlp.wait_for(
        contract.METRIC_SESSION_DURATION,
        lambda p: p.count >= 1,
        **{contract.ATTR_ECS_TASK_ID: md_a.task_id},
    )
    # The DELETEd id is now unknown to A itself.
    assert mcp_post(task_a.url, run.session_id, tool_call("whoami", {})).status_code == 404


def test_health_on_the_same_port_with_task_header(two_tasks: Tasks) -> None:
    import httpx

    task_a, _, md_a, _ = two_tasks
    response = httpx.get(f"{task_a.url}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.headers[contract.TASK_ID_HEADER] == md_a.task_id


def test_modern_protocol_client_holds_no_session_but_is_counted(
    two_tasks: Tasks, otlp: OtlpReceiver
) -> None:
    import asyncio

    from mcp import Client

    task_a, _, md_a, _ = two_tasks
    task_a.wait_for_event(contract.EVENT_SESSION_CREATED)
    before = len(task_a.events(contract.EVENT_SESSION_CREATED))

    async def call() -> dict:
        async with Client(f"{task_a.url}/mcp", mode="2026-07-28") as client:
            result = await client.call_tool("whoami", {})
            return result.structured_content

    assert asyncio.run(call())["task_id"] == md_a.task_id
    otlp.wait_for(
        contract.METRIC_OPERATION_DURATION,
        **{
            contract.ATTR_MCP_PROTOCOL_VERSION: "2026-07-28",
            contract.ATTR_MCP_METHOD_NAME: "tools/call",
            contract.ATTR_ECS_TASK_ID: md_a.task_id,
        },
    )
    assert len(task_a.events(contract.EVENT_SESSION_CREATED)) == before
