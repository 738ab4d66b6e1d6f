"""The detectors' ledger: a small typed interface (``LedgerStore``) and two implementations.

``DynamoDBLedger`` is what the Lambdas use; ``InMemoryLedger`` has the same semantics for the
tests, the lab and the benchmark. Records in and out (``records``); the item layout
(``dynamodb_items``) never leaves this package.
"""

from sessionwatch.detectors.ledger.dynamodb import DynamoDBLedger
from sessionwatch.detectors.ledger.dynamodb_items import TABLE_SCHEMA
from sessionwatch.detectors.ledger.interface import LedgerStore
from sessionwatch.detectors.ledger.memory import InMemoryLedger
from sessionwatch.detectors.ledger.records import (
    DEPLOYMENT_QUERY_LIMIT,
    MAX_GUARD_FINGERPRINTS,
    DeploymentLoss,
    DeploymentRecord,
    Guard,
    GuardRecord,
    GuardValue,
    IndexEntry,
    IndexRequest,
    LockClaim,
    LossLock,
    ReadWave,
    TaskMerge,
    WaveResult,
)

__all__ = [
    "DEPLOYMENT_QUERY_LIMIT",
    "MAX_GUARD_FINGERPRINTS",
    "TABLE_SCHEMA",
    "DeploymentLoss",
    "DeploymentRecord",
    "DynamoDBLedger",
    "Guard",
    "GuardRecord",
    "GuardValue",
    "InMemoryLedger",
    "IndexEntry",
    "IndexRequest",
    "LedgerStore",
    "LockClaim",
    "LossLock",
    "ReadWave",
    "TaskMerge",
    "WaveResult",
]
