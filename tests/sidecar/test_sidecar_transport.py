"""The proxy as HTTP: streams both ways, headers and statuses as they are, 502 never a hang.

A real sidecar process in front of :class:`ProbeUpstream` (a real uvicorn); every timing below is
relative to the test's own observations, never to a clock's absolute value.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from lab.forkserver import ForkServer
from lab.haproxy import free_port
from sessionwatch import contract
from tests.sidecar.conftest import ProbeUpstream, sidecar

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def proxied(
    probe_upstream: ProbeUpstream, task_forks: ForkServer
) -> Iterator[tuple[ProbeUpstream, str]]:
    with sidecar(probe_upstream.url, forkserver=task_forks) as task:
        yield probe_upstream, task.url


def test_sse_events_arrive_as_the_upstream_writes_them(proxied: tuple[ProbeUpstream, str]) -> None:
    upstream, url = proxied
    arrivals: list[float] = []
    with httpx.stream("GET", f"{url}/sse?n=3&gap=0.4", timeout=10) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.monotonic())
                if len(arrivals) == 3:
                    break
        # Unbuffered: the events came about 0.4 s apart, not all at once at the end.
        assert arrivals[2] - arrivals[0] > 0.6
        # The stream is still open after the last event (a GET stream is held, no read timeout).
    # Leaving the stream hangs up; the upstream sees its client go away.
    assert upstream.disconnected.wait(5)


def test_a_request_body_streams_upstream_before_it_ends(
    proxied: tuple[ProbeUpstream, str],
) -> None:
    upstream, url = proxied
    sent: list[float] = []

    def body() -> Iterator[bytes]:
        for _ in range(3):
            sent.append(time.monotonic())
            yield b"x" * 1000
            time.sleep(0.4)

    response = httpx.post(f"{url}/echo", content=body(), timeout=10)
    assert response.status_code == 201
    assert response.text == "3000"
    first_data = next(t for t, n in upstream.chunks if n)
    assert first_data < sent[-1], "the upstream got nothing until the client had sent everything"


def test_status_and_headers_pass_through_without_hop_by_hop(
    proxied: tuple[ProbeUpstream, str],
) -> None:
    _, url = proxied
    response = httpx.post(f"{url}/echo", content=b"abc", timeout=10)
    assert response.status_code == 201
    assert response.headers.get_list("x-dup") == ["one", "two"]
    assert "x-secret-hop" not in response.headers  # named in Connection: hop-by-hop
    assert "keep-alive" not in response.headers
    assert response.headers[contract.TASK_ID_HEADER]  # added by instrument()


def test_request_headers_reach_the_upstream_with_its_own_host(
    proxied: tuple[ProbeUpstream, str],
) -> None:
    upstream, url = proxied
    response = httpx.get(
        f"{url}/headers?q=1",
        headers={
            "host": "mcp.example.com",
            "x-custom": "kept",
            "connection": "x-drop-me",
            "x-drop-me": "1",
            "x-forwarded-for": "203.0.113.9",
        },
        timeout=10,
    )
    seen = dict(response.json())
    assert seen["host"] == f"127.0.0.1:{upstream.port}"
    assert seen["x-forwarded-host"] == "mcp.example.com"
    assert seen["x-custom"] == "kept"
    assert "x-drop-me" not in seen
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"


def test_upstream_connections_are_pooled(proxied: tuple[ProbeUpstream, str]) -> None:
    upstream, url = proxied
    for _ in range(5):  # one after another: each finds the previous connection idle in the pool
        assert httpx.get(f"{url}/headers", timeout=10).status_code == 200
    assert len(upstream.client_ports) == 5
    assert len(set(upstream.client_ports)) == 1, upstream.client_ports


def test_upstream_down_answers_502_at_once_with_a_log_line(task_forks: ForkServer) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    with sidecar(dead, "--connect-timeout", "2", forkserver=task_forks) as task:
        started = time.monotonic()
        response = httpx.post(f"{task.url}/mcp", content=b"{}", timeout=10)
        assert time.monotonic() - started < 2.5
        assert response.status_code == 502
        assert response.json()["error"]["code"] == -32603
        line = task.wait_for_event(contract.EVENT_UPSTREAM_ERROR)
        assert line["status"] == 502 and line["path"] == "/mcp"
        assert not task.events(contract.EVENT_SESSION_NOT_FOUND)
        # Its own health still answers: the sidecar is up, the upstream is not.
        assert httpx.get(f"{task.url}/health", timeout=5).status_code == 200


def test_health_passes_the_upstreams_through_when_asked(
    probe_upstream: ProbeUpstream, task_forks: ForkServer
) -> None:
    health = "--upstream-health-path"
    with sidecar(probe_upstream.url, health, "/anything", forkserver=task_forks) as task:
        response = httpx.get(f"{task.url}/health", timeout=5)
        assert response.status_code == 200
        assert response.json()["upstream_status"] == 200
    dead = f"http://127.0.0.1:{free_port()}"
    with sidecar(dead, health, "/health", forkserver=task_forks) as task:
        response = httpx.get(f"{task.url}/health", timeout=5)
        assert response.status_code == 503
        assert response.json()["status"] == "upstream_unhealthy"
