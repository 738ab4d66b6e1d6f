"""The lab's AWS account in moto, wired from the template, and the detectors invoked in it.

``LabAccount`` creates in ``moto_server`` what the add-on stack would create (the ledger table
with the template's keys and TTL, the SNS topic) plus what the lab reads back through (an SQS
queue subscribed to the topic; an EventBridge rule with the template's ECS pattern and an SQS
target), and invokes the real handlers in this process with each function's environment from
the template. Lambda's own part is imitated: one invocation at a time per handler, a context
object, and stdout captured the way Lambda ships it to CloudWatch Logs (the EMF lines in it
become CloudWatch datapoints, ``lab.cloudwatch.emf_datapoints``).

All invocations happen on ONE thread (the lab's pipeline thread): the handlers' lazily built
singletons are per "container", and a real Lambda container also runs one event at a time.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lab.alarm_replay import Datapoint
from lab.cloudwatch import emf_datapoints, put_metric_data
from lab.moto import ACCOUNT, MotoServer
from lab.template import HANDLER_PREFIX, AddonTemplate
from sessionwatch.detectors.config import SPIKE_PERIOD_ENV
from world.ecs import EcsEvent
from world.harness import route_ecs_reads

ECS_HANDLER = HANDLER_PREFIX + "ecs_events.handler"
SESSION_HANDLER = HANDLER_PREFIX + "session_events.handler"
REPORTER_HANDLER = HANDLER_PREFIX + "reporter.handler"
GATE_HANDLER = HANDLER_PREFIX + "drain_gate.handler"
TABLE_NAME = "sessionwatch-lab-ledger"
TOPIC_NAME = "sessionwatch-lab-topic"
LAMBDA_NAMESPACE = "AWS/Lambda"


def scaled_env(time_scale: float) -> dict[str, str]:
    """What the lab changes in every function's template environment: scaled AWS constants.

    The spike check's CloudWatch period is 60 s in AWS and not an add-on setting, so the
    template does not carry it; a lab running ``time_scale`` times faster needs it as short as
    its reporter schedule and alarm periods (whole seconds, at least 1), or a deployment of a
    few seconds would be a fraction of one bucket.
    """
    return {SPIKE_PERIOD_ENV: str(max(1, round(60 / time_scale)))}


@dataclass
class LambdaContextStub:
    """The attributes Powertools reads from a Lambda context object."""

    function_name: str
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "lab"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:{self.function_name}"


class _LineSink(io.TextIOBase):
    """A stdout stand-in collecting whole lines (what Lambda forwards to CloudWatch Logs)."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._partial = ""

    def write(self, text: str) -> int:
        self._partial += text
        *done, self._partial = self._partial.split("\n")
        self.lines.extend(line for line in done if line.strip())
        return len(text)

    def writable(self) -> bool:
        return True


@dataclass
class Invocation:
    """One handler call: what it returned (or raised) and what it printed."""

    handler: str
    time: float
    result: Any
    error: str | None
    lines: list[str]
    duration: float = 0.0  # seconds the handler ran (Lambda's Duration)


@dataclass
class LabAccount:
    """moto resources from the template, and the three detectors invoked against them."""

    moto: MotoServer
    template: AddonTemplate
    env_overrides: dict[str, str] = field(default_factory=dict)  # on top of the template's
    refs: dict[str, str] = field(default_factory=dict)
    invocations: list[Invocation] = field(default_factory=list)
    detector_points: list[Datapoint] = field(default_factory=list)
    _handlers: dict[str, Callable[[Any, Any], Any]] = field(default_factory=dict)
    _env: dict[str, dict[str, str]] = field(default_factory=dict)
    _sink: _LineSink = field(default_factory=_LineSink)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _last_env: dict[str, str] = field(default_factory=dict)
    function_names: dict[str, str] = field(default_factory=dict)
    # The ECS APIs stop-on-loss calls (moto has none): the lab's ECS play answers them.
    ecs_api: Any = None
    report_queue: str = ""
    ecs_queue: str = ""

    def setup(self) -> None:
        """Create the table, topic, queues and rule; resolve every function's environment."""
        ddb = self.moto.client("dynamodb")
        table_id, table = self.template.table()
        ddb.create_table(
            TableName=TABLE_NAME,
            AttributeDefinitions=table["AttributeDefinitions"],
            KeySchema=table["KeySchema"],
            BillingMode=table.get("BillingMode", "PAY_PER_REQUEST"),
        )
        ttl = table.get("TimeToLiveSpecification")
        if ttl:
            ddb.update_time_to_live(TableName=TABLE_NAME, TimeToLiveSpecification=ttl)
        sns = self.moto.client("sns")
        topic_arn = sns.create_topic(Name=TOPIC_NAME)["TopicArn"]
        self.refs.update(
            {
                "AWS::Partition": "aws",
                "AWS::Region": self.moto.region,
                "AWS::AccountId": ACCOUNT,
                "AWS::URLSuffix": "amazonaws.com",
                table_id: TABLE_NAME,
                self.template.topic_id(): topic_arn,
            }
        )
        sqs = self.moto.client("sqs")
        self.report_queue = sqs.create_queue(QueueName="lab-reports")["QueueUrl"]
        report_arn = sqs.get_queue_attributes(
            QueueUrl=self.report_queue, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=report_arn)
        self.ecs_queue = sqs.create_queue(QueueName="lab-ecs-events")["QueueUrl"]
        ecs_arn = sqs.get_queue_attributes(QueueUrl=self.ecs_queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        events = self.moto.client("events")
        events.put_rule(
            Name="sessionwatch-lab-ecs-events",
            EventPattern=json.dumps(self.template.ecs_event_pattern(self.refs)),
            State="ENABLED",
        )
        events.put_targets(
            Rule="sessionwatch-lab-ecs-events", Targets=[{"Id": "queue", "Arn": ecs_arn}]
        )
        for logical_id, props in self.template.resources("AWS::Lambda::Function").items():
            handler = str(props.get("Handler"))
            # Lambda's own metrics name a function by its physical name: the lab picks one.
            name = "sessionwatch-lab-" + handler.removeprefix(HANDLER_PREFIX).split(".")[0]
            self.refs[logical_id] = name
            self.function_names[handler] = name
        for handler in (ECS_HANDLER, SESSION_HANDLER, REPORTER_HANDLER, GATE_HANDLER):
            if handler == GATE_HANDLER and handler not in self.function_names:
                continue  # a template without the drain gate
            env = self.template.function_env(handler, self.refs)
            self._env[handler] = {**env, **self.env_overrides}
        self._load_handlers()

    def function_env(self, handler: str) -> dict[str, str]:
        return dict(self._env[handler])

    def _load_handlers(self) -> None:
        # The handlers' Logger binds sys.stdout when its module is imported: import them with
        # stdout pointed at the sink, so their log lines land where Lambda's would.
        env = {**self._env[SESSION_HANDLER], **self.moto.env()}
        with self._environment(env), contextlib.redirect_stdout(self._sink):
            from sessionwatch.detectors.handlers import (
                drain_gate,
                ecs_events,
                guard_runtime,
                reporter,
                runtime,
                session_events,
            )

            runtime.reset()
            guard_runtime.reset()
            if self.ecs_api is not None:
                api = self.ecs_api
                guard_runtime.ecs = lambda: api
                route_ecs_reads(runtime, api)  # the strategy read (moto has no played service)
        self._handlers = {
            ECS_HANDLER: ecs_events.handler,
            SESSION_HANDLER: session_events.handler,
            REPORTER_HANDLER: reporter.handler,
            GATE_HANDLER: drain_gate.handler,
        }

    @contextlib.contextmanager
    def _environment(self, env: dict[str, str]) -> Iterator[None]:
        # Under the moto server's env_lock: the lab's other threads make their clients under it.
        with self.moto.env_lock:
            saved = {k: os.environ.get(k) for k in env}
            os.environ.update(env)
            try:
                yield
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value

    def invoke(self, handler: str, event: Any) -> Invocation:
        """Call ``handler`` once with its template environment; never raises."""
        from sessionwatch.detectors.handlers import guard_runtime, runtime

        with self._lock:
            env = {**self._env[handler], **self.moto.env()}
            start = len(self._sink.lines)
            began = time.monotonic()
            result: Any = None
            error: str | None = None
            with self._environment(env), contextlib.redirect_stdout(self._sink):
                if env != self._last_env:
                    runtime.reset()  # another function's environment: another "container"
                    guard_runtime.reset()
                    self._last_env = env
                try:
                    context = LambdaContextStub(self.function_names.get(handler, handler))
                    result = self._handlers[handler](event, context)
                except Exception as exc:  # a crashing handler is a finding, not a lab crash
                    error = f"{type(exc).__name__}: {exc}"
            lines = self._sink.lines[start:]
            invocation = Invocation(
                handler, time.time(), result, error, lines, time.monotonic() - began
            )
            self.invocations.append(invocation)
            points = [p for line in lines for p in emf_datapoints(line)]
            points += self._lambda_metrics(handler, invocation)
            self.detector_points.extend(points)
            if points:
                put_metric_data(self.moto.client("cloudwatch"), points)
            if error:
                print(f"[lab] {handler} raised {error}", file=sys.stderr)
            return invocation

    def _lambda_metrics(self, handler: str, invocation: Invocation) -> list[Datapoint]:
        """``AWS/Lambda`` Invocations and Errors, as Lambda itself publishes per invocation."""
        dims = (("FunctionName", self.function_names.get(handler, handler)),)
        return [
            Datapoint(LAMBDA_NAMESPACE, "Invocations", dims, invocation.time, 1.0),
            Datapoint(
                LAMBDA_NAMESPACE, "Errors", dims, invocation.time, float(bool(invocation.error))
            ),
        ]

    def put_ecs_event(self, event: EcsEvent) -> None:
        """Put an ECS event on the default bus; the template's rule routes it (or not)."""
        answer = self.moto.client("events").put_events(Entries=[event.as_entry()])
        if answer.get("FailedEntryCount"):
            raise RuntimeError(f"EventBridge refused an ECS event: {answer}")

    def deliver_ecs_events(self) -> int:
        """What the rule delivered, each event handed to the ECS-events detector."""
        delivered = 0
        for event in self._drain(self.ecs_queue):
            # moto's SQS target drops the envelope's `account`; EventBridge always sets it.
            if isinstance(event, dict):
                event.setdefault("account", ACCOUNT)
            self.invoke(ECS_HANDLER, event)
            delivered += 1
        return delivered

    def reports(self) -> list[dict[str, Any]]:
        """SNS messages that reached the report queue: subject, message (for a queue, the chat
        notification JSON: SNS delivers the per-protocol message's `default`), the report's
        facts from its `sessionwatch_report` attribute (None when absent), and the whole SNS
        envelope exactly as the topic delivered it (``lab-report/sns-messages.jsonl``)."""
        return [
            {
                "subject": envelope.get("Subject"),
                "message": envelope.get("Message"),
                "facts": _report_attribute(envelope),
                "envelope": envelope,
                "received_at": time.time(),
            }
            for envelope in self._drain(self.report_queue)
        ]

    def _drain(self, queue_url: str) -> Iterator[Any]:
        """Every message body waiting on ``queue_url``, parsed, until the queue is empty.

        A message is deleted only once the caller is done with it, so one whose handling raised
        stays queued, as with Lambda's SQS event source.
        """
        sqs = self.moto.client("sqs")
        while True:
            messages = sqs.receive_message(
                QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return
            for message in messages:
                yield json.loads(message["Body"])
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    def verdicts(self, fingerprints: list[str]) -> dict[str, dict[str, Any]]:
        """The ledger's decided verdict per lost session fingerprint (absent: none yet).

        A session is counted once, to its earliest 404: its lock not taken back (the earliest
        lock when every one was).
        """
        from sessionwatch.detectors.ledger import DynamoDBLedger

        ledger = DynamoDBLedger(self.moto.client("dynamodb"), TABLE_NAME, 14)
        found: dict[str, dict[str, Any]] = {}
        for fp in fingerprints:
            locks = ledger.session_locks(fp)
            live = [x for x in locks if x.retracted_at is None] or locks
            lock = min(live, key=lambda x: x.at, default=None)
            if lock:
                found[fp] = {k: v for k, v in vars(lock).items() if v is not None} | {
                    "cause": lock.cause.value
                }
        return found


def _report_attribute(envelope: Any) -> dict[str, Any] | None:
    """The facts the reporter attaches as the `sessionwatch_report` message attribute."""
    from sessionwatch.detectors.chat import REPORT_ATTRIBUTE

    attribute = ((envelope or {}).get("MessageAttributes") or {}).get(REPORT_ATTRIBUTE) or {}
    try:
        facts = json.loads(attribute.get("Value") or "null")
    except ValueError:
        return None
    return facts if isinstance(facts, dict) else None
