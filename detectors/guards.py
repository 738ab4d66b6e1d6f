"""What the detectors do the moment a deployment loss is decided: the first-loss alert and
stop on loss, each at most once per deployment (``LedgerStore.claim_guard``).

Called by the handlers with the verdicts of their invocation. Every final ``deployment``
verdict triggers a look, counted or not: a retried invocation (whose losses are already
counted) must still be able to finish a stop or an alert that failed. A failed action gives
its claim back, is logged and counted (``GuardActionFailed``), and is tried again by the next
verdict of that deployment or by the invocation's retry (the handler raises at its end).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from sessionwatch import contract
from sessionwatch.contract import Cause
from sessionwatch.detectors import first_loss, stop_on_loss
from sessionwatch.detectors.classify import Decision
from sessionwatch.detectors.config import Config
from sessionwatch.detectors.emit import MetricPoint, service_point
from sessionwatch.detectors.guard_config import GuardConfig
from sessionwatch.detectors.ledger import Guard, LedgerStore
from sessionwatch.detectors.rules import owned_losses

LOOKBACK_S = 86400.0


@dataclass
class GuardOutcome:
    logs: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    points: list[MetricPoint] = field(default_factory=list)


def losing_deployments(decisions: Iterable[Decision]) -> list[tuple[str, str]]:
    """(service, deployment) of every final ``deployment`` verdict, once each, in order."""
    seen: dict[tuple[str, str], None] = {}
    for d in decisions:
        v = d.verdict
        if v.final and v.cause is Cause.DEPLOYMENT and v.service and v.deployment_id:
            seen.setdefault((v.service, v.deployment_id), None)
    return list(seen)


def act_on_losses(
    decisions: Iterable[Decision],
    cfg: Config,
    gcfg: GuardConfig,
    ledger: LedgerStore,
    ecs: Any,
    sns: Any,
    now: float,
    out: GuardOutcome | None = None,
) -> GuardOutcome:
    out = GuardOutcome() if out is None else out
    if not gcfg.acts_on_losses:
        return out
    for service, dep in losing_deployments(decisions):
        try:
            _one(service, dep, cfg, gcfg, ledger, ecs, sns, now, out)
        except Exception as exc:  # a ledger read failed: the retry looks again
            _failed(out, service, dep, "read", exc)
    return out


def _one(
    service: str,
    dep: str,
    cfg: Config,
    gcfg: GuardConfig,
    ledger: LedgerStore,
    ecs: Any,
    sns: Any,
    now: float,
    out: GuardOutcome,
) -> None:
    losses = owned_losses(ledger.deployment_losses(service, dep), dep)
    if not losses:
        return  # the locks name another deployment
    first = losses[0]
    base = {"ecs_service": service, "deployment_id": dep, "losses": len(losses)}
    if gcfg.first_loss_alert and cfg.report_topic_arn:
        fields = {"at": now, "losses": len(losses), "first_loss_at": first}
        if ledger.claim_guard(service, dep, Guard.ALERT, fields):
            try:
                sns.publish(
                    **first_loss.alert_request(
                        cfg.report_topic_arn, service, dep, len(losses), first
                    )
                )
            except Exception as exc:
                ledger.release_guard(service, dep, Guard.ALERT)
                _failed(out, service, dep, "first-loss alert", exc)
            else:
                out.logs.append(
                    (contract.ALERT_LOG_MESSAGE, base | {"first_loss_to_alert_s": now - first})
                )
    if gcfg.stop_on_loss and len(losses) >= gcfg.stop_on_loss:
        windows = ledger.windows_of(service, first - LOOKBACK_S, now + 5)
        window = next((w for w in windows if w.deployment_id == dep), None)
        if not stop_on_loss.should_stop(window, len(losses), gcfg.stop_on_loss):
            return
        assert window is not None
        if not ledger.claim_guard(service, dep, Guard.STOP, {"claimed_at": now}):
            return
        try:
            arn = stop_on_loss.stop(ecs, cfg.cluster_name, window)
        except Exception as exc:
            ledger.release_guard(service, dep, Guard.STOP)
            _failed(out, service, dep, "StopServiceDeployment", exc)
            return
        ledger.update_guard(
            service,
            dep,
            Guard.STOP,
            {"stopped_at": now, "losses": len(losses), "first_loss_at": first, "arn": arn},
        )
        out.points.append(service_point(contract.METRIC_DEPLOYMENTS_STOPPED, service, 1))
        out.logs.append(
            (
                contract.STOP_LOG_MESSAGE,
                base | {"threshold": gcfg.stop_on_loss, "first_loss_to_stop_s": now - first},
            )
        )


def _failed(out: GuardOutcome, service: str, dep: str, what: str, exc: Exception) -> None:
    code = exc.response["Error"]["Code"] if isinstance(exc, ClientError) else type(exc).__name__
    out.failures.append(
        {"ecs_service": service, "deployment_id": dep, "action": what, "error": code}
    )
    out.points.append(service_point(contract.METRIC_GUARD_FAILED, service, 1))
