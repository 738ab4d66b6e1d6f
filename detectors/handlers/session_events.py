"""CloudWatch Logs subscription (server session events) -> session facts and verdicts."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sessionwatch.detectors.emit import emit
from sessionwatch.detectors.handlers import guard_runtime, runtime
from sessionwatch.detectors.ingest import Outcome, ingest_log_payload

logger = runtime.logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, int]:
    """Store the payload's facts, decide its not-founds, emit SessionsLost for new losses.

    A not-found whose facts are in hand is decided and counted here, within the invocation.
    """
    if context is not None and getattr(context, "aws_request_id", None):
        logger.set_correlation_id(context.aws_request_id)
    out = Outcome()
    try:
        ingest_log_payload(event, runtime.config(), runtime.ledger(), runtime.clock(), out)
    finally:
        # Also on an AWS error: what was counted is locked and will not be counted on retry.
        runtime.log_bad_input(out.bad)
        runtime.log_failed(out.failed)
        runtime.log_decisions(out.decisions)
        emit(out.metric_points(), runtime.config().sessions_lost_resolution_s)
    guard_runtime.act(out.decisions)  # first-loss alert, stop on loss (once each)
    out.raise_failures()  # after the rest of the batch: Lambda retries, then queues it
    return {
        "stored": out.stored,
        "decided": sum(1 for d in out.decisions if d.verdict.final),
        "counted": sum(1 for d in out.decisions if d.counted),
        "bad_input": len(out.bad),
    }
