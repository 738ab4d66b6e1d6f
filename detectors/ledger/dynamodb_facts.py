"""The DynamoDB ledger's fact writes: deployments, hooks, tasks, sessions and parked 404s.

Tag-set merges (``ADD``) for task and deployment facts, immutable batched puts for session
facts: re-delivered or reordered facts write the same items. The service's indexes (live
tasks, stops by time, deployments by start) are kept here, next to the facts they copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sessionwatch.detectors.facts import (
    DeploymentObserved,
    DeploymentSettings,
    HookObserved,
    NotFound,
    SessionClosed,
    SessionCreated,
    TaskFacts,
)
from sessionwatch.detectors.ledger.codec import (
    deployment_tags,
    settings_tags,
    task_from_tags,
    task_tags,
)
from sessionwatch.detectors.ledger.dynamodb_items import (
    CLOSED_PREFIX,
    OPEN_PREFIX,
    PENDING_PK,
    REVISITED_ATTR,
    Item,
    Key,
    deployment_index_key,
    deployment_key,
    deployment_record,
    get_s,
    hook_key,
    key_item,
    live_task_key,
    n_value,
    pending_from_item,
    pending_key,
    s_value,
    session_key,
    stop_key,
    tags_of,
    task_key,
    task_sessions_pk,
)
from sessionwatch.detectors.ledger.dynamodb_reports import DeploymentReports
from sessionwatch.detectors.ledger.records import DeploymentRecord, TaskMerge


class FactWrites(DeploymentReports):
    """What the ECS and session handlers store: facts in, merged records out. A deployment
    not yet reported goes on the reporter's active list (``DeploymentReports``)."""

    def record_deployment(self, obs: DeploymentObserved) -> DeploymentRecord:
        """Merge one deployment event into its item; copy the merged facts to the index."""
        return self._merge_deployment(obs.service, obs.deployment_id, deployment_tags(obs))

    def record_settings(
        self, service: str, deployment_id: str, settings: DeploymentSettings
    ) -> DeploymentRecord:
        """Cache the deployment's one ECS read in its item (and its index copy)."""
        return self._merge_deployment(service, deployment_id, settings_tags(settings))

    def _merge_deployment(
        self, service: str, deployment_id: str, tags: Sequence[str]
    ) -> DeploymentRecord:
        """Facts item first (serialised per item by DynamoDB, so the last writer sees every
        tag), then the same union into the index copy, then the active marker.

        The index item is keyed by the start time, known once IN_PROGRESS was seen; until then
        the facts wait in the facts item and the next event of the deployment copies them.
        """
        merged = self._add_tags(
            deployment_key(service, deployment_id), tags, {"svc": service, "dep": deployment_id}
        )
        record = deployment_record(service, deployment_id, merged)
        if record.window is not None:
            self._add_tags(
                deployment_index_key(service, deployment_id, record.window.started_at),
                tags_of(merged),
                {"svc": service, "dep": deployment_id},
            )
        if not record.report.sent:
            self._put_active(service, deployment_id)
        return record

    def record_hook(self, hook: HookObserved) -> None:
        """A lifecycle stage of the service's deployment in progress, in the service's index."""
        body: Item = {
            "stage": s_value(hook.stage),
            "status": s_value(hook.status),
            "at": n_value(hook.at),
        }
        if hook.service_deployment_arn:
            body["sd_arn"] = s_value(hook.service_deployment_arn[:512])
        self._put(hook_key(hook), body)

    def record_task(self, obs: TaskFacts) -> TaskMerge | None:
        """Merge one task observation; keep the service's live-task and stop indexes."""
        tags = task_tags(obs)
        if not tags:
            return None
        old_item = self._add_tags(task_key(obs.task_id), tags, {}, returns="ALL_OLD")
        merged = task_from_tags(obs.task_id, [*tags_of(old_item), *tags])
        result = TaskMerge(merged, get_s(old_item, REVISITED_ATTR))
        if merged.service is None:
            return result
        began = merged.stop_began
        if began is None:
            self._put(live_task_key(merged.service, merged.task_id), {})
        else:
            self._put(
                stop_key(merged.service, merged.task_id, began),
                {"task_id": s_value(merged.task_id)},
            )
            self._delete(live_task_key(merged.service, merged.task_id))
        return result

    def mark_revisited(self, task_id: str, stop_mark: str) -> None:
        self._db.update_item(
            TableName=self._table,
            Key=key_item(task_key(task_id)),
            UpdateExpression="SET #r = :m",
            ExpressionAttributeNames={"#r": REVISITED_ATTR},
            ExpressionAttributeValues={":m": s_value(stop_mark)},
        )

    def drop_live(self, service: str, task_id: str) -> None:
        self._delete(live_task_key(service, task_id))

    # --- session facts and parked 404s --------------------------------------------------------

    def record_sessions(
        self, created: Iterable[SessionCreated], closed: Iterable[SessionClosed]
    ) -> None:
        """Immutable puts, batched 25 a call (identical re-puts change nothing)."""
        items: dict[Key, Item] = {}
        for c in created:
            items[session_key(c.fingerprint)] = {"task_id": s_value(c.task_id), "at": n_value(c.at)}
            if c.client_name:  # who held it: what going stateless would affect
                items[session_key(c.fingerprint)]["client_name"] = s_value(c.client_name)
            open_key = (task_sessions_pk(c.task_id), OPEN_PREFIX + c.fingerprint)
            items[open_key] = {"at": n_value(c.at)}
        for x in closed:
            closed_key = (task_sessions_pk(x.task_id), CLOSED_PREFIX + x.fingerprint)
            items[closed_key] = {"at": n_value(x.at), "reason": s_value(x.reason or "")}
        self._write([self._item(k, v) for k, v in items.items()], [])

    def store_pending(self, occurrences: Iterable[NotFound]) -> None:
        """Park not-founds the facts do not settle yet; the reporter decides them again."""
        puts = []
        # One put per key: BatchWriteItem refuses a request that names a key twice.
        for nf in {nf.key: nf for nf in occurrences}.values():
            body = {
                "fp": s_value(nf.fingerprint),
                "task_id": s_value(nf.task_id),
                "at": n_value(nf.at),
            }
            if nf.log_service:
                body["log_service"] = s_value(nf.log_service)
            puts.append(self._item(pending_key(nf), body))
        self._write(puts, [])

    def drop_pending(self, occurrences: Iterable[NotFound]) -> None:
        keys = dict.fromkeys(pending_key(nf) for nf in occurrences)
        self._write([], [key_item(k) for k in keys])

    def pending(self) -> list[NotFound]:
        return [nf for item in self._query_all(PENDING_PK) if (nf := pending_from_item(item))]
