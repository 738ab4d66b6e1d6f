"""The dashboard body: a valid CloudWatch dashboard naming only metrics that are really emitted."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from lab.template import resolve
from sessionwatch import contract
from sessionwatch.dashboards import body
from sessionwatch.dashboards.__main__ import main
from sessionwatch.dashboards.body import DashboardInputs, dashboard_body
from sessionwatch.infra import adot
from tests.infra.conftest import ACCOUNT, PSEUDO_REFS, REGION, Synth, logical_id

# The ALB's own metrics shown beside ours (AWS/ApplicationELB, per AWS's ELB documentation).
ALB_METRICS = {
    "HealthyHostCount",
    "HTTPCode_ELB_503_Count",
    "HTTPCode_Target_4XX_Count",
    "HTTPCode_Target_5XX_Count",
    "NonStickyRequestCount",
}
ALB_DIMENSIONS = {"LoadBalancer", "TargetGroup"}
WIDGET_TYPES = {"metric", "text", "log", "alarm"}
SEARCH = re.compile(r"^SEARCH\('\{(?P<schema>[^}]*)\} (?P<terms>.*)', '(?P<stat>\w+)', (\d+)\)$")

FULL = DashboardInputs(
    region="eu-west-1",
    services=("mcp-service", "mcp-other"),
    server_service_name="mcp-server",
    load_balancer_full_name="app/demo/0123456789abcdef",
    target_group_full_name="targetgroup/demo/fedcba9876543210",
    alarm_arns=("arn:aws:cloudwatch:eu-west-1:111122223333:alarm:x",),
    verdict_log_groups=("/aws/lambda/session-events",),
)
BARE = DashboardInputs(region="eu-west-1", services=("mcp-service",), server_service_name="s")


def _split_search(expression: str) -> tuple[list[str], str, dict[str, str], str]:
    """(schema, metric name, dimension filters, stat) of one SEARCH expression."""
    match = SEARCH.match(expression)
    assert match, expression
    schema = json.loads("[" + match["schema"] + "]")
    pairs = dict(re.findall(r'"([^"]+)"="([^"]+)"', match["terms"]))
    metric = re.search(r'MetricName="([^"]+)"', match["terms"])
    assert metric, expression
    return schema, metric[1], pairs, match["stat"]


def named_metrics(dashboard: dict[str, Any]) -> list[tuple[str, str, frozenset[str]]]:
    """(namespace, metric name, dimension names) of every metric any widget names."""
    found = []
    for widget in dashboard["widgets"]:
        if widget["type"] != "metric":
            continue
        rows = widget["properties"]["metrics"]
        ids = {row[0]["id"] for row in rows if isinstance(row[0], dict)}
        for row in rows:
            if isinstance(row[0], dict) and not row[0]["expression"].startswith("SEARCH("):
                # Metric math over the widget's other series: it may name only those.
                assert set(re.findall(r"\b[a-z][a-zA-Z0-9_]*\b(?!\()", row[0]["expression"])) <= ids
                continue
            if isinstance(row[0], dict):
                schema, metric, _, _ = _split_search(row[0]["expression"])
                found.append((schema[0], metric, frozenset(schema[1:])))
            else:
                values = [v for v in row if not isinstance(v, dict)]
                namespace, metric, dims = values[0], values[1], values[2:]
                found.append((namespace, metric, frozenset(dims[0::2])))
    return found


def assert_valid_dashboard(dashboard: dict[str, Any]) -> None:
    """The shape CloudWatch's PutDashboard accepts for the widget kinds we use."""
    widgets = dashboard["widgets"]
    assert widgets
    occupied: set[tuple[int, int]] = set()
    for widget in widgets:
        assert widget["type"] in WIDGET_TYPES
        for key in ("x", "y", "width", "height"):
            assert isinstance(widget[key], int) and widget[key] >= 0
        assert widget["width"] >= 1 and widget["x"] + widget["width"] <= 24
        cells = {
            (x, y)
            for x in range(widget["x"], widget["x"] + widget["width"])
            for y in range(widget["y"], widget["y"] + widget["height"])
        }
        assert not cells & occupied, f"overlap at {widget}"
        occupied |= cells
        props = widget["properties"]
        if widget["type"] == "metric":
            assert isinstance(props["region"], str) and props["region"]
            assert props["period"] % 60 == 0
            assert props["view"] in {"timeSeries", "singleValue", "gauge", "bar", "pie"}
            for row in props["metrics"]:
                assert isinstance(row, list) and row
                if isinstance(row[0], dict):
                    assert len(row) == 1 and {"expression", "id"} <= set(row[0])
                    assert re.fullmatch(r"[a-z][a-zA-Z0-9_]*", row[0]["id"])
                    continue
                values = [v for v in row if not isinstance(v, dict)]
                options = [v for v in row if isinstance(v, dict)]
                assert len(options) <= 1 and (not options or row[-1] is options[0])
                assert all(isinstance(v, str) for v in values)
                assert len(values) >= 2 and len(values) % 2 == 0  # ns, name, then dim pairs
        elif widget["type"] == "log":
            assert props["query"].startswith("SOURCE '")
            assert props["region"] and props["view"] == "table"
        elif widget["type"] == "alarm":
            assert props["alarms"] and all(a.startswith("arn:") for a in props["alarms"])
        else:
            assert props["markdown"]


def assert_only_emitted_metrics(dashboard: dict[str, Any]) -> None:
    server_dimension_sets = {frozenset(dims) for dims in adot.DIMENSION_SETS}
    for namespace, metric, dims in named_metrics(dashboard):
        if namespace == contract.NAMESPACE:
            assert metric in contract.DETECTOR_METRICS
            assert dims <= {contract.DIMENSION_SERVICE, contract.DIMENSION_CAUSE}
        elif namespace == adot.SERVER_METRICS_NAMESPACE:
            assert metric in contract.SERVER_METRICS
            assert dims in server_dimension_sets, (metric, dims)
        else:
            assert namespace == body.ALB_NAMESPACE
            assert metric in ALB_METRICS and dims <= ALB_DIMENSIONS


def test_load_balancer_refusals_are_read_per_load_balancer() -> None:
    """ALB publishes HTTPCode_ELB_503_Count per LoadBalancer (and AvailabilityZone), never per
    TargetGroup: a widget asking for it per target group would draw nothing, ever."""
    dashboard = body.dashboard_body(FULL)
    refused = [
        dims for ns, metric, dims in named_metrics(dashboard) if metric == "HTTPCode_ELB_503_Count"
    ]
    assert refused == [{"LoadBalancer"}]
    assert not [
        m for _, m, _ in named_metrics(body.dashboard_body(BARE)) if m == "HTTPCode_ELB_503_Count"
    ]


@pytest.mark.parametrize("inputs", [FULL, BARE], ids=["full", "bare"])
def test_body_is_a_valid_dashboard_of_emitted_metrics(inputs: DashboardInputs) -> None:
    dashboard = dashboard_body(inputs)
    assert_valid_dashboard(dashboard)
    assert_only_emitted_metrics(dashboard)
    json.dumps(dashboard)  # plain JSON, nothing else


def test_widgets_of_the_issue_are_all_there() -> None:
    dashboard = dashboard_body(FULL)
    named = {(ns, metric) for ns, metric, _ in named_metrics(dashboard)}
    assert (contract.NAMESPACE, contract.METRIC_SESSIONS_LOST) in named
    assert (contract.NAMESPACE, contract.METRIC_SESSIONS_AT_RISK) in named
    assert (contract.NAMESPACE, contract.METRIC_DEPLOYMENTS_IN_PROGRESS) in named
    for metric in (
        contract.METRIC_SESSION_NOT_FOUND,
        contract.METRIC_SESSION_ACTIVE,
        contract.METRIC_OPERATION_DURATION,
        contract.METRIC_REQUESTS,
        contract.METRIC_SESSION_REFUSED,
        contract.METRIC_SESSION_UTILIZATION,
    ):
        assert (adot.SERVER_METRICS_NAMESPACE, metric) in named
    assert {(body.ALB_NAMESPACE, m) for m in ALB_METRICS} <= named
    types = [w["type"] for w in dashboard["widgets"]]
    assert "alarm" in types and "log" in types


def test_sessions_lost_has_every_cause_of_every_service() -> None:
    lost = body.sessions_lost_by_cause(FULL)["properties"]["metrics"]
    seen = {(row[3], row[5]) for row in lost}
    assert seen == {(s, c.value) for s in FULL.services for c in contract.Cause}


def test_per_task_and_per_version_searches_filter_the_service() -> None:
    for widget, dim in (
        (body.session_not_found_by_task(FULL), contract.ATTR_ECS_TASK_ID),
        (body.active_sessions_by_task(FULL), contract.ATTR_ECS_TASK_ID),
        (body.requests_by_protocol_version(FULL), contract.ATTR_MCP_PROTOCOL_VERSION),
    ):
        (row,) = widget["properties"]["metrics"]
        schema, _, filters, _ = _split_search(row[0]["expression"])
        assert schema[1:] == [contract.RESOURCE_SERVICE_NAME, dim]
        assert filters == {contract.RESOURCE_SERVICE_NAME: "mcp-server"}


def test_share_holding_sessions_divides_handshake_requests_by_all() -> None:
    rows = body.share_holding_sessions(FULL)["properties"]["metrics"]
    by_id = {row[0]["id"]: row[0] for row in rows}
    assert by_id["share"]["expression"] == "100 * SUM(held) / SUM(every)"
    assert by_id["held"]["visible"] is False and by_id["every"]["visible"] is False
    _, metric, held, _ = _split_search(by_id["held"]["expression"])
    _, metric_all, every, _ = _split_search(by_id["every"]["expression"])
    assert metric == metric_all == contract.METRIC_REQUESTS
    assert held == {
        contract.RESOURCE_SERVICE_NAME: "mcp-server",
        contract.ATTR_MCP_PROTOCOL_ERA: contract.ERA_HANDSHAKE,
    }
    assert every == {contract.RESOURCE_SERVICE_NAME: "mcp-server"}


def test_requests_by_client_and_session_cap_read_emitted_series() -> None:
    (row,) = body.requests_by_client(FULL)["properties"]["metrics"]
    schema, metric, _, stat = _split_search(row[0]["expression"])
    assert metric == contract.METRIC_REQUESTS and stat == "Sum"
    assert contract.ATTR_MCP_CLIENT_NAME in schema and contract.ATTR_MCP_PROTOCOL_ERA in schema
    cap = body.session_cap(FULL)["properties"]
    metrics = {_split_search(r[0]["expression"])[1] for r in cap["metrics"]}
    assert metrics == {contract.METRIC_SESSION_UTILIZATION, contract.METRIC_SESSION_REFUSED}
    assert {a["value"] for a in cap["annotations"]["horizontal"]} == {0.8, 1}


def test_infrastructure_widget_sits_beside_sessions_lost() -> None:
    widgets = dashboard_body(FULL)["widgets"]
    lost = next(w for w in widgets if w["properties"].get("title", "").startswith("Sessions lost"))
    infra = next(w for w in widgets if "infrastructure" in w["properties"].get("title", ""))
    # between them, what clients got from the load balancer itself: lost | refused | all green
    refused = next(w for w in widgets if "Refused by the load balancer" in str(w["properties"]))
    assert lost["y"] == refused["y"] == infra["y"]
    assert lost["x"] + lost["width"] == refused["x"]
    assert refused["x"] + refused["width"] == infra["x"]
    bare = dashboard_body(BARE)["widgets"]
    lost = next(w for w in bare if w["properties"].get("title", "").startswith("Sessions lost"))
    infra = next(w for w in bare if "What the infrastructure shows" in str(w["properties"]))
    assert lost["x"] + lost["width"] == infra["x"]  # no load balancer: no refusal widget


def test_no_services_is_refused() -> None:
    with pytest.raises(ValueError):
        dashboard_body(DashboardInputs(region="r", services=(), server_service_name="s"))


def test_lost_sessions_query_reads_what_the_detectors_log() -> None:
    """The Logs Insights table filters the detectors' verdict line; its message and field names
    are the detectors' own (drift here would silently empty the table)."""
    handlers = Path(__file__).resolve().parents[2] / "detectors" / "handlers"
    (source,) = [
        text
        for text in (path.read_text() for path in handlers.glob("*.py"))
        if "contract.VERDICT_LOG_MESSAGE" in text
    ]
    for field in body.VERDICT_LOG_FIELDS:
        assert f'"{field}":' in source, field


def test_cli_prints_the_same_body(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--service", "mcp-service", "--service", "mcp-other", "--region", "eu-west-1"]
    argv += ["--server-service-name", "mcp-server"]
    argv += ["--load-balancer", FULL.load_balancer_full_name or ""]
    argv += ["--target-group", FULL.target_group_full_name or ""]
    argv += ["--alarm-arn", FULL.alarm_arns[0], "--log-group", FULL.verdict_log_groups[0]]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out) == dashboard_body(FULL)


def test_cli_defaults_to_the_demo_service(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make dashboard` runs it without arguments: the demo's service, the AWS_REGION's metrics,
    and the server metrics under the service's own name (one name everywhere)."""
    monkeypatch.setenv("AWS_REGION", "ap-southeast-2")
    assert main([]) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = DashboardInputs(
        region="ap-southeast-2", services=("mcp-service",), server_service_name="mcp-service"
    )
    assert printed == dashboard_body(expected)


def test_server_widgets_search_each_services_own_name_unless_one_is_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """README's snippets instrument `service="orders-mcp"` and watch ECS service `orders-mcp`:
    as written, the server widgets find those metrics with no extra flag."""
    assert main(["--service", "orders-mcp", "--service", "billing-mcp"]) == 0
    text = capsys.readouterr().out
    assert '\\"service.name\\"=\\"orders-mcp\\" OR' in text
    assert '\\"service.name\\"=\\"billing-mcp\\")' in text
    assert "mcp-server" not in text
    assert main(["--service", "orders-mcp", "--server-service-name", "orders"]) == 0
    text = capsys.readouterr().out
    assert '\\"service.name\\"=\\"orders\\"' in text and 'orders-mcp\\"' not in text


def test_help_says_the_region_and_service_name_defaults(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "us-east-1" in text and "each --service's own name" in text


@pytest.mark.parametrize("stack", ["addon", "demo"])
def test_synthesized_dashboard_is_the_same_valid_body(stack: str, synthesized: Synth) -> None:
    template: Template = getattr(synthesized, f"{stack}_template")
    sw = synthesized.sessionwatch(stack)
    (dashboard,) = template.find_resources("AWS::CloudWatch::Dashboard").values()
    alarm_arns = {
        f"{logical}.Arn": f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{logical}"
        for logical in template.find_resources("AWS::CloudWatch::Alarm")
    }
    # The session-events and reporter log groups: both log verdicts.
    groups = {
        logical_id(detector.log_group): f"/aws/lambda/{name}"
        for name, detector in (("SessionEvents", sw.session_events), ("Reporter", sw.reporter))
    }
    refs = {**PSEUDO_REFS, **alarm_arns, **groups}
    rendered = json.loads(resolve(dashboard["Properties"]["DashboardBody"], refs))
    assert_valid_dashboard(rendered)
    assert_only_emitted_metrics(rendered)
    alarms = next(w for w in rendered["widgets"] if w["type"] == "alarm")
    listed = alarms["properties"]["alarms"]
    assert sorted(listed) == sorted(alarm_arns.values())  # every alarm of the stack, each once
    log = next(w for w in rendered["widgets"] if w["type"] == "log")
    assert log["properties"]["region"] == REGION
    sources = set(re.findall(r"SOURCE '([^']+)'", log["properties"]["query"]))
    assert sources == set(groups.values())
    # The demo knows its ALB: the infrastructure widget shows real ALB metrics there.
    has_alb = any(ns == body.ALB_NAMESPACE for ns, _, _ in named_metrics(rendered))
    assert has_alb is (stack == "demo")


def test_dashboards_never_import_infra() -> None:
    """One direction only: infra builds the dashboard from `dashboards.body`; the dashboard body
    (also exported by `python -m sessionwatch.dashboards` without CDK) knows nothing of infra."""
    import ast

    folder = Path(__file__).resolve().parents[2] / "dashboards"
    for path in folder.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(("sessionwatch.infra", "infra", "aws_cdk")), (
                    f"{path.name} imports {name}"
                )
