"""Chat-ready SessionWatch messages: the Amazon Q Developer in chat applications (formerly AWS
Chatbot) custom-notification schema, an email text, and both as one SNS per-protocol message.

Pure functions over plain data; the reporter's only AWS edge stays its `sns.publish` call:

    sns.publish(**report_publish_request(cfg.report_topic_arn, report))

Why one topic with a per-protocol message (`MessageStructure="json"`) rather than a second topic:
Amazon Q Developer subscribes to the topic over HTTPS, so the `https` key gets the chat JSON,
email subscribers get the `email` text (with the `Subject`), and every other protocol (SQS, Lambda,
email-json, the lab's queue) gets `default`, the same chat JSON: machine-readable, with every fact
of the report in `metadata.additionalContext`. One topic keeps one set of subscriptions, one KMS
key policy and one alarm action list; the CloudWatch alarms publish their own notifications to
the same topic, which Amazon Q Developer renders natively.

Limits: the service documents the fields and their types, not lengths. The bounds below
(`LIMITS`) are SessionWatch's own, chosen under what the platforms document (a Slack text block
holds 3,000 characters; an SNS message at most 256 KB), and every message is cut to fit them, so a
deployment with thousands of replaced tasks still yields a valid notification.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Final, Protocol

VERSION: Final = "1.0"
SOURCE: Final = "custom"
TEXT_TYPE: Final = "client-markdown"
EVENT_REPORT: Final = "SessionWatchDeploymentReport"
EVENT_FOLLOW_UP: Final = "SessionWatchDeploymentFollowUp"
# The message attribute that carries the full report JSON (kept for subscribers that filter on
# it; the same name the reporter used before the chat format).
REPORT_ATTRIBUTE: Final = "sessionwatch_report"
# SNS's own limits: a Subject is at most 100 characters; a message at most 256 KB.
SUBJECT_MAX: Final = 100
SNS_MESSAGE_MAX_BYTES: Final = 262_144

LIMITS: Final = {
    "title": 250,
    "description": 3_000,
    "next_steps": 5,
    "next_step": 500,
    "keywords": 10,
    "keyword": 75,
    "summary": 250,
    "thread_id": 128,
    "event_type": 100,
    "related_resources": 10,
    "related_resource": 1_600,
    "context_entries": 20,
    "context_key": 100,
    "context_value": 1_024,
}
ELLIPSIS: Final = "…"
_THREAD_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Report(Protocol):
    """What the reporter's deployment report offers (`DeploymentReport` today)."""

    def to_json(self) -> dict[str, Any]: ...

    def to_text(self) -> str: ...

    def subject(self) -> str: ...


def clip(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - len(ELLIPSIS)] + ELLIPSIS


def thread_id(service: str, deployment_id: str) -> str:
    """One thread per deployment: readable, restricted to [A-Za-z0-9._-], collision-safe.

    Deployment ids carry `/` (`ecs-svc/123...`); the hash of the exact pair keeps two pairs that
    clean to the same text apart.
    """
    digest = hashlib.sha256(f"{service}\n{deployment_id}".encode()).hexdigest()[:12]
    readable = _THREAD_UNSAFE.sub("-", f"{service}-{deployment_id}").strip("-")
    prefix = clip(f"sessionwatch-{readable}", LIMITS["thread_id"] - len(digest) - 1)
    return f"{prefix.removesuffix(ELLIPSIS)}-{digest}"


def notification(
    *,
    title: str,
    description: str,
    next_steps: Sequence[str],
    keywords: Sequence[str],
    thread: str,
    summary: str,
    event_type: str,
    related_resources: Sequence[str] = (),
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A custom notification with every field cut to `LIMITS` (values of `context` as strings)."""
    entries = list((context or {}).items())[: LIMITS["context_entries"]]
    return {
        "version": VERSION,
        "source": SOURCE,
        "content": {
            "textType": TEXT_TYPE,
            "title": clip(title, LIMITS["title"]),
            "description": clip(description, LIMITS["description"]),
            "nextSteps": [clip(s, LIMITS["next_step"]) for s in next_steps][: LIMITS["next_steps"]],
            "keywords": list(dict.fromkeys(clip(k, LIMITS["keyword"]) for k in keywords if k))[
                : LIMITS["keywords"]
            ],
        },
        "metadata": {
            "threadId": thread,
            "summary": clip(summary, LIMITS["summary"]),
            "eventType": clip(event_type, LIMITS["event_type"]),
            "relatedResources": [clip(r, LIMITS["related_resource"]) for r in related_resources][
                : LIMITS["related_resources"]
            ],
            "additionalContext": {
                clip(str(key), LIMITS["context_key"]): clip(_text(value), LIMITS["context_value"])
                for key, value in entries
            },
        },
    }


def _text(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _seconds(value: Any) -> str:
    return "not configured" if value is None else f"{value} s"


def next_steps_from(advice: str) -> list[str]:
    """The report's advice as separate steps: the clauses after "To lose fewer:"."""
    _, marker, steps = advice.partition("To lose fewer:")
    if not marker:
        return [advice] if advice else []
    items = [part.strip().removeprefix("or ").strip().rstrip(".") for part in steps.split(";")]
    return [item[:1].upper() + item[1:] for item in items if item]


def client_list(clients: Mapping[str, Any]) -> str:
    """Client names (client-supplied ``clientInfo``) as inert chat text: each in code spans, with
    the characters that could end one or open a mention (`` ` ``, ``<``, ``>``) removed."""
    inert = {ord(ch): None for ch in "`<>"}
    return ", ".join(f"`{str(name).translate(inert)}` {n}" for name, n in clients.items())


def report_notification(report: Mapping[str, Any]) -> dict[str, Any]:
    """The per-deployment report (`DeploymentReport.to_json()`) as a custom notification."""
    service = str(report["service"])
    deployment = str(report["deployment_id"])
    lost = int(report.get("sessions_lost") or 0)
    at_risk = int(report.get("sessions_at_risk") or 0)
    replaced = list(report.get("tasks_replaced") or [])
    cliff = report.get("session_cliff_s")
    outcome = report.get("ended") or report.get("outcome") or "unknown outcome"
    strategy = report.get("strategy")
    lock = report.get("lock_out")
    icon = ":rotating_light:" if lost or lock else ":white_check_mark:"
    lines = [
        f"Deployment `{deployment}` of `{service}` ({outcome}), "
        f"{report.get('started_at')} to {report.get('ended_at') or 'not ended'}.",
        f"Strategy: {strategy or 'not known (decided as ROLLING)'}.",
        f"Sessions lost to it: {lost} of {at_risk} at risk; tasks replaced: {len(replaced)}.",
        "Session cliff (deployment start to first loss): "
        + (f"{float(cliff):.0f} s." if cliff is not None else "none."),
        *(
            [f"Losses per traffic step: {report['losses_per_step']}."]
            if report.get("losses_per_step")
            else []
        ),
        *(
            [
                "Clients that held the lost sessions (a sessionless 2026-07-28 server would "
                f"spare them): {client_list(report['clients_lost'])}."
            ]
            if report.get("clients_lost")
            else []
        ),
        f"Deregistration delay: {_seconds(report.get('deregistration_delay_s'))}; "
        f"stop timeout: {_seconds(report.get('stop_timeout_s'))}.",
    ]
    for check in report.get("spike") or []:
        state = "SPIKE" if check.get("spiked") else "no spike"
        lines.append(
            f"Metric check {check.get('label')}: {check.get('window_total')} in the window vs "
            f"{check.get('expected')} expected: {state}."
        )
    if isinstance(lock, Mapping) and lock.get("sentence"):
        lines.append(f":no_entry: {lock['sentence']}")
    for label, key in (("Drain gate", "drain_gate"), ("Stop on loss", "stopped")):
        if report.get(key):
            lines.append(f"{label}: {report[key]}.")
    lines.append(f"Verdict rests on: {report.get('verdict_basis')}.")
    return notification(
        title=f"{icon} {service}: deployment lost {lost} MCP session(s)",
        description="\n".join(lines),
        next_steps=next_steps_from(str(report.get("advice") or "")) if lost or at_risk else [],
        keywords=[service, str(outcome), "deployment", f"lost-{lost}"],
        thread=thread_id(service, deployment),
        summary=f"{service} deployment {deployment}: {lost} session(s) lost, {at_risk} at risk",
        event_type=EVENT_REPORT,
        related_resources=[deployment, *(str(t) for t in replaced)],
        context={
            "service": service,
            "deploymentId": deployment,
            "outcome": outcome,
            "strategy": strategy,
            "sessionsLost": lost,
            "sessionsAtRisk": at_risk,
            "tasksReplaced": len(replaced),
            "sessionCliffSeconds": cliff,
            "startedAt": report.get("started_at"),
            "endedAt": report.get("ended_at"),
            "firstLossAt": report.get("first_loss_at"),
            "spikeDetected": report.get("spike_detected", False),
            "deregistrationDelaySeconds": report.get("deregistration_delay_s"),
            "stopTimeoutSeconds": report.get("stop_timeout_s"),
            "refusedByLoadBalancer": lock.get("refused") if isinstance(lock, Mapping) else 0,
        },
    )


def follow_up_notification(
    *,
    service: str,
    deployment_id: str,
    title: str,
    description: str,
    next_steps: Sequence[str] = (),
    context: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A later message about the same deployment (late losses, a rollback), in its thread."""
    return notification(
        title=f":speech_balloon: {service}: {title}",
        description=description,
        next_steps=next_steps,
        keywords=[service, "deployment", "follow-up"],
        thread=thread_id(service, deployment_id),
        summary=f"{service} deployment {deployment_id}: {title}",
        event_type=EVENT_FOLLOW_UP,
        related_resources=[deployment_id],
        context={"service": service, "deploymentId": deployment_id, **(context or {})},
    )


def sns_message(
    chat: Mapping[str, Any], email_text: str, budget: int = SNS_MESSAGE_MAX_BYTES
) -> str:
    """The per-protocol `Message` for `MessageStructure="json"` (each value a string).

    `https` (Amazon Q Developer's subscription) and `default` (SQS, Lambda, email-json, ...) get
    the chat JSON; `email` gets the readable text. Over `budget` bytes, the email text is cut
    (the chat JSON is already bounded by `LIMITS`).
    """
    chat_json = json.dumps(chat, ensure_ascii=False, sort_keys=True)
    text = email_text
    while True:
        message = json.dumps({"default": chat_json, "https": chat_json, "email": text})
        size = len(message.encode())
        if size <= budget or not text:
            return message
        text = clip(text, max(len(text) - (size - budget) - 64, 1))


def publish_request(
    topic_arn: str,
    chat: Mapping[str, Any],
    *,
    subject: str,
    email_text: str,
    attributes: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `sns.publish`: the per-protocol message, its subject, attributes.

    SNS counts attributes into its 256 KB: an attribute that would not leave room for the
    message is dropped (the chat JSON's `additionalContext` carries the key facts anyway).
    """
    message_attributes: dict[str, Any] = {}
    used = 0
    for name, value in (attributes or {}).items():
        size = len(name.encode()) + len(value.encode()) + len("String")
        if used + size <= SNS_MESSAGE_MAX_BYTES // 2:
            message_attributes[name] = {"DataType": "String", "StringValue": value}
            used += size
    return {
        "TopicArn": topic_arn,
        "Subject": clip(subject, SUBJECT_MAX),
        "MessageStructure": "json",
        "Message": sns_message(chat, email_text, SNS_MESSAGE_MAX_BYTES - used),
        "MessageAttributes": message_attributes,
    }


def report_publish_request(topic_arn: str, report: Report) -> dict[str, Any]:
    """`sns.publish(**report_publish_request(arn, report))`: the report for chat and email."""
    facts = report.to_json()
    return publish_request(
        topic_arn,
        report_notification(facts),
        subject=report.subject(),
        email_text=report.to_text(),
        attributes={REPORT_ATTRIBUTE: json.dumps(facts, sort_keys=True)},
    )
