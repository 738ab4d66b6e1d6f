"""The DynamoDB ledger's reads of facts: one read wave per decision, and the reporter's reads.

``read`` answers a whole ``ReadWave`` (sessions, tasks, closes, deployment locks and index
queries) in ONE round trip of parallel BatchGetItem and Query calls; the other reads are single
Queries of one partition (``read_round_trips`` counts each, for the tests and the cost benchmark).
"""

from __future__ import annotations

from collections.abc import Iterable

from sessionwatch.contract import Cause
from sessionwatch.detectors.facts import DeploymentWindow, SessionSpan, TaskFacts
from sessionwatch.detectors.ledger.codec import sortable, windows_from_entries
from sessionwatch.detectors.ledger.dynamodb_items import (
    DEP_INDEX_PREFIX,
    LIVE_PREFIX,
    STOP_PREFIX,
    closed_from_item,
    closed_key,
    get_s,
    index_entry,
    index_upper,
    lock_from_item,
    lost_key,
    origin_from_item,
    service_pk,
    session_key,
    spans_from_items,
    task_from_item,
    task_key,
    task_sessions_pk,
)
from sessionwatch.detectors.ledger.dynamodb_table import DynamoDBTable, Query
from sessionwatch.detectors.ledger.records import IndexRequest, ReadWave, WaveResult


def index_query(req: IndexRequest) -> Query:
    """The service's deployment index, by start time (``IndexRequest``'s bounds)."""
    lo = DEP_INDEX_PREFIX if req.since is None else DEP_INDEX_PREFIX + sortable(req.since)
    return Query(service_pk(req.service), lo, index_upper(req.upto), req.since is None, req.limit)


class FactReads(DynamoDBTable):
    """Facts out, as records: origins, tasks, closes, deployment windows, indexes."""

    def read(self, wave: ReadWave) -> WaveResult:
        keys = [*map(session_key, wave.sessions), *map(task_key, wave.tasks)]
        keys += [closed_key(t, fp) for t, fp in wave.closes]
        keys += [lost_key(fp, Cause.DEPLOYMENT) for fp in wave.deployment_locks]
        queries = {index_query(r): r for r in dict.fromkeys(wave.indexes)}
        found, results = self._wave(keys, queries)
        origins = {}
        for fp in wave.sessions:
            origin = origin_from_item(found.get(session_key(fp)))
            if origin is not None:
                origins[fp] = origin
        tasks = {}
        for t in wave.tasks:
            facts = task_from_item(found.get(task_key(t)))
            if facts is not None:
                tasks[t] = facts
        indexes = {
            queries[q]: [e for item in items if (e := index_entry(item))]
            for q, items in results.items()
        }
        closes = {}
        for t, fp in wave.closes:
            close = closed_from_item(found.get(closed_key(t, fp)) or {"sk": {"S": ""}})
            if close is not None:
                closes[fp] = close
        locks = {}
        for fp in wave.deployment_locks:
            item = found.get(lost_key(fp, Cause.DEPLOYMENT))
            lock = lock_from_item(item) if item else None
            if lock is not None:
                locks[fp] = lock
        return WaveResult(origins, tasks, indexes, closes, locks)

    def tasks(self, task_ids: Iterable[str]) -> dict[str, TaskFacts]:
        found, _ = self._wave(task_key(t) for t in task_ids)
        out = {}
        for item in found.values():
            facts = task_from_item(item)
            if facts is not None:
                out[facts.task_id] = facts
        return out

    def live_tasks(self, service: str) -> list[str]:
        items = self._query_all(service_pk(service), LIVE_PREFIX)
        return [i["sk"]["S"].removeprefix(LIVE_PREFIX) for i in items]

    def stops_between(self, service: str, lo: float, hi: float) -> list[str]:
        """Tasks of the service that stopped (or began draining) in [lo, hi]."""
        items = self._query_counted(
            Query(service_pk(service), STOP_PREFIX + sortable(lo), STOP_PREFIX + sortable(hi) + "~")
        )
        return sorted({get_s(i, "task_id") or "" for i in items} - {""})

    def task_sessions(self, task_id: str) -> list[SessionSpan]:
        return spans_from_items(self._query_all(task_sessions_pk(task_id)))

    def deployments_before(self, service: str, at: float, limit: int) -> list[DeploymentWindow]:
        items = self._query_counted(index_query(IndexRequest(service, at, limit)))
        return windows_from_entries(e for item in items if (e := index_entry(item)))

    def windows_of(self, service: str, lo: float, hi: float) -> list[DeploymentWindow]:
        items = self._query_counted(index_query(IndexRequest(service, hi, None, since=lo)))
        return windows_from_entries(e for item in items if (e := index_entry(item)))
