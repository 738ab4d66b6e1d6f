"""Pure classification of the probe's calls: what each one means for the session.

The experiment's lesson (finding 1): verify routing by task id, never by the sticky cookie, whose
value rotates on every response even when the target is unchanged. So a rotated cookie with an
unchanged task is reported as normal, with that reason, and a task change is what makes a
stickiness break. A lost-session answer in any SDK's form (``server.lost_session``: 404 with
JSON-RPC -32600 or -32001, 400 "No valid session ID provided", ...) is a lost session, named with
the task that held it, the task that answered and the form seen. Works on
``sessionwatch.ops.client.CallRecord`` values; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sessionwatch.contract import TASK_ID_HEADER
from sessionwatch.ops.client import CallRecord


class Event(StrEnum):
    """The verdict for one call, worst condition first when several hold."""

    OK = "ok"
    SESSION_LOST = "session_lost"
    STICKINESS_BREAK = "stickiness_break"
    TRANSPORT_ERROR = "transport_error"
    ERROR = "error"  # any other non-2xx answer or JSON-RPC error


ROTATION_NORMAL = (
    "normal: the load balancer re-issued the sticky cookie for the same task; "
    "routing is verified by task id, not by the cookie value"
)


@dataclass(frozen=True)
class Observation:
    """A call record plus what the probe concluded about it."""

    record: CallRecord
    event: Event
    session_task: str | None  # the task the session lives on, as far as the probe knows
    task_changed: bool
    note: str | None
    cookie_note: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.record.to_dict(),
            "event": str(self.event),
            "session_task": self.session_task,
            "task_changed": self.task_changed,
            "note": self.note,
            "cookie_note": self.cookie_note,
        }


@dataclass
class ProbeTally:
    """Running state of one probe run: which task holds the session, and the counts so far."""

    stale_cookie: bool = False
    no_cookies: bool = False
    session_task: str | None = None
    calls: int = 0
    losses: int = 0
    stickiness_breaks: int = 0  # `stickiness_break` events only: the session survived elsewhere
    losses_routed_away: int = 0  # losses answered by another task than the session's
    transport_errors: int = 0
    errors: int = 0
    failure_streak: int = 0  # calls in a row that failed for a reason other than a loss
    longest_failure_streak: int = 0
    cookie_rotations: int = 0
    first_time: float | None = None
    first_loss_time: float | None = None
    tasks_seen: list[str] = field(default_factory=list)
    sessions: list[str] = field(default_factory=list)  # fingerprints only
    # The probe DELETEs every session it is done with: closed (2xx), or not found by the task
    # the DELETE reached (gone with its task, or alive on a task the request did not reach).
    sessions_closed: list[str] = field(default_factory=list)
    sessions_not_found_on_close: list[str] = field(default_factory=list)
    close_failures: list[str] = field(default_factory=list)  # "fingerprint: why"
    lost_sessions: list[str] = field(default_factory=list)

    def observe(self, record: CallRecord) -> Observation:
        """Classify ``record`` against what came before it and update the counts."""
        self.calls += 1
        if self.first_time is None:
            self.first_time = record.time
        if record.tool == "initialize":
            # A new session lives wherever its initialize was answered.
            self.session_task = record.task_id if record.ok else None
            if record.ok and record.session and record.session not in self.sessions:
                self.sessions.append(record.session)
        elif (
            self.session_task is None
            and record.ok
            and record.task_id
            and self.sessions
            and record.session == self.sessions[-1]
        ):
            # Without X-Mcp-Task-Id an initialize names no task: the session lives where its
            # first successful call (the probe's whoami) was answered.
            self.session_task = record.task_id
        if record.task_id and record.task_id not in self.tasks_seen:
            self.tasks_seen.append(record.task_id)
        holder = self.session_task
        changed = bool(record.task_id and holder and record.task_id != holder)
        event, note = self._verdict(record, holder, changed)
        if event in (Event.ERROR, Event.TRANSPORT_ERROR):
            self.failure_streak += 1
            self.longest_failure_streak = max(self.longest_failure_streak, self.failure_streak)
        else:
            self.failure_streak = 0
        cookie_note = self._cookie_note(record, changed)
        if event is Event.STICKINESS_BREAK and record.task_id:
            # The session survived on another task (state shared?): follow it there.
            self.session_task = record.task_id
        return Observation(record, event, holder, changed, note, cookie_note)

    def _verdict(
        self, record: CallRecord, holder: str | None, changed: bool
    ) -> tuple[Event, str | None]:
        if record.transport_error:
            self.transport_errors += 1
            return Event.TRANSPORT_ERROR, f"no HTTP answer: {record.transport_error}"
        if record.session_not_found:
            # A cycle's write and read can both hit the dead session: count the session once.
            repeat = record.session is not None and record.session in self.lost_sessions
            if not repeat:
                self.losses += 1
                # Routed away and lost: a loss, counted as one; `stickiness_breaks` counts only
                # `stickiness_break` events (ops/README.md), these are counted on their own.
                self.losses_routed_away += int(changed)
                if record.session is not None:
                    self.lost_sessions.append(record.session)
                if self.first_loss_time is None:
                    self.first_loss_time = record.time
            again = " (this session was already reported lost)" if repeat else ""
            answer = _answer(record)
            if changed:
                if self.no_cookies:
                    why = "the client returns no cookies, so the load balancer cannot keep it there"
                elif self.stale_cookie:
                    why = "the client sent a stale sticky cookie"
                else:
                    why = (
                        "its task stopped receiving traffic (deregistered, stopped) "
                        "or stickiness is off"
                    )
                return Event.SESSION_LOST, (
                    f"session lost: {answer} from task {record.task_id}, the session lived on "
                    f"task {holder}; routed away from its task because {why}{again}"
                )
            if record.task_id is None:
                # No header, and an error carries no tool result: who answered is unknown.
                return Event.SESSION_LOST, (
                    f"session lost: {answer} from an unidentified task (no "
                    f"{TASK_ID_HEADER} header), the session lived on task "
                    f"{holder or 'unknown'}: routed away from its task, or closed or expired "
                    f"there{again}"
                )
            return Event.SESSION_LOST, (
                f"session lost: {answer} from task {record.task_id}, the task "
                f"that held it: closed or expired there, or the task restarted{again}"
            )
        if changed and not record.ok:
            # A failed answer from another task says nothing about the session: never "survived".
            self.errors += 1
            code = f" jsonrpc {record.jsonrpc_code}" if record.jsonrpc_code is not None else ""
            return Event.ERROR, (
                f"HTTP {record.http_status}{code} from task {record.task_id}, the session lives on "
                f"task {holder}: routed away from its task, and the answer is an error"
            )
        if changed:
            self.stickiness_breaks += 1
            return Event.STICKINESS_BREAK, (
                f"stickiness break: answered by task {record.task_id}, the session lived on "
                f"task {holder}; the session survived (state shared across tasks?)"
            )
        if record.ok and record.session in self.lost_sessions and record.task_id == holder:
            return Event.OK, (
                f"the session still answers on its task {holder}: the earlier 404 was the "
                "request being routed away (a stickiness break), not the session dying"
            )
        if not record.ok:
            self.errors += 1
            code = f" jsonrpc {record.jsonrpc_code}" if record.jsonrpc_code is not None else ""
            return Event.ERROR, f"HTTP {record.http_status}{code}"
        return Event.OK, None

    def _cookie_note(self, record: CallRecord, changed: bool) -> str | None:
        if not record.cookie_rotated:
            return None
        self.cookie_rotations += 1
        if changed:
            return "the cookie changed because the request was routed to another task"
        if self.stale_cookie:
            return ROTATION_NORMAL + " (ignored: --stale-cookie keeps sending the first value)"
        if self.no_cookies:
            return ROTATION_NORMAL + " (ignored: --no-cookies never returns a cookie)"
        return ROTATION_NORMAL

    @property
    def cookie_mode(self) -> str:
        """Which client the run played, as its output names it."""
        if self.no_cookies:
            return "no-cookies (never returns a cookie)"
        if self.stale_cookie:
            return "stale-cookie (keeps sending the first sticky cookie)"
        return "cookies (returns every sticky cookie, like a browser)"

    def closed(self, record: CallRecord) -> None:
        """The DELETE of a session the probe is done with: closed, already gone, or not."""
        session = record.session or "?"
        if record.ok:
            self.sessions_closed.append(session)
        elif record.session_lost:
            self.sessions_not_found_on_close.append(session)
        else:
            why = record.transport_error or f"HTTP {record.http_status}"
            self.close_failures.append(f"{session}: {why}")

    def summary(self) -> dict[str, Any]:
        """Totals for the last line of a run; fingerprints only, never a raw session id."""
        first_loss = (
            round(self.first_loss_time - self.first_time, 3)
            if self.first_loss_time is not None and self.first_time is not None
            else None
        )
        opened = len(self.sessions)
        return {
            "calls": self.calls,
            "sessions_opened": opened,
            "loss_rate": round(self.losses / opened, 4) if opened else None,
            "calls_failed": self.errors + self.transport_errors,
            "longest_failure_streak": self.longest_failure_streak,
            "sessions": list(self.sessions),
            "lost_sessions": list(self.lost_sessions),
            "tasks_seen": list(self.tasks_seen),
            "sessions_lost": self.losses,
            "stickiness_breaks": self.stickiness_breaks,
            "losses_routed_away": self.losses_routed_away,
            "sessions_closed": len(self.sessions_closed),
            "sessions_not_found_on_close": len(self.sessions_not_found_on_close),
            "close_failures": list(self.close_failures),
            "cookie_mode": self.cookie_mode,
            "transport_errors": self.transport_errors,
            "errors": self.errors,
            "cookie_rotations": self.cookie_rotations,
            "seconds_to_first_loss": first_loss,
        }


def _answer(record: CallRecord) -> str:
    """How the server said the session is gone, e.g. ``404/-32001 (TypeScript SDK 1.x)``."""
    form = record.lost_form or f"{record.http_status}"
    return f"{form} ({record.lost_sdk})" if record.lost_sdk else form
