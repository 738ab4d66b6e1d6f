"""The managed plumbing between the tasks and the detectors, ticking on one background thread.

Every ``tick`` seconds, in this order (so a not-found finds the ECS facts already stored when
both happened in the same tick):

1. EventBridge: what the ECS rule routed to its queue goes to the ECS-events detector;
2. CloudWatch Logs: each task's new stdout lines, filtered by the template's subscription filter
   pattern, go to the session-events detector as one subscription payload per task (log stream
   = task id), as the awslogs driver and the subscription would deliver them;
3. ADOT: new OTLP points become CloudWatch datapoints in moto (``AwsEmfBridge``);
4. the stand-in ALB's own metrics (``lab.alb_metrics``) from HAProxy's counters, every
   ``reporter_interval`` (ALB's 60-second interval, scaled);
5. EventBridge Scheduler: the reporter runs every ``reporter_interval`` seconds (the template's
   ``rate(1 minute)``, scaled).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from lab.alarm_replay import Datapoint
from lab.alb_metrics import AlbMetrics
from lab.cloudwatch import AwsEmfBridge, put_metric_data
from lab.cluster import Cluster
from lab.detectors_runtime import REPORTER_HANDLER, SESSION_HANDLER, LabAccount
from lab.otlp_receiver import OtlpReceiver
from world.server_logs import subscription_payload

SUBSCRIPTION_NAME = "sessionwatch-lab-subscription"


def line_timestamp_ms(line: str, default: float) -> int:
    """The line's own ``timestamp`` (ms), as the awslogs driver stamps at write time."""
    try:
        stamp = json.loads(line).get("timestamp")
        return int(datetime.fromisoformat(str(stamp)).timestamp() * 1000)
    except (ValueError, AttributeError, TypeError):
        return int(default * 1000)


@dataclass
class Pipeline:
    account: LabAccount
    cluster: Cluster
    matches: Callable[[str], bool]
    log_group: str
    receiver: OtlpReceiver
    reporter_interval: float
    tick: float = 0.5
    on_invocation: Callable[[str, object], None] | None = None
    bridge: AwsEmfBridge = field(default_factory=AwsEmfBridge)
    lines_shipped: int = 0
    lines_filtered_out: int = 0
    server_points: int = 0
    server_datapoints: list[Datapoint] = field(default_factory=list)  # the dashboard preview's
    alb: AlbMetrics | None = None
    alb_datapoints: list[Datapoint] = field(default_factory=list)  # alarm replay and preview
    _next_alb: float = 0.0
    _otlp_offset: int = 0
    _next_report: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        self._next_report = time.time() + self.reporter_interval
        self._thread = threading.Thread(target=self._run, name="lab-pipeline", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            self.step()

    def step(self, force_reporter: bool = False) -> None:
        """One tick of every pipe (also called once more at the end of a run)."""
        with self._lock:
            self.account.deliver_ecs_events()
            self._ship_logs()
            self._ship_metrics()
            if self.alb is not None and (force_reporter or time.time() >= self._next_alb):
                self._next_alb = time.time() + self.reporter_interval
                self._ship_alb(self.alb)
            if force_reporter or time.time() >= self._next_report:
                self._next_report = time.time() + self.reporter_interval
                invocation = self.account.invoke(REPORTER_HANDLER, {"id": "lab-schedule"})
                if self.on_invocation:
                    self.on_invocation(REPORTER_HANDLER, invocation.result)

    def backlog(self) -> int:
        """Server lines written but not yet delivered to the session-events function."""
        return sum(len(t.process.stdout_lines) - t.log_offset for t in list(self.cluster.tasks))

    def _ship_logs(self) -> None:
        for task in list(self.cluster.tasks):
            lines = task.process.stdout_lines[task.log_offset :]
            task.log_offset += len(lines)
            selected = [line for line in lines if self.matches(line)]
            self.lines_filtered_out += len(lines) - len(selected)
            if not selected:
                continue
            now = time.time()
            payload = subscription_payload(
                self.log_group,
                f"mcp-server/mcp-server/{task.task_id}",
                SUBSCRIPTION_NAME,
                [(line_timestamp_ms(line, now), line) for line in selected],
                first_id=self.lines_shipped,
            )
            self.lines_shipped += len(selected)
            invocation = self.account.invoke(SESSION_HANDLER, payload)
            if self.on_invocation:
                self.on_invocation(SESSION_HANDLER, invocation.result)

    def _ship_alb(self, alb: AlbMetrics) -> None:
        try:
            points = alb.sample()
        except OSError:  # HAProxy already stopped at the end of a run
            return
        self.alb_datapoints.extend(points)
        put_metric_data(self.account.moto.client("cloudwatch"), points)

    def _ship_metrics(self) -> None:
        points = self.receiver.points()
        fresh = points[self._otlp_offset :]
        self._otlp_offset = len(points)
        if fresh:
            datapoints = self.bridge.convert(fresh)
            self.server_datapoints.extend(datapoints)
            self.server_points += put_metric_data(
                self.account.moto.client("cloudwatch"), datapoints
            )
