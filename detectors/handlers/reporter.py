"""Every minute: decide pending losses, publish gauges, send ended deployments' reports."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sessionwatch.detectors.emit import emit
from sessionwatch.detectors.handlers import guard_runtime, runtime
from sessionwatch.detectors.reporter_run import ReporterFailed, ReporterOutcome, run_reporter

logger = runtime.logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, int]:
    """Scheduled by EventBridge; the event's content is not used."""
    if isinstance(event, dict) and isinstance(event.get("id"), str):
        logger.set_correlation_id(event["id"])
    out = ReporterOutcome()
    try:
        run_reporter(
            runtime.config(),
            runtime.ledger(),
            runtime.sns(),
            runtime.cloudwatch(),
            runtime.clock(),
            out,
        )
    finally:
        # Also on an AWS error: what was counted is locked and will not be counted on retry.
        runtime.log_decisions(out.decisions)
        emit(out.points, runtime.config().sessions_lost_resolution_s)
        for report in out.reports:
            logger.info("deployment report sent", extra=report.to_json())
        for what, error in out.failures:
            logger.error("reporter step failed", extra={"step": what, "error": error})
    guard_runtime.act(out.decisions)  # losses the reporter decided late
    if out.failures:  # after everything else was done: Lambda counts the error
        raise ReporterFailed(f"{len(out.failures)} reporter step(s) failed")
    return {
        "decided": sum(1 for d in out.decisions if d.verdict.final),
        # Losses whose facts came late (or that wait for the grace period: unknown, scale_in).
        "counted": sum(1 for d in out.decisions if d.counted),
        "reports": len(out.reports),
    }
