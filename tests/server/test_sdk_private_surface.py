"""Fails loudly when the mcp SDK changes the private surface `server/sdk_private.py` reads."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from sessionwatch.server import sdk_private
from sessionwatch.server.app import build_app, build_mcp_server
from sessionwatch.server.identity import TaskIdentity

INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "surface-test", "version": "1"},
    },
}
HEADERS = {"content-type": "application/json", "accept": "application/json, text/event-stream"}


def test_session_manager_live_sessions_dict_tracks_open_and_deleted_sessions() -> None:
    mcp = build_mcp_server(TaskIdentity(task_id="surface"))
    app = build_app(mcp, session_idle_timeout=60)
    manager = mcp.session_manager
    sdk_private.check_session_manager(manager)  # raises SdkSurfaceChanged on a changed SDK

    async def scenario() -> None:
        async with manager.run():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                response = await client.post("/mcp", headers=HEADERS, content=json.dumps(INIT))
                assert response.status_code == 200
                session_id = response.headers["mcp-session-id"]
                assert session_id in sdk_private.live_session_ids(manager)
                deleted = await client.delete(
                    "/mcp",
                    headers={
                        **HEADERS,
                        "mcp-session-id": session_id,
                        "mcp-protocol-version": "2025-11-25",
                    },
                )
                assert deleted.status_code == 200
                assert session_id not in sdk_private.live_session_ids(manager)

    asyncio.run(scenario())


def test_changed_surface_is_reported_not_crashed() -> None:
    with pytest.raises(sdk_private.SdkSurfaceChanged):
        sdk_private.check_session_manager(object())
    with pytest.raises(sdk_private.SdkSurfaceChanged):
        sdk_private.live_session_ids(object())
