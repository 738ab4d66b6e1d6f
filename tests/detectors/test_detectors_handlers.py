"""The handlers' edges: bad input counted and logged with context, the rest of the batch kept."""

from __future__ import annotations

import json

import pytest

from detectors.handlers import ecs_events, runtime, session_events
from detectors.names import BAD_INPUT_SERVICE_NAME, DIMENSION_SERVICE, METRIC_BAD_INPUT
from tests.detectors.builders import T0, fp, line, load, subscription
from tests.detectors.conftest import LedgerEnv
from tests.detectors.test_detectors_scenario import emf_docs


@pytest.fixture
def wired(ledger_env: LedgerEnv, monkeypatch) -> LedgerEnv:
    monkeypatch.setenv("LEDGER_TABLE_NAME", ledger_env.table)
    monkeypatch.setenv("CLUSTER_NAME", "mcp-cluster")
    monkeypatch.setattr(runtime, "clock", lambda: T0)
    runtime.reset()
    yield ledger_env
    runtime.reset()


def test_bad_lines_are_counted_logged_and_the_rest_processed(
    wired, capsys, caplog, lambda_context
) -> None:
    payload = subscription(
        [
            "{not json",
            json.dumps({"event": "session_created"}),
            line("session_created", "t1", T0 - 5, session=fp("ok")),
        ],
        stream="ecs/mcp-server/abc123",
    )
    result = session_events.handler(payload, lambda_context)
    assert (result["stored"], result["bad_input"]) == (1, 2)
    out = capsys.readouterr().out
    [metric] = [d for d in emf_docs(out) if METRIC_BAD_INPUT in d]
    assert metric[METRIC_BAD_INPUT] == 2 and metric[DIMENSION_SERVICE] == BAD_INPUT_SERVICE_NAME
    warnings = [r for r in caplog.records if r.getMessage() == "detector bad input"]
    assert {w.reason for w in warnings} == {"log line is not JSON", "missing or mistyped fields"}
    assert all(w.log_stream == "ecs/mcp-server/abc123" and w.log_event_id for w in warnings)
    item = wired.client.get_item(
        TableName=wired.table, Key={"pk": {"S": f"SESS#{fp('ok')}"}, "sk": {"S": "CREATED"}}
    )
    assert item["Item"]["task_id"]["S"] == "t1"


def test_ecs_event_of_another_detail_type_is_bad_input(
    wired, capsys, caplog, lambda_context
) -> None:
    event = {**load("task-running"), "detail-type": "ECS Container Instance State Change"}
    assert ecs_events.handler(event, lambda_context)["bad_input"] == 1
    out = capsys.readouterr().out
    assert [d[METRIC_BAD_INPUT] for d in emf_docs(out) if METRIC_BAD_INPUT in d] == [1]
    [warning] = [r for r in caplog.records if r.getMessage() == "detector bad input"]
    assert warning.event_id == "b2e3f4a5-0001-4d3c-8f22-000000000001"
    assert warning.reason == "unexpected detail-type"
    assert runtime.logger.get_correlation_id() == "b2e3f4a5-0001-4d3c-8f22-000000000001"
