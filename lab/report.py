"""The lab's output: the side-by-side verdict, ``lab-report/`` (report.md, events.jsonl,
timeline.png), and the audit that no raw session id was written anywhere.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lab.alarm_replay import Evaluation
from lab.dashboard_preview import DashboardData, render_dashboard
from lab.ecs_play import Played
from lab.scenarios import ALARM_ERRORS_PREFIX, ALARM_SESSION_CAP, Outcome, Scenario
from lab.truth import is_loss
from world.ecs import DETAIL_DEPLOYMENT, DETAIL_TASK


@dataclass
class RunResult:
    scenario: Scenario
    start: float
    end: float
    events: list[dict[str, Any]]
    outcome: Outcome
    verdicts: dict[str, dict[str, Any]]
    timelines: dict[str, list[Evaluation]]
    skipped_alarms: list[str]
    reports: list[dict[str, Any]]
    problems: list[str]
    deployment_id: str | None
    targets: dict[str, str]
    lb_5xx: int
    lb_4xx: int
    sessions_opened: int
    lines_shipped: int
    server_points: int
    invocation_errors: list[str] = field(default_factory=list)
    played: Played = field(default_factory=Played)
    latency: list[str] = field(default_factory=list)  # lab.alarm_latency.lines
    dashboard: DashboardData | None = None
    truth_by_deployment: dict[str, int] = field(default_factory=dict)
    guards: dict[str, Any] = field(default_factory=dict)  # what the deployment guards did


def _hms(t: float | None) -> str:
    return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")


def side_by_side(r: RunResult) -> list[tuple[str, str]]:
    """Rows of (what the infrastructure shows, what SessionWatch shows)."""
    calls = [e for e in r.events if e["kind"] == "call"]
    not_found = [e for e in calls if is_loss(e)]
    first_loss = min((e["t"] for e in not_found), default=None)
    decided = [float(v["decided_at"]) for v in r.verdicts.values() if v.get("decided_at")]
    latency = (min(decided) - first_loss) if decided and first_loss else None
    deployment_states = [
        e["detail"].get("eventName")
        for e in r.events
        if e["kind"] == "ecs_event" and e["detail_type"] == DETAIL_DEPLOYMENT
    ]
    failures = [
        str(e["detail"].get("reason") or "")
        for e in r.events
        if e["kind"] == "ecs_event"
        and e["detail_type"] == DETAIL_DEPLOYMENT
        and e["detail"].get("eventName") == "SERVICE_DEPLOYMENT_FAILED"
    ]
    breaker = "TRIPPED" if any("circuit breaker" in f for f in failures) else "silent"
    if failures and breaker == "silent":
        breaker += " (a deployment alarm failed the rollout)"
    unhealthy = sorted(t[:8] for t, s in r.targets.items() if s.startswith("DOWN"))
    running_up = sum(1 for s in r.targets.values() if s.startswith("UP"))
    causes = Counter(str(v.get("cause")) for v in r.verdicts.values())
    facts = r.reports[0]["facts"] if r.reports else {}
    cliff = facts.get("session_cliff_s")
    at_risk = facts.get("sessions_at_risk")
    fired = r.outcome.alarms_fired
    main = sorted(k for k in r.timelines if not k.startswith(ALARM_ERRORS_PREFIX))
    alarm_text = ", ".join(f"{k} {'ALARM' if k in fired else 'OK'}" for k in main)
    if any(k.startswith(ALARM_ERRORS_PREFIX) for k in r.timelines):
        errors = any(k.startswith(ALARM_ERRORS_PREFIX) for k in fired)
        alarm_text += f", detector errors {'ALARM' if errors else 'OK'}"
    lost = len(r.outcome.lost_sessions)
    unattributed = sum(1 for fp in r.outcome.lost_sessions if fp not in r.verdicts)
    refusals = []
    if r.scenario.max_sessions is not None or r.outcome.refused_answers:
        cap = "ALARM" if ALARM_SESSION_CAP in fired else "OK"
        refusals.append(
            (
                f"client view: {r.outcome.refused_answers} initialize answers 503 'Too many "
                "open sessions'",
                f"sessions refused: {r.outcome.refusals_logged} session_refused logged; "
                f"session cap alarm {cap}",
            )
        )
    return [
        *refusals,
        (
            f"targets healthy: {running_up} UP"
            + (f", DOWN: {', '.join(unhealthy)}" if unhealthy else ""),
            f"alarms: {alarm_text or 'none replayed'}",
        ),
        (
            f"load balancer 5xx: {r.lb_5xx} (4xx: {r.lb_4xx}, not alarmed on)",
            f"sessions lost: {lost} (unattributed {unattributed}); at risk "
            + (f"{at_risk}, survived {max(0, int(at_risk) - lost)}" if at_risk is not None else "-")
            + f"; {r.sessions_opened} opened incl. re-created",
        ),
        (
            "deployment: "
            + (
                deployment_states[-1].replace("SERVICE_DEPLOYMENT_", "")
                if deployment_states
                else "none"
            ),
            "by cause: " + (", ".join(f"{c}={n}" for c, n in sorted(causes.items())) or "none"),
        ),
        (
            "circuit breaker: " + breaker,
            f"deployment: {r.deployment_id or '-'}; at risk: "
            f"{at_risk if at_risk is not None else '-'}; report sent: {len(r.reports)}",
        ),
        _refused_row(r, calls),
        (
            f"client view: {len(not_found)} 'session not found' answers of {len(calls)} calls",
            "session cliff: "
            + (f"{cliff:.1f} s after deployment start" if isinstance(cliff, int | float) else "-")
            + "; detection latency: "
            + (f"{latency:.1f} s from first loss to verdict" if latency is not None else "-"),
        ),
    ]


def locked_out(calls: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(clients the load balancer refused at least once, clients never refused nor lost)."""
    probes = {str(e["probe"]) for e in calls}
    refused = {str(e["probe"]) for e in calls if e.get("http_status") == 503}
    lost = {str(e["probe"]) for e in calls if is_loss(e)}
    return refused, probes - refused - lost


def _refused_row(r: RunResult, calls: list[dict[str, Any]]) -> tuple[str, str]:
    """The "load balancer 503" row: ALB's own refusals beside what the report said of them."""
    refused, survived = locked_out(calls)
    # the last report that names it: a follow-up counts the refusals after the first report
    locks = [x["facts"]["lock_out"] for x in r.reports if x["facts"].get("lock_out")]
    lock = locks[-1] if locks else None
    left = (
        f"load balancer 503: {r.outcome.lb_503} (HTTPCode_ELB_503_Count); "
        f"{len(refused)} client(s) locked out"
        + (f" up to {r.outcome.longest_lock_out_s:.1f} s" if refused else "")
        + f", {len(survived)} never refused nor lost"
    )
    right = "refused by the load balancer: " + (
        str(lock["sentence"]) if lock else "nothing in the deployment report"
    )
    return left, right


def rollout_lines(r: RunResult) -> list[str]:
    """Each deployment the scenario played: its report against the lab's count, how it ended."""
    facts = {str(x["facts"].get("deployment_id")): x["facts"] for x in r.reports}
    lines = []
    for role, dep in r.played.deployments.items():
        f = facts.get(dep)
        said = "no report" if f is None else f"report: {f.get('sessions_lost')} lost"
        ended = "" if f is None else f", ended {f.get('outcome')}"
        lines.append(
            f"{role} {dep}: {said} (lab: {r.truth_by_deployment.get(dep, 0)} lost to it){ended}"
        )
    if r.played.rolled_back_by:
        full = sum(r.played.open_at_start.values())
        spared = sum(r.played.open_at_start.get(t, 0) for t in r.played.never_replaced)
        lines.append(
            f"rolled back by the {r.played.rolled_back_by}: {len(r.outcome.lost_sessions)} "
            f"session(s) lost; a full rollout would have lost the {full} open on the "
            f"{len(r.played.open_at_start)} old task(s) at deployment start; {spared} were on "
            f"the {len(r.played.never_replaced)} task(s) never replaced"
        )
    return lines


def render_text(r: RunResult) -> str:
    rows = side_by_side(r)
    width = max(len(a) for a, _ in rows) + 2
    lines = [
        "",
        f"== {r.scenario.name}: {'PASS' if not r.problems else 'FAIL'} ==",
        f"{'WHAT THE INFRASTRUCTURE SHOWS':<{width}}| WHAT SESSIONWATCH SHOWS",
        "-" * (width + 40),
    ]
    lines += [f"{a:<{width}}| {b}" for a, b in rows]
    lines += ["", *rollout_lines(r)] if r.played.deployments else []
    lines += ["", *r.latency] if r.latency else []
    lines += ["", *guard_lines(r)] if r.guards else []
    if r.problems:
        lines += ["", "Verdict problems:"] + [f"  - {p}" for p in r.problems]
    return "\n".join(lines)


def guard_lines(r: RunResult) -> list[str]:
    """What the deployment guards did in this run (drain gate, stop on loss, first-loss alert)."""
    g = r.guards
    out = [f"Deployment guards: {g.get('guard') or 'none'}"]
    if g.get("gate_calls"):
        out.append(f"  drain gate: {g['gate_calls']} call(s) by ECS, held {g['gate_held_s']:.1f} s")
    for line in g.get("report_lines", []):
        out.append(f"  report: {line}")
    if g.get("first_loss_alert_s") is not None:
        out.append(
            f"  first loss -> first-loss alert published: {g['first_loss_alert_s']:.1f} s (lab)"
        )
    if g.get("first_loss_stop_s") is not None:
        out.append(f"  first loss -> StopServiceDeployment: {g['first_loss_stop_s']:.1f} s (lab)")
    return out


def render_markdown(r: RunResult) -> str:
    rows = side_by_side(r)
    md = [
        f"# SessionWatch lab: {r.scenario.name}",
        "",
        f"{r.scenario.summary}. Run {_hms(r.start)} to {_hms(r.end)} UTC "
        f"({r.end - r.start:.0f} s). Verdict: **{'PASS' if not r.problems else 'FAIL'}**.",
        "",
        "| What the infrastructure shows | What SessionWatch shows |",
        "|---|---|",
    ]
    md += [f"| {a} | {b} |" for a, b in rows]
    if r.played.deployments:
        md += [""] + [f"- {line}" for line in rollout_lines(r)]
    if r.latency:
        md += ["", "## Alarm latency", "", "```", *r.latency, "```"]
    md += ["", "![timeline](timeline.png)"]
    if r.dashboard is not None:
        md += ["", "![dashboard preview](dashboard.png)"]
    md += ["", "## Alarm history (replayed from the template)"]
    for key, timeline in sorted(r.timelines.items()):
        changes = []
        previous = None
        for e in timeline:
            if e.state != previous:
                changes.append(f"{_hms(e.time)} {e.state}")
                previous = e.state
        md.append(f"- {key}: " + (" -> ".join(changes) or "never evaluated"))
    for note in r.skipped_alarms:
        md.append(f"- not replayed: {note}")
    md += ["", "## Lost sessions and verdicts", ""]
    if r.outcome.lost_sessions:
        md += [
            "| session (fingerprint) | cause | origin task | serving task |",
            "|---|---|---|---|",
        ]
        for fp in sorted(r.outcome.lost_sessions):
            v = r.verdicts.get(fp, {})
            md.append(
                f"| {fp} | {v.get('cause', 'NO VERDICT')} | {str(v.get('origin_task', '-'))[:8]} "
                f"| {str(v.get('serving_task', '-'))[:8]} |"
            )
    else:
        md.append("No session was lost.")
    for report in r.reports:
        md += ["", f"## SNS message: {report.get('subject')}", "", *_as_delivered(report)]
    md += [
        "",
        "## Pipeline",
        "",
        f"- server log lines delivered through the subscription filter: {r.lines_shipped}",
        f"- server metric datapoints written to CloudWatch (awsemf mapping): {r.server_points}",
        f"- detector invocation errors: {len(r.invocation_errors)}",
    ]
    if r.problems:
        md += ["", "## Verdict problems", ""] + [f"- {p}" for p in r.problems]
    return "\n".join(md) + "\n"


def _as_delivered(report: dict[str, Any]) -> list[str]:
    """The message as the topic delivered it: chat-schema JSON pretty-printed, text as is."""
    message = str(report.get("message") or "")
    try:
        parsed = json.loads(message)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        kind = "chat notification JSON" if parsed.get("version") else "JSON"
        return [f"Body ({kind}):", "", "```json", json.dumps(parsed, indent=2), "```"]
    return ["Body (text):", "", "```", message, "```"]


def task_legend(r: RunResult) -> list[tuple[str, str]]:
    """``(task id, label)`` for every task a call reached, in the order the plot assigns markers.

    The label names the task the way a person follows a rollout: its short id, whether it was
    there when the probes started ("old") or was started during the run ("replacement", a new
    deployment's task or ECS's stand-in for a crashed one), its task-definition revision and when
    it stopped. Both come from the run's own ECS task events.
    """
    calls = [e for e in r.events if e["kind"] == "call"]
    first_call = min((e["t"] for e in calls), default=r.start)
    running_at: dict[str, float] = {}
    revision: dict[str, str] = {}
    stopped_at: dict[str, float] = {}
    for e in r.events:
        if e["kind"] != "ecs_event" or e["detail_type"] != DETAIL_TASK:
            continue
        task_id = str(e["detail"].get("taskArn", "")).rsplit("/", 1)[-1]
        revision[task_id] = str(e["detail"].get("taskDefinitionArn", "")).rsplit(":", 1)[-1]
        if e["detail"].get("lastStatus") == "RUNNING":
            running_at.setdefault(task_id, e["t"])
        elif e["detail"].get("lastStatus") == "STOPPED":
            stopped_at.setdefault(task_id, e["t"])
    legend = []
    # Old tasks first, then replacements, each in the order they came up.
    reached = {e["task_id"] for e in calls if e["task_id"]}
    for task_id in sorted(reached, key=lambda t: (running_at.get(t, r.start), t)):
        role = "replacement" if running_at.get(task_id, r.start) > first_call else "old"
        label = f"{task_id[:8]} {role}"
        if task_id in revision:
            label += f", rev {revision[task_id]}"
        if task_id in stopped_at:
            label += f", stopped {stopped_at[task_id] - r.start:.0f} s"
        legend.append((task_id, label))
    return legend


# Colour and marker area of each kind of failed call (2xx are drawn small and pale).
KIND_STYLE = {
    "lost": ("red", 90.0),
    "lb_refused": ("darkorange", 45.0),
    "sdk_refused": ("tab:purple", 60.0),  # session_refused (an SDK at its session cap)
    "error": ("lightcoral", 30.0),
    "no_answer": ("tab:gray", 30.0),
}


def call_kind(call: dict[str, Any]) -> str:
    """ok, lost (the server said the session is gone), lb_refused (a 503 no task answered:
    the load balancer's own), sdk_refused (a 503 a task sent: its SDK's cap), error, no_answer."""
    status = call.get("http_status")
    if status is None:
        return "no_answer"
    if is_loss(call):
        return "lost"
    if status == 503:
        return "sdk_refused" if call.get("task_id") else "lb_refused"
    if 200 <= int(status) < 300 and call.get("jsonrpc_code") is None:
        return "ok"
    return "error"


def lock_out_spans(calls: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Per client, each run of consecutive load balancer 503s as (first, last) call times."""
    spans: dict[str, list[tuple[float, float]]] = {}
    current: dict[str, tuple[float, float]] = {}
    for e in sorted(calls, key=lambda c: float(c["t"])):
        probe, t = str(e["probe"]), float(e["t"])
        if call_kind(e) == "lb_refused":
            first = current.get(probe, (t, t))[0]
            current[probe] = (first, t)
        elif probe in current:
            spans.setdefault(probe, []).append(current.pop(probe))
    for probe, run in current.items():
        spans.setdefault(probe, []).append(run)
    return spans


def label_levels(xs: list[float], span: float) -> list[int]:
    """A text row per label so that labels closer than 10 % of the time axis never overlap."""
    gap = 0.1 * max(span, 1e-9)
    last_at: list[float] = []  # per row: x of its last label
    levels = []
    for x in xs:
        level = next((i for i, last in enumerate(last_at) if x - last >= gap), len(last_at))
        if level == len(last_at):
            last_at.append(x)
        last_at[level] = x
        levels.append(level)
    return levels


def draw_timeline(r: RunResult, path: Path) -> None:
    """Per call: probe row, colour by status, marker by task; deployment phases; alarm band.

    The legend maps each marker to its task (short id, old or replacement), so the picture of a
    rollout reads on its own: the red marks of the replacement's shape are the lost sessions.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    calls = [e for e in r.events if e["kind"] == "call"]
    probes = sorted({e["probe"] for e in calls})
    rows = {name: i for i, name in enumerate(probes)}
    legend = task_legend(r)
    tasks = [task_id for task_id, _ in legend]
    markers = ["o", "s", "^", "D", "v", "P", "X", "*"]
    fig, ax = plt.subplots(figsize=(12, 2.5 + 0.25 * min(len(probes), 40)))
    shown_calls = [e for e in calls if len(probes) <= 40 or rows[e["probe"]] < 40]
    # One scatter per (kind, marker): a collection per call made the picture cost seconds.
    groups: dict[tuple[str, str], tuple[list[float], list[int]]] = {}
    for e in shown_calls:
        kind = call_kind(e)
        marker = markers[tasks.index(e["task_id"]) % len(markers)] if e["task_id"] else "x"
        if kind == "lb_refused":
            marker = "s"
        xs, ys = groups.setdefault((kind, marker), ([], []))
        xs.append(e["t"] - r.start)
        ys.append(rows[e["probe"]])
    for (kind, marker), (xs, ys) in groups.items():
        if kind == "ok":  # the background: small and pale, so the failures stand out
            ax.scatter(
                xs, ys, c="tab:green", marker=marker, s=10, alpha=0.3, linewidths=0, zorder=1
            )
            continue
        colour, size = KIND_STYLE[kind]
        ax.scatter(
            xs,
            ys,
            c=colour,
            marker=marker,
            s=size,
            edgecolors="black",
            linewidths=0.7,
            zorder=4,
        )
    # A lock-out is a stretch of time, not a few dots: shade each client's run of 503s.
    for probe, spans in lock_out_spans(shown_calls).items():
        for first, last in spans:
            ax.broken_barh(
                [(first - r.start, max(last - first, 0.3))],
                (rows[probe] - 0.4, 0.8),
                facecolors="darkorange",
                alpha=0.35,
                zorder=2,
            )
    top = min(len(probes), 40)
    deployments = []
    for e in r.events:
        if e["kind"] == "ecs_event" and e["detail_type"] == DETAIL_DEPLOYMENT:
            x = e["t"] - r.start
            ax.axvline(x, color="tab:blue", linestyle="--", linewidth=1.2)
            deployments.append((x, e["detail"]["eventName"].removeprefix("SERVICE_DEPLOYMENT_")))
        elif e["kind"] == "ecs_event" and e["detail"].get("lastStatus") == "STOPPED":
            ax.axvline(e["t"] - r.start, color="0.6", linestyle=":", linewidth=1)
    span = max((e["t"] - r.start for e in calls), default=1.0)
    levels = label_levels([x for x, _ in deployments], span)
    for (x, label), level in zip(deployments, levels, strict=True):
        ax.annotate(
            label,
            (x, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, 2 + 9 * level),
            textcoords="offset points",
            color="tab:blue",
            fontsize=7,
            annotation_clip=False,
        )
    labels = list(probes[:top])
    ticks = list(range(top))
    shown = [
        (k, t) for k, t in sorted(r.timelines.items()) if not k.startswith(ALARM_ERRORS_PREFIX)
    ]
    for i, (key, timeline) in enumerate(shown):
        y = -1.2 - i * 0.8
        # a state holds from its evaluation until the next one
        for ev, nxt in zip(timeline, [*timeline[1:], None], strict=True):
            if ev.time < r.start:
                continue
            until = nxt.time if nxt is not None else r.end
            colour = {"ALARM": "tab:red", "OK": "tab:green"}.get(ev.state, "0.7")
            ax.barh(y, max(until - ev.time, 0.05), left=ev.time - r.start, height=0.5, color=colour)
        ticks.append(y)  # type: ignore[arg-type]
        labels.append(f"alarm {key}")
    ax.set_yticks(ticks, labels, fontsize=7)

    def entry(marker: str, colour: str, text: str) -> Line2D:
        return Line2D([], [], marker=marker, color=colour, linestyle="", markersize=5, label=text)

    handles = [
        entry(markers[i % len(markers)], "0.2", f"task {label}")
        for i, (_, label) in enumerate(legend)
    ]
    if any(e["task_id"] is None for e in calls):
        handles.append(entry("x", "0.2", "task unknown"))
    counts = Counter(call_kind(e) for e in calls)
    texts = {
        "lost": "session lost, 404",
        "lb_refused": "refused by the load balancer, 503 (shaded: lock-out)",
        "sdk_refused": "refused by the server's SDK, 503",
        "error": "other error",
        "no_answer": "no HTTP answer",
    }
    handles.append(entry("o", "tab:green", f"2xx ({counts['ok']}), small and pale"))
    for kind, text in texts.items():
        if counts[kind] or kind == "lost":  # a loss is named even when there is none
            big = Line2D(
                [],
                [],
                marker="s" if kind == "lb_refused" else "o",
                linestyle="",
                markersize=7,
                color=KIND_STYLE[kind][0],
                markeredgecolor="black",
                label=f"{text}: {counts[kind]}",
            )
            handles.append(big)
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False
    )
    ax.set_xlabel("seconds since lab start; blue dashed = deployment, grey dotted = task stopped")
    ax.set_title(f"SessionWatch lab: {r.scenario.name}", pad=12 + 9 * (max(levels, default=-1) + 1))
    ax.set_xlim(left=0)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def summary(r: RunResult) -> dict[str, Any]:
    """The run in one JSON object: what ``--scenario all`` tabulates and the tests read."""
    causes = Counter(str(v.get("cause")) for v in r.verdicts.values())
    return {
        "scenario": r.scenario.name,
        "passed": not r.problems,
        "problems": r.problems,
        "seconds": round(r.end - r.start, 1),
        "lost": len(r.outcome.lost_sessions),
        "causes": dict(sorted(causes.items())),
        "alarms_fired": sorted(r.outcome.alarms_fired),
        "reports": len(r.reports),
        "deployments": r.played.deployments,
        "truth_by_deployment": r.truth_by_deployment,
        "report_lost_by": r.outcome.report_lost_by,
        "rolled_back_by": r.played.rolled_back_by,
        "refused_answers": r.outcome.refused_answers,
        "refusals_logged": r.outcome.refusals_logged,
        "open_at_start": sum(r.played.open_at_start.values()),
        "lb_503": r.outcome.lb_503,
        "report_refused": r.outcome.report_refused,
        "longest_lock_out_s": round(r.outcome.longest_lock_out_s, 1),
        "locked_out_clients": len(locked_out([e for e in r.events if e["kind"] == "call"])[0]),
        "guards": r.guards,
        "deployment_events": [
            [e["detail"].get("deploymentId"), e["detail"].get("eventName")]
            for e in r.events
            if e["kind"] == "ecs_event" and e["detail_type"] == DETAIL_DEPLOYMENT
        ],
    }


def leaked(raw_ids: set[str], texts: list[str]) -> int:
    """How many of ``texts`` contain a raw session id (the audit of docs/architecture.md §2)."""
    return sum(1 for text in texts if any(raw in text for raw in raw_ids))


def write_report(r: RunResult, directory: Path, raw_ids: set[str], printed: list[str]) -> str:
    """Write lab-report/ and return the side-by-side text; adds leak findings to problems."""
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / "events.jsonl").open("w") as f:
        for event in r.events:
            f.write(json.dumps(event, default=str) + "\n")
    with (directory / "sns-messages.jsonl").open("w") as f:
        for report in r.reports:
            f.write(json.dumps(report.get("envelope") or report, default=str) + "\n")
    draw_timeline(r, directory / "timeline.png")
    if r.dashboard is not None:
        render_dashboard(r, r.dashboard, directory / "dashboard.png")
    (directory / "summary.json").write_text(json.dumps(summary(r), indent=1, sort_keys=True))
    (directory / "report.md").write_text(render_markdown(r))
    written = [
        p.read_text(errors="replace")
        for p in directory.glob("*")
        if p.is_file() and p.suffix != ".png"  # a rerun's side-by-side variants are folders
    ]
    leaks = leaked(raw_ids, written) + leaked(raw_ids, printed)
    if leaks:
        r.problems.append(f"a raw session id appears in {leaks} output(s)")
        (directory / "report.md").write_text(render_markdown(r))
    return render_text(r)
