"""CloudWatch Logs subscription (server session events) -> session facts and verdicts."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from detectors.emit import emit
from detectors.handlers import runtime
from detectors.ingest import ingest_log_payload

logger = runtime.logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, int]:
    """Store the payload's facts, decide its not-founds, emit SessionsLost once per session."""
    if context is not None and getattr(context, "aws_request_id", None):
        logger.set_correlation_id(context.aws_request_id)
    out = ingest_log_payload(event, runtime.config(), runtime.ledger(), runtime.clock())
    runtime.log_bad_input(out.bad)
    for d in out.decisions:
        logger.info(
            "session loss decided" if d.verdict.final else "session loss pending",
            extra={
                "session": d.occurrence.fingerprint,
                "cause": d.verdict.cause.value,
                "ecs_service": d.verdict.service,
                "origin_task": d.verdict.origin_task,
                "serving_task": d.occurrence.task_id,
                "deployment_id": d.verdict.deployment_id,
                "basis": d.verdict.basis,
                "counted": d.counted,
            },
        )
    emit(out.metric_points())
    return {
        "stored": out.stored,
        "decided": sum(1 for d in out.decisions if d.verdict.final),
        "counted": sum(1 for d in out.decisions if d.counted),
        "bad_input": len(out.bad),
    }
