"""ECS lifecycle hook (POST_PRODUCTION_TRAFFIC_SHIFT) -> the drain gate's answer.

Never raises: ECS rolls a deployment back when its hook fails, and SessionWatch's own failure
must not roll back a good deployment, so any failure answers SUCCEEDED, logged with its
reason and counted in ``DrainGateFailed`` (``detectors/drain_gate.py``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from sessionwatch import contract
from sessionwatch.detectors.drain_gate import (
    BadHookPayload,
    GateSettings,
    GateState,
    failed_open,
    run_gate,
    service_of,
)
from sessionwatch.detectors.emit import emit, service_point
from sessionwatch.detectors.handlers import guard_runtime, runtime

logger = runtime.logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    now = runtime.clock()
    try:
        cfg, gcfg = runtime.config(), guard_runtime.guard_config()
        settings = GateSettings(gcfg.max_hold_s, gcfg.callback_s, cfg.grace_period_s)
        horizon = now - cfg.ledger_ttl_days * 86400
        service, decision = run_gate(
            event, runtime.ledger(), settings, now, horizon, cfg.cluster_name
        )
    except Exception as exc:  # fail open: see the module docstring
        service = _service_or_unknown(event)
        details = event.get("hookDetails") if isinstance(event, dict) else None
        decision = failed_open(GateState.from_details(details), now)
        logger.error(
            contract.GATE_LOG_MESSAGE,
            extra={
                "ecs_service": service,
                "hook_status": decision.status,
                "reason": decision.reason,
                "error": type(exc).__name__,
                "bad_payload": isinstance(exc, BadHookPayload),
            },
        )
        emit([service_point(contract.METRIC_DRAIN_GATE_FAILED, service, 1)])
        return decision.response()
    logger.info(
        contract.GATE_LOG_MESSAGE,
        extra={
            "ecs_service": service,
            "deployment_id": decision.state.deployment_id,
            "hook_status": decision.status,
            "reason": decision.reason,
            "sessions_held": decision.state.held,
            "sessions_live": decision.live,
            "held_s": round(decision.held_s(now), 1),
            "call": decision.state.calls,
            "callback_s": decision.callback_s,
        },
    )
    return decision.response()


def _service_or_unknown(event: Any) -> str:
    try:
        return service_of(event)[1][:255]
    except BadHookPayload:
        return contract.UNKNOWN_SERVICE_NAME
