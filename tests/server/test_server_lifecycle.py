"""Session lifecycle and failure modes of a real server process, one process per scenario."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from lab.ecs_metadata import EcsMetadataStub
from lab.forkserver import ForkServer
from lab.otlp_receiver import OtlpReceiver
from lab.task_process import ServerTask
from sessionwatch import contract
from sessionwatch.server.fingerprint import fingerprint
from tests.server.conftest import mcp_post, run_client, task_env, tool_call


def test_idle_expiry_is_logged_and_then_not_found_on_the_same_task(
    otlp: OtlpReceiver, task_forks: ForkServer
) -> None:
    with (
        EcsMetadataStub() as md,
        ServerTask(
            env=task_env(md, otlp), args=["--session-idle-timeout", "1"], forkserver=task_forks
        ) as task,
    ):
        run = run_client(task.url, [("set_session_value", {"key": "k", "value": "v"})])
        fp = fingerprint(run.session_id)
        closed = task.wait_for_event(contract.EVENT_SESSION_CLOSED, session=fp, timeout=10)
        assert closed["reason"] == contract.CLOSE_IDLE_TIMEOUT
        assert closed["age_s"] >= 1.0
        response = mcp_post(task.url, run.session_id, tool_call("get_session_state", {}))
        assert response.status_code == 404
        task.wait_for_event(contract.EVENT_SESSION_NOT_FOUND, session=fp)
        assert len(task.events(contract.EVENT_SESSION_CLOSED, session=fp)) == 1
        otlp.wait_for(
            contract.METRIC_SESSION_ACTIVE,
            lambda p: p.value == 0,
            **{contract.ATTR_ECS_TASK_ID: md.task_id},
        )
        assert run.session_id not in task.output


def test_sigterm_drains_then_accounts_for_open_sessions(otlp: OtlpReceiver) -> None:
    drain = 2.0  # `python -m`, as the image runs it (the other tests fork theirs, task_forks)
    with EcsMetadataStub() as md:
        task = ServerTask(env=task_env(md, otlp), args=["--drain-seconds", str(drain)]).start()
        try:
            runs = [run_client(task.url, [("whoami", {})]) for _ in range(2)]
            fps = sorted(fingerprint(r.session_id) for r in runs)
            signalled = time.monotonic()
            task.signal()
            started = task.wait_for_event(contract.EVENT_SHUTDOWN_STARTED)
            assert started["signal"] == "SIGTERM"
            assert started["active_sessions"] == 2
            assert sorted(started["sessions"]) == fps
            # Still serving while draining: the open session keeps working.
            response = mcp_post(task.url, runs[0].session_id, tool_call("whoami", {}))
            assert response.status_code == 200
            assert response.headers[contract.TASK_ID_HEADER] == md.task_id
            assert task.wait(timeout=30) == 0
            assert time.monotonic() - signalled >= drain
        finally:
            task.kill()
        closed = task.events(contract.EVENT_SESSION_CLOSED, reason=contract.CLOSE_SHUTDOWN)
        assert sorted(c["session"] for c in closed) == fps
        dropped = otlp.wait_for(
            contract.METRIC_SESSION_DROPPED, **{contract.ATTR_ECS_TASK_ID: md.task_id}
        )
        assert dropped.value == 2
        for r in runs:
            assert r.session_id not in task.output


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("mode", ["down", "garbage", "error", "hang"])
def test_broken_metadata_falls_back_and_is_counted_once(
    mode: str, otlp: OtlpReceiver, task_forks: ForkServer
) -> None:
    with EcsMetadataStub() as md:
        if mode == "down":
            uri = f"http://127.0.0.1:{_closed_port()}/v4/x"
        else:
            md.mode = mode  # type: ignore[assignment]
            uri = md.uri
        service = f"metadata-{mode}"
        env = task_env(
            None,
            otlp,
            ECS_CONTAINER_METADATA_URI_V4=uri,
            SESSIONWATCH_TASK_ID="local-task-1",
            SESSIONWATCH_SERVICE=service,
        )
        with ServerTask(env=env, forkserver=task_forks) as task:
            (started,) = task.events(contract.EVENT_TASK_STARTED)
            assert started["task_id"] == "local-task-1"
            assert started["task_arn"] is None and started["availability_zone"] is None
            faults = task.events("instrumentation_error", fault="task_metadata")
            assert len(faults) == 1
            health = httpx.get(f"{task.url}/health")
            assert health.status_code == 200
            assert health.headers[contract.TASK_ID_HEADER] == "local-task-1"
            run = run_client(task.url, [("whoami", {})])
            assert run.results["whoami"]["task_id"] == "local-task-1"
            counted = otlp.wait_for(
                contract.METRIC_INSTRUMENTATION_ERRORS,
                lambda p: p.resource[contract.RESOURCE_SERVICE_NAME] == service,
                **{contract.ATTR_FAULT: "task_metadata"},
            )
            assert counted.value == 1
        if mode != "down":
            assert md.requests, "the server did ask the metadata endpoint"


def test_otlp_endpoint_down_does_not_hurt_the_server(task_forks: ForkServer) -> None:
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
        "SESSIONWATCH_DRAIN_SECONDS": "0",
    }
    with ServerTask(env=env, forkserver=task_forks) as task:
        for _ in range(3):
            run = run_client(task.url, [("whoami", {}), ("get_session_state", {})])
            assert run.results["whoami"]["task_id"]
        task.wait_for_event("instrumentation_error", fault="otlp_export", timeout=10)
        stopped = time.monotonic()
        assert task.terminate(timeout=20) == 0
        assert time.monotonic() - stopped < 8  # the final flush is bounded
    assert len(task.events("instrumentation_error", fault="otlp_export")) == 1
    assert len(task.events(contract.EVENT_SESSION_CLOSED, reason=contract.CLOSE_SHUTDOWN)) == 3


def test_many_failed_exports_log_one_error_line(task_forks: ForkServer) -> None:
    # A collector that refuses every export: OTLP/HTTP does not retry a 400, so each request the
    # collector counts is one failed export of the server.
    with OtlpReceiver(status=400) as collector:
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_METRIC_EXPORT_INTERVAL": "100",
            "SESSIONWATCH_DRAIN_SECONDS": "0",
        }
        with ServerTask(env=env, forkserver=task_forks) as task:
            run = run_client(task.url, [("whoami", {})])
            assert run.results["whoami"]["task_id"]
            collector.wait_for_requests(4)
            assert task.terminate(timeout=20) == 0
        assert collector.exports == 0
    (logged,) = task.events("instrumentation_error", fault="otlp_export")
    assert "export failed" in logged["error"]


def test_ten_megabyte_post_passes_through(task_forks: ForkServer) -> None:
    size = 10 * 1024 * 1024
    env = {"SESSIONWATCH_DRAIN_SECONDS": "0"}
    args = ["--max-body-bytes", str(16 * 1024 * 1024)]
    with ServerTask(env=env, args=args, forkserver=task_forks) as task:
        run = run_client(task.url, [("whoami", {})])
        response = mcp_post(
            task.url,
            run.session_id,
            tool_call("set_session_value", {"key": "big", "value": "x" * size}),
        )
        assert response.status_code == 200
        assert f'\\"size\\":\\"{size}\\"' in response.text or f'"size":"{size}"' in response.text
        state = mcp_post(task.url, run.session_id, tool_call("get_session_state", {}))
        assert f"<{size} chars>" in state.text


def test_sdk_lines_at_info_are_scrubbed_in_process_output(task_forks: ForkServer) -> None:
    args = ["--sdk-log-level", "INFO", "--session-idle-timeout", "1"]
    env = {"SESSIONWATCH_DRAIN_SECONDS": "0"}
    with ServerTask(env=env, args=args, forkserver=task_forks) as task:
        run = run_client(task.url, [("whoami", {})])
        fp = fingerprint(run.session_id)
        mcp_post(task.url, "0" * 32, tool_call("whoami", {}))  # an unknown id, logged by the SDK
        task.wait_for_event(contract.EVENT_SESSION_CLOSED, session=fp, timeout=10)
        sdk_lines = [r["message"] for r in task.events("log") if "session ID" in r["message"]]
        assert any(fp in line for line in sdk_lines), sdk_lines  # the SDK did log it, scrubbed
        assert any(fingerprint("0" * 32) in line for line in sdk_lines)
    assert run.session_id not in task.output and "0" * 32 not in task.output


def test_log_requests_flag_adds_request_lines_with_fingerprints(task_forks: ForkServer) -> None:
    env = {"SESSIONWATCH_DRAIN_SECONDS": "0"}
    with ServerTask(env=env, args=["--log-requests"], forkserver=task_forks) as task:
        run = run_client(task.url, [("whoami", {})])
        line = task.wait_for_event(contract.EVENT_REQUEST, mcp_method="tools/call")
        assert line["session"] == fingerprint(run.session_id)
        assert line["status"] == 200 and line["http_method"] == "POST"
        assert run.session_id not in task.output
    with ServerTask(env=env, forkserver=task_forks) as quiet:
        run_client(quiet.url, [("whoami", {})])
        quiet.wait_for_event(contract.EVENT_SESSION_CREATED)
        assert quiet.events(contract.EVENT_REQUEST) == []
