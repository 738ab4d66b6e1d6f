"""Fixtures for the server suite: real `python -m server` processes, metadata stubs, OTLP receiver.

Process helpers live in `lab/task_process.py` (the lab uses them too); this file only wires them
into pytest fixtures and adds the client-side helpers the tests share.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from lab.ecs_metadata import EcsMetadataStub
from lab.forkserver import ForkServer
from lab.otlp_receiver import OtlpReceiver
from lab.task_process import ServerTask

PROTOCOL = "2025-11-25"  # a handshake-era protocol: these clients hold sessions


@dataclass
class SessionRun:
    """What a legacy-mode client saw: the raw session id, task ids per response, tool results."""

    session_id: str | None = None
    task_ids: list[str] = field(default_factory=list)
    results: dict[str, Any] = field(default_factory=dict)


def run_client(
    url: str,
    calls: list[tuple[str, dict[str, Any]]],
    terminate_on_close: bool = False,
) -> SessionRun:
    """Open a session with a real MCP client in handshake (legacy) mode and call tools."""
    run = SessionRun()

    async def capture(response: httpx2.Response) -> None:
        if sid := response.headers.get("mcp-session-id"):
            run.session_id = sid
        if tid := response.headers.get("x-mcp-task-id"):
            run.task_ids.append(tid)

    async def go() -> None:
        async with httpx2.AsyncClient(event_hooks={"response": [capture]}, timeout=15) as http:
            transport = streamable_http_client(
                f"{url}/mcp", http_client=http, terminate_on_close=terminate_on_close
            )
            async with Client(transport, mode="legacy") as client:
                for name, args in calls:
                    result = await client.call_tool(name, args)
                    assert not result.is_error, result
                    run.results[name] = result.structured_content

    asyncio.run(go())
    return run


def mcp_post(url: str, session_id: str | None, payload: dict[str, Any]) -> httpx.Response:
    """One raw JSON-RPC POST, as a client whose sticky cookie now points elsewhere would send."""
    headers = {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": PROTOCOL,
    }
    if session_id is not None:
        headers["mcp-session-id"] = session_id
    return httpx.post(f"{url}/mcp", headers=headers, content=json.dumps(payload), timeout=30)


def tool_call(name: str, arguments: dict[str, Any], request_id: int = 7) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as receiver:
        yield receiver


def task_env(
    metadata: EcsMetadataStub | None, otlp: OtlpReceiver | None, **extra: str
) -> dict[str, str]:
    env = {"SESSIONWATCH_DRAIN_SECONDS": "0", **extra}
    if metadata is not None:
        env["ECS_CONTAINER_METADATA_URI_V4"] = metadata.uri
    if otlp is not None:
        env["OTEL_EXPORTER_OTLP_ENDPOINT"] = otlp.endpoint
        env["OTEL_METRIC_EXPORT_INTERVAL"] = "300"
    return env


@pytest.fixture(scope="module")
def two_tasks(
    otlp: OtlpReceiver, task_forks: ForkServer
) -> Iterator[tuple[ServerTask, ServerTask, EcsMetadataStub, EcsMetadataStub]]:
    """Tasks A and B of one service, each with its own metadata endpoint, exporting to `otlp`."""
    with (
        EcsMetadataStub(revision="7", availability_zone="us-east-1a") as md_a,
        EcsMetadataStub(revision="8", availability_zone="us-east-1b") as md_b,
        ServerTask(env=task_env(md_a, otlp), forkserver=task_forks) as task_a,
        ServerTask(env=task_env(md_b, otlp), forkserver=task_forks) as task_b,
    ):
        yield task_a, task_b, md_a, md_b
