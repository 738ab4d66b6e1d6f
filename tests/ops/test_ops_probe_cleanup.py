"""The probe on a production service leaves nothing open: it DELETEs every session it opened, at
the end of a run and on Ctrl-C, against a real `python -m server` task (whose own log says the
session was closed by the client). Its `--help` states every default."""

from __future__ import annotations

import argparse
import io
import json
import signal
import subprocess
import sys
import time

import pytest

from lab.forkserver import ForkServer
from lab.task_process import ServerTask
from sessionwatch.contract import CLOSE_CLIENT_DELETE
from sessionwatch.ops.cli import build_parser
from sessionwatch.ops.probe import EXIT_OK, run_probe
from tests.conftest import REPO_ROOT
from tests.ops.probe_helpers import json_lines

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]
# No drain at the server's shutdown: what these tests read happens before it (the server's
# default drain would add its whole length to each test's exit).
NO_DRAIN = ["--drain-seconds", "0"]


def test_a_run_closes_its_session_and_the_server_logs_it(task_forks: ForkServer) -> None:
    with ServerTask(args=["--task-id", "task-probed", *NO_DRAIN], forkserver=task_forks) as task:
        out = io.StringIO()
        code = run_probe(task.url + "/mcp", interval=0.2, duration=1.0, as_json=True, out=out)
        _, summary = json_lines(out.getvalue())
        totals = summary["summary"]
        assert code == EXIT_OK
        (session,) = totals["sessions"]
        assert totals["sessions_closed"] == 1 and totals["close_failures"] == []
        task.wait_for_event("session_closed", session=session, reason=CLOSE_CLIENT_DELETE)


def test_ctrl_c_still_closes_the_session(task_forks: ForkServer) -> None:
    args = ["--task-id", "task-interrupted", *NO_DRAIN]
    with ServerTask(args=args, forkserver=task_forks) as task:
        argv = ["probe", task.url + "/mcp", "--interval", "0.2", "--json"]
        probe = subprocess.Popen(
            [sys.executable, "-m", "sessionwatch.ops", *argv],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            created = task.wait_for_event("session_created", timeout=20)
            time.sleep(0.5)  # a cycle or two into the run
            probe.send_signal(signal.SIGINT)
            out, err = probe.communicate(timeout=60)  # a loaded CI worker is slow, not stuck
        finally:
            if probe.poll() is None:
                probe.kill()
        task.wait_for_event(
            "session_closed", session=created["session"], reason=CLOSE_CLIENT_DELETE
        )
        summary = json.loads(out.splitlines()[-1])["summary"]
        assert summary["sessions_closed"] == 1, err


def _optional_actions(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.Action]]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found += [(f"{name} {flag}", a) for flag, a in _optional_actions(sub)]
        elif action.option_strings and not action.required and action.dest != "help":
            found.append((action.option_strings[-1], action))
    return found


def test_help_states_every_default() -> None:
    actions = _optional_actions(build_parser())
    assert len(actions) >= 15
    for flag, action in actions:
        assert action.help and "default" in action.help, f"{flag}: say its default in --help"
