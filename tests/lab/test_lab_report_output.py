"""lab-report/ output: the side-by-side table, files written, and the raw-session-id audit."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from lab.alarm_replay import ALARM, OK, Evaluation
from lab.report import RunResult, leaked, task_legend, write_report
from lab.scenarios import ALARM_DEPLOYMENT, SCENARIOS, Outcome

RAW = "5f1c0b9e2d7a4b7e9a553c4d2e1f0a9b"  # what a raw Mcp-Session-Id looks like


def call(t: float, status: int, session: str, task: str) -> dict[str, Any]:
    return {
        "t": t,
        "kind": "call",
        "time": t,
        "probe": "probe-1",
        "call_number": 1,
        "tool": "set_session_value",
        "http_status": status,
        "task_id": task,
        "session": session,
        "jsonrpc_code": -32600 if status == 404 else None,
        "jsonrpc_message": None,
        "session_lost": status == 404,  # the probe's recognizer verdict (server.lost_session)
        "latency_ms": 3.0,
        "cookie_rotated": False,
        "transport_error": None,
    }


def result(events: list[dict[str, Any]]) -> RunResult:
    return RunResult(
        scenario=SCENARIOS["rolling-deploy"],
        start=100.0,
        end=130.0,
        events=events,
        outcome=Outcome(
            frozenset({"aaaaaaaaaaaaaaaa"}),
            {"aaaaaaaaaaaaaaaa": "deployment"},
            frozenset({ALARM_DEPLOYMENT}),
            1,
            1,
        ),
        verdicts={"aaaaaaaaaaaaaaaa": {"cause": "deployment", "decided_at": 112.5}},
        timelines={ALARM_DEPLOYMENT: [Evaluation(106, OK, 0, 1), Evaluation(112, ALARM, 1, 1)]},
        skipped_alarms=[],
        reports=[
            {
                "subject": "s",
                "message": "m",
                "facts": {"session_cliff_s": 2.0, "sessions_at_risk": 1},
            }
        ],
        problems=[],
        deployment_id="ecs-svc/1",
        targets={"t-new": "UP"},
        lb_5xx=0,
        lb_4xx=1,
        sessions_opened=2,
        lines_shipped=5,
        server_points=7,
    )


def test_report_files_and_side_by_side(tmp_path: Path) -> None:
    events = [
        {"t": 101.0, "kind": "phase", "text": "start"},
        call(105.0, 200, "aaaaaaaaaaaaaaaa", "t-old"),
        call(110.0, 404, "aaaaaaaaaaaaaaaa", "t-new"),
    ]
    r = result(events)
    text = write_report(r, tmp_path, {RAW}, ["a printed line"])
    assert r.problems == []
    assert "WHAT THE INFRASTRUCTURE SHOWS" in text and "PASS" in text
    assert "detection latency: 2.5 s from first loss to verdict" in text
    assert "at risk 1, survived 0" in text
    md = (tmp_path / "report.md").read_text()
    assert "| aaaaaaaaaaaaaaaa | deployment |" in md
    assert "deployment: " in md and "ALARM" in md
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 3
    assert (tmp_path / "timeline.png").read_bytes()[:4] == b"\x89PNG"


def test_a_raw_session_id_anywhere_fails_the_run(tmp_path: Path) -> None:
    r = result([call(105.0, 200, "aaaaaaaaaaaaaaaa", "t-old")])
    write_report(r, tmp_path, {RAW}, [f"server said Created new transport with session ID: {RAW}"])
    assert r.problems == ["a raw session id appears in 1 output(s)"]
    assert "Verdict problems" in (tmp_path / "report.md").read_text()


def test_a_rerun_into_a_folder_with_side_by_side_variants_writes_its_report(
    tmp_path: Path,
) -> None:
    (tmp_path / "rolling-stop-on-loss-none").mkdir()  # a previous run's variant folder
    r = result([call(105.0, 200, "aaaaaaaaaaaaaaaa", "t-old")])
    write_report(r, tmp_path, {RAW}, [])
    assert r.problems == [] and (tmp_path / "report.md").exists()


def test_leaked_counts_texts_with_any_raw_id() -> None:
    assert leaked({RAW, "other-id"}, ["x", f"..{RAW}..", "other-id", "fine"]) == 2
    assert leaked(set(), ["anything"]) == 0


def task_change(t: float, task_id: str, revision: str, status: str) -> dict[str, Any]:
    arn = f"arn:aws:ecs:us-east-1:123456789012:task/lab/{task_id}"
    definition = f"arn:aws:ecs:us-east-1:123456789012:task-definition/mcp:{revision}"
    return {
        "t": t,
        "kind": "ecs_event",
        "detail_type": "ECS Task State Change",
        "detail": {
            "taskArn": arn,
            "lastStatus": status,
            "taskDefinitionArn": definition,
        },
    }


def test_timeline_legend_names_each_task_old_or_replacement() -> None:
    old, new = "0ld0" * 8, "9e70" * 8
    events = [
        task_change(100.5, old, "1", "RUNNING"),
        call(105.0, 200, "aaaaaaaaaaaaaaaa", old),
        task_change(108.0, new, "2", "RUNNING"),
        call(110.0, 404, "aaaaaaaaaaaaaaaa", new),
        task_change(112.4, old, "1", "STOPPED"),
    ]
    assert task_legend(result(events)) == [
        (old, "0ld00ld0 old, rev 1, stopped 12 s"),
        (new, "9e709e70 replacement, rev 2"),
    ]


def test_dashboard_preview_draws_the_body_widgets_over_the_run(tmp_path: Path) -> None:
    from lab.alarm_replay import Datapoint
    from lab.dashboard_preview import DashboardData, widget_series
    from sessionwatch.contract import (
        DIMENSION_CAUSE,
        DIMENSION_SERVICE,
        METRIC_SESSIONS_LOST,
        NAMESPACE,
    )
    from sessionwatch.dashboards.body import sessions_lost_by_cause

    dims = ((DIMENSION_CAUSE, "deployment"), (DIMENSION_SERVICE, "mcp-server"))
    lost = [Datapoint(NAMESPACE, METRIC_SESSIONS_LOST, dims, 110.5, 1.0)] * 2
    r = result([call(105.0, 200, "aaaaaaaaaaaaaaaa", "t-old")])
    data = DashboardData(lost, [], r.timelines, "mcp-server", time_scale=20)
    from lab.dashboard_preview import lab_inputs

    widget = sessions_lost_by_cause(lab_inputs("mcp-server", []))
    # the body's own widget, its 60 s period scaled to 3 s: both losses in one bucket
    assert widget_series(widget, r, data)["mcp-server deployment"] == [(108.0, 2.0)]
    r.dashboard = data
    write_report(r, tmp_path, {RAW}, [])
    assert (tmp_path / "dashboard.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "summary.json").exists() and (tmp_path / "sns-messages.jsonl").exists()


def test_dashboard_preview_shows_the_share_holding_sessions_and_the_cap() -> None:
    """The era filter, the share's metric math and the cap widget's two expressions, previewed
    as CloudWatch would draw them (not a sum of everything under one label)."""
    from lab.alarm_replay import Datapoint
    from lab.dashboard_preview import DashboardData, lab_inputs, widget_series
    from sessionwatch import contract
    from sessionwatch.dashboards.body import (
        requests_by_client,
        session_cap,
        share_holding_sessions,
    )

    ns, svc = contract.SERVER_METRICS_NAMESPACE, (contract.RESOURCE_SERVICE_NAME, "mcp-server")
    era, client = contract.ATTR_MCP_PROTOCOL_ERA, contract.ATTR_MCP_CLIENT_NAME
    task = (contract.ATTR_ECS_TASK_ID, "9e31f228aaaa")

    def point(metric: str, value: float, *dims: tuple[str, str]) -> Datapoint:
        return Datapoint(ns, metric, tuple(sorted((svc, *dims))), 100.5, value)

    points = [
        point(contract.METRIC_REQUESTS, 3, (era, "handshake")),
        point(contract.METRIC_REQUESTS, 1, (era, "modern")),
        point(contract.METRIC_REQUESTS, 3, (era, "handshake"), (client, "editor")),
        point(contract.METRIC_REQUESTS, 1, (era, "modern"), (client, "new")),
        point(contract.METRIC_SESSION_UTILIZATION, 1.0, task),
        point(contract.METRIC_SESSION_REFUSED, 2, task),
    ]
    r = result([call(105.0, 200, "aaaaaaaaaaaaaaaa", "t-old")])
    data = DashboardData([], points, r.timelines, "mcp-server", time_scale=20)
    inputs = lab_inputs("mcp-server", [])
    assert widget_series(share_holding_sessions(inputs), r, data) == {
        "% of requests": [(99.0, 75.0)]
    }
    assert widget_series(requests_by_client(inputs), r, data) == {
        "handshake/editor": [(99.0, 3.0)],
        "modern/new": [(99.0, 1.0)],
    }
    assert widget_series(session_cap(inputs), r, data) == {
        "used 9e31f228": [(99.0, 1.0)],
        "refused 9e31f228": [(99.0, 2.0)],
    }


def test_alarm_latency_terms_and_the_aws_model() -> None:
    from types import SimpleNamespace

    from lab.alarm_latency import lines, measure
    from lab.alarm_replay import AlarmDefinition

    alarm = AlarmDefinition("A", "SessionsLost", "SessionWatch", (), "Sum", 60, 1, 1.0, "GTE")
    records = [{"event": "session_not_found", "timestamp": "1970-01-01T00:01:40.200+00:00"}]
    invocation = SimpleNamespace(time=101.5, duration=0.5, result={"counted": 1})
    timeline = [Evaluation(102.0, OK, 0, 0), Evaluation(105.0, ALARM, 1, 1)]
    m = measure(100.0, records, [invocation], [], alarm, timeline, time_scale=20)
    assert (m.delivered, m.lambda_s, m.in_alarm) == (101.0, 0.5, 105.0)
    text = "\n".join(lines(m))
    assert "Logs subscription delivery   lab    1.0 s" in text
    assert "alarm evaluation             lab    3.5 s" in text
    assert "60-s periods typically" in text and "10-s periods (high_resolution_alarms)" in text


def test_each_call_is_drawn_as_what_it_was() -> None:
    from lab.report import call_kind

    lb_503 = {**call(1.0, 503, "s", ""), "task_id": None}  # no task answered: the ALB's own
    sdk_503 = {**call(1.0, 503, "s", "t1"), "jsonrpc_code": -32603}  # a task at its cap
    assert [call_kind(c) for c in (call(1.0, 200, "s", "t1"), call(1.0, 404, "s", "t2"))] == [
        "ok",
        "lost",
    ]
    assert (call_kind(lb_503), call_kind(sdk_503)) == ("lb_refused", "sdk_refused")
    assert call_kind({**call(1.0, 200, "s", "t1"), "http_status": None}) == "no_answer"
    assert call_kind({**call(1.0, 200, "s", "t1"), "jsonrpc_code": -32602}) == "error"


def test_a_lock_out_is_a_span_per_client_and_ends_at_its_next_answer() -> None:
    from lab.report import lock_out_spans

    def refused(t: float, probe: str) -> dict[str, Any]:
        return {**call(t, 503, "s", ""), "task_id": None, "probe": probe}

    calls = [
        refused(10.0, "probe-1"),
        refused(11.0, "probe-1"),
        {**call(12.0, 404, "s", "t2"), "probe": "probe-1"},
        refused(13.0, "probe-1"),  # a second run after the answer
        refused(11.5, "probe-2"),  # still refused at the end of the run
    ]
    assert lock_out_spans(calls) == {
        "probe-1": [(10.0, 11.0), (13.0, 13.0)],
        "probe-2": [(11.5, 11.5)],
    }


def test_deployment_labels_close_in_time_get_their_own_rows() -> None:
    from lab.report import label_levels

    # rollback-on-alarm: FAILED and the rollback's IN_PROGRESS in the same second
    assert label_levels([19.0, 33.2, 33.3, 47.0], span=50.0) == [0, 0, 1, 0]
    assert label_levels([1.0, 2.0, 3.0], span=100.0) == [0, 1, 2]
    assert label_levels([], span=10.0) == []


def test_losses_and_refusals_are_the_emphasised_series() -> None:
    from lab.dashboard_preview import emphasis

    assert emphasis("mcp-server deployment") == "tab:red"
    assert emphasis("HTTP 503 from the load balancer") == "darkorange"
    assert emphasis("mcp-server refused") == "tab:purple"  # session_refused, when it exists
    assert emphasis("HealthyHostCount") is None and emphasis("mcp-server") is None


def test_the_refusal_row_sits_in_the_side_by_side(tmp_path: Path) -> None:
    lb_503 = [
        {**call(100.0 + i, 503, "aaaaaaaaaaaaaaaa", ""), "task_id": None} for i in range(1, 4)
    ]
    r = result([call(100.5, 200, "aaaaaaaaaaaaaaaa", "t-old"), *lb_503])
    r.reports[0]["facts"]["lock_out"] = {"refused": 3, "sentence": "3 request(s) from clients"}
    r.outcome = replace(r.outcome, lb_503=3, longest_lock_out_s=2.0)
    text = write_report(r, tmp_path, {RAW}, [])
    assert (
        "load balancer 503: 3 (HTTPCode_ELB_503_Count); 1 client(s) locked out up to 2.0 s" in text
    )
    assert "refused by the load balancer: 3 request(s) from clients" in text
