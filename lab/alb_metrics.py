"""The stand-in ALB's own CloudWatch metrics, from HAProxy's counters (moto computes none).

ALB publishes to ``AWS/ApplicationELB`` (ELB guide, "CloudWatch metrics for your Application
Load Balancer"); the lab publishes the ones the lock-out needs, with ALB's dimensions and
reporting criteria, read from HAProxy's ``show stat`` each ``sample``:

- ``HTTPCode_ELB_503_Count`` ("HTTP 503 error codes that originate from the load balancer";
  dimensions ``LoadBalancer`` and ``AvailabilityZone, LoadBalancer``; reported when non-zero;
  Sum): HAProxy's own 5xx per backend (the backend's ``hrsp_5xx`` less its servers'), which in
  the lab are its "no server available" 503s. The lab has one zone and publishes the
  ``LoadBalancer`` series.
- ``RequestCount`` (dimensions ``LoadBalancer``, ``AvailabilityZone, LoadBalancer`` and
  ``TargetGroup, LoadBalancer``; Sum): the frontend's ``req_tot`` per load balancer and each
  backend's answered requests per target group.
- ``HealthyHostCount`` / ``UnHealthyHostCount`` (dimensions ``TargetGroup, LoadBalancer`` and
  ``TargetGroup, AvailabilityZone, LoadBalancer``): servers UP / DOWN per group. A deregistered
  target (``MAINT``) is neither, as "when you deregister a target, it decreases
  HealthyHostCount but does not increase UnHealthyHostCount" (health checks page).

ALB sends its metrics "in 60-second intervals" and only "when requests are flowing"; the lab
samples every scaled period (60 s / time scale), and sends the host counts only in a sample
where requests flowed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from lab.alarm_replay import Datapoint
from lab.haproxy import HAProxy
from lab.template import LabSettings

ALB_NAMESPACE = "AWS/ApplicationELB"
LAB_LOAD_BALANCER = LabSettings.load_balancer_full_name


def target_group_name(group: str) -> str:
    """The lab's CloudWatch dimension value for one HAProxy backend (a target group)."""
    return f"targetgroup/{group}/haproxy"


@dataclass
class AlbMetrics:
    """Turns HAProxy's cumulative counters into per-sample deltas, as ALB's datapoints."""

    lb: HAProxy
    load_balancer: str = LAB_LOAD_BALANCER
    _last: dict[tuple[str, str], float] = field(default_factory=dict)

    def sample(self, now: float | None = None) -> list[Datapoint]:
        now = time.time() if now is None else now
        rows = self.lb._rows()
        lb_dims = (("LoadBalancer", self.load_balancer),)
        points: list[Datapoint] = []

        def delta(key: tuple[str, str], current: float) -> float:
            previous = self._last.get(key, 0.0)
            self._last[key] = current
            return max(0.0, current - previous)

        def count(metric: str, dims: tuple[tuple[str, str], ...], value: float) -> None:
            if value > 0:  # ALB's reporting criterion for counts: there is a non-zero value
                points.append(Datapoint(ALB_NAMESPACE, metric, dims, now, value))

        frontend = rows.get(("alb", "FRONTEND"), {})
        requests = delta(("lb", "req_tot"), float(frontend.get("req_tot") or 0))
        count("RequestCount", lb_dims, requests)
        elb_503 = 0.0
        for group in self.lb.groups:
            servers = [r for (px, sv), r in rows.items() if px == group and sv.startswith("slot")]
            backend = rows.get((group, "BACKEND"), {})
            own_5xx = int(backend.get("hrsp_5xx") or 0) - sum(
                int(r.get("hrsp_5xx") or 0) for r in servers
            )
            elb_503 += delta((group, "own_5xx"), float(max(0, own_5xx)))
            answered = sum(
                int(backend.get(f"hrsp_{k}") or 0) for k in ("1xx", "2xx", "3xx", "4xx", "5xx")
            )
            tg_dims = (
                ("LoadBalancer", self.load_balancer),
                ("TargetGroup", target_group_name(group)),
            )
            count("RequestCount", tg_dims, delta((group, "answered"), float(answered)))
            if requests > 0:
                up = sum(1 for r in servers if str(r.get("status", "")).startswith("UP"))
                down = sum(1 for r in servers if str(r.get("status", "")).startswith("DOWN"))
                points.append(Datapoint(ALB_NAMESPACE, "HealthyHostCount", tg_dims, now, up))
                points.append(Datapoint(ALB_NAMESPACE, "UnHealthyHostCount", tg_dims, now, down))
        count("HTTPCode_ELB_503_Count", lb_dims, elb_503)
        return points
