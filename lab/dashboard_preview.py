"""The CloudWatch dashboard, previewed over a lab run: ``lab-report/dashboard.png``.

The widgets are the real ones: ``dashboards.body.dashboard_body`` builds the same body the CDK
construct deploys, and this module draws each widget where the body places it on the 24-column
grid, with the lab's datapoints for its metrics:

- SessionWatch's own metrics (``SessionsLost`` by cause, at risk, in progress): the detectors'
  EMF datapoints, matched by namespace, name and exact dimensions, as CloudWatch matches them;
- the server's per-task SEARCH widgets: the ADOT-mapped server datapoints, grouped by the
  dimension the SEARCH leaves open (the task id);
- the ALB widgets: ``HTTPCode_ELB_503_Count`` (and any metric ``lab.alb_metrics`` publishes
  with the widget's dimensions) as published from HAProxy's counters; otherwise the run's own
  records: healthy targets from the task registrations, target 4xx/5xx from the answers a task
  sent (HAProxy reports no NonStickyRequestCount: drawn as not measured);
- series that count losses or refusals (``emphasis``) are stacked bars in a strong colour and
  their widget's title turns red: the eye finds a single loss first;
- the alarm widget: the replayed alarm states; the log widget: the latest verdicts.

Periods are the body's (60 s) divided by the lab's time scale, so the picture shows in a minute
what CloudWatch shows over the run's scaled-up length.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.alarm_replay import ALARM, Datapoint, Evaluation
from sessionwatch.contract import NAMESPACE
from sessionwatch.dashboards.body import ALB_NAMESPACE, GRID_WIDTH, DashboardInputs, dashboard_body

Series = dict[str, list[tuple[float, float]]]  # label -> (period start, value)


@dataclass
class DashboardData:
    detector_points: list[Datapoint]
    server_points: list[Datapoint]
    timelines: dict[str, list[Evaluation]]
    service: str
    time_scale: float = 20.0
    alb_points: list[Datapoint] = field(default_factory=list)  # lab.alb_metrics, as published


def lab_inputs(service: str, alarms: Sequence[str]) -> DashboardInputs:
    """The dashboard's inputs for the lab's service and stand-in ALB."""
    return DashboardInputs(
        region="us-east-1",
        services=(service,),
        server_service_name=service,
        load_balancer_full_name="app/sessionwatch-lab/haproxy",
        target_group_full_name="targetgroup/sessionwatch-lab/targets",
        alarm_arns=tuple(alarms),
        verdict_log_groups=("/aws/lambda/sessionwatch-lab-session_events",),
    )


def _bucket(
    points: Sequence[tuple[float, float]], period: float, stat: str
) -> list[tuple[float, float]]:
    buckets: dict[int, list[float]] = defaultdict(list)
    for t, v in points:
        buckets[math.floor(t / period)].append(v)
    pick = {"Maximum": max, "Minimum": min}.get(stat, sum)
    return [(i * period, float(pick(vs))) for i, vs in sorted(buckets.items())]


def _sessionwatch_series(row: list[Any], data: DashboardData, period: float, stat: str) -> Series:
    namespace, metric, *rest = row
    options = rest.pop() if rest and isinstance(rest[-1], dict) else {}
    dims = dict(zip(rest[::2], rest[1::2], strict=True))
    points = [
        (p.timestamp, p.value)
        for p in data.detector_points
        if p.namespace == namespace and p.metric_name == metric and dict(p.dimensions) == dims
    ]
    return {str(options.get("label", metric)): _bucket(points, period, stat)} if points else {}


def _search_series(expression: str, data: DashboardData, period: float, stat: str) -> Series:
    metric = re.search(r'MetricName="([^"]+)"', expression)
    schema = re.search(r"\{([^}]*)\}", expression)
    if metric is None or schema is None:
        return {}
    namespace, *schema_dims = re.findall(r'"((?:[^"\\]|\\.)*)"', schema.group(1))
    # The terms after the schema: "dimension"="value" filters (service.name, an era, ...).
    where = dict(re.findall(r'"([^"]+)"="([^"]+)"', expression[schema.end() :]))
    open_dims = [d for d in schema_dims if d not in where]
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for p in data.server_points:
        # SEARCH's schema pins the exact dimension set, as CloudWatch matches it
        same_dims = {k for k, _ in p.dimensions} == set(schema_dims)
        if p.namespace == namespace and p.metric_name == metric.group(1) and same_dims:
            dims = dict(p.dimensions)
            if any(dims.get(k) != v for k, v in where.items()):
                continue
            # One series per value of the dimensions the SEARCH leaves open (task ids short).
            label = "/".join(dims[d][:8] if "task" in d else dims[d] for d in open_dims)
            series[label or p.metric_name].append((p.timestamp, p.value))
    return {k: _bucket(v, period, stat) for k, v in series.items()}


# The one metric-math form the dashboard uses (the share of requests holding sessions).
_RATIO = re.compile(r"^(\d+(?:\.\d+)?) \* SUM\((\w+)\) / SUM\((\w+)\)$")


def _ratio_series(expression: str, by_id: dict[str, Series]) -> list[tuple[float, float]] | None:
    """``K * SUM(a) / SUM(b)`` per period over the rows ``a`` and ``b`` (None: another form)."""
    found = _RATIO.match(expression)
    if found is None:
        return None
    totals: list[dict[float, float]] = []
    for ident in (found[2], found[3]):
        summed: dict[float, float] = defaultdict(float)
        for points in by_id.get(ident, {}).values():
            for t, v in points:
                summed[t] += v
        totals.append(summed)
    top, bottom = totals
    scale = float(found[1])
    return [(t, scale * top.get(t, 0.0) / b) for t, b in sorted(bottom.items()) if b]


def _alb_series(row: list[Any], r: Any, period: float, data: DashboardData) -> Series:
    """The stand-in ALB's metrics: as published from HAProxy's counters where the lab publishes
    that metric with these dimensions (lab.alb_metrics), else from the run's own records."""
    metric = row[1]
    rest = list(row[2:])
    options = rest.pop() if rest and isinstance(rest[-1], dict) else {}
    dims = dict(zip(rest[::2], rest[1::2], strict=True))
    published = [
        (p.timestamp, p.value)
        for p in data.alb_points
        if p.metric_name == metric and dict(p.dimensions) == dims
    ]
    label = str(options.get("label", metric))
    if metric == "HTTPCode_ELB_503_Count":  # reported only when non-zero: no points, no 503
        return {label: _bucket(published, period, "Sum")}
    if published:
        return {label: _bucket(published, period, str(options.get("stat", "Sum")))}
    calls = [e for e in r.events if e["kind"] == "call" and e.get("http_status")]
    if metric == "HealthyHostCount":
        healthy: set[str] = set()
        steps = []
        for e in r.events:
            detail = e.get("detail") or {}
            if e["kind"] != "ecs_event" or "taskArn" not in detail:
                continue
            task = str(detail["taskArn"])
            if detail.get("desiredStatus") == "STOPPED":
                healthy.discard(task)
            elif detail.get("lastStatus") == "RUNNING":
                healthy.add(task)
            steps.append((float(e["t"]), float(len(healthy))))
        return {"HealthyHostCount": _bucket(steps, period, "Maximum")} if steps else {}
    low, high = {
        "HTTPCode_Target_4XX_Count": (400, 500),
        "HTTPCode_Target_5XX_Count": (500, 600),
    }.get(metric, (0, 0))
    if high == 0:
        return {f"{metric} (not measured by the lab)": []}
    # What targets answered: a 503 no task sent is the load balancer's own (HTTPCode_ELB_503)
    points = [
        (float(e["t"]), float(low <= e["http_status"] < high)) for e in calls if e.get("task_id")
    ]
    return {metric: _bucket(points, period, "Sum")}


def widget_series(widget: dict[str, Any], r: Any, data: DashboardData) -> Series:
    props = widget["properties"]
    period = float(props.get("period", 60)) / data.time_scale
    stat = str(props.get("stat", "Sum"))
    series: Series = {}
    rows = props.get("metrics", [])
    by_id: dict[str, Series] = {}
    shown = [r for r in rows if not (isinstance(r[0], dict) and r[0].get("visible") is False)]
    for row in rows:
        if isinstance(row[0], dict) and "expression" in row[0]:
            expression, ident = row[0]["expression"], str(row[0].get("id", ""))
            ratio = _ratio_series(expression, by_id)
            if ratio is not None:
                found: Series = {str(row[0].get("label", ident)): ratio} if ratio else {}
            else:
                search_stat = re.search(r"', '(\w+)'", expression)
                found = _search_series(
                    expression, data, period, search_stat.group(1) if search_stat else stat
                )
                if len(shown) > 1:  # several expressions in one widget: say which is which
                    found = {f"{ident} {label}": points for label, points in found.items()}
            by_id[ident] = found
            if row in shown:
                series.update(found)
        elif row[0] == NAMESPACE:
            series.update(_sessionwatch_series(list(row), data, period, stat))
        elif row[0] == ALB_NAMESPACE:
            series.update(_alb_series(list(row), r, period, data))
    return series


# What the eye must find first, by series label: losses red, load balancer refusals orange,
# an SDK's session refusals (session_refused, a metric another part adds) purple.
EMPHASIS = (
    ("refused", "tab:purple"),
    ("503", "darkorange"),
    ("lost", "tab:red"),
    ("deployment", "tab:red"),
    ("stickiness", "firebrick"),
    ("task_failure", "tab:red"),
    ("scale_in", "salmon"),
    ("infrastructure", "salmon"),
    ("unknown", "salmon"),
)


def emphasis(label: str) -> str | None:
    """The colour of a series that counts losses or refusals; None for any other series."""
    lowered = label.lower()
    if "healthy" in lowered:
        return None
    return next((colour for word, colour in EMPHASIS if word in lowered), None)


def render_dashboard(r: Any, data: DashboardData, path: Path) -> None:
    """Draw every widget of the dashboard body at its grid position, over the run's data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    body = dashboard_body(lab_inputs(data.service, sorted(data.timelines)))
    widgets = body["widgets"]
    rows = max(w["y"] + w["height"] for w in widgets)
    fig = plt.figure(figsize=(16, rows * 0.42))
    for w in widgets:
        left, width = w["x"] / GRID_WIDTH, w["width"] / GRID_WIDTH
        bottom, height = 1 - (w["y"] + w["height"]) / rows, w["height"] / rows
        # room for the tick labels below and the title above each widget, as the console leaves
        ax = fig.add_axes((left + 0.035, bottom + 0.3 * height, width - 0.05, 0.55 * height))
        _draw(ax, w, r, data)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def _draw(ax: Any, w: dict[str, Any], r: Any, data: DashboardData) -> None:
    props = w["properties"]
    kind = w["type"]
    if kind == "text":
        ax.axis("off")
        text = re.sub(r"^#+\s*", "", str(props["markdown"]), flags=re.M)
        ax.text(0, 1, text, va="top", fontsize=8, wrap=True)
        return
    ax.set_title(str(props.get("title", kind)), fontsize=8, loc="left")
    ax.tick_params(labelsize=6)
    if kind == "alarm":
        for i, (_key, timeline) in enumerate(sorted(data.timelines.items())):
            for ev, nxt in zip(timeline, [*timeline[1:], None], strict=True):
                until = nxt.time if nxt is not None else r.end
                colour = {ALARM: "tab:red", "OK": "tab:green"}.get(ev.state, "0.8")
                ax.barh(i, max(until - ev.time, 0.05), left=ev.time - r.start, color=colour)
        ax.set_yticks(range(len(data.timelines)), sorted(data.timelines), fontsize=6)
        ax.set_xlim(0, r.end - r.start)
        return
    if kind == "log":
        ax.axis("off")
        rows = [
            [str(v.get("cause")), fp]
            + [str(v.get(k) or "-")[:16] for k in ("origin_task", "serving_task")]
            for fp, v in list(r.verdicts.items())[:6]
        ]
        if rows:
            table = ax.table(
                cellText=rows, colLabels=["cause", "session", "origin task", "serving task"],
                bbox=(0, 0.2, 1, 0.8), fontsize=6,
            )  # fmt: skip
            table.auto_set_font_size(False)
            table.set_fontsize(6)
        else:
            ax.text(0, 0.5, "no verdicts in this run", fontsize=7)
        return
    series = widget_series(w, r, data)
    period = float(props.get("period", 60)) / data.time_scale
    alarming = False
    # Per-task "Session not found" series are losses too, whatever their task-id labels.
    by_title = "tab:red" if "not found" in str(props.get("title", "")).lower() else None
    stacked: dict[float, float] = defaultdict(float)  # bars of several series pile up
    hatches = iter(["", "//", "xx", "..", "\\\\", "++"] * 4)
    for label, points in sorted(series.items()):
        tint = emphasis(label) or by_title
        if not points:
            ax.plot([], [], label=label)
        elif tint is not None and any(v > 0 for _, v in points):
            # A loss or a refusal: a full-height bar per period, never a lone dot on a line.
            alarming = True
            xs, ys = [t - r.start for t, _ in points], [v for _, v in points]
            bottoms = [stacked[x] for x in xs]
            for x, y in zip(xs, ys, strict=True):
                stacked[x] += y
            ax.bar(
                xs,
                ys,
                bottom=bottoms,
                hatch=next(hatches),
                width=period,
                align="edge",
                color=tint,
                edgecolor="black",
                linewidth=0.6,
                label=f"{label}: {sum(ys):g}",
                zorder=3,
            )
        else:
            xs, ys = [t - r.start for t, _ in points], [v for _, v in points]
            ax.step(xs, ys, where="post", label=label, color=tint, alpha=0.55, linewidth=1)
    if alarming:
        ax.set_title(
            str(props.get("title", kind)),
            fontsize=8,
            loc="left",
            color="tab:red",
            fontweight="bold",
        )
    top = max([*(v for points in series.values() for _, v in points), *stacked.values(), 0.0])
    ax.set_ylim(0, max(1.0, top * 1.25))
    ax.set_xlim(0, r.end - r.start)
    ax.set_xlabel(f"lab seconds (x{data.time_scale:g} = AWS time)", fontsize=6)
    if series:
        ax.legend(fontsize=5, loc="upper left", ncol=2, frameon=False)
    else:
        ax.text(0.5, 0.5, "no data in this run", ha="center", fontsize=7, transform=ax.transAxes)
