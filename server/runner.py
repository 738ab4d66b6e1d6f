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

import uvicorn


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
