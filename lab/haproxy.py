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
  ALB's value is opaque, HAProxy's is ``<slot>|<date>`` in clear. ``maxidle`` is the target
  group's stickiness duration as configured (the demo's: 1 day), divided by the lab's time
  scale (``cookie_lifetime_s``): a client that keeps its cookie is never re-dispatched within
  a run, whatever the load; only a scenario that configures a short duration (the stale-cookie
  one) sees a cookie expire. A fixed few-second ``maxidle`` would invent failures: under load a
  client's next call can come more than 4 s after its last cookie was dated.
- Targets are server SLOTS declared in the config (``slot1`` … ``slotN``, starting in
  maintenance): HAProxy 2.6 refuses ``cookie`` on dynamically added servers, so registering a
  task sets a free slot's address and makes it ``ready``. Slots are never reused, as an ALB
  cookie never names a new task with an old task's address.
- Deregistration is ``set server … state maint`` (HAProxy's ``drain`` would still honour sticky
  cookies; ``maint`` re-routes them, like a deregistering ALB target), then after the
  deregistration delay ``shutdown sessions server …`` closes what is still open.
- Health checks ``GET /health`` every ``health_interval_ms``; ``fall 2 rise 1`` (ALB's unhealthy
  threshold is 2), each check allowed ``health_timeout_s`` (ALB's default timeout, 5 s).

- Two groups are a blue/green listener's weighted forward; with target group stickiness
  (``AWSALBTG``) HAProxy plays what the ELB guide states for it (lab/README.md quotes each
  statement): a request carrying a valid ``AWSALBTG`` goes to the group it names whatever the
  weights ("routed to the target group specified in the cookie"; "Stickiness takes precedence
  over adjusting Weight"); an empty group answers 503 from the load balancer itself (no
  fail-over to a group with targets); the cookie is valid for the rule's stickiness duration
  (``DurationSeconds``, scaled), counted from the last response a target of the group sent, as
  the lab's ``AWSALB`` counts ``maxidle``. The value is ``<group>.<unix time>`` in clear (ALB's
  is opaque and encrypted). The documentation is silent on whether the duration slides with
  each response and on whether ALB's own 503 carries the cookie; the lab refreshes it on every
  target response and never on its own 503 (``http-response`` rules do not run on HAProxy's
  internal errors), which fits AWS's answer that the 503s "last until the sticky session
  expires".

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
GROUP_COOKIE = "AWSALBTG"  # ALB's target group stickiness cookie (weighted forward actions)


class HAProxyError(RuntimeError):
    """HAProxy is missing, did not start, or refused a runtime command."""


def cookie_lifetime_s(stickiness_duration_s: float, time_scale: float) -> int:
    """HAProxy's ``maxidle`` for a target group's stickiness duration, ``time_scale`` x faster.

    Whole seconds, at least 1 (HAProxy's unit). The demo's 1 day at 20x is 4320 s: longer than any
    lab run, as the real cookie outlives any deployment.
    """
    return max(1, round(stickiness_duration_s / time_scale))


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
    health_timeout_s: float = 5.0,
    groups: tuple[str, ...] = (BACKEND,),
    group_stickiness: bool = False,
    group_stickiness_s: int = 86_400,
    weights_file: Path | None = None,
) -> str:
    """The haproxy.cfg text: one frontend on loopback, one backend of sticky slots per group.

    One group is a target group behind a plain forward. Two groups are the weighted forward of
    a blue/green listener: ``rand(100)`` against the runtime ACL file ``weights_file`` (the second
    group's share, ``shift``) picks the group per request, and with ``group_stickiness`` a valid
    ``AWSALBTG`` cookie (issued less than ``group_stickiness_s`` ago) keeps a client on its
    group, usable targets or not.
    """
    lines = [
        "global",
        f"    stats socket {admin_socket} mode 600 level admin",
        "    maxconn 4096",
        "",
        "defaults",
        "    mode http",
        "    timeout connect 2s",
        "    timeout client 60s",
        "    timeout server 60s",
        "    timeout http-keep-alive 10s",
        f"    timeout check {health_timeout_s:g}s",
        "",
        "frontend alb",
        f"    bind 127.0.0.1:{port}",
    ]
    if len(groups) > 1:
        if weights_file is None:
            raise ValueError("two target groups need a weights file")
        second = groups[1]
        if group_stickiness:
            # The group cookie is "<group>.<issued unix time>"; valid for the duration since
            # issued. A valid one wins over the weights, even when its group has no target left.
            lines += [
                f"    http-request set-var(txn.tg_born) req.cook({GROUP_COOKIE}),field(2,.)",
                f"    acl tg_valid date,sub(txn.tg_born) -m int le {group_stickiness_s}",
            ]
            lines += [
                f"    use_backend {g} if {{ req.cook({GROUP_COOKIE}),field(1,.) -m str {g} }} "
                "tg_valid"
                for g in groups
            ]
        lines += [
            f"    acl to_{second} rand(100) -m int -f {weights_file}",
            f"    use_backend {second} if to_{second}",
        ]
    lines.append(f"    default_backend {groups[0]}")
    number = 0
    for group in groups:
        lines += [
            "",
            f"backend {group}",
            "    balance roundrobin",
            f"    cookie {COOKIE} insert nocache maxidle {cookie_maxidle_s}s",
            "    option httpchk GET /health",
            "    http-check expect status 200",
            f"    default-server inter {health_interval_ms}ms fall 2 rise 1 check disabled",
        ]
        if group_stickiness and len(groups) > 1:
            # Only responses a target sent: HAProxy's own 503 runs no http-response rule.
            cookie = f"{GROUP_COOKIE}={group}.%[date]; Path=/"
            lines.append(f'    http-response add-header Set-Cookie "{cookie}"')
        for _ in range(slots):
            number += 1
            lines.append(f"    server slot{number} 127.0.0.1:1 cookie slot{number}")
    return "\n".join(lines) + "\n"


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
    # ALB's HealthCheckTimeoutSeconds default. Not scaled: it bounds a response time, and the
    # lab's tasks answer no faster than real ones. Without it HAProxy times a check out after
    # ``inter`` (300 ms), and on a loaded machine healthy tasks flapped DOWN and their sticky
    # clients were re-dispatched: `stickiness` losses an ALB would not cause.
    health_timeout_s: float = 5.0
    port: int = field(default_factory=free_port)
    groups: tuple[str, ...] = (BACKEND,)  # target groups (two: a blue/green listener)
    group_stickiness: bool = False  # AWSALBTG on the weighted forward
    group_stickiness_s: int = 86_400  # its DurationSeconds, already scaled (whole seconds)
    _process: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _next_slot: dict[str, int] = field(default_factory=dict, init=False, repr=False)
    targets: dict[str, str] = field(default_factory=dict)  # target name -> slot
    group_of: dict[str, str] = field(default_factory=dict)  # target name -> target group

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def admin_socket(self) -> Path:
        return self.workdir / "haproxy.sock"

    @property
    def weights_file(self) -> Path:
        return self.workdir / "second-group-share.acl"

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
                health_timeout_s=self.health_timeout_s,
                groups=self.groups,
                group_stickiness=self.group_stickiness,
                group_stickiness_s=self.group_stickiness_s,
                weights_file=self.weights_file,
            )
        )
        self.weights_file.write_text("")
        self._next_slot = {g: i * self.slots + 1 for i, g in enumerate(self.groups)}
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

    def _server(self, target: str) -> str:
        return f"{self.group_of[target]}/{self.targets[target]}"

    def register(
        self, target: str, port: int, host: str = "127.0.0.1", group: str | None = None
    ) -> str:
        """Put ``target`` (a task id) in ``group``'s next free slot; returns the slot.

        The target starts with its health DOWN, as a new ALB target is ``initial`` until its
        health check passes: no request reaches a task that has not answered ``/health``.
        """
        group = group or self.groups[0]
        number = self._next_slot[group]
        if number > (self.groups.index(group) + 1) * self.slots:
            raise HAProxyError(f"all {self.slots} slots of {group} used; start with more slots")
        slot = f"slot{number}"
        self._next_slot[group] = number + 1
        self._checked(f"set server {group}/{slot} addr {host} port {port}")
        # ready first: leaving maintenance resets the health to UP, so force DOWN after it
        self._checked(f"set server {group}/{slot} state ready")
        self._checked(f"set server {group}/{slot} health down")
        self.targets[target] = slot
        self.group_of[target] = group
        return slot

    def deregister(self, target: str) -> None:
        """Stop routing to ``target``: ``maint`` re-routes even requests with its sticky cookie."""
        self._checked(f"set server {self._server(target)} state maint")

    def shutdown_sessions(self, target: str) -> None:
        """Close the connections still open to ``target`` (end of the deregistration delay)."""
        self._checked(f"shutdown sessions server {self._server(target)}")

    def shift(self, percent: int) -> None:
        """Send ``percent`` of new requests to the second target group (the listener's weights)."""
        if len(self.groups) < 2:
            raise HAProxyError("one target group: nothing to shift")
        self._checked(f"clear acl {self.weights_file}")
        if percent > 0:
            self._checked(f"add acl {self.weights_file} 0:{min(percent, 100) - 1}")

    def _rows(self) -> dict[tuple[str, str], dict[str, str]]:
        raw = self.command("show stat").lstrip("# ")
        return {(row["pxname"], row["svname"]): row for row in csv.DictReader(io.StringIO(raw))}

    def states(self) -> dict[str, TargetState]:
        """The registered targets' states, keyed by target name."""
        rows = self._rows()
        result = {}
        for target, slot in self.targets.items():
            row = rows.get((self.group_of[target], slot))
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
        rows = self._rows()
        return sum(int(rows.get((g, "BACKEND"), {}).get("hrsp_5xx") or 0) for g in self.groups)

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
