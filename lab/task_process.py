"""Start a ``python -m server`` process as one local "task" and capture its JSON log lines.

Used by the server tests and the lab. The process binds ``--port 0`` (no port races between
parallel runs); the real port is read from uvicorn's "running on" line. Every stdout line is kept
raw (to check that no raw session id was ever written) and, when it is JSON, parsed.

Usage::

    with EcsMetadataStub() as md, ServerTask(env={"ECS_CONTAINER_METADATA_URI_V4": md.uri}) as task:
        httpx.get(f"{task.url}/health")
        task.wait_for_event("session_created")
        task.terminate()  # SIGTERM, then wait; task.returncode, task.events("session_closed")
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Protocol

from lab.forkserver import ForkServer

REPO_ROOT = Path(__file__).resolve().parent.parent
_RUNNING = re.compile(r"Uvicorn running on https?://[^\s:]+:(\d+)")


class TaskProcess(Protocol):
    """What a task reads of its process: a ``subprocess.Popen`` or a forked child
    (``lab.forkserver.ForkedProcess``)."""

    @property
    def pid(self) -> int: ...
    @property
    def stdout(self) -> IO[str] | None: ...
    @property
    def stderr(self) -> IO[str] | None: ...
    @property
    def returncode(self) -> int | None: ...
    def poll(self) -> int | None: ...
    def wait(self, timeout: float | None = None) -> int: ...
    def send_signal(self, sig: int) -> None: ...
    def kill(self) -> None: ...


class ServerTask:
    """One server process on 127.0.0.1 with captured, parsed output.

    With ``forkserver`` the process is forked from a server that has imported ``module`` already
    (the lab's tasks, most tests' tasks); without, it is ``python -m module``.
    """

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        python: str = sys.executable,
        cwd: Path = REPO_ROOT,
        start_timeout: float = 20.0,
        module: str = "sessionwatch.server",  # or "sessionwatch.sidecar" (same flags and lines)
        forkserver: ForkServer | None = None,
    ) -> None:
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.args = list(args)
        self.python = python
        self.cwd = cwd
        self.start_timeout = start_timeout
        self.module = module
        self.forkserver = forkserver
        self.port: int | None = None
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self.records: list[dict[str, Any]] = []
        self._proc: TaskProcess | None = None
        self._cond = threading.Condition()
        self._readers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>`` (append ``/mcp`` or ``/health``)."""
        if self.port is None:
            raise RuntimeError("server task not started")
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("server task not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    @property
    def output(self) -> str:
        """Everything the process wrote, stdout and stderr."""
        with self._cond:
            return "\n".join(self.stdout_lines + self.stderr_lines)

    def start(self) -> ServerTask:
        argv = ["--host", "127.0.0.1", "--port", "0", *self.args]
        proc: TaskProcess
        if self.forkserver is not None:
            proc = self.forkserver.spawn(self.module, argv, self.env, self.cwd)
        else:
            proc = subprocess.Popen(
                [self.python, "-m", self.module, *argv],
                cwd=self.cwd,
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # a Ctrl-C in the terminal reaches us, not the task
            )
        self._proc = proc
        assert proc.stdout is not None and proc.stderr is not None
        for stream, sink, parse in (
            (proc.stdout, self.stdout_lines, True),
            (proc.stderr, self.stderr_lines, False),
        ):
            reader = threading.Thread(target=self._read, args=(stream, sink, parse), daemon=True)
            reader.start()
            self._readers.append(reader)
        deadline = time.monotonic() + self.start_timeout
        with self._cond:
            while self.port is None:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"server task exited with {proc.returncode}:\n{self._tail()}"
                    )
                woke = self._cond.wait(timeout=max(0.0, min(0.2, deadline - time.monotonic())))
                if not woke and time.monotonic() > deadline:
                    self.kill()
                    raise TimeoutError(f"server task did not start:\n{self._tail()}")
        return self

    def _tail(self) -> str:
        return "\n".join((self.stdout_lines + self.stderr_lines)[-20:])

    def _read(self, stream: IO[str], sink: list[str], parse: bool) -> None:
        for line in stream:
            line = line.rstrip("\n")
            record: dict[str, Any] | None = None
            if parse:
                try:
                    loaded = json.loads(line)
                    record = loaded if isinstance(loaded, dict) else None
                except ValueError:
                    record = None
            with self._cond:
                sink.append(line)
                if record is not None:
                    self.records.append(record)
                    found = _RUNNING.search(str(record.get("message", "")))
                    if found and self.port is None:
                        self.port = int(found[1])
                self._cond.notify_all()

    def events(self, event: str | None = None, **fields: Any) -> list[dict[str, Any]]:
        """Parsed log records, optionally with ``event`` and the given field values."""
        with self._cond:
            return [
                r
                for r in self.records
                if (event is None or r.get("event") == event)
                and all(r.get(k) == v for k, v in fields.items())
            ]

    def wait_for_event(
        self,
        event: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 10.0,
        **fields: Any,
    ) -> dict[str, Any]:
        """Block until a log record with ``event`` (and ``fields``, ``predicate``) appears."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for r in self.records:
                    if (
                        r.get("event") == event
                        and all(r.get(k) == v for k, v in fields.items())
                        and (predicate is None or predicate(r))
                    ):
                        return r
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no {event} {fields} within {timeout}s:\n{self._tail()}")
                self._cond.wait(remaining)

    def signal(self, sig: int = signal.SIGTERM) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(sig)

    def wait(self, timeout: float = 30.0) -> int:
        """Wait for the process to exit and its output to be read; return the exit code."""
        assert self._proc is not None
        code = self._proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        return code

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM (what ECS sends) and wait; kill if it does not stop within ``timeout``."""
        self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(timeout=10)

    def __enter__(self) -> ServerTask:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None and self._proc.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.terminate(timeout=15)
        self.kill()


class SidecarTask(ServerTask):
    """A task of two containers: an MCP server SessionWatch cannot wrap, and the sidecar in front.

    Started in the task definition's ``dependsOn`` order (the server, then the sidecar, which the
    load balancer's target points at) and stopped in reverse, as ECS does ("when a dependency is
    defined for container startup, for container shutdown it is reversed", ECS API reference,
    ContainerDependency): the sidecar gets the SIGTERM, drains and exits, then the server gets
    its own. The task's log stream is the sidecar's stdout; the server's output is discarded,
    as the demo stack ships none of it. ``upstream_cmd`` must print ``{"event": "listening",
    "port": N}`` first (``tests/peers/ts_server.mjs`` does).
    """

    def __init__(
        self,
        upstream_cmd: Sequence[str],
        env: Mapping[str, str] | None = None,
        args: Sequence[str] = (),
        start_timeout: float = 20.0,
        forkserver: ForkServer | None = None,
    ) -> None:
        super().__init__(
            env=env,
            args=args,
            start_timeout=start_timeout,
            module="sessionwatch.sidecar",
            forkserver=forkserver,
        )
        self.upstream_cmd = list(upstream_cmd)
        self.upstream: subprocess.Popen[str] | None = None

    def start(self) -> SidecarTask:
        self.upstream = subprocess.Popen(
            self.upstream_cmd,
            cwd=self.cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        assert self.upstream.stdout is not None
        first = self.upstream.stdout.readline()
        try:
            port = int(json.loads(first)["port"])
        except (ValueError, KeyError, TypeError) as exc:
            self.kill()
            raise RuntimeError(f"upstream {self.upstream_cmd} did not start: {first!r}") from exc
        # Keep its pipe drained (it must never block on a full pipe); nothing is kept.
        threading.Thread(target=self.upstream.stdout.read, daemon=True).start()
        self.args = ["--upstream", f"http://127.0.0.1:{port}", *self.args]
        super().start()
        return self

    def wait(self, timeout: float = 30.0) -> int:
        code = super().wait(timeout)
        self._stop_upstream()
        return code

    def kill(self) -> None:
        super().kill()
        if self.upstream is not None and self.upstream.poll() is None:
            self.upstream.kill()
            self.upstream.wait(timeout=5)

    def _stop_upstream(self, timeout: float = 5.0) -> None:
        if self.upstream is None or self.upstream.poll() is not None:
            return
        self.upstream.send_signal(signal.SIGTERM)
        try:
            self.upstream.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.upstream.kill()
            self.upstream.wait(timeout=5)


# The TypeScript SDK server the lab runs behind the sidecar: the peers' server (it answers the
# probe's tools), on the SDK that `make setup` installs into tests/peers/node_modules.
TS_SERVER = REPO_ROOT / "tests" / "peers" / "ts_server.mjs"
TS_SDK = REPO_ROOT / "tests" / "peers" / "node_modules" / "@modelcontextprotocol" / "sdk"


def task_module(server: str) -> str:
    """The Python module a lab task of ``server`` runs: the server, or the sidecar in front of
    a TypeScript one (what the lab's fork server imports)."""
    return "sessionwatch.server" if server == "python" else "sessionwatch.sidecar"


def task_starter(
    server: str, forkserver: ForkServer | None = None
) -> Callable[[dict[str, str]], ServerTask]:
    """How a lab task of ``server`` ("python" or "typescript") starts, given its environment."""
    if server == "python":
        return lambda env: ServerTask(env=env, forkserver=forkserver).start()
    if server != "typescript":
        raise ValueError(f"unknown lab server {server!r}")
    node = shutil.which("node")
    if node is None or not TS_SDK.exists():
        raise RuntimeError(
            "the typescript-server scenario needs Node.js and the TypeScript SDK "
            "(make setup: npm ci in tests/peers)"
        )
    return lambda env: SidecarTask([node, str(TS_SERVER)], env=env, forkserver=forkserver).start()
