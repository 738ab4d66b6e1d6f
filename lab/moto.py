"""``moto_server`` as the lab's AWS: one subprocess on a free loopback port, boto3 pointed at it.

A subprocess rather than in-process ``mock_aws`` because the lab's detectors, its glue and (in
tests) separate processes must all see the SAME account state, exactly as they would share one
AWS account, and because the standard ``AWS_ENDPOINT_URL`` environment variable is then all a
detector needs to find it: no code path exists only for the lab.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx

from lab.processes import stop_process

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
# werkzeug's start-up line; with ``-p 0`` it names the port the OS gave it
_RUNNING = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


@dataclass
class MotoServer:
    """A running ``moto_server``; use as a context manager so it is always stopped.

    It binds a port the OS picks (``-p 0``) and the lab reads that port from its start-up line.
    A port chosen free beforehand and released would be a race: another process (parallel runs
    share this machine) can take it before moto binds, and a ``moto_server`` of another run that
    answers there would silently become this lab's AWS account.
    """

    log_path: Path | None = None
    region: str = REGION
    port: int | None = field(default=None, init=False)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _scratch_log: Path | None = field(default=None, init=False, repr=False)
    # Held while os.environ is changed (the in-process Lambda invocations, lab/detectors_runtime.py)
    # or read to make a client (botocore reads the proxy variables): another thread iterating
    # os.environ while it changes fails with a KeyError.
    env_lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _session: Any = field(default=None, init=False, repr=False)

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("MotoServer is not started")
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The standard boto3 environment that points any SDK client at this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, **self._credentials()}

    def _credentials(self) -> dict[str, str]:
        return {
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` with ``endpoint_url`` set to this server, made once per
        service from one session (boto3's clients are thread-safe; making one is not, and costs
        milliseconds; the session's loader reads the shared models once)."""
        with self.env_lock:
            if service not in self._clients:
                if self._session is None:
                    self._session = boto3.session.Session()
                self._clients[service] = self._session.client(
                    service,
                    endpoint_url=self.endpoint,
                    region_name=self.region,
                    aws_access_key_id="testing",
                    aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
                )
            return self._clients[service]

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start ``moto_server`` on a port of its own and wait until it answers there."""
        binary = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        command = ([binary] if binary else [sys.executable, "-m", "moto.server"]) + [
            "-H",
            "127.0.0.1",
            "-p",
            "0",
        ]
        log_path = self.log_path
        if log_path is None:  # the start-up line is read from the log: keep one in any case
            fd, name = tempfile.mkstemp(prefix="sessionwatch-moto-", suffix=".log")
            os.close(fd)
            log_path = self._scratch_log = Path(name)
        with log_path.open("ab") as out:
            offset = out.tell()  # a reused log file may hold an earlier run's start-up line
            self._process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # a caller's own AWS_ENDPOINT_URL must not point moto's internals elsewhere
                env={
                    **{k: v for k, v in os.environ.items() if k != "AWS_ENDPOINT_URL"},
                    **self._credentials(),
                },
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self.stop()
                raise RuntimeError("moto_server exited at start")
            if self.port is None:
                with log_path.open("rb") as log:
                    log.seek(offset)
                    found = _RUNNING.search(log.read().decode(errors="replace"))
                self.port = int(found[1]) if found else None
            if self.port is not None:
                try:
                    httpx.get(self.endpoint + "/moto-api/", timeout=1)
                    return
                except httpx.HTTPError:
                    pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not answer within 30 s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); safe to call twice."""
        process, self._process = self._process, None
        self._clients.clear()  # a restarted server has a new port
        stop_process(process)
        self.port = None
        scratch, self._scratch_log = self._scratch_log, None
        if scratch is not None:
            scratch.unlink(missing_ok=True)
