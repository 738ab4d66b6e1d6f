"""Real third-party MCP peers as processes: the TypeScript SDK (Node), mcp 1.x (own venvs), fastmcp.

``make setup`` installs them (scripts/install-peers.sh). A peer whose install failed fails its
tests under ``CI=true`` and skips them elsewhere, naming what to run (``tests.requirements``);
everything else about them is real: their own SDK answers, their own loggers, their own
processes, on free loopback ports.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from lab.haproxy import HAProxy
from tests.conftest import REPO_ROOT
from tests.requirements import require

PEERS = Path(__file__).resolve().parent
NODE_MODULES = PEERS / "node_modules" / "@modelcontextprotocol" / "sdk"
PEER_VENVS = REPO_ROOT / ".venv-peers"
_UVICORN_PORT = re.compile(r"Uvicorn running on https?://[^\s:]+:(\d+)")
# Raw ids: uuid4 hex (mcp), dashed UUIDs (TypeScript SDK); task ids are removed before looking.
RAW_ID = re.compile(
    r"(?<![0-9a-fA-F])(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}"
    r"-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})(?![0-9a-fA-F])"
)


def node_or_skip() -> str:
    """Node with the TypeScript SDK installed; missing: a failure under CI, a skip elsewhere."""
    return require("ts-sdk-peer")


def peer_python_or_skip(version: str) -> str:
    """The mcp ``version`` peer's python; missing: a failure under CI, a skip elsewhere."""
    return require(f"mcp-{version}-peer")


class PeerProcess:
    """One peer process with captured stdout and stderr; its port is read from what it prints."""

    def __init__(self, cmd: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.cmd = list(cmd)
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.port: int | None = None
        self._cond = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20.0) -> PeerProcess:
        self._proc = subprocess.Popen(
            self.cmd,
            cwd=REPO_ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        for stream, sink in ((self._proc.stdout, self.stdout), (self._proc.stderr, self.stderr)):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()
        deadline = time.monotonic() + timeout
        with self._cond:
            while self.port is None:
                if self._proc.poll() is not None or time.monotonic() > deadline:
                    self.kill()
                    raise RuntimeError(f"peer {self.cmd} did not start:\n{self.output[-3000:]}")
                self._cond.wait(timeout=0.1)
        return self

    def _read(self, stream: Any, sink: list[str]) -> None:
        for line in stream:
            line = line.rstrip("\n")
            with self._cond:
                sink.append(line)
                if self.port is None:
                    self.port = _port_in(line)
                self._cond.notify_all()

    @property
    def output(self) -> str:
        with self._cond:
            return "\n".join(self.stdout + self.stderr)

    def url(self, path: str = "/mcp") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def events(self, event: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        """The JSON lines on stdout, those with ``event`` and ``fields`` when given."""
        with self._cond:
            lines = list(self.stdout)
        found = []
        for line in lines:
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if not isinstance(doc, dict) or (event is not None and doc.get("event") != event):
                continue
            if all(doc.get(k) == v for k, v in fields.items()):
                found.append(doc)
        return found

    def wait_for(self, event: str, timeout: float = 10.0, **fields: Any) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if found := self.events(event, **fields):
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"no {event} {fields} within {timeout} s:\n{self.output[-3000:]}")

    def terminate(self, timeout: float = 20.0) -> int:
        assert self._proc is not None
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
        code = self._proc.wait(timeout=timeout)
        time.sleep(0.1)  # let the readers drain the pipes
        return code

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)


def _port_in(line: str) -> int | None:
    if found := _UVICORN_PORT.search(line):
        return int(found[1])
    try:
        doc = json.loads(line)
    except ValueError:
        return None
    if isinstance(doc, dict) and doc.get("event") == "listening":
        return int(doc["port"])
    if isinstance(doc, dict) and (m := _UVICORN_PORT.search(str(doc.get("message", "")))):
        return int(m[1])
    return None


def assert_no_raw_id(text: str, allowed: Sequence[str] = ()) -> None:
    """No raw session id in ``text``; ``allowed`` are id-shaped values that are not session ids."""
    for value in allowed:
        text = text.replace(value, "<allowed>")
    leaked = RAW_ID.findall(text)
    assert not leaked, f"raw id-shaped tokens in the output: {leaked[:3]}"


@pytest.fixture(scope="module")
def lb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HAProxy]:
    """The lab's HAProxy playing the sticky ALB, shared by a module's peer tests (two tasks a
    peer, up to six peers)."""
    with HAProxy(tmp_path_factory.mktemp("haproxy"), slots=12, health_interval_ms=200) as proxy:
        yield proxy


@pytest.fixture
def peers() -> Iterator[list[PeerProcess]]:
    """Peer processes started by a test; every one still alive is killed at its end."""
    started: list[PeerProcess] = []
    yield started
    for peer in started:
        peer.kill()


PYTHON = sys.executable
