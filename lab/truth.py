"""The lab's ground truth, from its own records: where each lost session lived, who replaced it.

The lab knows what SessionWatch has to infer: which task each session was created on (the
client saw every answer) and which deployment replaced which task (the lab played ECS). From
both it counts the losses each deployment caused, which each deployment's SNS report must
match. Pure functions over the run's call records (``CallRecord.to_dict``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from sessionwatch.contract import EVENT_SESSION_CREATED, EVENT_SESSION_REFUSED
from sessionwatch.server.refusal import recognize_refusal


def is_loss(call: Mapping[str, Any]) -> bool:
    """The server said the session is gone, in any SDK's form: the probe's record carries the
    verdict of the one recognizer (``server.lost_session``) as ``session_lost``."""
    return bool(call.get("session_lost"))


def origins(calls: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """Lost session fingerprint -> the task that served it before its first loss."""
    served: dict[str, str] = {}
    found: dict[str, str] = {}
    for call in sorted(calls, key=lambda c: float(c["t"])):
        session, task = call.get("session"), call.get("task_id")
        if not session or session in found:
            continue
        if is_loss(call):
            if session in served:
                found[session] = served[session]
        elif task and call.get("http_status") in (200, 202):
            served[session] = str(task)
    return found


def created_on(task_records: Mapping[str, Iterable[Mapping[str, Any]]]) -> dict[str, str]:
    """Session fingerprint -> the task whose server logged its creation (task id -> JSON lines).

    The server side knows even where a client never saw a successful answer (an initialize
    whose follow-up notification was already lost), so this is the origin the truth uses first.
    """
    found: dict[str, str] = {}
    for task_id, records in task_records.items():
        for record in records:
            if record.get("event") == EVENT_SESSION_CREATED and record.get("session"):
                found.setdefault(str(record["session"]), task_id)
    return found


def losses_by_deployment(
    lost: Iterable[str], origin: Mapping[str, str], replaced_by: Mapping[str, str]
) -> dict[str, int]:
    """Deployment id -> lost sessions whose origin task that deployment replaced."""
    counts = Counter(replaced_by[origin[fp]] for fp in lost if origin.get(fp) in replaced_by)
    return dict(counts)


def open_sessions_by_task(calls: Iterable[Mapping[str, Any]], before: float) -> Counter[str]:
    """Task id -> sessions whose latest answer before ``before`` came from it and was a success
    (the sessions a rollout starting at ``before`` puts at risk)."""
    last: dict[str, tuple[float, str | None]] = {}
    for call in calls:
        t, session = float(call["t"]), call.get("session")
        if session and t < before:
            ok = call.get("http_status") in (200, 202) and call.get("task_id")
            if session not in last or t >= last[session][0]:
                last[session] = (t, str(call["task_id"]) if ok else None)
    return Counter(task for _, task in last.values() if task)


def refused_answers(calls: Iterable[Mapping[str, Any]]) -> int:
    """Initialize answers that refused a new session at the SDK's cap, as the clients saw them
    (the one recognizer, ``server.refusal``, over each record's status and JSON-RPC error)."""
    count = 0
    for call in calls:
        if call.get("tool") != "initialize" or call.get("jsonrpc_code") is None:
            continue
        error = {"code": call["jsonrpc_code"], "message": call.get("jsonrpc_message") or ""}
        body = json.dumps({"jsonrpc": "2.0", "id": None, "error": error})
        if recognize_refusal(call.get("http_status"), body, sent_session=False) is not None:
            count += 1
    return count


def refusals_logged(task_records: Iterable[Iterable[Mapping[str, Any]]]) -> int:
    """``session_refused`` lines the servers wrote (their parsed JSON records)."""
    return sum(
        1 for records in task_records for r in records if r.get("event") == EVENT_SESSION_REFUSED
    )
