"""Running an instrumented app under uvicorn with a SIGTERM drain.

uvicorn installs its own SIGINT/SIGTERM handlers (``Server.capture_signals`` ->
``Server.handle_exit``) and stops accepting work on the first signal. ECS sends SIGTERM and, after
the task's ``stopTimeout``, SIGKILL. :class:`DrainingServer` overrides ``handle_exit``: the first
signal calls ``on_signal`` (SessionWatch logs ``shutdown_started``) and keeps serving for
``drain_seconds``; then uvicorn's normal shutdown runs (in-flight requests get
``timeout_graceful_shutdown`` more seconds, then ASGI lifespan shutdown, where SessionWatch logs the
sessions still open as closed with reason ``shutdown`` and flushes metrics). A second signal stops
at once.

Budget: ``drain_seconds + graceful_seconds + ~3 s`` (final metric flush) must stay under the task
definition's ``stopTimeout`` (ECS default 30 s, max 120 s), or SIGKILL cuts the accounting short.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import Any

import uvicorn

from sessionwatch.server.drain_budget import check_drain_budget


class DrainingServer(uvicorn.Server):
    """A uvicorn server that drains for ``drain_seconds`` after the first SIGTERM/SIGINT."""

    def __init__(
        self,
        config: uvicorn.Config,
        *,
        drain_seconds: float,
        on_signal: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(config)
        self.drain_seconds = drain_seconds
        self.on_signal = on_signal
        self.draining = False
        self._loop: asyncio.AbstractEventLoop | None = None

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Runs as a Python signal handler; do the real work on the loop, not here.
        if self.draining or self._loop is None:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True
            return
        self.draining = True
        self._loop.call_soon_threadsafe(self._begin_drain, signal.Signals(sig).name)

    def _begin_drain(self, signal_name: str) -> None:
        if self.on_signal is not None:
            # Accounting must never prevent the drain.
            with contextlib.suppress(Exception):
                self.on_signal(signal_name)
        assert self._loop is not None
        self._loop.call_later(max(0.0, self.drain_seconds), self._end_drain)

    def _end_drain(self) -> None:
        self.should_exit = True


def serve_draining(
    app: Any,
    *,
    host: str,
    port: int,
    drain_seconds: float,
    graceful_seconds: float,
    stop_timeout: float,
    on_signal: Callable[[str], None] | None,
    warn: Callable[[str], None],
    **uvicorn_options: Any,
) -> None:
    """Run ``app`` under :class:`DrainingServer` with SessionWatch's uvicorn settings.

    Logging must already be routed (JSON, ids scrubbed): uvicorn's own config is turned off. Says
    through ``warn`` when the drain budget does not fit in ``stop_timeout``.
    """
    if warning := check_drain_budget(drain_seconds, graceful_seconds, stop_timeout):
        warn(warning)
    options: dict[str, Any] = {
        "lifespan": "on",
        "log_config": None,  # logging is already routed (JSON, scrubbed)
        "access_log": False,  # per-request lines come from --log-requests instead
        "server_header": False,
        **uvicorn_options,
    }
    config = uvicorn.Config(
        app, host=host, port=port, timeout_graceful_shutdown=int(graceful_seconds), **options
    )
    DrainingServer(config, drain_seconds=drain_seconds, on_signal=on_signal).run()
