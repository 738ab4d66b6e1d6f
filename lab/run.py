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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from lab import alarm_latency
from lab.alarm_replay import ALARM, AlarmDefinition, Datapoint, alarms_from_template, replay
from lab.alb_metrics import ALB_NAMESPACE, AlbMetrics
from lab.cluster import Cluster
from lab.dashboard_preview import DashboardData
from lab.detectors_runtime import (
    GATE_HANDLER,
    LAMBDA_NAMESPACE,
    REPORTER_HANDLER,
    LabAccount,
    scaled_env,
)
from lab.ecs_api import LabEcsApi
from lab.ecs_play import Played, Stage, blue_green, circuit_breaker, one_task_stops, rolling
from lab.filter_pattern import compile_pattern
from lab.forkserver import ForkServer
from lab.haproxy import BACKEND, HAProxy, cookie_lifetime_s
from lab.moto import ACCOUNT, MotoServer
from lab.otlp_receiver import OtlpReceiver
from lab.pipeline import Pipeline
from lab.scenarios import (
    ALARM_DEPLOYMENT,
    ALARM_ERRORS_PREFIX,
    ALARM_LB_REFUSED,
    ALARM_SESSION_CAP,
    ALARM_SPIKE,
    ALARM_STICKINESS,
    GUARD_DRAIN_GATE,
    GUARD_STOP_ON_LOSS,
    Outcome,
    Scenario,
    check,
)
from lab.task_process import task_module, task_starter
from lab.template import AddonTemplate, LabSettings, synth_addon
from lab.truth import (
    created_on,
    is_loss,
    losses_by_deployment,
    open_sessions_by_task,
    origins,
    refusals_logged,
    refused_answers,
)
from sessionwatch.contract import (
    DIMENSION_CAUSE,
    ENV_MAX_SESSIONS,
    ENV_SESSION_IDLE_TIMEOUT,
    METRIC_DEPLOYMENT_LOSS_SPIKE,
    METRIC_SESSION_UTILIZATION,
    METRIC_SESSIONS_LOST,
    Cause,
)
from sessionwatch.ops.client import CallRecord, ProbeClient, ProbeMode, drive
from world.ecs import EcsEvent, ServiceRef, new_deployment_id


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
    time_scale: float | None = None  # None: default_time_scale(sessions)
    deregistration_delay: float = 3.0
    stop_timeout: float = 3.0
    drain_seconds: float = 1.0
    warmup: float = 4.0
    after: float = 4.0
    stale_duration: float = 25.0
    ready_timeout: float = 120.0  # longest wait for every client's first answer
    min_healthy_percent: int | None = None  # rolling: None, the scenario's
    max_percent: int | None = None
    stickiness_duration: float | None = None  # seconds, unscaled; None: the scenario's
    report_dir: Path = Path("lab-report")
    template: Path | None = None
    verbose_probes: int = 2
    keep_workdir: bool = False  # HAProxy config and log, moto log, cdk.out: for debugging
    dashboard_preview: bool = True  # draw dashboard.png
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
    if alarm.metric_name == METRIC_SESSION_UTILIZATION:
        return ALARM_SESSION_CAP
    if alarm.namespace == ALB_NAMESPACE and alarm.metric_name == "HTTPCode_ELB_503_Count":
        return ALARM_LB_REFUSED
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
    on_lost: str = "reconnect"
    lifetimes: tuple[int, ...] = ()  # per client: cycles, then it closes its session
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    clients: list[ProbeClient] = field(default_factory=list)

    async def run_one(self, index: int, mode: ProbeMode) -> None:
        """One client with retry logic: a lost session is replaced by a new one."""
        name = f"{'stale' if mode is ProbeMode.STALE_COOKIE else 'probe'}-{index + 1}"
        async with ProbeClient(self.url, mode=mode, name=name) as probe:
            self.clients.append(probe)
            # Spread the first calls over one interval, as independent users would be.
            await asyncio.sleep(self.interval * index / max(1, self.count))
            lifetime = self.lifetimes[index % len(self.lifetimes)] if self.lifetimes else None
            records = await drive(
                probe,
                cycles=lifetime,
                interval=self.interval,
                on_record=lambda record: self.recorder.call(record, index),
                on_lost=self.on_lost,  # type: ignore[arg-type]
                stop=self.stop,
            )
            if lifetime is not None and not any(r.session_not_found for r in records):
                # Done with it, as a polite client is: DELETE (the server logs the close).
                closed = await probe.close_session()
                if closed is not None:
                    self.recorder.call(closed, index)

    def answered(self) -> int:
        """Clients that have had at least one successful answer."""
        return sum(1 for c in list(self.clients) if any(r.ok for r in list(c.records)))

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


def _report_facts(report: dict[str, Any]) -> dict[str, Any]:
    """A deployment report's facts, from what the topic delivered to the lab's queue.

    The reporter attaches them as the ``sessionwatch_report`` message attribute
    (``LabAccount.reports`` reads it into ``facts``); a plain-text report ends with a
    "Facts as JSON:" line. A follow-up or an alarm notification has neither.
    """
    facts = report.get("facts")
    if isinstance(facts, dict) and "deployment_id" in facts:
        return facts
    lines = str(report.get("message") or "").splitlines()
    for i, line in enumerate(lines[:-1]):
        if line.strip() == "Facts as JSON:":
            with contextlib.suppress(ValueError):
                parsed = json.loads(lines[i + 1])
                if isinstance(parsed, dict):
                    return parsed
    return {}


SETTLE_CAP_S = 600.0
FAST_SCALE = 20.0
FAST_SESSIONS = 50
SLOWEST_DEFAULT_SCALE = 5.0


def default_time_scale(sessions: int) -> float:
    """How much faster than AWS the lab runs its periods by default: 20x up to 50 sessions.

    The lab compresses AWS's minutes (alarm periods, the reporter's schedule, the spike check's
    periods and its 15-period horizon) only as far as its pipeline keeps up. It invokes the
    handlers one at a time on one thread, where Lambda would run them side by side, and with
    hundreds of sessions a log batch takes the session-events handler seconds on a loaded
    2-core machine: at 20x a 300-session run's report came 56-59 s after the deployment ended,
    past the spike check's scaled horizon (50 s), so the report had no metric check at all.
    Beyond 50 sessions the scale drops in proportion (300 sessions: 5x, at least 5x).
    """
    if sessions <= FAST_SESSIONS:
        return FAST_SCALE
    return max(SLOWEST_DEFAULT_SCALE, FAST_SCALE * FAST_SESSIONS / sessions)


async def run(options: RunOptions) -> int:
    """Run one scenario; returns the process exit code (0: SessionWatch got it right)."""
    from lab.report import RunResult, write_report  # matplotlib import only when reporting

    scenario = options.scenario
    sessions = scenario.sessions if options.sessions is None else options.sessions
    scale = options.time_scale or default_time_scale(sessions)
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
    closing: asyncio.Future[None] | None = None
    started = False
    try:
        if options.template is None:
            rec.say("synthesizing the SessionWatch add-on stack (real CDK synth)")
            template_path = await asyncio.to_thread(synth_addon, workdir / "cdk.out", settings)
        else:
            template_path = options.template
        template = AddonTemplate.load(template_path)
        # The tasks' module is imported once, while moto starts; each task is a fork of it.
        module = task_module(scenario.server)
        forks = stack.enter_context(ForkServer(preload=[f"{module}.__main__"]))
        moto = stack.enter_context(MotoServer(log_path=workdir / "moto.log"))
        env = {**scaled_env(scale), **guard_env(scenario, scale)}
        if scenario.group_stickiness:  # the listener rule's AWSALBTG duration, as configured
            env["GROUP_STICKINESS_SECONDS"] = str(int(scenario.group_stickiness_s))
        ecs_api = LabEcsApi(ref.region, ACCOUNT, settings.cluster)
        account = LabAccount(moto, template, env_overrides=env, ecs_api=ecs_api)
        # The account's resources are made while the first tasks start (both mostly wait on
        # other processes); a task's first ECS event waits for the account.
        account_ready = threading.Event()
        receiver = OtlpReceiver().start()
        stack.callback(receiver.stop)
        lifetime = cookie_lifetime_s(
            options.stickiness_duration or scenario.stickiness_duration_s, scale
        )
        group_lifetime = cookie_lifetime_s(scenario.group_stickiness_s, scale)
        lb = stack.enter_context(
            HAProxy(
                workdir / "haproxy",
                cookie_maxidle_s=lifetime,
                groups=("blue", "green") if scenario.group_stickiness is not None else (BACKEND,),
                group_stickiness=bool(scenario.group_stickiness),
                group_stickiness_s=group_lifetime,
            )
        )

        def emit(event: EcsEvent) -> None:
            rec.ecs(event)
            account_ready.wait()
            account.put_ecs_event(event)

        def set_up_account() -> None:
            try:
                account.setup()
            finally:
                account_ready.set()  # a failed setup fails the run; the launch must not hang

        cluster = Cluster(
            ref,
            lb,
            emit,
            rec.say,
            capacity_provider=scenario.capacity_provider,
            start_task=task_starter(scenario.server, forks),
            server_env={
                "SESSIONWATCH_SERVICE": settings.service,
                "SESSIONWATCH_DRAIN_SECONDS": str(options.drain_seconds),
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                "OTEL_METRIC_EXPORT_INTERVAL": "1000",
                **_cap_env(scenario),
            },
        )
        first_deployment = new_deployment_id()
        tasks = scenario.tasks or options.tasks
        await asyncio.gather(
            asyncio.to_thread(set_up_account),
            asyncio.to_thread(cluster.launch, tasks, first_deployment, "1"),
        )
        alarms, skipped = alarms_from_template(template.raw, account.refs)
        rec.say(f"moto_server up; {len(alarms)} alarms read from the template")
        pipeline = Pipeline(
            account,
            cluster,
            compile_pattern(template.subscription_filter_pattern()),
            settings.log_group,
            receiver,
            reporter_interval=60 / scale,
            on_invocation=lambda handler, result: _announce(rec, handler, result),
            alb=AlbMetrics(
                lb,
                account.function_env(REPORTER_HANDLER).get("LOAD_BALANCER_FULL_NAME")
                or settings.load_balancer_full_name,
            ),
        )
        pipeline.start()
        started = True
        rec.say(
            f"load balancer {lb.url} with {tasks} healthy targets; AWSALB lifetime "
            f"{lifetime} s (stickiness duration {lifetime * scale:g} s at "
            f"{scale:g}x); probes start"
        )

        probes = Probes(
            lb.url + "/mcp",
            rec,
            options.interval,
            count=sessions + scenario.stale_clients,
            on_lost=scenario.on_lost,
            lifetimes=scenario.lifetimes,
        )
        loops = [asyncio.create_task(probes.run_one(i, scenario.mode)) for i in range(sessions)] + [
            asyncio.create_task(probes.run_one(sessions + i, ProbeMode.STALE_COOKIE))
            for i in range(scenario.stale_clients)
        ]
        # Clients that arrive after the production traffic shift (blue/green): pinned to green.
        shifted = asyncio.Event()
        loop = asyncio.get_running_loop()
        first_late = sessions + scenario.stale_clients
        loops += [
            asyncio.create_task(_after(shifted, probes.run_one(first_late + i, scenario.mode)))
            for i in range(scenario.late_clients)
        ]
        deployment_alarm = next((a for a in alarms if alarm_key(a) == ALARM_DEPLOYMENT), None)

        def alarm_since(since: float) -> bool:
            if deployment_alarm is None:
                return False
            timeline = replay(
                deployment_alarm, list(account.detector_points), start, time.time(),
                period_scale=scale,
            )  # fmt: skip
            return any(e.state == ALARM and e.time >= since for e in timeline)

        stage = Stage(
            cluster,
            emit,
            rec.say,
            ref,
            first_deployment,
            options.deregistration_delay,
            options.stop_timeout,
            scale,
            alarm_in_alarm=alarm_since,
            shifted=lambda: _threadsafe_set(loop, shifted),
            gate=(
                (lambda payload: account.invoke(GATE_HANDLER, payload).result)
                if scenario.guard == GUARD_DRAIN_GATE
                else None
            ),
            ecs_api=ecs_api,
        )
        played = await asyncio.to_thread(_play, scenario, options, stage, rec, probes)
        probes.stop.set()
        await asyncio.gather(*loops, return_exceptions=True)
        rec.say("probes stopped; waiting for SessionWatch's verdicts")

        calls = [e for e in rec.events if e["kind"] == "call"]
        lost = frozenset(e["session"] for e in calls if is_loss(e))
        verdicts, reports = await _settle(
            account, pipeline, lost, scenario, scale, frozenset(played.deployments.values())
        )
        end = time.time()
        # Each alarm matches only its own namespace and metric: the cap alarm reads the server's
        # own metrics (awsemf's datapoints), the load balancer's the ALB's, the rest the detectors'.
        points = [*account.detector_points, *pipeline.server_datapoints, *pipeline.alb_datapoints]
        timelines = {
            key: replay(alarm, points, start, end, period_scale=scale)
            for alarm in alarms
            if (key := alarm_key(alarm)) is not None
        }
        fired = frozenset(k for k, tl in timelines.items() if any(e.state == ALARM for e in tl))
        latency: list[str] = []
        losses = [float(e["t"]) for e in calls if is_loss(e)]
        if deployment_alarm is not None and losses and ALARM_DEPLOYMENT in timelines:
            latency = alarm_latency.lines(
                alarm_latency.measure(
                    min(losses),
                    [r for t in cluster.tasks for r in t.process.records],
                    account.invocations,
                    account.detector_points,
                    deployment_alarm,
                    timelines[ALARM_DEPLOYMENT],
                    scale,
                )
            )
        alerts = [r for r in reports if _is_first_loss_alert(r)]
        reports = [r for r in reports if not _is_first_loss_alert(r)]
        facts = [_report_facts(r) for r in reports]
        origin = {
            **origins(calls),
            **created_on({t.task_id: t.process.records for t in cluster.tasks}),
        }
        truth = losses_by_deployment(lost, origin, played.replaced_by)
        checked = [f for f in facts if f.get("spike")]  # reports that carry a metric check
        outcome = Outcome(
            lost_sessions=lost,
            causes={fp: str(v["cause"]) for fp, v in verdicts.items()},
            alarms_fired=fired,
            reports=len(reports),
            report_lost=(sum(int(f.get("sessions_lost") or 0) for f in facts) if reports else None),
            report_spike=any(f.get("spike_detected") is True for f in checked) if checked else None,
            truth_by_deployment=truth if played.deployments else None,
            report_lost_by={
                str(f.get("deployment_id")): int(f.get("sessions_lost") or 0) for f in facts
            },
            rolled_back_by=played.rolled_back_by,
            refused_answers=refused_answers(calls),
            refusals_logged=refusals_logged(t.process.records for t in cluster.tasks),
            lb_503=int(elb_503(pipeline.alb_datapoints)),
            report_refused=max(
                (int(f["lock_out"]["refused"]) for f in facts if f.get("lock_out")), default=None
            ),
            longest_lock_out_s=longest_lock_out(calls),
            group_cookie_lifetime_s=float(group_lifetime) if scenario.group_stickiness else None,
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
            deployment_id=played.deployment_id,
            played=played,
            latency=latency,
            dashboard=DashboardData(
                account.detector_points,
                pipeline.server_datapoints,
                {k: v for k, v in timelines.items() if not k.startswith(ALARM_ERRORS_PREFIX)},
                settings.service,
                scale,
                pipeline.alb_datapoints,
            )
            if options.dashboard_preview
            else None,
            truth_by_deployment=truth,
            guards=_guards(scenario, played, facts, alerts, account, losses),
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
        # Everything the report needs is read: the processes stop while it is drawn.
        closing = asyncio.get_running_loop().run_in_executor(
            None, _stop_all, pipeline, cluster, stack
        )
        text = write_report(result, options.report_dir, probes.raw_ids(), rec.printed)
        print(text, file=options.out, flush=True)
        return 0 if not result.problems else 1
    except Exception as exc:
        if started:
            raise  # a failure mid-run is a bug in the lab: show its traceback
        raise LabStartError(f"could not start: {exc}") from exc
    finally:
        if closing is None:
            closing = asyncio.get_running_loop().run_in_executor(
                None, _stop_all, pipeline, cluster, stack
            )
        await closing
        if not options.keep_workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def _stop_all(
    pipeline: Pipeline | None, cluster: Cluster | None, stack: contextlib.ExitStack
) -> None:
    """Stop what a run started: the pipeline, the tasks, then moto, HAProxy and the receiver."""
    try:
        if pipeline is not None:
            pipeline.stop()
        if cluster is not None:
            cluster.shutdown()
    finally:
        stack.close()


async def _settle(
    account: LabAccount,
    pipeline: Pipeline,
    lost: frozenset[str],
    scenario: Scenario,
    time_scale: float,
    deployments: frozenset[str] = frozenset(),
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Wait for SessionWatch to decide every lost session (and send a report per deployment).

    Bounded by the reporter's grace period plus three scaled reporter runs, extended while the
    pipeline still has server lines to deliver (a loaded machine lags; that lag is the lab's,
    not SessionWatch's), never past ``SETTLE_CAP_S``: a verdict that never comes must show up as
    a verdict problem, not as a lab that hangs. The pipeline is then stopped and flushed once
    more, so the verdicts and SNS reports returned are the final ones.
    """
    reports: list[dict[str, Any]] = []
    grace = float(account.function_env(REPORTER_HANDLER).get("GRACE_PERIOD_SECONDS") or 120)
    deadline = time.time() + grace + 3 * 60 / time_scale + 10
    cap = time.time() + SETTLE_CAP_S
    while time.time() < min(deadline, cap):
        await asyncio.sleep(0.5)
        if pipeline.backlog():
            deadline = max(deadline, time.time() + 60 / time_scale + 5)
        verdicts = await asyncio.to_thread(account.verdicts, sorted(lost))
        reports.extend(await asyncio.to_thread(account.reports))
        settled = all(
            fp in verdicts and verdicts[fp].get("cause") != Cause.PENDING.value for fp in lost
        )
        reported = {str(_report_facts(r).get("deployment_id")) for r in reports}
        if settled and (
            deployments <= reported
            if deployments
            else reports or not scenario.expect.report_expected
        ):
            break
    pipeline.stop()
    await asyncio.to_thread(pipeline.step, True)
    reports.extend(await asyncio.to_thread(account.reports))
    verdicts = await asyncio.to_thread(account.verdicts, sorted(lost))
    return verdicts, reports


def _cap_env(scenario: Scenario) -> dict[str, str]:
    """The server settings of a scenario that fills the SDK's session cap."""
    env = {}
    if scenario.max_sessions is not None:
        env[ENV_MAX_SESSIONS] = str(scenario.max_sessions)
    if scenario.sessions_never_expire:
        env[ENV_SESSION_IDLE_TIMEOUT] = "none"
    return env


def _play(
    scenario: Scenario, options: RunOptions, stage: Stage, rec: Recorder, probes: Probes
) -> Played:
    """The scenario's actions (``lab.ecs_play``), on a worker thread, between warm-up and after.

    Warm-up starts once every client has had an answer (bounded by ``ready_timeout``): on a
    loaded machine hundreds of clients take tens of seconds to initialize, and a deployment
    that starts before they hold sessions reproduces nothing.
    """
    deadline = time.time() + options.ready_timeout
    ready = probes.count
    if scenario.max_sessions is not None:  # the clients past the cap are never answered
        ready = min(ready, scenario.max_sessions * (scenario.tasks or options.tasks))
    while probes.answered() < ready and time.time() < deadline:
        time.sleep(0.2)
    if probes.answered() < ready:
        rec.say(f"only {probes.answered()} of {ready} clients answered; acting anyway")
    time.sleep(options.warmup)
    calls = [e for e in rec.events if e["kind"] == "call"]
    at_start = open_sessions_by_task(calls, time.time())
    action = scenario.action
    min_healthy = options.min_healthy_percent or scenario.min_healthy_percent
    max_percent = options.max_percent or scenario.max_percent
    if action == "rolling":
        played = rolling(stage, min_healthy_percent=min_healthy, max_percent=max_percent)
    elif action == "rollback_on_alarm":
        played = rolling(
            stage, min_healthy_percent=min_healthy, max_percent=max_percent, alarms=True
        )
    elif action == "rolling_stop_on_loss":
        played = rolling(
            stage, min_healthy_percent=min_healthy, max_percent=max_percent, stops=True
        )
    elif action == "blue_green":
        kind = "blue/green" if scenario.steps == (100,) else "canary"
        played = blue_green(stage, steps=scenario.steps, hooks=scenario.hooks, kind=kind)
    elif action == "circuit_breaker":
        played = circuit_breaker(stage)
    elif action in ("crash", "spot", "scale_in"):
        played = one_task_stops(stage, _busiest(stage.cluster, probes), action)
    else:
        played = Played()
        if action == "wait_loss":
            _wait_for_a_loss(rec, options)
    played.open_at_start = dict(at_start)
    after = options.after
    if scenario.group_stickiness:  # long enough to see the lock-out end, and the loss after it
        after = max(after, cookie_lifetime_s(scenario.group_stickiness_s, stage.time_scale) + 3)
    time.sleep(after)
    return played


def elb_503(points: list[Datapoint]) -> float:
    """The load balancer's own 503s over the run (its HTTPCode_ELB_503_Count, summed)."""
    return sum(p.value for p in points if p.metric_name == "HTTPCode_ELB_503_Count")


def longest_lock_out(calls: list[dict[str, Any]]) -> float:
    """The longest run of consecutive 503 answers one client got, first to last, in seconds."""
    longest = 0.0
    runs: dict[str, float] = {}  # probe -> time of the first 503 of its current run
    for call in sorted(calls, key=lambda c: float(c["t"])):
        probe, t = str(call.get("probe")), float(call["t"])
        if call.get("http_status") == 503:
            first = runs.setdefault(probe, t)
            longest = max(longest, t - first)
        else:
            runs.pop(probe, None)
    return longest


def _threadsafe_set(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    loop.call_soon_threadsafe(event.set)


async def _after(event: asyncio.Event, coroutine: Any) -> None:
    await event.wait()
    await coroutine


def guard_env(scenario: Scenario, time_scale: float) -> dict[str, str]:
    """The scenario's deployment guards, as the construct would set them (the template has the
    gate's function; its thresholds are each scenario's), with durations scaled like the lab."""
    from sessionwatch import contract

    env = {
        contract.ENV_DRAIN_GATE_MAX_HOLD: f"{scenario.max_hold_s / time_scale:g}",
        # ECS's default 30 s between calls, scaled (at least 1 s: the gate's own minimum).
        contract.ENV_DRAIN_GATE_CALLBACK: f"{max(1.0, 30 / time_scale):g}",
    }
    if scenario.guard == GUARD_STOP_ON_LOSS:
        env[contract.ENV_STOP_ON_LOSS] = str(scenario.stop_threshold)
        env[contract.ENV_FIRST_LOSS_ALERT] = "true"
    return env


def _is_first_loss_alert(message: dict[str, Any]) -> bool:
    from sessionwatch.detectors.first_loss import EVENT_FIRST_LOSS

    with contextlib.suppress(ValueError, TypeError, AttributeError):
        chat = json.loads(str(message.get("message") or ""))
        return bool(chat.get("metadata", {}).get("eventType") == EVENT_FIRST_LOSS)
    return False


def _guards(
    scenario: Scenario,
    played: Played,
    facts: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    account: LabAccount,
    losses: list[float],
) -> dict[str, Any]:
    """What the guards did: the gate's calls, the reports' guard lines, and first loss ->
    alert / stop, each from the detectors' own log lines (the invocation that acted)."""
    from sessionwatch import contract

    first = min(losses, default=None)
    acted: dict[str, float] = {}
    for inv in account.invocations:
        for line in inv.lines:
            with contextlib.suppress(ValueError, AttributeError):
                message = json.loads(line).get("message")
                if message in (contract.ALERT_LOG_MESSAGE, contract.STOP_LOG_MESSAGE):
                    acted.setdefault(message, inv.time)
    return {
        "guard": scenario.guard,
        "gate_calls": played.gate_calls,
        "gate_held_s": played.gate_held_s,
        "report_lines": [
            str(f[key]) for f in facts for key in ("drain_gate", "stopped") if f.get(key)
        ],
        "alerts": len(alerts),
        "first_loss_alert_s": (
            acted[contract.ALERT_LOG_MESSAGE] - first
            if first is not None and contract.ALERT_LOG_MESSAGE in acted
            else None
        ),
        "first_loss_stop_s": (
            acted[contract.STOP_LOG_MESSAGE] - first
            if first is not None and contract.STOP_LOG_MESSAGE in acted
            else None
        ),
    }


def _wait_for_a_loss(rec: Recorder, options: RunOptions) -> None:
    deadline = time.time() + options.stale_duration
    while time.time() < deadline:
        if any(e["kind"] == "call" and is_loss(e) for e in list(rec.events)):
            time.sleep(2 * options.interval)
            return
        time.sleep(0.2)


def _busiest(cluster: Cluster, probes: Probes) -> Any:
    """The running task holding the most probe sessions (the crash must hit sessions)."""
    counts: dict[str, int] = {}
    for probe in probes.clients:
        if probe.records and probe.records[-1].task_id:
            task_id = probe.records[-1].task_id
            counts[task_id] = counts.get(task_id, 0) + 1
    running = cluster.running()
    return max(running, key=lambda t: counts.get(t.task_id, 0))
