"""The lab's fork server: a forked task behaves as ``python -m sessionwatch.server`` does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from lab.forkserver import ForkServer
from lab.task_process import REPO_ROOT, ServerTask
from sessionwatch import contract

ENV = {**os.environ, "SESSIONWATCH_DRAIN_SECONDS": "0"}


@pytest.fixture(scope="module")
def forks() -> Iterator[ForkServer]:
    with ForkServer(preload=["sessionwatch.server.__main__"]) as server:
        yield server


def test_a_forked_task_has_its_own_pid_session_environment_and_output(forks: ForkServer) -> None:
    env = {**ENV, "SESSIONWATCH_SERVICE": "forked-svc"}
    with ServerTask(env=env, args=["--task-id", "task-forked"], forkserver=forks) as task:
        assert httpx.get(f"{task.url}/health", timeout=5).status_code == 200
        assert task.pid != os.getpid()
        assert os.getsid(task.pid) == task.pid  # as Popen(start_new_session=True)
        # its environment and flags are read in main, after the fork: its lines name them
        started = task.wait_for_event(contract.EVENT_TASK_STARTED)
        assert started["service"] == "forked-svc" and started["task_id"] == "task-forked"
        assert task.terminate(timeout=15) == 0  # SIGTERM: drained and exited 0, as ECS expects
    [shutdown] = task.events(contract.EVENT_SHUTDOWN_STARTED)
    assert shutdown["signal"] == "SIGTERM"
    # A second task from the same server is another process with its own environment.
    with ServerTask(env=ENV, args=["--task-id", "task-two"], forkserver=forks) as other:
        assert other.pid != task.pid
        assert other.wait_for_event(contract.EVENT_TASK_STARTED)["service"] != "forked-svc"


def test_exit_codes_and_errors_are_the_ones_python_dash_m_gives(forks: ForkServer) -> None:
    # A bad flag: argparse's exit 2 and its message on stderr, exactly as from a subprocess.
    args = ["--host", "127.0.0.1", "--port", "not-a-port"]
    plain = subprocess.run(
        [sys.executable, "-m", "sessionwatch.server", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        check=False,
    )
    forked = forks.spawn("sessionwatch.server", args, ENV, REPO_ROOT)
    assert forked.wait(timeout=15) == plain.returncode == 2
    assert forked.stderr is not None
    assert forked.stderr.read() == plain.stderr
    # Killed by a signal: minus the signal's number, as Popen.returncode says.
    with ServerTask(env=ENV, forkserver=forks) as task:
        with pytest.raises(subprocess.TimeoutExpired):
            task.wait(timeout=0.05)
        task.signal(signal.SIGKILL)
        assert task.wait(timeout=10) == -signal.SIGKILL


def test_closing_the_fork_server_stops_the_tasks_it_forked() -> None:
    with ForkServer(preload=["sessionwatch.server.__main__"]) as server:
        task = ServerTask(env=ENV, forkserver=server).start()
        assert task.returncode is None
    # The server sent SIGTERM and reaped the task before it exited: the task drained, closed its
    # output and is gone.
    assert task.wait_for_event(contract.EVENT_SHUTDOWN_STARTED, timeout=5)["signal"] == "SIGTERM"
    with pytest.raises(ProcessLookupError):
        os.kill(task.pid, 0)
