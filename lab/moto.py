"""``moto_server`` as the lab's AWS: one subprocess on a free loopback port, boto3 pointed at it.

A subprocess rather than in-process ``mock_aws`` because the lab's detectors, its glue and (in
tests) separate processes must all see the SAME account state, exactly as they would share one
AWS account, and because the standard ``AWS_ENDPOINT_URL`` environment variable is then all a
detector needs to find it: no code path exists only for the lab.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx

from lab.haproxy import free_port
from lab.processes import stop_process

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


@dataclass
class MotoServer:
    """A running ``moto_server``; use as a context manager so it is always stopped."""

    log_path: Path | None = None
    port: int = field(default_factory=free_port)
    region: str = REGION
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """The standard boto3 environment that points any SDK client at this server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` with ``endpoint_url`` set to this server."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - moto's dummy credentials
        )

    def __enter__(self) -> MotoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start ``moto_server`` and wait until it answers."""
        binary = shutil.which("moto_server", path=str(Path(sys.executable).parent))
        command = ([binary] if binary else [sys.executable, "-m", "moto.server"]) + [
            "-H",
            "127.0.0.1",
            "-p",
            str(self.port),
        ]
        out = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        self._process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **self.env()},
        )
        if self.log_path and not isinstance(out, int):
            out.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError("moto_server exited at start")
            try:
                httpx.get(self.endpoint + "/moto-api/", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("moto_server did not answer within 30 s")

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL); safe to call twice."""
        process, self._process = self._process, None
        stop_process(process)
