"""The SessionWatch CloudWatch dashboard as a pure function: typed inputs in, dashboard body out.

The CDK construct renders this body into a `AWS::CloudWatch::Dashboard`; teams without CDK
export the same body with `python -m sessionwatch.dashboards`. It puts what MCP clients saw
(sessions lost, by cause and by task) beside what the infrastructure shows (healthy hosts, no
5xx), because that contrast is the whole point: during a rolling deployment the second row stays
green while the first does not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sessionwatch import contract
from sessionwatch.contract import SERVER_METRICS_NAMESPACE

ALB_NAMESPACE = "AWS/ApplicationELB"
PERIOD_SECONDS = 60
GRID_WIDTH = 24

Widget = dict[str, Any]


@dataclass(frozen=True)
class DashboardInputs:
    """What the dashboard needs to know about one deployment of SessionWatch.

    `services` are ECS service names (the detectors' `ServiceName` dimension);
    `server_service_name` is the OTel `service.name` the MCP server reports its metrics under;
    None (the default) means each ECS service's own name, as README's snippets name both.
    The ALB names are the CloudWatch dimension values (`app/...`, `targetgroup/...`).
    """

    region: str
    services: tuple[str, ...]
    server_service_name: str | None = None
    load_balancer_full_name: str | None = None
    target_group_full_name: str | None = None
    alarm_arns: tuple[str, ...] = ()
    verdict_log_groups: tuple[str, ...] = ()
    server_metrics_namespace: str = SERVER_METRICS_NAMESPACE


def _quote(value: str) -> str:
    """Double-quote a SEARCH term: our namespace and dimension names contain `/` and `.`."""
    return '"' + value.replace('"', '\\"') + '"'


def _search(
    inputs: DashboardInputs, metric: str, dims: tuple[str, ...], stat: str, **where: str
) -> str:
    """A SEARCH expression over the server's per-task or per-version series of one service.

    Task ids and protocol versions are not known when the dashboard is built, so the series are
    discovered at view time; the schema pins the exact dimension set awsemf writes. ``where``
    narrows it to dimension values (e.g. one protocol era).
    """
    schema = ",".join(_quote(part) for part in (inputs.server_metrics_namespace, *dims))
    # Several services: one SEARCH with OR'd terms (SearchTerm accepts Boolean operators and
    # parentheses: CloudWatch User Guide, "CloudWatch search expression syntax").
    names = server_service_names(inputs)
    terms = [f"{_quote(contract.RESOURCE_SERVICE_NAME)}={_quote(name)}" for name in names]
    service = terms[0] if len(terms) == 1 else "(" + " OR ".join(terms) + ")"
    service = " ".join(
        [service, *(f"{_quote(key)}={_quote(value)}" for key, value in where.items())]
    )
    query = f"{{{schema}}} MetricName={_quote(metric)} {service}"
    return f"SEARCH('{query}', '{stat}', {PERIOD_SECONDS})"


def server_service_names(inputs: DashboardInputs) -> tuple[str, ...]:
    """The OTel service names the server widgets search: the given one, or each ECS service's."""
    if inputs.server_service_name is not None:
        return (inputs.server_service_name,)
    return tuple(dict.fromkeys(inputs.services))


def _metric_widget(
    inputs: DashboardInputs, title: str, metrics: list[list[Any]], stat: str, **extra: Any
) -> Widget:
    properties: dict[str, Any] = {
        "title": title,
        "region": inputs.region,
        "view": "timeSeries",
        "stacked": False,
        "period": PERIOD_SECONDS,
        "stat": stat,
        "metrics": metrics,
    }
    properties.update(extra)
    return {"type": "metric", "properties": properties}


def _text(markdown: str) -> Widget:
    return {"type": "text", "properties": {"markdown": markdown}}


def _sessionwatch_metric(metric: str, service: str, label: str, **dims: str) -> list[Any]:
    row: list[Any] = [contract.NAMESPACE, metric, contract.DIMENSION_SERVICE, service]
    for key, value in dims.items():
        row += [key, value]
    row.append({"label": label})
    return row


def sessions_lost_by_cause(inputs: DashboardInputs) -> Widget:
    """One line per service and cause: the verdicts of docs/architecture.md §5."""
    metrics = [
        _sessionwatch_metric(
            contract.METRIC_SESSIONS_LOST,
            service,
            f"{service} {cause.value}",
            **{contract.DIMENSION_CAUSE: cause.value},
        )
        for service in inputs.services
        for cause in contract.Cause
    ]
    return _metric_widget(inputs, "Sessions lost, by cause", metrics, "Sum", stacked=True)


def infrastructure_view(inputs: DashboardInputs) -> Widget:
    """What the stock dashboards show: healthy targets, target 4xx/5xx, non-sticky requests."""
    lb = inputs.load_balancer_full_name
    if lb is None:
        return _text(
            "### What the infrastructure shows\nNo load balancer was configured for this "
            "dashboard: pass the ALB and target group full names to see its metrics here."
        )
    lb_dims: list[Any] = ["LoadBalancer", lb]
    tg = inputs.target_group_full_name
    tg_dims: list[Any] = ["TargetGroup", tg, *lb_dims] if tg is not None else lb_dims
    metrics: list[list[Any]] = []
    if tg is not None:
        # HealthyHostCount exists only per target group.
        metrics.append(
            [ALB_NAMESPACE, "HealthyHostCount", *tg_dims, {"stat": "Minimum", "yAxis": "right"}]
        )
    metrics += [
        [ALB_NAMESPACE, "HTTPCode_Target_4XX_Count", *tg_dims, {"stat": "Sum"}],
        [ALB_NAMESPACE, "HTTPCode_Target_5XX_Count", *tg_dims, {"stat": "Sum"}],
        [ALB_NAMESPACE, "NonStickyRequestCount", *lb_dims, {"stat": "Sum"}],
    ]
    return _metric_widget(inputs, "What the infrastructure shows (ALB)", metrics, "Sum")


def refused_by_load_balancer(inputs: DashboardInputs) -> Widget | None:
    """The ALB's own 503s: what clients locked out by a blue/green clean-up get.

    No request reaches a task, so no server metric or log line shows them; ALB publishes
    HTTPCode_ELB_503_Count per LoadBalancer (and per AvailabilityZone), not per target group.
    HealthyHostCount (per TargetGroup, LoadBalancer) of the configured group sits beside it.
    """
    lb = inputs.load_balancer_full_name
    if lb is None:
        return None
    metrics: list[list[Any]] = [
        [
            ALB_NAMESPACE,
            "HTTPCode_ELB_503_Count",
            "LoadBalancer",
            lb,
            {"stat": "Sum", "label": "HTTP 503 from the load balancer", "color": "#d62728"},
        ]
    ]
    if inputs.target_group_full_name is not None:
        metrics.append(
            [
                ALB_NAMESPACE,
                "HealthyHostCount",
                "TargetGroup",
                inputs.target_group_full_name,
                "LoadBalancer",
                lb,
                {"stat": "Minimum", "yAxis": "right"},
            ]
        )
    return _metric_widget(
        inputs, "Refused by the load balancer (no task reached, no log line)", metrics, "Sum"
    )


def _per_service_search(
    inputs: DashboardInputs, title: str, metric: str, dims: tuple[str, ...], stat: str
) -> Widget:
    expression = {"expression": _search(inputs, metric, dims, stat), "id": "e1"}
    return _metric_widget(inputs, title, [[expression]], stat)


def session_not_found_by_task(inputs: DashboardInputs) -> Widget:
    return _per_service_search(
        inputs,
        "Session not found (HTTP 404, -32600), by task",
        contract.METRIC_SESSION_NOT_FOUND,
        (contract.RESOURCE_SERVICE_NAME, contract.ATTR_ECS_TASK_ID),
        "Sum",
    )


def active_sessions_by_task(inputs: DashboardInputs) -> Widget:
    return _per_service_search(
        inputs,
        "Active sessions, by task",
        contract.METRIC_SESSION_ACTIVE,
        (contract.RESOURCE_SERVICE_NAME, contract.ATTR_ECS_TASK_ID),
        "Maximum",
    )


def requests_by_protocol_version(inputs: DashboardInputs) -> Widget:
    """Requests per negotiated protocol: only handshake-era protocols hold sessions at all."""
    return _per_service_search(
        inputs,
        "Requests, by MCP protocol version",
        contract.METRIC_OPERATION_DURATION,
        (contract.RESOURCE_SERVICE_NAME, contract.ATTR_MCP_PROTOCOL_VERSION),
        "SampleCount",
    )


_ERA_DIMS = (contract.RESOURCE_SERVICE_NAME, contract.ATTR_MCP_PROTOCOL_ERA)


def share_holding_sessions(inputs: DashboardInputs) -> Widget:
    """The share of requests served in the handshake era: the traffic going stateless affects."""
    held = _search(
        inputs,
        contract.METRIC_REQUESTS,
        _ERA_DIMS,
        "Sum",
        **{contract.ATTR_MCP_PROTOCOL_ERA: contract.ERA_HANDSHAKE},
    )
    every = _search(inputs, contract.METRIC_REQUESTS, _ERA_DIMS, "Sum")
    metrics: list[list[Any]] = [
        [{"expression": held, "id": "held", "visible": False}],
        [{"expression": every, "id": "every", "visible": False}],
        [{"expression": "100 * SUM(held) / SUM(every)", "id": "share", "label": "% of requests"}],
    ]
    return _metric_widget(
        inputs,
        "Requests that still hold sessions (handshake era), %",
        metrics,
        "Sum",
        yAxis={"left": {"min": 0, "max": 100}},
    )


def requests_by_client(inputs: DashboardInputs) -> Widget:
    """Who still holds sessions: requests per client name (clientInfo) and era."""
    return _per_service_search(
        inputs,
        "Requests, by client and protocol era (handshake = holds a session)",
        contract.METRIC_REQUESTS,
        (*_ERA_DIMS, contract.ATTR_MCP_CLIENT_NAME),
        "Sum",
    )


def session_cap(inputs: DashboardInputs, threshold: float = 0.8) -> Widget:
    """Each task's open share of the SDK cap, and the clients refused once it is reached."""
    task_dims = (contract.RESOURCE_SERVICE_NAME, contract.ATTR_ECS_TASK_ID)
    used = _search(inputs, contract.METRIC_SESSION_UTILIZATION, task_dims, "Maximum")
    refused = _search(inputs, contract.METRIC_SESSION_REFUSED, task_dims, "Sum")
    metrics: list[list[Any]] = [
        [{"expression": used, "id": "used"}],
        [{"expression": refused, "id": "refused", "yAxis": "right"}],
    ]
    return _metric_widget(
        inputs,
        "Session cap used, by task (left, 1 = full); sessions refused (right)",
        metrics,
        "Maximum",
        yAxis={"left": {"min": 0, "max": 1}},
        annotations={
            "horizontal": [
                {"label": "alarm", "value": threshold},
                {"label": "new clients refused", "value": 1, "color": "#d62728"},
            ]
        },
    )


def sessions_at_risk(inputs: DashboardInputs) -> Widget:
    metrics = [
        _sessionwatch_metric(contract.METRIC_SESSIONS_AT_RISK, service, service)
        for service in inputs.services
    ]
    return _metric_widget(
        inputs, "Sessions at risk (open on tasks being replaced)", metrics, "Maximum"
    )


def deployments_in_progress(inputs: DashboardInputs) -> Widget:
    metrics = [
        _sessionwatch_metric(contract.METRIC_DEPLOYMENTS_IN_PROGRESS, service, service)
        for service in inputs.services
    ]
    return _metric_widget(inputs, "Deployments in progress", metrics, "Maximum")


def alarm_status(inputs: DashboardInputs) -> Widget:
    if not inputs.alarm_arns:
        return _text("### Alarm status\nNo alarms were passed to this dashboard.")
    return {
        "type": "alarm",
        "properties": {"title": "SessionWatch alarms", "alarms": list(inputs.alarm_arns)},
    }


# The detectors (detectors/handlers/runtime.py, from the session-events handler and from the
# reporter for verdicts decided late) log one Powertools JSON line per final verdict with this
# message and these fields; `session` is a fingerprint.
VERDICT_LOG_FIELDS = (
    "ecs_service",
    "cause",
    "session",
    "origin_task",
    "serving_task",
    "deployment_id",
    "basis",
)
LOST_SESSIONS_QUERY = (
    f"fields @timestamp, {', '.join(VERDICT_LOG_FIELDS)}"
    f' | filter message = "{contract.VERDICT_LOG_MESSAGE}"'
    " | sort @timestamp desc"
    " | limit 50"
)


def latest_lost_sessions(inputs: DashboardInputs) -> Widget:
    """The detectors log one structured line per verdict; show the newest."""
    if not inputs.verdict_log_groups:
        return _text("### Latest lost sessions\nNo detector log group was passed.")
    sources = " | ".join(f"SOURCE '{group}'" for group in inputs.verdict_log_groups)
    return {
        "type": "log",
        "properties": {
            "title": "Latest lost sessions, with their cause",
            "region": inputs.region,
            "view": "table",
            "query": f"{sources} | {LOST_SESSIONS_QUERY}",
        },
    }


def _layout(rows: list[tuple[int, list[Widget]]]) -> list[Widget]:
    """Place rows of equal-width widgets on the 24-column grid, top to bottom."""
    placed: list[Widget] = []
    y = 0
    for height, widgets in rows:
        width = GRID_WIDTH // len(widgets)
        for index, widget in enumerate(widgets):
            placed.append({**widget, "x": index * width, "y": y, "width": width, "height": height})
        y += height
    return placed


def dashboard_body(inputs: DashboardInputs) -> dict[str, Any]:
    """The dashboard body (the `DashboardBody` JSON of the CloudWatch API) for these inputs."""
    if not inputs.services:
        raise ValueError("a SessionWatch dashboard needs at least one ECS service name")
    header = _text(
        "## SessionWatch: "
        + ", ".join(inputs.services)
        + "\nLeft: what MCP clients saw. Right: what the load balancer shows. During a rolling "
        "deployment the right side stays green while sessions are lost on the left."
    )
    refused = refused_by_load_balancer(inputs)
    rows = [
        (2, [header]),
        (
            6,
            [
                sessions_lost_by_cause(inputs),
                *([refused] if refused is not None else []),
                infrastructure_view(inputs),
            ],
        ),
        (
            6,
            [
                session_not_found_by_task(inputs),
                active_sessions_by_task(inputs),
                requests_by_protocol_version(inputs),
            ],
        ),
        (
            6,
            [share_holding_sessions(inputs), requests_by_client(inputs), session_cap(inputs)],
        ),
        (6, [sessions_at_risk(inputs), deployments_in_progress(inputs), alarm_status(inputs)]),
        (8, [latest_lost_sessions(inputs)]),
    ]
    return {"start": "-PT3H", "periodOverride": "inherit", "widgets": _layout(rows)}
