"""EventBridge ``aws.ecs`` events -> deployments, hook stages and task facts in the ledger."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sessionwatch.detectors.emit import emit
from sessionwatch.detectors.handlers import guard_runtime, runtime
from sessionwatch.detectors.ingest import Outcome, ingest_ecs_events

logger = runtime.logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, int]:
    """One EventBridge event per invocation; bad ones are counted, never raised.

    A ledger failure is counted and logged, then raised, so EventBridge's retry policy (and
    after it the dead-letter queue) keeps the event.
    """
    if isinstance(event, dict) and isinstance(event.get("id"), str):
        logger.set_correlation_id(event["id"])
    out = Outcome()
    try:
        cfg, ledger = runtime.config(), runtime.ledger()
        ingest_ecs_events([event], cfg, ledger, runtime.ecs(), out, runtime.clock())
    finally:
        runtime.log_decisions(out.decisions)  # verdicts a late stop fact revised
        runtime.log_bad_input(out.bad)
        runtime.log_failed(out.failed)
        emit(out.metric_points(), runtime.config().sessions_lost_resolution_s)
    guard_runtime.act(out.decisions)  # first-loss alert, stop on loss (once each)
    out.raise_failures()
    logger.debug("ecs event processed", extra={"stored": out.stored, "ignored": out.ignored})
    return {"stored": out.stored, "ignored": out.ignored, "bad_input": len(out.bad)}
