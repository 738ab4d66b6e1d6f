"""The SIGTERM drain budget: what must fit in a task's ``stopTimeout`` (no uvicorn needed).

The server (``runner.DrainingServer``) spends it and the audit checks a task definition against it,
so both read these numbers from here. ECS sends SIGTERM, then SIGKILL after ``stopTimeout``
(default 30 s, at most 120 s): drain + graceful shutdown + the final metric flush must fit.
"""

from __future__ import annotations

DEFAULT_DRAIN_SECONDS = 10.0
DEFAULT_GRACEFUL_SECONDS = 5.0
FLUSH_ALLOWANCE_SECONDS = 3.0
ECS_DEFAULT_STOP_TIMEOUT = 30.0


def check_drain_budget(
    drain_seconds: float, graceful_seconds: float, stop_timeout: float
) -> str | None:
    """A warning when drain + graceful shutdown + final flush would not fit in ``stop_timeout``."""
    need = drain_seconds + graceful_seconds + FLUSH_ALLOWANCE_SECONDS
    if need >= stop_timeout:
        return (
            f"drain {drain_seconds:g}s + graceful {graceful_seconds:g}s + flush "
            f"{FLUSH_ALLOWANCE_SECONDS:g}s = {need:g}s does not fit in "
            f"stopTimeout {stop_timeout:g}s"
        )
    return None
