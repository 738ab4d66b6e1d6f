"""The DynamoDB ledger: every call the detectors make to their table (``LedgerStore``).

The item layout lives in ``dynamodb_items`` and the fact merges in ``codec`` (both pure); the
calls are split by job, each module readable in one sitting:

| module              | job                                                              |
|---------------------|------------------------------------------------------------------|
| ``dynamodb_table``  | the client, TTL, and the call shapes (merge, put, conditional     |
|                     | update, earliest-wins update, batch write, one read wave)         |
| ``dynamodb_facts``  | task, deployment, hook and session facts; parked 404s            |
| ``dynamodb_reads``  | the decision's read wave, the reporter's index and task reads    |
| ``dynamodb_losses`` | count locks and deployment loss entries                          |
| ``dynamodb_reports``| the reporter's active list and the report's state transitions    |
| ``dynamodb_guards`` | the deployment guards' claims and records                        |

Why mixins over one ``DynamoDBTable`` rather than composed helpers: every job shares one
client, one table name, one TTL and one ``read_round_trips`` counter, and the public surface
is one object (``LedgerStore``); composed helpers would need a delegating method per call
(thirty one-line forwards) and a shared counter passed around. Each mixin inherits only the
table core, so mypy checks it against the primitives it uses and no job calls another's
private state (the one exception is explicit: recording a deployment puts it on the reporter's
active list, so ``FactWrites`` extends ``DeploymentReports``). This module decides nothing.
"""

from __future__ import annotations

from sessionwatch.detectors.ledger.dynamodb_facts import FactWrites
from sessionwatch.detectors.ledger.dynamodb_guards import GuardRecords
from sessionwatch.detectors.ledger.dynamodb_losses import LossLocks
from sessionwatch.detectors.ledger.dynamodb_reads import FactReads

__all__ = ["DynamoDBLedger"]


class DynamoDBLedger(FactWrites, FactReads, LossLocks, GuardRecords):
    """``LedgerStore`` over one DynamoDB table; no decisions are made here.

    ``DynamoDBLedger(client, table_name, ttl_days)``; ``read_round_trips`` counts read waves.
    """
