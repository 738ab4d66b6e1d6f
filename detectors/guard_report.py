"""The report's lines about the deployment guards: what the drain gate did, whether
SessionWatch stopped the deployment. Reads the deployment's guard items (one Query) and, when
the gate ran, its loss entries (one more)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sessionwatch.detectors import drain_gate, stop_on_loss
from sessionwatch.detectors.guard_store import GATE, GUARD_PREFIX, STOP, guards_from_items
from sessionwatch.detectors.ledger_items import LOST_PREFIX, deployment_pk

QueryFn = Callable[[str, str], list[Any]]  # Ledger.query(pk, sk_prefix)


def guard_lines(query: QueryFn, service: str, deployment_id: str) -> tuple[str | None, str | None]:
    """(drain gate line, stop line), each None when that guard did nothing here."""
    pk = deployment_pk(service, deployment_id)
    guards = guards_from_items(query(pk, GUARD_PREFIX))
    gate_line = stop_line = None
    if GATE in guards:
        lost = {str(i["sk"]["S"]).removeprefix(LOST_PREFIX) for i in query(pk, LOST_PREFIX)}
        gate_line = drain_gate.report_line(guards[GATE], lost)
    if STOP in guards:
        stop_line = stop_on_loss.report_line(guards[STOP])
    return gate_line, stop_line
