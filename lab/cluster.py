"""The lab's "ECS service": server processes as tasks behind HAProxy, moved in ECS's order.

Each task is a real ``python -m server`` process (``lab.task_process.ServerTask``) with its own
ECS metadata stub, so it knows its task ARN exactly as on Fargate. The operations are the steps
ECS and the ALB take, each reported as the ECS event AWS would send:

- ``launch``: start tasks, wait until the load balancer's health check passes, register them
  (task ``RUNNING``);
- ``stop``: deregister (HAProxy ``maint``, task ``desiredStatus STOPPED``), wait the
  deregistration delay, close what is still open, SIGTERM, SIGKILL after the stop timeout (task
  ``STOPPED``, ``ServiceSchedulerInitiated``, naming the deployment that started the task);
- ``crash``: SIGKILL out of the blue; the health check takes the target out and ECS reports
  ``EssentialContainerExited``.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from lab.ecs_metadata import EcsMetadataStub
from lab.haproxy import HAProxy
from lab.task_process import ServerTask
from world.ecs import (
    STOP_ESSENTIAL_EXIT,
    STOP_SCHEDULER,
    EcsEvent,
    ServiceRef,
    TaskRecord,
    scheduler_stop_reason,
    task_event,
)

Emit = Callable[[EcsEvent], None]
Say = Callable[[str], None]


@dataclass
class LabTask:
    """One running (or stopped) task: ECS's record, its metadata stub and its process."""

    record: TaskRecord
    stub: EcsMetadataStub
    process: ServerTask
    state: str = "running"
    log_offset: int = 0

    @property
    def task_id(self) -> str:
        return self.record.task_id

    @property
    def short(self) -> str:
        return self.task_id[:8]


@dataclass
class Cluster:
    """Tasks of one service behind one load balancer; every step emits its ECS event."""

    ref: ServiceRef
    lb: HAProxy
    emit: Emit
    say: Say
    server_env: dict[str, str]
    tasks: list[LabTask] = field(default_factory=list)
    capacity_provider: str = "FARGATE"  # FARGATE_SPOT: the service runs on Fargate Spot
    # How one task's process starts (its environment given): the reference server by default,
    # or an MCP server of another language behind the sidecar (``lab.task_process.SidecarTask``).
    start_task: Callable[[dict[str, str]], ServerTask] = field(
        default=lambda env: ServerTask(env=env).start()
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def running(self) -> list[LabTask]:
        return [t for t in self.tasks if t.state == "running"]

    def _start_one(self, started_by: str, revision: str) -> LabTask:
        task_id = secrets.token_hex(16)
        stub = EcsMetadataStub(
            task_id=task_id,
            cluster=self.ref.cluster,
            family=self.ref.family,
            revision=revision,
            region=self.ref.region,
            account=self.ref.account,
            service_name=self.ref.service,
        ).start()
        record = TaskRecord(
            task_id,
            started_by,
            revision,
            created_at=time.time(),
            capacity_provider=self.capacity_provider,
        )
        env = {**self.server_env, "ECS_CONTAINER_METADATA_URI_V4": stub.uri}
        try:
            process = self.start_task(env)
        except Exception:
            stub.stop()
            raise
        task = LabTask(record, stub, process)
        with self._lock:
            self.tasks.append(task)
        return task

    def launch(
        self, count: int, started_by: str, revision: str, group: str | None = None
    ) -> list[LabTask]:
        """Start ``count`` tasks in parallel into target ``group``, registered once healthy."""
        with ThreadPoolExecutor(max_workers=max(1, count)) as pool:
            started = list(pool.map(lambda _: self._start_one(started_by, revision), range(count)))
        for task in started:
            assert task.process.port is not None
            self.lb.register(task.task_id, task.process.port, group=group)
        for task in started:
            self.lb.wait_status(task.task_id, "UP")
            task.record.started_at = time.time()
            self.emit(task_event(self.ref, task.record, "RUNNING", "RUNNING", time.time()))
            self.say(f"task {task.short} RUNNING (revision {revision}), registered and healthy")
        return started

    def launch_unhealthy(self, count: int, started_by: str, revision: str) -> list[LabTask]:
        """Start ``count`` tasks of a broken revision: their process hangs (SIGSTOP) at start.

        The container runs (task ``RUNNING``), the load balancer's real health check times out
        (the target never leaves DOWN, so no request reaches it), and ECS stops the task for
        failing its ELB health checks: what a revision that deadlocks at start does on ECS.
        """
        with ThreadPoolExecutor(max_workers=max(1, count)) as pool:
            started = list(pool.map(lambda _: self._start_one(started_by, revision), range(count)))
        for task in started:
            assert task.process.port is not None
            task.process.signal(signal.SIGSTOP)
            self.lb.register(task.task_id, task.process.port)
            task.record.started_at = time.time()
            self.emit(task_event(self.ref, task.record, "RUNNING", "RUNNING", time.time()))
            self.say(f"task {task.short} RUNNING (revision {revision}), hangs: health checks fail")
        return started

    def fail_health_checks(self, task: LabTask, wait: float) -> None:
        """ECS stops a task whose target stayed unhealthy for ``wait`` seconds."""
        time.sleep(wait)
        status = self.lb.states()[task.task_id].status
        if status.startswith("UP"):
            raise RuntimeError(f"task {task.short} passed its health check; it should hang")
        self.lb.deregister(task.task_id)
        task.record.stopping_at = time.time()
        task.record.stop_code = STOP_SCHEDULER
        task.record.stopped_reason = (
            f"Task failed ELB health checks in (target-group {self.lb.group_of[task.task_id]})"
        )
        task.state = "draining"
        self.emit(task_event(self.ref, task.record, "RUNNING", "STOPPED", time.time()))
        task.process.kill()
        task.record.exit_code = 137
        self._stopped(task)

    def stop(
        self,
        task: LabTask,
        deregistration_delay: float,
        stop_timeout: float,
        stop_code: str = STOP_SCHEDULER,
        reason: str | None = None,
    ) -> None:
        """Replace-by-deployment stop (or a Spot interruption's), in ECS's order (docstring)."""
        now = time.time()
        task.state = "draining"
        self.lb.deregister(task.task_id)
        task.record.stopping_at = now
        task.record.stop_code = stop_code
        task.record.stopped_reason = reason or scheduler_stop_reason(task.record)
        self.emit(task_event(self.ref, task.record, "RUNNING", "STOPPED", now))
        self.say(f"task {task.short} deregistering (maint); delay {deregistration_delay:g} s")
        time.sleep(deregistration_delay)
        self.lb.shutdown_sessions(task.task_id)
        self.say(f"task {task.short} SIGTERM; SIGKILL after {stop_timeout:g} s")
        task.process.signal(signal.SIGTERM)
        try:
            task.record.exit_code = task.process.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            task.process.kill()
            task.record.exit_code = 137
        self._stopped(task)

    def crash(self, task: LabTask) -> None:
        """The container dies (SIGKILL); the health check and ECS notice on their own."""
        self.say(f"task {task.short} CRASHES (SIGKILL)")
        task.process.kill()
        task.record.exit_code = 137
        task.record.stop_code = STOP_ESSENTIAL_EXIT
        task.record.stopped_reason = "Essential container in task exited"
        self.lb.wait_status(task.task_id, "DOWN")
        self.lb.deregister(task.task_id)
        self._stopped(task)

    def _stopped(self, task: LabTask) -> None:
        task.state = "stopped"
        task.record.stopped_at = time.time()
        task.stub.stop()
        self.emit(task_event(self.ref, task.record, "STOPPED", "STOPPED", time.time()))
        self.say(f"task {task.short} STOPPED (exit {task.record.exit_code})")

    def shutdown(self) -> None:
        """Stop every process and stub still alive (end of run, also after a failure)."""
        for task in self.tasks:
            if task.process.returncode is None:
                task.process.signal(signal.SIGTERM)
        for task in self.tasks:
            try:
                task.process.wait(timeout=5)
            except (subprocess.TimeoutExpired, AssertionError):
                task.process.kill()
            task.stub.stop()
