"""What the two ingest handlers do, as plain functions over a Ledger (no Lambda types here)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sessionwatch.detectors.classify import Decision, classify
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.core import NotFound, TaskFacts
from sessionwatch.detectors.emit import MetricPoint, bad_input, sessions_lost
from sessionwatch.detectors.facts import (
    BadInput,
    DeploymentObserved,
    SessionClosed,
    SessionCreated,
)
from sessionwatch.detectors.ledger import Ledger
from sessionwatch.detectors.parsing import decode_subscription, iter_lines, parse_ecs_event


@dataclass
class Outcome:
    """What one invocation did: facts stored, decisions made, inputs rejected."""

    stored: int = 0
    ignored: int = 0
    bad: list[BadInput] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    def metric_points(self) -> list[MetricPoint]:
        points = [
            sessions_lost(d.verdict.service, d.verdict.cause) for d in self.decisions if d.counted
        ]
        if self.bad:
            points.append(bad_input(len(self.bad)))
        return points


def ingest_ecs_events(events: Iterable[object], cfg: Config, ledger: Ledger) -> Outcome:
    """Store deployment windows and task observations; reject what is not an in-scope ECS event."""
    out = Outcome()
    for raw in events:
        fact = parse_ecs_event(raw, cfg)
        if isinstance(fact, BadInput):
            out.bad.append(fact)
        elif isinstance(fact, DeploymentObserved):
            ledger.record_deployment(fact)
            out.stored += 1
        elif isinstance(fact, TaskFacts):
            ledger.record_task(fact)
            out.stored += 1
        else:
            out.ignored += 1
    return out


def ingest_log_payload(
    payload: object, cfg: Config, ledger: Ledger, now: float, out: Outcome | None = None
) -> Outcome:
    """Store session facts of one subscription payload, then decide its not-founds.

    ``out`` (returned) is filled as the work proceeds, so a handler whose invocation fails
    half-way still logs and emits what was already counted.
    """
    out = Outcome() if out is None else out
    batch = decode_subscription(payload)
    if isinstance(batch, BadInput):
        out.bad.append(batch)
        return out
    created: list[SessionCreated] = []
    closed: list[SessionClosed] = []
    not_found: list[NotFound] = []
    started: dict[str, TaskFacts] = {}
    for fact in iter_lines(batch):
        if isinstance(fact, BadInput):
            out.bad.append(fact)
        elif isinstance(fact, SessionCreated):
            created.append(fact)
        elif isinstance(fact, SessionClosed):
            closed.append(fact)
        elif isinstance(fact, NotFound):
            not_found.append(fact)
        elif isinstance(fact, TaskFacts):
            started[f"{fact.task_id}|{fact.started_at}"] = fact
        else:
            out.ignored += 1
    # Facts first, so a not-found in the same payload as its session's creation sees it.
    if created or closed:
        ledger.record_sessions(created, closed)
    for obs in started.values():
        ledger.record_task(obs)
    out.stored = len(created) + len(closed) + len(started)
    classify(ledger, not_found, cfg, now, out.decisions)
    return out
