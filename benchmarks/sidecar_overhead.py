"""What the sidecar costs: the same tool-call workload direct to a server and through the sidecar.

The upstream is a real TypeScript SDK server (``tests/peers/ts_server.mjs``; the bare reference
Python server when Node or the peer is missing). At 1, 20 and 100 concurrent sessions, the two
paths are measured in interleaved rounds (a rotating order) and compared inside one run: throughput,
added median and p99 latency, CPU per request of the server and of the sidecar (Linux /proc), the
sidecar's resident memory. Requests per sidecar core = requests / sidecar CPU seconds.

The load generator (this process) sends with aiohttp (see ``_load_round``). Two choices are
measured too, with the same workload: the upstream client (aiohttp vs httpx: CPU
per request in this process) and the sidecar's HTTP server (uvicorn with httptools + uvloop vs
h11 + asyncio: sidecar CPU per request). ``python -m benchmarks sidecar_overhead``; ~2 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import httpx

from benchmarks.server_overhead import (
    HEADERS,
    PROTOCOL,
    REPO_ROOT,
    _cpu_seconds,
    _open_session,
    _pct,
    _start,
)

CONCURRENCY = (1, 20, 100)
ROUNDS = 4  # even: each path goes first equally often
ROUND_SECONDS = 2.0
TS_SERVER = REPO_ROOT / "tests" / "peers" / "ts_server.mjs"
GOALS = (
    "at 20 sessions: added median <= 1 ms, p99 <= 3 ms; >= 1,500 req/s per sidecar core; <= 64 MB"
)


def _wait_health(url: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: exited with {proc.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{url} did not start")


def start_upstream() -> tuple[subprocess.Popen[bytes], str, str]:
    """(process, url, what it is): the TypeScript SDK server, else the bare Python server."""
    node = shutil.which("node")
    if node and (TS_SERVER.parent / "node_modules" / "@modelcontextprotocol" / "sdk").exists():
        proc = subprocess.Popen(
            [node, str(TS_SERVER), "--task-id", "bench"],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        assert proc.stdout is not None
        port = json.loads(proc.stdout.readline())["port"]
        proc.stdout.close()  # it prints nothing else (no session id)
        url = f"http://127.0.0.1:{port}"
        _wait_health(url, proc)
        return proc, url, "TypeScript SDK 1.32 server (node)"
    proc, url = _start("a")
    return proc, url, "reference server, uninstrumented (Python; node missing)"


def start_sidecar(upstream: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "sessionwatch.sidecar", "--upstream", upstream,
         "--host", "127.0.0.1", "--port", str(port), "--task-id", "bench-sidecar",
         "--drain-seconds", "0", *extra],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    _wait_health(url, proc)
    return proc, url


async def _load_round(url: str, seconds: float, workers: int) -> tuple[int, float, list[float]]:
    """The workload of ``server_overhead._round`` sent with aiohttp: httpx, its load generator,
    spends ~10x more CPU per request than aiohttp (measured below), which on a small machine
    caps the rate before the server or the sidecar does."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=workers)
    async with aiohttp.ClientSession(connector=connector) as client:
        sessions = []
        for _ in range(workers):
            init = {
                "jsonrpc": "2.0", "id": 0, "method": "initialize",
                "params": {"protocolVersion": PROTOCOL, "capabilities": {},
                           "clientInfo": {"name": "bench", "version": "1"}},
            }  # fmt: skip
            async with client.post(f"{url}/mcp", data=json.dumps(init), headers=HEADERS) as r:
                await r.read()
                headers = {**HEADERS, "mcp-session-id": r.headers["mcp-session-id"],
                           "mcp-protocol-version": PROTOCOL}  # fmt: skip
            note = json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"})
            async with client.post(f"{url}/mcp", data=note, headers=headers) as r:
                await r.read()
            sessions.append(headers)
        start = time.perf_counter()
        stop = start + seconds

        async def worker(headers: dict[str, str]) -> None:
            i = 0
            while time.perf_counter() < stop:
                i += 1
                params: dict[str, Any] = (
                    {"name": "set_session_value", "arguments": {"key": "k", "value": str(i)}}
                    if i % 2
                    else {"name": "get_session_state", "arguments": {}}
                )
                body = json.dumps({"jsonrpc": "2.0", "id": i, "method": "tools/call",
                                   "params": params})  # fmt: skip
                t0 = time.perf_counter()
                async with client.post(f"{url}/mcp", data=body, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        raise RuntimeError(f"{url}: HTTP {r.status}")
                latencies.append(time.perf_counter() - t0)

        await asyncio.gather(*(worker(h) for h in sessions))
        elapsed = time.perf_counter() - start
        for headers in sessions:
            async with client.delete(f"{url}/mcp", headers=headers) as r:
                await r.read()
    return len(latencies), elapsed, latencies


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _stop(*procs: subprocess.Popen[bytes]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def client_cost(lib: str, url: str, requests: int, workers: int = 20) -> float:
    """CPU microseconds per request of this process, sending tool calls with ``lib``."""
    async with httpx.AsyncClient(timeout=30) as setup:
        headers = await _open_session(setup, url)
    body = json.dumps(
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
         "params": {"name": "get_session_state", "arguments": {}}}
    )  # fmt: skip
    per_worker = requests // workers
    start = time.process_time()
    if lib == "aiohttp":
        import aiohttp

        async with aiohttp.ClientSession() as session:

            async def work_aiohttp() -> None:
                for _ in range(per_worker):
                    async with session.post(f"{url}/mcp", data=body, headers=headers) as r:
                        await r.read()

            await asyncio.gather(*(work_aiohttp() for _ in range(workers)))
    else:
        limits = httpx.Limits(max_connections=workers, max_keepalive_connections=workers)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:

            async def work_httpx() -> None:
                for _ in range(per_worker):
                    await client.post(f"{url}/mcp", content=body, headers=headers)

            await asyncio.gather(*(work_httpx() for _ in range(workers)))
    return (time.process_time() - start) / (per_worker * workers) * 1e6


def measure(rounds: int, seconds: float) -> dict[str, Any]:
    upstream, up_url, what = start_upstream()
    side, side_url = start_sidecar(up_url)
    results: dict[int, dict[str, Any]] = {}
    peak_rss = 0.0
    try:
        asyncio.run(_load_round(side_url, 1.0, 20))  # warm-up, discarded
        for workers in CONCURRENCY:
            paths = {"direct": up_url, "sidecar": side_url}
            lats: dict[str, list[float]] = {p: [] for p in paths}
            reqs = dict.fromkeys(paths, 0)
            elapsed = dict.fromkeys(paths, 0.0)
            up_cpu = dict.fromkeys(paths, 0.0)
            side_cpu = 0.0
            per_round: dict[str, list[float]] = {p: [] for p in paths}
            for r in range(rounds):
                order = ["direct", "sidecar"] if r % 2 == 0 else ["sidecar", "direct"]
                for path in order:
                    up0, side0 = _cpu_seconds(upstream.pid), _cpu_seconds(side.pid)
                    n, took, latencies = asyncio.run(_load_round(paths[path], seconds, workers))
                    up_cpu[path] += _cpu_seconds(upstream.pid) - up0
                    if path == "sidecar":
                        side_cpu += _cpu_seconds(side.pid) - side0
                        peak_rss = max(peak_rss, rss_mb(side.pid))
                    reqs[path] += n
                    elapsed[path] += took
                    lats[path].extend(latencies)
                    per_round[path].append(n / took)
            results[workers] = {
                "rps": {p: reqs[p] / elapsed[p] for p in paths},
                "p50": {p: _pct(lats[p], 0.5) * 1e3 for p in paths},
                "p99": {p: _pct(lats[p], 0.99) * 1e3 for p in paths},
                "upstream_cpu_us": {p: up_cpu[p] / reqs[p] * 1e6 for p in paths},
                "sidecar_cpu_us": side_cpu / reqs["sidecar"] * 1e6,
                "paired_ratio": statistics.median(
                    s / d for s, d in zip(per_round["sidecar"], per_round["direct"], strict=True)
                ),
            }
        # Twice, in both orders, summed: the machine is shared.
        clients = dict.fromkeys(("httpx", "aiohttp"), 0.0)
        for lib in ("httpx", "aiohttp", "aiohttp", "httpx"):
            clients[lib] += asyncio.run(client_cost(lib, up_url, 2000)) / 2
        servers = {}
        for name, extra in (
            ("httptools+uvloop", ()),
            ("h11+asyncio", ("--http", "h11", "--loop", "asyncio")),
        ):
            proc, url = (side, side_url) if not extra else start_sidecar(up_url, *extra)
            try:
                cpu0 = _cpu_seconds(proc.pid)
                n, _, _ = asyncio.run(_load_round(url, seconds * 2, 20))
                servers[name] = (_cpu_seconds(proc.pid) - cpu0) / n * 1e6
            finally:
                if extra:
                    _stop(proc)
    finally:
        _stop(side, upstream)
    return {"what": what, "by_sessions": results, "rss_mb": peak_rss, "clients": clients,
            "servers": servers, "rounds": rounds, "seconds": seconds}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks sidecar_overhead")
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--seconds", type=float, default=ROUND_SECONDS)
    args = parser.parse_args(argv or [])
    m = measure(args.rounds, args.seconds)
    print(f"upstream: {m['what']}; workload: tools/call set/get alternating, one session per "
          f"worker, {m['rounds']} interleaved rounds x {m['seconds']:g}s per path")  # fmt: skip
    print(
        f"{'sessions':>8}{'direct r/s':>12}{'sidecar r/s':>12}{'ratio':>7}{'p50 ms':>8}"
        f"{'+p50 ms':>9}{'+p99 ms':>9}{'srv us/req':>11}{'side us/req':>12}{'r/s/core':>10}"
    )
    for workers, r in m["by_sessions"].items():
        per_core = 1e6 / r["sidecar_cpu_us"] if r["sidecar_cpu_us"] else float("inf")
        print(
            f"{workers:>8}{r['rps']['direct']:>12.0f}{r['rps']['sidecar']:>12.0f}"
            f"{r['paired_ratio']:>7.2f}{r['p50']['direct']:>8.2f}"
            f"{r['p50']['sidecar'] - r['p50']['direct']:>+9.2f}"
            f"{r['p99']['sidecar'] - r['p99']['direct']:>+9.2f}"
            f"{r['upstream_cpu_us']['sidecar']:>11.0f}{r['sidecar_cpu_us']:>12.0f}"
            f"{per_core:>10.0f}"
        )
    print(f"sidecar resident memory (peak VmRSS): {m['rss_mb']:.1f} MB")
    c = m["clients"]
    print(
        f"upstream client CPU per request (20 concurrent): aiohttp {c['aiohttp']:.0f} us, "
        f"httpx {c['httpx']:.0f} us (httpx/aiohttp {c['httpx'] / c['aiohttp']:.2f}x)"
    )
    s = m["servers"]
    print(
        f"sidecar CPU per request by server: httptools+uvloop {s['httptools+uvloop']:.0f} us, "
        f"h11+asyncio {s['h11+asyncio']:.0f} us "
        f"({s['h11+asyncio'] / s['httptools+uvloop']:.2f}x)"
    )
    print(f"goals: {GOALS}")


if __name__ == "__main__":
    main(sys.argv[1:])
