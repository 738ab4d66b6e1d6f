"""The report's lines about the deployment guards: what the drain gate did, whether
SessionWatch stopped the deployment. Reads the deployment's guard records (one query) and,
when the gate ran, its loss entries (one more)."""

from __future__ import annotations

from sessionwatch.detectors import drain_gate, stop_on_loss
from sessionwatch.detectors.ledger import Guard, LedgerStore
from sessionwatch.detectors.rules import owned_fingerprints


def guard_lines(
    ledger: LedgerStore, service: str, deployment_id: str
) -> tuple[str | None, str | None]:
    """(drain gate line, stop line), each None when that guard did nothing here."""
    guards = ledger.guards_of(service, deployment_id)
    gate_line = stop_line = None
    if Guard.GATE in guards:
        lost = owned_fingerprints(ledger.deployment_losses(service, deployment_id), deployment_id)
        gate_line = drain_gate.report_line(guards[Guard.GATE].fields, lost)
    if Guard.STOP in guards:
        stop_line = stop_on_loss.report_line(guards[Guard.STOP].fields)
    return gate_line, stop_line
