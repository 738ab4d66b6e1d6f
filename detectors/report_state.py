"""The per-deployment report's state machine: claimed -> sent -> follow-up due -> follow-up.

Plain data and pure transitions; both ledgers (``detectors.ledger``) apply exactly these, the
DynamoDB one as conditional updates of the deployment's item, the in-memory one directly.

    (none) --claim--> claimed --publish ok: mark_sent--> sent
       ^                 |  publish failed: release          |
       +-----------------+                                    | a fact changed the report:
    a claim older than the stale limit may be claimed again   v flag_followup
                                   sent + followup_due --claim_followup--> sent (follow-up out)

A follow-up is claimed at most once per ``every_s``; its claim clears ``followup_due``, so one
follow-up covers every late fact up to it. ``sent_end`` is how the deployment ended as the last
report said (``end_mark``): a later end event that differs brings a follow-up.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class ReportState:
    """Where a deployment's report stands (all None: nothing claimed or sent yet)."""

    claim_at: float | None = None
    sent_at: float | None = None
    sent_end: str | None = None
    followup_due: float | None = None
    followup_at: float | None = None

    @property
    def sent(self) -> bool:
        return self.sent_at is not None

    @property
    def wants_followup(self) -> bool:
        return self.followup_due is not None


def end_mark(ended_at: float | None, outcome: str | None) -> str:
    """How a deployment ended, as a sent report said it."""
    return f"{ended_at!r}|{outcome}"


def end_changed(state: ReportState, ended_at: float | None, outcome: str | None) -> bool:
    """A sent report said another end than the one now known (SUPERSEDED, now FAILED)."""
    return state.sent and end_mark(ended_at, outcome) != state.sent_end


def can_claim(state: ReportState, now: float, stale_s: float) -> bool:
    """Not sent, and unclaimed or claimed longer than ``stale_s`` ago (a reporter died)."""
    return not state.sent and (state.claim_at is None or state.claim_at < now - stale_s)


def claimed(state: ReportState, now: float) -> ReportState:
    return replace(state, claim_at=now)


def released(state: ReportState) -> ReportState:
    return replace(state, claim_at=None)


def marked_sent(state: ReportState, now: float, end: str) -> ReportState:
    return replace(state, sent_at=now, sent_end=end, claim_at=None)


def can_flag_followup(state: ReportState) -> bool:
    """Only a sent report can be followed up (an unsent one will include the fact anyway)."""
    return state.sent


def flagged(state: ReportState, now: float) -> ReportState:
    due = state.followup_due if state.followup_due is not None else now
    return replace(state, followup_due=due)


def can_claim_followup(state: ReportState, now: float, every_s: float) -> bool:
    return state.followup_due is not None and (
        state.followup_at is None or state.followup_at < now - every_s
    )


def followup_claimed(state: ReportState, now: float, end: str) -> ReportState:
    return replace(state, followup_at=now, sent_end=end, followup_due=None)
