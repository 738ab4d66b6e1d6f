"""What the two ingest handlers do, as plain functions over a LedgerStore (no Lambda types here).

A failure on one record never blocks the rest of its batch: each ledger write is tried on its
own; what failed is counted (``DetectorRecordFailed``), logged with its location, and raised
at the end as ``RecordsFailed`` so Lambda retries the invocation and, after its retries, hands
the event to the on-failure destination (``sessionwatch redrive`` re-feeds it). Redelivery is
harmless: every store is idempotent and every count is guarded by a lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

from sessionwatch.detectors import ecs_read
from sessionwatch.detectors.classify import (
    Decision,
    classify,
    lost_points,
    revisit_closed,
    revisit_task,
)
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.emit import MetricPoint, bad_input, record_failed
from sessionwatch.detectors.facts import (
    CLOCK_SKEW_S,
    BadInput,
    DeploymentObserved,
    HookObserved,
    NotFound,
    SessionClosed,
    SessionCreated,
    TaskFacts,
    rollback_target,
)
from sessionwatch.detectors.ledger import LedgerStore
from sessionwatch.detectors.parsing import decode_subscription, iter_lines, parse_ecs_event
from sessionwatch.detectors.report_state import end_changed
from sessionwatch.detectors.rules import previous_deployment, revisit_due

if TYPE_CHECKING:
    from mypy_boto3_ecs import ECSClient
else:
    ECSClient = Any


class RecordsFailed(RuntimeError):
    """Some records of an invocation could not be stored or decided (the rest were)."""

    def __init__(self, failed: list[BadInput]) -> None:
        super().__init__(f"{len(failed)} record(s) failed; the rest of the batch was processed")
        self.failed = failed


@dataclass
class Outcome:
    """What one invocation did: facts stored, decisions made, inputs rejected or failed."""

    stored: int = 0
    ignored: int = 0
    bad: list[BadInput] = field(default_factory=list)
    failed: list[BadInput] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)

    def metric_points(self) -> list[MetricPoint]:
        points = lost_points(self.decisions)
        if self.bad:
            points.append(bad_input(len(self.bad)))
        if self.failed:
            points.append(record_failed(len(self.failed)))
        return points

    def raise_failures(self) -> None:
        if self.failed:
            raise RecordsFailed(self.failed)


def _try(out: Outcome, what: str, ctx: dict[str, str], call: Callable[[], object]) -> bool:
    """Run one record's ledger call; a failure is recorded (with where it came from), not
    raised, so the other records of the batch still go through."""
    try:
        call()
    except Exception as exc:  # any AWS or client error of this record
        out.failed.append(BadInput(f"{what} failed", ctx | {"error": type(exc).__name__}))
        return False
    return True


def ingest_ecs_events(
    events: Iterable[object],
    cfg: Config,
    ledger: LedgerStore,
    ecs: ECSClient | None = None,
    out: Outcome | None = None,
    now: float | None = None,
) -> Outcome:
    """Store deployments, hook stages and task observations; reject what is not an in-scope
    ECS event. The first event of a deployment without settings triggers the one ECS read;
    a task's first-seen stop time re-examines its sessions' counted 404s (late facts)."""
    out = Outcome() if out is None else out
    now = time.time() if now is None else now
    for raw in events:
        fact = parse_ecs_event(raw, cfg)
        ctx = {"event_id": str(raw.get("id", ""))[:64]} if isinstance(raw, dict) else {}
        if isinstance(fact, BadInput):
            out.bad.append(fact)
        elif isinstance(fact, DeploymentObserved):
            if _try(out, "deployment", ctx, partial(_deployment, cfg, ledger, ecs, fact, now, out)):
                out.stored += 1
        elif isinstance(fact, HookObserved):
            if _try(out, "hook stage", ctx, partial(ledger.record_hook, fact)):
                out.stored += 1
        elif isinstance(fact, TaskFacts):
            if _try(out, "task", ctx, partial(_task, cfg, ledger, fact, now, out)):
                out.stored += 1
        else:
            out.ignored += 1
    return out


def _deployment(
    cfg: Config,
    ledger: LedgerStore,
    ecs: ECSClient | None,
    obs: DeploymentObserved,
    now: float,
    out: Outcome,
) -> None:
    merged = ledger.record_deployment(obs)
    w = merged.window
    if obs.ended and w is not None and end_changed(merged.report, w.ended_at, w.outcome):
        # An end delivered after the report went out (it said SUPERSEDED, say, where ECS says
        # FAILED): a follow-up, unless the report already said this end (a re-delivery).
        ledger.flag_followup(obs.service, obs.deployment_id, now)
    if not merged.has_settings:
        started = None if obs.ended else obs.at
        settings = ecs_read.read(ecs, cfg.cluster_name, obs.service, obs.deployment_id, started)
        ledger.record_settings(obs.service, obs.deployment_id, settings)
    if not obs.ended and rollback_target(obs.reason) is not None:
        # The failed deployment's report may have gone out before this start arrived, saying
        # only FAILED: a follow-up (only if it was sent) says it was rolled back, and by what.
        before = ledger.deployments_before(obs.service, obs.at, 3)
        failed = previous_deployment(before, obs.deployment_id, obs.at)
        if failed is not None:
            ledger.flag_followup(obs.service, failed, now)
    if not obs.ended:
        # Stops already known after this start are this deployment's, though a verdict may
        # have charged them to the previous one while this event was on its way (a delay
        # shorter than the grace period is enough). Decide their 404s again: the count lock
        # moves to this deployment (``rules.lock_tiebreak``). Delivered on time, no stop is
        # known yet and this costs one Query.
        since = obs.at - CLOCK_SKEW_S
        tasks = set(ledger.stops_between(obs.service, since, now))
        if now >= obs.at + cfg.grace_period_s:
            # Later than the grace period: its window's other 404s may be final without it too
            # (a traffic shift as stickiness): the service's live tasks as well. Bounded by
            # the service's tasks, not by the cluster.
            tasks |= set(ledger.live_tasks(obs.service))
        for task_id in sorted(tasks):
            revisit_task(ledger, task_id, cfg, now, out.decisions)


def _task(cfg: Config, ledger: LedgerStore, obs: TaskFacts, now: float, out: Outcome) -> None:
    merged = ledger.record_task(obs)
    if merged is None or not revisit_due(merged):
        return
    # Marked only after the revisit succeeded: a failed one is owed again on retry.
    if revisit_task(ledger, obs.task_id, cfg, now, out.decisions):
        ledger.mark_revisited(obs.task_id, merged.stop_mark)


def ingest_log_payload(
    payload: object, cfg: Config, ledger: LedgerStore, now: float, out: Outcome | None = None
) -> Outcome:
    """Store session facts of one subscription payload, then decide its not-founds.

    ``out`` (returned) is filled as the work proceeds, so a handler whose invocation fails
    half-way still logs and emits what was already counted. Each task fact is stored on its
    own; a failed session write or decision wave is recorded and the rest still runs.
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
    where = {"log_group": batch.log_group, "log_stream": batch.log_stream}
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
    if (created or closed) and _try(
        out, "session facts", where, lambda: ledger.record_sessions(created, closed)
    ):
        out.stored += len(created) + len(closed)
        if closed:  # a close arriving after its session's 404 was decided: decide it again
            _try(
                out,
                "late close decisions",
                where,
                lambda: revisit_closed(ledger, closed, cfg, now, out.decisions),
            )
    for obs in started.values():
        ctx = where | {"task_id": obs.task_id[:128]}
        if _try(out, "task_started", ctx, partial(ledger.record_task, obs)):
            out.stored += 1
    if not_found:
        _try(
            out,
            "not-found decisions",
            where,
            lambda: classify(ledger, not_found, cfg, now, out.decisions),
        )
    return out
