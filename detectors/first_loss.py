"""The first-loss alert: one message, as soon as a deployment's first loss is decided, in the
deployment's chat thread (the one its report and follow-ups use: ``chat.thread_id``)."""

from __future__ import annotations

from typing import Any

from sessionwatch.detectors.chat import notification, publish_request, thread_id

EVENT_FIRST_LOSS = "SessionWatchFirstLoss"


def alert_text(service: str, deployment_id: str, losses: int) -> str:
    return f"deployment {deployment_id} of {service} is losing sessions: {losses} so far"


def alert_request(
    topic_arn: str, service: str, deployment_id: str, losses: int, first_loss_at: float | None
) -> dict[str, Any]:
    """``sns.publish(**alert_request(...))``: chat JSON for chat/SQS, text for email."""
    text = alert_text(service, deployment_id, losses)
    chat = notification(
        title=f":warning: {service}: {text}",
        description=(
            f"{text}. SessionWatch decided the first loss of this deployment; the deployment's "
            "report follows in this thread when it ends."
        ),
        next_steps=["Watch the deployment; stop it (StopServiceDeployment) if losses grow"],
        keywords=[service, "deployment", "first-loss"],
        thread=thread_id(service, deployment_id),
        summary=text,
        event_type=EVENT_FIRST_LOSS,
        related_resources=[deployment_id],
        context={
            "service": service,
            "deploymentId": deployment_id,
            "sessionsLost": losses,
            "firstLossAt": first_loss_at,
        },
    )
    return publish_request(
        topic_arn, chat, subject=f"SessionWatch: {text}"[:100], email_text=text + "."
    )
