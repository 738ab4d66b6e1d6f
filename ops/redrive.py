"""``sessionwatch redrive``: re-feed queued events into the detectors.

Two kinds of queue hold events the detectors did not process: the EventBridge target's
dead-letter queue (the message body IS the event) and a function's on-failure destination
(the body is Lambda's invocation record; the original event is under ``requestPayload``).
Each message's event is handed to the detectors again, in this process (``--function``: the
handler itself, with the environment's ledger settings) or by invoking the deployed function
(``--invoke NAME``), and deleted from the queue only once that succeeded; a message that fails
again stays queued (visible again after its visibility timeout). Re-feeding is safe: the
detectors store facts idempotently and count each lost session once per cause.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_sqs import SQSClient
else:
    LambdaClient = SQSClient = Any

HANDLERS = {
    "ecs_events": "sessionwatch.detectors.handlers.ecs_events",
    "session_events": "sessionwatch.detectors.handlers.session_events",
}
VISIBILITY_TIMEOUT_S = 60

Deliver = Callable[[Any], None]


@dataclass
class RedriveResult:
    received: int = 0
    redriven: int = 0
    failed: int = 0
    unreadable: int = 0


class InvokeFailed(RuntimeError):
    """The function answered with a FunctionError."""


def original_event(body: str) -> Any:
    """The event a queued message carries: a DLQ body is the event itself, an on-failure
    destination record carries it under ``requestPayload``."""
    doc = json.loads(body)
    if isinstance(doc, dict) and "requestPayload" in doc and "requestContext" in doc:
        return doc["requestPayload"]
    return doc


class _Context:
    """The LambdaContext attributes Powertools reads, for a handler run in this process."""

    function_name = "sessionwatch-redrive"
    memory_limit_in_mb = 128
    invoked_function_arn = "arn:aws:lambda:local:000000000000:function:sessionwatch-redrive"

    def __init__(self, request_id: str) -> None:
        self.aws_request_id = request_id


def local_delivery(function: str) -> Deliver:
    """Call the named detector handler in this process (it reads its settings from the env)."""
    handler = importlib.import_module(HANDLERS[function]).handler

    def deliver(event: Any) -> None:
        handler(event, _Context("redrive"))

    return deliver


def invoke_delivery(client: LambdaClient, function_name: str) -> Deliver:
    """Invoke the deployed function synchronously; a FunctionError counts as a failure."""

    def deliver(event: Any) -> None:
        resp = client.invoke(
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(event).encode(),
        )
        if resp.get("FunctionError"):
            raise InvokeFailed(f"{function_name}: {resp['FunctionError']}")

    return deliver


def redrive(
    sqs: SQSClient, queue_url: str, deliver: Deliver, max_messages: int | None = None
) -> RedriveResult:
    """Receive, deliver, delete on success, until the queue shows nothing (or ``max``)."""
    result = RedriveResult()
    seen: set[str] = set()  # a message failing again may come back within this run: once each
    while max_messages is None or result.received < max_messages:
        batch = 10 if max_messages is None else min(10, max_messages - result.received)
        messages = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=batch,
            WaitTimeSeconds=0,
            VisibilityTimeout=VISIBILITY_TIMEOUT_S,
        ).get("Messages", [])
        fresh = [m for m in messages if m.get("MessageId") not in seen]
        if not fresh:
            return result
        for message in fresh:
            seen.add(message.get("MessageId", ""))
            result.received += 1
            try:
                event = original_event(message.get("Body", ""))
            except ValueError:
                result.unreadable += 1  # left queued: not ours to drop
                continue
            try:
                deliver(event)
            except Exception:
                result.failed += 1
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            result.redriven += 1
    return result
