"""``python -m lab --sweep``: when do sessions die, against the rollout's settings?

Runs the rolling deployment once per sweep point (task count, minimumHealthyPercent /
maximumPercent, deregistration delay, stop timeout) on real HAProxy and server processes, and
measures for every lost session when it died: after the deployment started, and after its own
task began draining (the ``ECS Task State Change`` with ``desiredStatus`` STOPPED, the moment
the lab deregisters the target). It prints the measurement beside the survival model the audit
uses (``sessionwatch.ops.audit_survival``): a session dies at its first request after its task
begins draining, so the second column stays within one client interval plus ``TOLERANCE_S``
whatever the deregistration delay and the stop timeout; only the wave order moves the first.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.forkserver import ForkServer
from lab.suite import run_one
from lab.truth import is_loss, origins
from sessionwatch.ops.audit_survival import (
    ELB_DEREGISTERING,
    SURVIVES_DRAINING_S,
    TOLERANCE_S,
    tasks_per_wave,
)


@dataclass(frozen=True)
class Point:
    tasks: int
    min_healthy: int
    max_percent: int
    delay_s: float
    stop_timeout_s: float

    def args(self) -> list[str]:
        return [
            "--tasks", str(self.tasks),
            "--min-healthy-percent", str(self.min_healthy),
            "--max-percent", str(self.max_percent),
            "--deregistration-delay", f"{self.delay_s:g}",
            "--stop-timeout", f"{self.stop_timeout_s:g}",
        ]  # fmt: skip


DEFAULT_POINTS = (
    Point(2, 100, 200, 2, 2),
    Point(2, 100, 200, 8, 2),
    Point(2, 100, 200, 2, 8),
    Point(4, 100, 200, 2, 2),
    Point(4, 50, 100, 2, 2),
    Point(4, 50, 100, 6, 2),
)


@dataclass(frozen=True)
class Measured:
    point: Point
    lost: int
    after_start: tuple[float, float] | None  # (first, last) loss, s after deployment start
    after_drain_max: float | None  # latest loss after its own task began draining
    drain_starts: tuple[float, ...]  # each distinct draining start, s after deployment start
    interval_s: float

    @property
    def within(self) -> bool:
        """The model holds: no loss later than one client interval + tolerance after draining."""
        bound = SURVIVES_DRAINING_S + self.interval_s + TOLERANCE_S
        return self.after_drain_max is not None and self.after_drain_max <= bound


def measure(events: Sequence[dict[str, Any]], point: Point, interval_s: float) -> Measured:
    """The loss times of one run's ``events.jsonl``."""
    deployment = next(
        e["t"]
        for e in events
        if e["kind"] == "ecs_event"
        and e["detail"].get("eventName") == "SERVICE_DEPLOYMENT_IN_PROGRESS"
    )
    drains: dict[str, float] = {}
    for e in events:
        detail = e.get("detail") or {}
        if e["kind"] == "ecs_event" and detail.get("desiredStatus") == "STOPPED":
            drains.setdefault(str(detail.get("taskArn", "")).rsplit("/", 1)[-1], e["t"])
    calls = [e for e in events if e["kind"] == "call"]
    origin = origins(calls)
    first_loss: dict[str, float] = {}
    for call in sorted(calls, key=lambda c: float(c["t"])):
        if is_loss(call) and call["session"] not in first_loss:
            first_loss[call["session"]] = float(call["t"])
    after_drain = [t - drains[origin[s]] for s, t in first_loss.items() if origin.get(s) in drains]
    after_start = sorted(t - deployment for t in first_loss.values() if t >= deployment)
    return Measured(
        point,
        len(first_loss),
        (after_start[0], after_start[-1]) if after_start else None,
        max(after_drain) if after_drain else None,
        tuple(sorted({round(t - deployment, 1) for t in drains.values() if t >= deployment})),
        interval_s,
    )


def run_sweep(
    points: Sequence[Point],
    template: Path,
    report_root: Path,
    extra: Sequence[str] = (),
    interval_s: float = 1.0,
    workers: int = 2,
    forks: ForkServer | None = None,
) -> list[Measured]:
    """Each point is a rolling-deploy run of its own, ``workers`` at a time (as ``lab.suite``),
    forked from ``forks`` when given."""

    def one(i: int, point: Point) -> Measured:
        directory = report_root / f"point-{i}"
        finished = run_one(
            "rolling-deploy",
            template,
            directory,
            [*point.args(), "--interval", f"{interval_s:g}", *extra],
            timeout=400,
            forks=forks,
        )
        if not (directory / "events.jsonl").exists():
            raise RuntimeError(f"sweep point {i} did not run:\n{finished.output[-3000:]}")
        events = [json.loads(line) for line in (directory / "events.jsonl").open()]
        return measure(events, point, interval_s)

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(one, range(1, len(points) + 1), points))


def table(results: Sequence[Measured]) -> str:
    """Like the write-up's finding 4, with the model's prediction beside each measurement."""
    head = (
        "run", "tasks", "min%/max%", "waves", "dereg delay", "stop timeout", "lost",
        "lost after deploy start", "draining starts", "lost after own draining (max)",
        "model", "holds",
    )  # fmt: skip
    rows = [head]
    for i, m in enumerate(results, 1):
        p = m.point
        per_wave = tasks_per_wave(p.tasks, p.min_healthy, p.max_percent)
        span = "-" if m.after_start is None else f"{m.after_start[0]:.1f}-{m.after_start[1]:.1f} s"
        rows.append(
            (
                str(i),
                str(p.tasks),
                f"{p.min_healthy}/{p.max_percent}",
                str(-(-p.tasks // per_wave) if per_wave else "-"),
                f"{p.delay_s:g} s",
                f"{p.stop_timeout_s:g} s",
                str(m.lost),
                span,
                ", ".join(f"{t:g}" for t in m.drain_starts) + " s",
                "-" if m.after_drain_max is None else f"{m.after_drain_max:.1f} s",
                f"<= {SURVIVES_DRAINING_S + m.interval_s + TOLERANCE_S:g} s",
                "yes" if m.within else "NO",
            )
        )
    widths = [max(len(r[c]) for r in rows) for c in range(len(head))]
    lines = [" | ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    lines += [
        "",
        f'Model (ops.audit_survival, the audit\'s): "{ELB_DEREGISTERING}": a session dies at its',
        "first request after its task begins draining; the deregistration delay and the stop",
        "timeout do not extend it (model column: one client interval + "
        f"{TOLERANCE_S:g} s tolerance).",
    ]
    return "\n".join(lines)


def main(template: Path | None, report_root: Path, extra: Sequence[str]) -> int:
    from lab.template import LabSettings, synth_addon

    with tempfile.TemporaryDirectory(prefix="sessionwatch-sweep-") as tmp:
        template = template or synth_addon(Path(tmp) / "cdk.out", LabSettings())
        results = run_sweep(DEFAULT_POINTS, template, report_root, extra)
    print(table(results))
    return 0 if all(m.within for m in results) else 1
