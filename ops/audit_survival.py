"""When a sticky MCP session dies in a rolling deployment: the one model of the audit and the lab.

AWS documents it: "Elastic Load Balancing stops sending requests to targets that are
deregistering" (ELBv2 User Guide, deregistration delay). The deregistration delay only lets
requests already in flight finish; the stop timeout only bounds how long the task may run after
SIGTERM. So a session pinned to a task dies at its first request after that task begins
draining, whatever the delay and the stop timeout: it survives its task's draining start by
nothing but the client's own gap to its next request. What decides *when* that happens after a
deployment starts is the wave its task is in (minimumHealthyPercent / maximumPercent, task
count) and how long replacements take to become healthy.

The background experiment's finding 4 read the deregistration delay as the survival window;
its own numbers (300 s delay, sessions lost ~61 s and ~3.5 min after the trigger) fit this
model as well: the loss came when the replacement was healthy and the old task deregistered.

``python -m lab --sweep`` measures it on real HAProxy and server processes, and
``tests/lab/test_lab_sweep.py`` checks the measurement against this model within
``TOLERANCE_S`` plus one client interval. Pure functions, no AWS calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

ELB_DEREGISTERING = (
    "Elastic Load Balancing stops sending requests to targets that are deregistering"
)
# Seconds a session survives after its task begins draining, before its next request: none.
SURVIVES_DRAINING_S = 0.0
# How far a measured loss may trail its task's draining start beyond the client's own request
# gap: the load balancer applying the state change, and the request's own latency on a loaded
# machine. The lab's sweep test asserts it.
TOLERANCE_S = 1.5


def tasks_per_wave(desired: int, minimum_healthy_percent: int, maximum_percent: int) -> int:
    """Old tasks a rolling update stops at once: ECS may run ``max%`` and must keep ``min%``."""
    if desired <= 0:
        return 0
    max_running = math.floor(desired * maximum_percent / 100)
    min_healthy = math.ceil(desired * minimum_healthy_percent / 100)
    return max(0, min(desired, max_running - min_healthy))


def starts_replacements_first(desired: int, maximum_percent: int, per_wave: int) -> bool:
    """True when maximumPercent leaves room to start a whole wave's replacements before any
    old task stops (e.g. 200 %); False when old tasks must stop first (e.g. 100 %)."""
    return math.floor(desired * maximum_percent / 100) - desired >= per_wave > 0


@dataclass(frozen=True)
class Rollout:
    """What the model needs: the service's shape and the times a wave takes."""

    desired: int
    minimum_healthy_percent: int = 100
    maximum_percent: int = 200
    deregistration_delay_s: float = 300.0
    stop_s: float = 30.0  # SIGTERM to the task STOPPED: at most the stop timeout
    replacement_ready_s: float = 60.0  # a replacement's start to healthy in the target group


def drain_starts(r: Rollout) -> list[float]:
    """Seconds after the deployment starts at which each wave's old tasks begin draining.

    Replacements first (maximumPercent allows): wave k drains once its replacements are
    healthy, ``k * replacement_ready_s``. Old tasks first: wave 1 drains at once; the next
    wave once the previous wave's tasks stopped (delay + stop) and their replacements are
    healthy.
    """
    per_wave = tasks_per_wave(r.desired, r.minimum_healthy_percent, r.maximum_percent)
    if per_wave == 0:
        return []
    waves = math.ceil(r.desired / per_wave)
    if starts_replacements_first(r.desired, r.maximum_percent, per_wave):
        return [k * r.replacement_ready_s for k in range(1, waves + 1)]
    cycle = r.deregistration_delay_s + r.stop_s + r.replacement_ready_s
    return [k * cycle for k in range(waves)]


def predicted_loss_window(drain_start_s: float, client_gap_s: float) -> tuple[float, float]:
    """Where a pinned session's loss falls, after the deployment starts: from its task's
    draining start to its next request (``client_gap_s``, plus ``TOLERANCE_S``)."""
    begin = drain_start_s + SURVIVES_DRAINING_S
    return begin, begin + client_gap_s + TOLERANCE_S
