"""Sessionless (2026-07-28) clients of the reference server share no state with each other.

Two real stateless clients against the real reference app: what one stores, the other must not
read (the server once kept sessionless values in one shared bucket). Handshake-era sessions keep
their own state as before.
"""

from __future__ import annotations

from typing import Any

import pytest

from sessionwatch.ops.client import ProbeClient, ProbeMode
from tests.ops.bare_server import start_bare_reference_server

pytestmark = pytest.mark.anyio


async def test_one_sessionless_client_never_reads_what_another_stored() -> None:
    server = start_bare_reference_server("task-sessionless")
    try:
        async with (
            ProbeClient(server.url, mode=ProbeMode.STATELESS, name="a") as a,
            ProbeClient(server.url, mode=ProbeMode.STATELESS, name="b") as b,
            ProbeClient(server.url, mode=ProbeMode.SESSION, name="s") as s,
        ):
            stored = await a.call_tool("set_session_value", {"key": "secret", "value": "a's"})
            assert stored.ok
            read = await b.call_tool("get_session_state", {})
            theirs = b.last_result
            assert await s.connect() is not None
            assert (await s.call_tool("set_session_value", {"key": "k", "value": "v"})).ok
            assert (await s.call_tool("get_session_state", {})).ok
            mine = s.last_result
        assert read.ok and _values(theirs) == {}
        assert _values(mine) == {"k": "v"}
    finally:
        server.stop()


def _values(result: dict[str, Any] | None) -> dict[str, str]:
    """The ``values`` a get_session_state result carried."""
    assert result is not None
    values = result["structuredContent"]["values"]
    assert isinstance(values, dict)
    return values
