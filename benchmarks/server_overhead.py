"""What SessionWatch costs a server: the same tool-call workload through three servers.

(a) the bare reference server, (b) the same app wrapped by ``server.instrumentation.instrument``,
(c) the bare app wrapped by ``opentelemetry-instrumentation-asgi`` (spans + HTTP metrics, SDK
providers, no exporter). Each runs as its own uvicorn process; the load generator (this process)
holds one MCP session per worker and alternates ``set_session_value`` / ``get_session_state``.

The machine is shared and noisy, so variants are measured in interleaved short rounds (a rotating
order) and compared by ratio inside one run. Goal: b/a >= 0.97 in throughput, and b costs less
than c. Budget: ~90 s. ``python -m benchmarks server_overhead``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

VARIANTS = {"a": "bare", "b": "sessionwatch", "c": "otel-asgi"}
ROUNDS = 6  # a multiple of 3: each variant goes first, second and third equally often
ROUND_SECONDS = 3.0
WORKERS = 8
PROTOCOL = "2025-11-25"
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}
REPO_ROOT = Path(__file__).resolve().parent.parent


def build_variant(variant: str) -> Any:
    """The ASGI app for one variant (imports kept local: a variant pays only for what it uses)."""
    from sessionwatch.server.app import build_app, build_mcp_server
    from sessionwatch.server.identity import TaskIdentity

    identity = TaskIdentity(task_id=f"bench-{variant}")
    mcp = build_mcp_server(identity)
    app: Any = build_app(mcp, session_idle_timeout=600)
    if variant == "b":
        from sessionwatch.server.instrumentation import instrument
        from sessionwatch.server.logs import build_event_logger, route_library_logs

        logger = build_event_logger("bench", identity.task_id)
        route_library_logs(logger)
        app = instrument(app, identity=identity, session_manager=mcp.session_manager, logger=logger)
    elif variant == "c":
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

        app = OpenTelemetryMiddleware(
            app, tracer_provider=TracerProvider(), meter_provider=MeterProvider()
        )
    return app


def serve(variant: str, port: int) -> None:
    """Child process entry: one variant under uvicorn, quiet."""
    import logging

    import uvicorn

    app = build_variant(variant)
    logging.getLogger("mcp").setLevel(logging.WARNING)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _start(variant: str) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    code = f"from benchmarks.server_overhead import serve; serve({variant!r}, {port})"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"variant {variant} did not start")


async def _open_session(client: httpx.AsyncClient, url: str) -> dict[str, str]:
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"},
        },
    }
    response = await client.post(f"{url}/mcp", headers=HEADERS, content=json.dumps(init))
    response.raise_for_status()
    headers = {
        **HEADERS,
        "mcp-session-id": response.headers["mcp-session-id"],
        "mcp-protocol-version": PROTOCOL,
    }
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    await client.post(f"{url}/mcp", headers=headers, content=json.dumps(note))
    return headers


async def _round(url: str, seconds: float) -> tuple[int, float, list[float]]:
    """Run the workload for ``seconds``; return (requests, elapsed, latencies)."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=WORKERS, max_keepalive_connections=WORKERS)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        sessions = [await _open_session(client, url) for _ in range(WORKERS)]
        start = time.perf_counter()
        stop = start + seconds

        async def worker(headers: dict[str, str]) -> None:
            i = 0
            while time.perf_counter() < stop:
                i += 1
                if i % 2:
                    params = {
                        "name": "set_session_value",
                        "arguments": {"key": "k", "value": str(i)},
                    }
                else:
                    params = {"name": "get_session_state", "arguments": {}}
                body = json.dumps(
                    {"jsonrpc": "2.0", "id": i, "method": "tools/call", "params": params}
                )
                t0 = time.perf_counter()
                response = await client.post(f"{url}/mcp", headers=headers, content=body)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: HTTP {response.status_code}")
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker(h) for h in sessions))
        elapsed = time.perf_counter() - start
        for headers in sessions:
            await client.delete(f"{url}/mcp", headers=headers)
    return len(latencies), elapsed, latencies


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc): steadier than wall-clock rates."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


_SID = "fedcba9876543210fedcba9876543210"
_BODY = json.dumps(
    {"jsonrpc": "2.0", "id": 5, "method": "tools/call",
     "params": {"name": "set_session_value", "arguments": {"key": "k", "value": "12"}}}
).encode()  # fmt: skip
_SSE = (
    b'event: message\r\ndata: {"jsonrpc":"2.0","id":5,"result":{"content":[{"type":"text",'
    b'"text":"ok"}],"structuredContent":{"size":"2"},"isError":false}}\r\n\r\n'
)


async def _stub_app(scope: Any, receive: Any, send: Any) -> None:
    await receive()
    headers = [(b"content-type", b"text/event-stream"), (b"mcp-session-id", _SID.encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": _SSE})


def middleware_cost(n: int = 10_000) -> dict[str, float]:
    """Microseconds each wrapper adds per tool-call exchange around a do-nothing app, in-process.

    No sockets, no scheduler noise: the pure cost of the wrapper's own code path.
    """
    import io

    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

    from sessionwatch.server.identity import TaskIdentity
    from sessionwatch.server.instrumentation import instrument
    from sessionwatch.server.logs import build_event_logger

    scope = {
        "type": "http", "method": "POST", "path": "/mcp", "scheme": "http", "query_string": b"",
        "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5555), "http_version": "1.1",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                    (b"mcp-session-id", _SID.encode()),
                    (b"mcp-protocol-version", PROTOCOL.encode())],
    }  # fmt: skip
    logger = build_event_logger("bench-micro", "micro", stream=io.StringIO())
    apps = {
        "a": _stub_app,
        "b": instrument(
            _stub_app, identity=TaskIdentity("micro"), logger=logger, meter_provider=MeterProvider()
        ),
        "c": OpenTelemetryMiddleware(
            _stub_app, tracer_provider=TracerProvider(), meter_provider=MeterProvider()
        ),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": _BODY, "more_body": False}

    async def send(message: Any) -> None:
        return None

    async def timed(app: Any) -> float:
        start = time.perf_counter()
        for _ in range(n):
            await app(dict(scope), receive, send)
        return (time.perf_counter() - start) / n * 1e6

    async def run() -> dict[str, float]:
        best = {v: min([await timed(apps[v]) for _ in range(3)]) for v in apps}
        return {v: best[v] - best["a"] for v in ("b", "c")}

    return asyncio.run(run())


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks server_overhead")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seconds", type=float, default=ROUND_SECONDS)
    args = parser.parse_args(argv or [])
    procs: dict[str, subprocess.Popen[bytes]] = {}
    urls: dict[str, str] = {}
    try:
        for variant in VARIANTS:
            procs[variant], urls[variant] = _start(variant)
        asyncio.run(_round(urls["a"], 1.0))  # warm-up, discarded
        totals = {v: [0, 0.0] for v in VARIANTS}
        lats: dict[str, list[float]] = {v: [] for v in VARIANTS}
        per_round: dict[str, list[float]] = {v: [] for v in VARIANTS}
        cpu = dict.fromkeys(VARIANTS, 0.0)
        order = list(VARIANTS)
        for r in range(args.rounds):
            for variant in order[r % 3 :] + order[: r % 3]:  # rotate who goes first
                cpu_before = _cpu_seconds(procs[variant].pid)
                n, elapsed, latencies = asyncio.run(_round(urls[variant], args.seconds))
                cpu[variant] += _cpu_seconds(procs[variant].pid) - cpu_before
                totals[variant][0] += n
                totals[variant][1] += elapsed
                lats[variant].extend(latencies)
                per_round[variant].append(n / elapsed)
    finally:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    rps = {v: totals[v][0] / totals[v][1] for v in VARIANTS}
    print(f"workload: {WORKERS} sessions, tools/call set/get alternating, "
          f"{args.rounds} interleaved rounds x {args.seconds:g}s per variant")  # fmt: skip
    # Server CPU per request includes per-round session set-up (same for every variant).
    cpu_us = {v: cpu[v] / totals[v][0] * 1e6 for v in VARIANTS}
    print(
        f"{'variant':<16}{'req/s':>10}{'median rnd':>12}{'p50 ms':>10}{'p99 ms':>10}"
        f"{'srv CPU us/req':>16}"
    )
    for v, name in VARIANTS.items():
        print(
            f"{v} {name:<14}{rps[v]:>10.1f}{statistics.median(per_round[v]):>12.1f}"
            f"{_pct(lats[v], 0.5) * 1000:>10.2f}{_pct(lats[v], 0.99) * 1000:>10.2f}"
            f"{cpu_us[v]:>16.0f}"
        )
    print(f"ratio b/a throughput: {rps['b'] / rps['a']:.3f}  (goal >= 0.97)")
    print(f"ratio c/a throughput: {rps['c'] / rps['a']:.3f}")
    paired = {
        v: statistics.median(x / a for x, a in zip(per_round[v], per_round["a"], strict=True))
        for v in ("b", "c")
    }
    print(f"median per-round ratio (drift-resistant): b/a {paired['b']:.3f}, c/a {paired['c']:.3f}")
    print(
        f"server CPU per request vs a: b {cpu_us['b'] / cpu_us['a']:.3f}, "
        f"c {cpu_us['c'] / cpu_us['a']:.3f}  (the steadier cost measure on a shared machine)"
    )
    cost = middleware_cost()
    print(
        f"in-process wrapper cost per exchange: b {cost['b']:.1f} us, c {cost['c']:.1f} us "
        f"(c/b {cost['c'] / cost['b']:.1f}x)"
    )
    print(
        f"p50 overhead vs a: b {(_pct(lats['b'], 0.5) - _pct(lats['a'], 0.5)) * 1e3:+.2f} ms, "
        f"c {(_pct(lats['c'], 0.5) - _pct(lats['a'], 0.5)) * 1e3:+.2f} ms"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
