"""Names the detectors emit and decide (DESIGN sections 5 and 6).

The dashboard, the alarms, the lab and the tests read these; nothing else spells them out.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Cause(StrEnum):
    """Why a session was lost: the verdict for one `session_not_found` (DESIGN section 5)."""

    DEPLOYMENT = "deployment"
    SCALE_IN = "scale_in"
    TASK_FAILURE = "task_failure"
    INFRASTRUCTURE = "infrastructure"
    STICKINESS = "stickiness"
    EXPIRED = "expired"
    UNKNOWN = "unknown"
    PENDING = "pending"


# CloudWatch metrics (EMF via Powertools Metrics).
NAMESPACE: Final = "SessionWatch"
DIMENSION_SERVICE: Final = "ServiceName"
DIMENSION_CAUSE: Final = "Cause"

METRIC_SESSIONS_LOST: Final = "SessionsLost"
METRIC_SESSIONS_AT_RISK: Final = "SessionsAtRisk"
METRIC_DEPLOYMENTS_IN_PROGRESS: Final = "DeploymentsInProgress"
METRIC_DEPLOYMENT_LOSS_SPIKE: Final = "DeploymentLossSpike"
METRIC_BAD_INPUT: Final = "DetectorBadInput"
METRICS: Final = (
    METRIC_SESSIONS_LOST,
    METRIC_SESSIONS_AT_RISK,
    METRIC_DEPLOYMENTS_IN_PROGRESS,
    METRIC_DEPLOYMENT_LOSS_SPIKE,
    METRIC_BAD_INPUT,
)

# DetectorBadInput is not about one ECS service; it carries this ServiceName value instead.
BAD_INPUT_SERVICE_NAME: Final = "sessionwatch-detectors"
# ServiceName of a lost session whose service could not be told (no ECS facts, no log field).
UNKNOWN_SERVICE_NAME: Final = "unknown"
