"""Former home of the attribution rules, now ``detectors.rules``: re-exported for callers
outside the detectors (benchmarks, tests, older imports). Nothing in ``detectors/`` imports it."""

from sessionwatch.detectors.facts import (
    CLOCK_SKEW_S,
    SCHEDULER_STOP,
    SUPERSEDED,
    DeploymentWindow,
    NotFound,
    SessionOrigin,
    TaskFacts,
    Verdict,
    close_superseded,
    reason_marks,
    rollback_target,
)
from sessionwatch.detectors.rules import (
    ROLLOUT_WAIT_S,
    belongs_to,
    decide,
    merge_windows,
    replaces,
    stop_category,
    stopper,
)

__all__ = [
    "CLOCK_SKEW_S",
    "ROLLOUT_WAIT_S",
    "SCHEDULER_STOP",
    "SUPERSEDED",
    "DeploymentWindow",
    "NotFound",
    "SessionOrigin",
    "TaskFacts",
    "Verdict",
    "belongs_to",
    "close_superseded",
    "decide",
    "merge_windows",
    "reason_marks",
    "replaces",
    "rollback_target",
    "stop_category",
    "stopper",
]
