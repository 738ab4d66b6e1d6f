"""The TypeScript SDK client through the sticky load balancer: its losses are seen and attributed.

A real ``@modelcontextprotocol/sdk`` client (Node's fetch keeps no cookies) talks through the
lab's HAProxy to two real reference-server tasks (``python -m sessionwatch.server``, each with its
ECS metadata stub). Round robin without a cookie sends its requests to the task that does not hold
its session: the tasks log ``session_not_found`` for it (the instrumentation's recognizer), with
the same fingerprint the client's session has on the task that created it, and the real detectors
(session-events and ECS-events handlers over moto, wired from the synthesized template, through
the lab's pipeline) decide ``stickiness`` for every one: the origin task is still running. No raw
session id in the client's output or the tasks'.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from lab.cluster import Cluster
from lab.detectors_runtime import REPORTER_HANDLER, LabAccount, scaled_env
from lab.filter_pattern import compile_pattern
from lab.haproxy import HAProxy
from lab.moto import ACCOUNT, MotoServer
from lab.otlp_receiver import OtlpReceiver
from lab.pipeline import Pipeline
from lab.template import AddonTemplate, LabSettings
from sessionwatch import contract
from tests.lab.conftest import addon_template  # noqa: F401 - the shared synth fixture
from tests.peers.conftest import PEERS, assert_no_raw_id, node_or_skip
from world.ecs import EcsEvent, ServiceRef

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]


def test_typescript_client_losses_are_logged_and_attributed_to_stickiness(
    addon_template: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    node = node_or_skip()
    settings = LabSettings()
    ref = ServiceRef("us-east-1", ACCOUNT, settings.cluster, settings.service)
    template = AddonTemplate.load(addon_template)
    with (
        MotoServer(log_path=tmp_path / "moto.log") as moto,
        HAProxy(tmp_path / "haproxy", slots=4, health_interval_ms=200) as lb,
        _receiver() as receiver,
    ):
        account = LabAccount(moto, template, env_overrides=scaled_env(20))
        account.setup()

        def emit(event: EcsEvent) -> None:
            account.put_ecs_event(event)

        cluster = Cluster(
            ref, lb, emit, lambda line: None, server_env={"SESSIONWATCH_SERVICE": ref.service}
        )
        try:
            cluster.launch(2, "ecs-svc/1111", "1")
            pipeline = Pipeline(
                account,
                cluster,
                compile_pattern(template.subscription_filter_pattern()),
                settings.log_group,
                receiver,
                reporter_interval=3600,
            )
            done = subprocess.run(
                [node, str(PEERS / "ts_client.mjs"), lb.url + "/mcp", "--cycles", "4"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr[-2000:]
            pipeline.step()  # ECS facts, then every task's log lines, to the real detectors
            tasks = list(cluster.running())
            lines = [json.loads(line) for line in done.stdout.splitlines()]
            summary = lines[-1]
            not_found = {
                e["session"]: task.task_id
                for task in tasks
                for e in task.process.events(contract.EVENT_SESSION_NOT_FOUND)
            }
            created = {
                e["session"]: task.task_id
                for task in tasks
                for e in task.process.events(contract.EVENT_SESSION_CREATED)
            }
            # A live origin task is stickiness once the grace period has passed with no stop
            # seen: the reporter (every minute in AWS) decides what stayed pending.
            grace = float(account.function_env(REPORTER_HANDLER)["GRACE_PERIOD_SECONDS"])
            time.sleep(grace + 0.5)
            # The tasks' output is read as it is flushed: under load the last lines can reach
            # the pipeline a step later, so step until every not-found has its verdict (bounded).
            deadline = time.monotonic() + 30
            while True:
                pipeline.step(force_reporter=True)
                not_found = {
                    e["session"]: task.task_id
                    for task in tasks
                    for e in task.process.events(contract.EVENT_SESSION_NOT_FOUND)
                }
                verdicts = account.verdicts(sorted(not_found))
                if all(fp in verdicts for fp in not_found) or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            outputs = [task.process.output for task in tasks]
            task_ids = [task.task_id for task in tasks]
        finally:
            cluster.shutdown()

    client_sessions = {line["session"] for line in lines[:-1] if line.get("session")}
    assert summary["lost"] >= 3, done.stdout
    # Every session the client lost was not found on the other task than the one that made it.
    lost_fps = {fp for fp in not_found if fp in client_sessions}
    assert len(lost_fps) >= summary["lost"]
    assert all(created[fp] != not_found[fp] for fp in lost_fps)
    for task in tasks:
        for event in task.process.events(contract.EVENT_SESSION_NOT_FOUND):
            assert (event["http_status"], event["jsonrpc_code"]) == (404, -32600)
    # The detectors call each of them stickiness: the origin task is still running.
    assert {fp: verdicts.get(fp, {}).get("cause") for fp in lost_fps} == dict.fromkeys(
        lost_fps, contract.Cause.STICKINESS.value
    )
    assert_no_raw_id(done.stdout + done.stderr)
    for text in outputs:
        assert_no_raw_id(text, allowed=task_ids)


class _receiver:
    """An OTLP receiver for the pipeline's metrics pipe (the tasks export nothing here)."""

    def __enter__(self) -> OtlpReceiver:
        self.receiver = OtlpReceiver().start()
        return self.receiver

    def __exit__(self, *exc: object) -> None:
        self.receiver.stop()
