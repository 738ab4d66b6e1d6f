"""One lab run: start everything, play the scenario, let SessionWatch judge, write the report.

The order of a run (each step is one of the lab's modules):

1. the add-on template (``lab.template``), moto and the account wired from it
   (``lab.detectors_runtime``), the OTLP receiver, HAProxy (``lab.haproxy``);
2. the service's first tasks (``lab.cluster``) and the pipeline thread (``lab.pipeline``);
3. probe clients (``sessionwatch.ops.client``) on the asyncio loop, one record per HTTP exchange;
4. the scenario's actions (deployment, crash, or nothing) on a worker thread, so probes keep
   their rhythm while the lab blocks on processes and sockets;
5. settle: wait until every lost session has a verdict and the expected report arrived;
6. alarm replay over the detectors' datapoints (``lab.alarm_replay``), the verdict check
   (``lab.scenarios.check``), the report (``lab.report``).

Everything started is stopped in ``finally`` blocks, also when a step fails; a failure before the
probes start is raised as ``LabStartError`` (exit status 2).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lab.alarm_replay import ALARM, AlarmDefinition, alarms_from_template, replay
from lab.cluster import Cluster
from lab.detectors_runtime import LAMBDA_NAMESPACE, REPORTER_HANDLER, LabAccount, scaled_env
from lab.ecs_events import (
    EcsEvent,
    ServiceRef,
    deployment_event,
    new_deployment_id,
    steady_state_event,
)
from lab.filter_pattern import compile_pattern
from lab.haproxy import HAProxy
from lab.moto import ACCOUNT, MotoServer
from lab.otlp_receiver import OtlpReceiver
from lab.pipeline import Pipeline
from lab.scenarios import (
    ALARM_DEPLOYMENT,
    ALARM_ERRORS_PREFIX,
    ALARM_SPIKE,
    ALARM_STICKINESS,
    Outcome,
    Scenario,
    check,
)
from lab.template import AddonTemplate, LabSettings, synth_addon
from sessionwatch.contract import (
    DIMENSION_CAUSE,
    METRIC_DEPLOYMENT_LOSS_SPIKE,
    METRIC_SESSIONS_LOST,
    Cause,
)
from sessionwatch.ops.client import CallRecord, ProbeClient, ProbeMode, drive


class LabStartError(RuntimeError):
    """A part of the lab (synth, template, moto, HAProxy, the first tasks) did not start.

    Its own type so the command can tell "the lab could not run" (exit 2) from "SessionWatch got
    the scenario wrong" (exit 1); everything already started has been stopped when it is raised.
    """


@dataclass
class RunOptions:
    scenario: Scenario
    sessions: int | None = None
    tasks: int = 2
    interval: float = 1.0
    time_scale: float = 20.0
    deregistration_delay: float = 3.0
    stop_timeout: float = 3.0
    drain_seconds: float = 1.0
    warmup: float = 4.0
    after: float = 4.0
    stale_duration: float = 25.0
    report_dir: Path = Path("lab-report")
    template: Path | None = None
    verbose_probes: int = 2
    keep_workdir: bool = False  # HAProxy config and log, moto log, cdk.out: for debugging
    out: TextIO = field(default_factory=lambda: sys.stdout)


@dataclass
class Recorder:
    """events.jsonl in memory plus the live progress printer (fingerprints only)."""

    start: float
    out: TextIO
    verbose_probes: int
    events: list[dict[str, Any]] = field(default_factory=list)
    printed: list[str] = field(default_factory=list)

    def say(self, text: str) -> None:
        line = f"[{time.time() - self.start:6.1f}s] {text}"
        self.printed.append(line)
        print(line, file=self.out, flush=True)
        self.events.append({"t": time.time(), "kind": "phase", "text": text})

    def call(self, record: CallRecord, index: int) -> None:
        self.events.append({"t": record.time, "kind": "call", **record.to_dict()})
        if index < self.verbose_probes or not record.ok:
            line = f"[{time.time() - self.start:6.1f}s] {record.line()}"
            self.printed.append(line)
            print(line, file=self.out, flush=True)

    def ecs(self, event: EcsEvent) -> None:
        self.events.append(
            {
                "t": event.time,
                "kind": "ecs_event",
                "detail_type": event.detail_type,
                "detail": event.detail,
            }
        )


def alarm_key(alarm: AlarmDefinition) -> str | None:
    """Which of SessionWatch's alarms this is (by metric and Cause dimension)."""
    dims = dict(alarm.dimensions)
    if alarm.metric_name == METRIC_SESSIONS_LOST:
        cause = dims.get(DIMENSION_CAUSE)
        if cause == Cause.DEPLOYMENT.value:
            return ALARM_DEPLOYMENT
        if cause == Cause.STICKINESS.value:
            return ALARM_STICKINESS
    if alarm.metric_name == METRIC_DEPLOYMENT_LOSS_SPIKE:
        return ALARM_SPIKE
    if alarm.namespace == LAMBDA_NAMESPACE and alarm.metric_name == "Errors":
        return ALARM_ERRORS_PREFIX + dims.get("FunctionName", alarm.logical_id)
    return None


@dataclass
class Probes:
    """The lab's clients: N probe loops on the asyncio loop until ``stop`` is set."""

    url: str
    recorder: Recorder
    interval: float
    count: int = 1
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    clients: list[ProbeClient] = field(default_factory=list)

    async def run_one(self, index: int, mode: ProbeMode) -> None:
        """One client with retry logic: a lost session is replaced by a new one."""
        name = f"{'stale' if mode is ProbeMode.STALE_COOKIE else 'probe'}-{index + 1}"
        async with ProbeClient(self.url, mode=mode, name=name) as probe:
            self.clients.append(probe)
            # Spread the first calls over one interval, as independent users would be.
            await asyncio.sleep(self.interval * index / max(1, self.count))
            await drive(
                probe,
                interval=self.interval,
                on_record=lambda record: self.recorder.call(record, index),
                on_lost="reconnect",
                stop=self.stop,
            )

    def raw_ids(self) -> set[str]:
        """Every raw session id the probes were given: only for the leak audit, never written."""
        return {sid for c in self.clients for sid in c.raw_session_ids_for_leak_audit()}


def _announce(rec: Recorder, handler: str, result: object) -> None:
    """Live progress for what the detectors just decided (their handlers' return values)."""
    if not isinstance(result, dict):
        return
    if result.get("counted"):
        rec.say(f"SessionWatch: {result['counted']} lost session(s) counted (SessionsLost)")
    if handler == REPORTER_HANDLER and result.get("decided"):
        rec.say(f"SessionWatch reporter: {result['decided']} pending loss(es) decided")
    if result.get("reports"):
        rec.say(f"SessionWatch reporter: {result['reports']} deployment report(s) sent to SNS")


def _report_facts(message: str) -> dict[str, Any]:
    """The JSON facts line at the end of an SNS deployment report."""
    lines = message.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Facts as JSON:" and i + 1 < len(lines):
            with contextlib.suppress(ValueError):
                facts: dict[str, Any] = json.loads(lines[i + 1])
                return facts
    return {}


async def run(options: RunOptions) -> int:
    """Run one scenario; returns the process exit code (0: SessionWatch got it right)."""
    from lab.report import RunResult, write_report  # matplotlib import only when reporting

    scenario = options.scenario
    sessions = scenario.sessions if options.sessions is None else options.sessions
    start = time.time()
    rec = Recorder(start, options.out, options.verbose_probes)
    settings = LabSettings(
        deregistration_delay_s=int(options.deregistration_delay),
        stop_timeout_s=int(options.stop_timeout),
    )
    rec.say(f"scenario {scenario.name}: {scenario.summary}")
    workdir = Path(tempfile.mkdtemp(prefix="sessionwatch-lab-"))
    ref = ServiceRef("us-east-1", ACCOUNT, settings.cluster, settings.service)
    stack = contextlib.ExitStack()
    cluster: Cluster | None = None
    pipeline: Pipeline | None = None
    started = False
    try:
        if options.template is None:
            rec.say("synthesizing the SessionWatch add-on stack (real CDK synth)")
            template_path = await asyncio.to_thread(synth_addon, workdir / "cdk.out", settings)
        else:
            template_path = options.template
        template = AddonTemplate.load(template_path)
        moto = stack.enter_context(MotoServer(log_path=workdir / "moto.log"))
        account = LabAccount(moto, template, env_overrides=scaled_env(options.time_scale))
        await asyncio.to_thread(account.setup)
        alarms, skipped = alarms_from_template(template.raw, account.refs)
        rec.say(f"moto_server up; {len(alarms)} alarms read from the template")
        receiver = OtlpReceiver().start()
        stack.callback(receiver.stop)
        lb = stack.enter_context(HAProxy(workdir / "haproxy", cookie_maxidle_s=4))

        def emit(event: EcsEvent) -> None:
            rec.ecs(event)
            account.put_ecs_event(event)

        cluster = Cluster(
            ref,
            lb,
            emit,
            rec.say,
            server_env={
                "SESSIONWATCH_SERVICE": settings.service,
                "SESSIONWATCH_DRAIN_SECONDS": str(options.drain_seconds),
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_METRIC_EXPORT_INTERVAL": "1000",
            },
        )
        first_deployment = new_deployment_id()
        await asyncio.to_thread(cluster.launch, options.tasks, first_deployment, "1")
        pipeline = Pipeline(
            account,
            cluster,
            compile_pattern(template.subscription_filter_pattern()),
            settings.log_group,
            receiver,
            reporter_interval=60 / options.time_scale,
            on_invocation=lambda handler, result: _announce(rec, handler, result),
        )
        pipeline.start()
        started = True
        rec.say(f"load balancer {lb.url} with {options.tasks} healthy targets; probes start")

        probes = Probes(
            lb.url + "/mcp", rec, options.interval, count=sessions + scenario.stale_clients
        )
        loops = [asyncio.create_task(probes.run_one(i, scenario.mode)) for i in range(sessions)] + [
            asyncio.create_task(probes.run_one(sessions + i, ProbeMode.STALE_COOKIE))
            for i in range(scenario.stale_clients)
        ]
        deployment_id = await asyncio.to_thread(
            _play, scenario, options, cluster, emit, rec, ref, first_deployment, probes
        )
        probes.stop.set()
        await asyncio.gather(*loops, return_exceptions=True)
        rec.say("probes stopped; waiting for SessionWatch's verdicts")

        calls = [e for e in rec.events if e["kind"] == "call"]
        lost = frozenset(
            e["session"] for e in calls if e["http_status"] == 404 and e["jsonrpc_code"] == -32600
        )
        verdicts, reports = await _settle(account, pipeline, lost, scenario, options.time_scale)
        end = time.time()
        timelines = {
            key: replay(alarm, account.detector_points, start, end, period_scale=options.time_scale)
            for alarm in alarms
            if (key := alarm_key(alarm)) is not None
        }
        fired = frozenset(k for k, tl in timelines.items() if any(e.state == ALARM for e in tl))
        facts = [r.get("facts") or _report_facts(str(r.get("message") or "")) for r in reports]
        checked = [f for f in facts if f.get("spike")]  # reports that carry a metric check
        outcome = Outcome(
            lost_sessions=lost,
            causes={fp: str(v["cause"]) for fp, v in verdicts.items()},
            alarms_fired=fired,
            reports=len(reports),
            report_lost=(sum(int(f.get("sessions_lost") or 0) for f in facts) if reports else None),
            report_spike=any(f.get("spike_detected") is True for f in checked) if checked else None,
        )
        problems = check(scenario, outcome)
        states = lb.states()
        result = RunResult(
            scenario=scenario,
            start=start,
            end=end,
            events=rec.events,
            outcome=outcome,
            verdicts=verdicts,
            timelines=timelines,
            skipped_alarms=skipped,
            reports=[{**r, "facts": f} for r, f in zip(reports, facts, strict=True)],
            problems=problems,
            deployment_id=deployment_id,
            targets={t: s.status for t, s in states.items()},
            lb_5xx=lb.backend_5xx(),
            lb_4xx=sum(s.http_4xx for s in states.values()),
            sessions_opened=len({e["session"] for e in calls if e["session"]}),
            lines_shipped=pipeline.lines_shipped,
            server_points=pipeline.server_points,
            invocation_errors=[i.error for i in account.invocations if i.error],
        )
        for task in cluster.tasks:
            rec.printed.extend(task.process.stdout_lines + task.process.stderr_lines)
        text = write_report(result, options.report_dir, probes.raw_ids(), rec.printed)
        print(text, file=options.out, flush=True)
        return 0 if not result.problems else 1
    except Exception as exc:
        if started:
            raise  # a failure mid-run is a bug in the lab: show its traceback
        raise LabStartError(f"could not start: {exc}") from exc
    finally:
        if pipeline is not None:
            pipeline.stop()
        if cluster is not None:
            await asyncio.to_thread(cluster.shutdown)
        stack.close()
        if not options.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


async def _settle(
    account: LabAccount,
    pipeline: Pipeline,
    lost: frozenset[str],
    scenario: Scenario,
    time_scale: float,
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Wait for SessionWatch to decide every lost session (and send the expected report).

    Bounded by the reporter's grace period plus three scaled reporter runs: a verdict that never
    comes must show up as a verdict problem, not as a lab that hangs. The pipeline is then
    stopped and flushed once more, so the verdicts and SNS reports returned are the final ones.
    """
    reports: list[dict[str, Any]] = []
    grace = float(account.function_env(REPORTER_HANDLER).get("GRACE_PERIOD_SECONDS") or 120)
    deadline = time.time() + grace + 3 * 60 / time_scale + 10
    while time.time() < deadline:
        await asyncio.sleep(0.5)
        verdicts = await asyncio.to_thread(account.verdicts, sorted(lost))
        reports.extend(await asyncio.to_thread(account.reports))
        settled = all(
            fp in verdicts and verdicts[fp].get("cause") != Cause.PENDING.value for fp in lost
        )
        if settled and (reports or not scenario.expect.report_expected):
            break
    pipeline.stop()
    await asyncio.to_thread(pipeline.step, True)
    reports.extend(await asyncio.to_thread(account.reports))
    verdicts = await asyncio.to_thread(account.verdicts, sorted(lost))
    return verdicts, reports


def _play(
    scenario: Scenario,
    options: RunOptions,
    cluster: Cluster,
    emit: Callable[[EcsEvent], None],
    rec: Recorder,
    ref: ServiceRef,
    first_deployment: str,
    probes: Probes,
) -> str | None:
    """The scenario's actions, on a worker thread. Returns the deployment id it rolled out."""
    time.sleep(options.warmup)
    deployment_id: str | None = None
    if scenario.deploy:
        deployment_id = new_deployment_id()
        old = cluster.running()
        emit(deployment_event(ref, deployment_id, "SERVICE_DEPLOYMENT_IN_PROGRESS", time.time()))
        rec.say(f"deployment {deployment_id} IN_PROGRESS: starting {len(old)} replacement(s)")
        cluster.launch(len(old), deployment_id, "2")
        with ThreadPoolExecutor(max_workers=max(1, len(old))) as pool:
            list(
                pool.map(
                    lambda t: cluster.stop(t, options.deregistration_delay, options.stop_timeout),
                    old,
                )
            )
        emit(deployment_event(ref, deployment_id, "SERVICE_DEPLOYMENT_COMPLETED", time.time()))
        emit(steady_state_event(ref, time.time()))
        rec.say(f"deployment {deployment_id} COMPLETED; service steady")
    elif scenario.crash:
        victim = _busiest(cluster, probes)
        cluster.crash(victim)
        rec.say("ECS starts a replacement task for the failed one")
        cluster.launch(1, first_deployment, "1")
    elif scenario.stale_clients:
        deadline = time.time() + options.stale_duration
        while time.time() < deadline:
            losses = [e for e in rec.events if e["kind"] == "call" and e.get("http_status") == 404]
            if losses:
                time.sleep(2 * options.interval)
                break
            time.sleep(0.2)
    time.sleep(options.after)
    return deployment_id


def _busiest(cluster: Cluster, probes: Probes) -> Any:
    """The running task holding the most probe sessions (the crash must hit sessions)."""
    counts: dict[str, int] = {}
    for probe in probes.clients:
        if probe.records and probe.records[-1].task_id:
            task_id = probe.records[-1].task_id
            counts[task_id] = counts.get(task_id, 0) + 1
    running = cluster.running()
    return max(running, key=lambda t: counts.get(t.task_id, 0))
