"""``sessionwatch redrive``: re-feed queued events into the detectors.

Two kinds of queue hold events the detectors did not process: the EventBridge target's
dead-letter queue (the message body IS the event) and a function's on-failure destination
(the body is Lambda's invocation record; the original event is under ``requestPayload``).
Each message's event is handed to the detectors again, in this process (``--function``: the
handler itself, with the environment's ledger settings) or by invoking the deployed function
(``--invoke NAME``), and deleted from the queue only once that succeeded; a message that fails
again stays queued (visible again after its visibility timeout) and the run says why. Receives
long-poll, so the run ends only when the queue is really empty. Re-feeding is safe: the
detectors store facts idempotently and count each lost session once.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sessionwatch.ops.aws_errors import explain
from sessionwatch.server.fingerprint import scrub

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
WAIT_SECONDS = 5  # each receive's long poll (SQS allows 1-20 s); an empty answer ends the run
MAX_REASON = 300

Deliver = Callable[[Any], None]


@dataclass
class RedriveResult:
    received: int = 0
    redriven: int = 0
    failed: int = 0
    unreadable: int = 0
    would_redrive: int = 0  # --dry-run: shown, released, not delivered
    reasons: list[str] = field(default_factory=list)  # why each failed message failed again


@dataclass(frozen=True)
class MessageOutcome:
    """What happened to one queued message (its id is SQS's, not a session id)."""

    message_id: str
    status: str  # redriven, failed, unreadable, would_redrive: a RedriveResult counter
    what: str | None
    reason: str | None

    def line(self) -> str:
        text = f"message {self.message_id}: {self.status.replace('_', ' ')}"
        if self.what:
            text += f" ({self.what})"
        if self.reason:
            text += f": {self.reason}"
        return text


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


class RedriveError(Exception):
    """Redrive could not start. ``kind`` is stable for scripts; the message says what to fix."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def check_queue(sqs: SQSClient, queue_url: str) -> QueueState:
    """The queue exists and may be read: its visibility timeout and what it holds now."""
    with explain("sqs:GetQueueAttributes", queue_url, RedriveError):
        attrs = sqs.get_queue_attributes(
            QueueUrl=queue_url,
            AttributeNames=[
                "VisibilityTimeout",
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
            ],
        ).get("Attributes", {})
    return QueueState(
        visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
        in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
        visibility_timeout=int(attrs.get("VisibilityTimeout", 30)),
    )


@dataclass(frozen=True)
class QueueState:
    visible: int
    in_flight: int  # received by someone (an earlier run) and hidden until their timeout ends
    visibility_timeout: int


def check_local_settings(function: str) -> None:
    """The environment a handler run in this process needs (the detectors' own variables)."""
    try:
        from sessionwatch.detectors.config import ConfigError, load_config

        importlib.import_module(HANDLERS[function])
    except ImportError as exc:
        raise RedriveError(
            "not_installed",
            f"--function needs the detectors ({exc.name} missing): pip install "
            '"sessionwatch[detectors]", or use --invoke FUNCTION_NAME',
        ) from exc
    try:
        load_config()
    except ConfigError as exc:
        raise RedriveError(
            "missing_settings",
            f"--function {function} runs the detector here and needs its settings ({exc}): "
            "export them from the deployed function's environment, or use --invoke FUNCTION_NAME",
        ) from exc


def _why(exc: BaseException) -> str:
    """One line on why a delivery failed, ids scrubbed and bounded."""
    text = f"{type(exc).__name__}: {exc}"
    # The detectors' RecordsFailed carries each failed record's reason and error kind.
    details = [
        f"{getattr(item, 'reason', '?')} ({getattr(item, 'context', {}).get('error', '?')})"
        for item in getattr(exc, "failed", None) or ()
    ]
    if details:
        text += ": " + "; ".join(details)
    return scrub(" ".join(text.split()))[:MAX_REASON]


def _receive(sqs: SQSClient, queue_url: str, batch: int, wait: int, visibility: int) -> Any:
    with explain("sqs:ReceiveMessage", queue_url, RedriveError):
        return sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=batch,
            # Long polling asks every SQS server, so an empty answer means an empty queue; short
            # polling samples a subset and may answer empty while messages are queued (Amazon SQS
            # Developer Guide, "Amazon SQS short and long polling").
            WaitTimeSeconds=wait,
            VisibilityTimeout=visibility,
            MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        ).get("Messages", [])


def redrive(
    sqs: SQSClient,
    queue_url: str,
    deliver: Deliver,
    max_messages: int | None = None,
    *,
    wait_seconds: int = WAIT_SECONDS,
    dry_run: bool = False,
    on_message: Callable[[MessageOutcome], None] | None = None,
) -> RedriveResult:
    """Receive, deliver, delete on success, until a long poll finds the queue empty (or ``max``).

    A message that fails again stays queued (hidden for ``VISIBILITY_TIMEOUT_S``) and is handed
    over once per run. ``dry_run`` delivers nothing: each message is shown, then all are released.
    """
    result = RedriveResult()
    seen: set[str] = set()  # a message failing again may come back within this run: once each
    held: list[str] = []  # --dry-run: receipt handles to release at the end
    try:
        while max_messages is None or result.received < max_messages:
            batch = 10 if max_messages is None else min(10, max_messages - result.received)
            messages = _receive(sqs, queue_url, batch, wait_seconds, VISIBILITY_TIMEOUT_S)
            fresh = [m for m in messages if m.get("MessageId") not in seen]
            if not fresh:
                break
            if dry_run:
                held += [m["ReceiptHandle"] for m in fresh if "ReceiptHandle" in m]
            _handle_all(sqs, queue_url, fresh, deliver, dry_run, seen, result, on_message)
    finally:
        for handle in held:  # shown, not taken: visible again at once
            with explain("sqs:ChangeMessageVisibility", queue_url, RedriveError):
                sqs.change_message_visibility(
                    QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0
                )
    return result


def _handle_all(
    sqs: SQSClient,
    queue_url: str,
    fresh: list[Any],
    deliver: Deliver,
    dry_run: bool,
    seen: set[str],
    result: RedriveResult,
    on_message: Callable[[MessageOutcome], None] | None,
) -> None:
    for message in fresh:
        seen.add(message.get("MessageId", ""))
        result.received += 1
        outcome = _handle(sqs, queue_url, message, deliver, dry_run)
        setattr(result, outcome.status, getattr(result, outcome.status) + 1)
        if outcome.status == "failed":
            result.reasons.append(outcome.reason or "")
        if on_message is not None:
            on_message(outcome)


def _handle(
    sqs: SQSClient, queue_url: str, message: Any, deliver: Deliver, dry_run: bool
) -> MessageOutcome:
    message_id = str(message.get("MessageId", "?"))
    try:
        event = original_event(message.get("Body", ""))
    except ValueError as exc:
        return MessageOutcome(message_id, "unreadable", None, _why(exc))  # not ours to drop
    what = describe_event(event)
    if dry_run:
        return MessageOutcome(message_id, "would_redrive", what, None)
    try:
        deliver(event)
    except Exception as exc:
        return MessageOutcome(message_id, "failed", what, _why(exc))
    with explain("sqs:DeleteMessage", queue_url, RedriveError):
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return MessageOutcome(message_id, "redriven", what, None)


def describe_event(event: Any) -> str:
    """What a queued event is, without its contents: an ECS event's type and time, or a batch."""
    if isinstance(event, dict) and "detail-type" in event:
        return f"{event.get('detail-type')} at {event.get('time', '?')}"
    if isinstance(event, dict) and "awslogs" in event:
        return "a batch of session log lines (CloudWatch Logs subscription)"
    if isinstance(event, dict) and event.get("source") == "aws.events":
        return "a reporter schedule tick"
    return f"an event of type {type(event).__name__}"
