"""HAProxy as the lab's Application Load Balancer: sticky ``AWSALB`` cookie, health checks, targets.

The lab needs a real load balancer whose stickiness and deregistration behave like an ALB target
group with ``lb_cookie`` stickiness, because the failure SessionWatch detects is made of exactly
those two things. HAProxy (the Debian package, 2.6) does it unprivileged on loopback:

- ``cookie AWSALB insert nocache maxidle Ns``: HAProxy inserts a cookie naming the target, with a
  last-seen date that it re-issues as time passes, so the value ROTATES on a client that keeps
  coming back (as ALB's re-encrypted cookie does), and a cookie older than ``maxidle`` is ignored
  and the request load-balanced afresh (as ALB does with a stale value the experiment's client
  found). Differences from ALB, documented on purpose: ALB re-encrypts on every response,
  HAProxy re-issues only when the date moves (it dates the cookie in steps of about 4 s, so a
  rotation every ~4 s and an effective idle limit between ``maxidle`` and ``maxidle`` + 4 s);
  ALB's value is opaque, HAProxy's is ``<slot>|<date>`` in clear; ALB's cookie lives 1 day by
  default, the lab's ``maxidle`` is a few seconds so the stale-cookie scenario is short.
- Targets are server SLOTS declared in the config (``slot1`` … ``slotN``, starting in
  maintenance): HAProxy 2.6 refuses ``cookie`` on dynamically added servers, so registering a
  task sets a free slot's address and makes it ``ready``. Slots are never reused, as an ALB
  cookie never names a new task with an old task's address.
- Deregistration is ``set server … state maint`` (HAProxy's ``drain`` would still honour sticky
  cookies; ``maint`` re-routes them, like a deregistering ALB target), then after the
  deregistration delay ``shutdown sessions server …`` closes what is still open.
- Health checks ``GET /health`` every ``health_interval_ms``; ``fall 2 rise 1``.

The runtime API is a UNIX socket in the work directory (``admin`` level), spoken line by line.
"""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from lab.processes import stop_process

HAPROXY_BIN = os.environ.get("SESSIONWATCH_HAPROXY", "/usr/sbin/haproxy")
BACKEND = "targets"
COOKIE = "AWSALB"


class HAProxyError(RuntimeError):
    """HAProxy is missing, did not start, or refused a runtime command."""


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (the OS picks; the lab never uses fixed ports)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_config(
    *,
    port: int,
    admin_socket: Path,
    slots: int,
    cookie_maxidle_s: int,
    health_interval_ms: int,
) -> str:
    """The haproxy.cfg text: one frontend on loopback, one backend of ``slots`` sticky slots."""
    servers = "\n".join(
        f"    server slot{i} 127.0.0.1:1 cookie slot{i}" for i in range(1, slots + 1)
    )
    return f"""global
    stats socket {admin_socket} mode 600 level admin
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 10s

frontend alb
    bind 127.0.0.1:{port}
    default_backend {BACKEND}

backend {BACKEND}
    balance roundrobin
    cookie {COOKIE} insert nocache maxidle {cookie_maxidle_s}s
    option httpchk GET /health
    http-check expect status 200
    default-server inter {health_interval_ms}ms fall 2 rise 1 check disabled
{servers}
"""


@dataclass
class TargetState:
    """One slot as HAProxy reports it (``show stat``): ``status`` is UP, DOWN, MAINT, ..."""

    slot: str
    status: str
    address: str
    http_5xx: int
    http_4xx: int


@dataclass
class HAProxy:
    """One HAProxy process; use as a context manager so it is always stopped."""

    workdir: Path
    slots: int = 16
    cookie_maxidle_s: int = 4
    health_interval_ms: int = 300
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _next_slot: int = field(default=1, init=False, repr=False)
    targets: dict[str, str] = field(default_factory=dict)  # target name -> slot

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_socket(self) -> Path:
        return self.workdir / "haproxy.sock"

    def __enter__(self) -> HAProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Write the config, check it, and start HAProxy in the foreground (``-db``)."""
        if not Path(HAPROXY_BIN).exists():
            raise HAProxyError(
                f"HAProxy not found at {HAPROXY_BIN}: install it (Debian/Ubuntu: "
                "`sudo apt-get install haproxy`) or set SESSIONWATCH_HAPROXY to its path"
            )
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "haproxy.cfg"
        config.write_text(
            render_config(
                port=self.port,
                admin_socket=self.admin_socket,
                slots=self.slots,
                cookie_maxidle_s=self.cookie_maxidle_s,
                health_interval_ms=self.health_interval_ms,
            )
        )
        log = (self.workdir / "haproxy.log").open("ab")
        self._process = subprocess.Popen(
            [HAPROXY_BIN, "-db", "-f", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise HAProxyError(f"HAProxy exited at start; see {self.workdir / 'haproxy.log'}")
            if self.admin_socket.exists():
                try:
                    self.command("show info")
                    return
                except OSError:
                    pass
            time.sleep(0.05)
        self.stop()
        raise HAProxyError("HAProxy did not open its runtime socket within 10 s")

    def stop(self) -> None:
        """Stop HAProxy (SIGTERM, then SIGKILL); safe to call twice."""
        process, self._process = self._process, None
        stop_process(process)

    def command(self, line: str) -> str:
        """Send one runtime API command and return HAProxy's answer."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.admin_socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def _checked(self, line: str) -> str:
        answer = self.command(line).strip()
        lowered = answer.lower()
        if any(word in lowered for word in ("no such", "unknown", "error", "invalid", "require")):
            raise HAProxyError(f"HAProxy refused {line!r}: {answer}")
        return answer

    def register(self, target: str, port: int, host: str = "127.0.0.1") -> str:
        """Put ``target`` (a task id) in the next free slot and make it ready; returns the slot."""
        if self._next_slot > self.slots:
            raise HAProxyError(f"all {self.slots} target slots used; start with more slots")
        slot = f"slot{self._next_slot}"
        self._next_slot += 1
        self._checked(f"set server {BACKEND}/{slot} addr {host} port {port}")
        self._checked(f"set server {BACKEND}/{slot} state ready")
        self.targets[target] = slot
        return slot

    def deregister(self, target: str) -> None:
        """Stop routing to ``target``: ``maint`` re-routes even requests with its sticky cookie."""
        self._checked(f"set server {BACKEND}/{self.targets[target]} state maint")

    def shutdown_sessions(self, target: str) -> None:
        """Close the connections still open to ``target`` (end of the deregistration delay)."""
        self._checked(f"shutdown sessions server {BACKEND}/{self.targets[target]}")

    def states(self) -> dict[str, TargetState]:
        """The registered targets' states, keyed by target name."""
        raw = self.command("show stat").lstrip("# ")
        rows = {row["svname"]: row for row in csv.DictReader(io.StringIO(raw))}
        result = {}
        for target, slot in self.targets.items():
            row = rows.get(slot)
            if row is None:
                continue
            result[target] = TargetState(
                slot=slot,
                status=row.get("status", ""),
                address=row.get("addr", ""),
                http_5xx=int(row.get("hrsp_5xx") or 0),
                http_4xx=int(row.get("hrsp_4xx") or 0),
            )
        return result

    def backend_5xx(self) -> int:
        """5xx answers the load balancer itself sent or relayed (the ALB's HTTPCode_*_5XX)."""
        raw = self.command("show stat").lstrip("# ")
        for row in csv.DictReader(io.StringIO(raw)):
            if row["pxname"] == BACKEND and row["svname"] == "BACKEND":
                return int(row.get("hrsp_5xx") or 0)
        return 0

    def wait_status(self, target: str, wanted: str, timeout: float = 15.0) -> None:
        """Wait until ``target``'s status starts with ``wanted`` (e.g. ``UP``)."""
        deadline = time.monotonic() + timeout
        status = "?"
        while time.monotonic() < deadline:
            state = self.states().get(target)
            status = state.status if state else "?"
            if status.startswith(wanted):
                return
            time.sleep(0.05)
        raise HAProxyError(f"target {target} is {status}, not {wanted}, after {timeout} s")
