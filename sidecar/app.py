"""The sidecar's ASGI app: its own ``/health``, and the proxy wrapped by ``instrument()``.

Every event, metric and guarantee of the log contract comes from the same middleware as an
in-process server's: the sidecar adds no accounting of its own. It cannot see the SDK's session
manager behind it, so idle expiry is estimated from last use after ``session_idle_timeout`` (the
``instrumentation_mode`` line says so); set it to the upstream's own idle timeout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from sessionwatch.server.instrumentation import SessionWatchMiddleware, instrument
from sessionwatch.sidecar.proxy import ProxySettings, Receive, Scope, Send, UpstreamProxy

HEALTH_TIMEOUT = 2.0  # an ALB health check times out after 5 s by default (2-120 s)


@dataclass(frozen=True)
class SidecarConfig:
    """Everything the sidecar needs besides the process settings (host, port, drain)."""

    proxy: ProxySettings
    service: str | None = None
    session_idle_timeout: float | None = 1800.0  # the mcp and TypeScript SDKs' default is none
    health_path: str = "/health"
    upstream_health_path: str | None = None  # pass the upstream's health through when set
    instrument_options: dict[str, Any] = field(default_factory=dict)


class SidecarApp:
    """ASGI: ``health_path`` answered here; everything else through the instrumented proxy."""

    def __init__(self, config: SidecarConfig, **instrument_kwargs: Any) -> None:
        self.config = config
        options = {**config.instrument_options, **instrument_kwargs}
        logger = options.get("logger")
        self.proxy = UpstreamProxy(config.proxy, self._warn)
        self.instrumented: SessionWatchMiddleware = instrument(
            self.proxy,
            service=config.service,
            session_idle_timeout=config.session_idle_timeout,
            **options,
        )
        self.logger = logger or self.instrumented.logger
        self._health_path = config.health_path

    def _warn(self, message: str, **fields: Any) -> None:
        self.logger.warning(message, **fields)

    def begin_shutdown(self, signal_name: str | None) -> None:
        self.instrumented.begin_shutdown(signal_name)

    def close(self) -> None:
        self.instrumented.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == self._health_path:
            await self._health(send)
        else:
            await self.instrumented(scope, receive, send)

    async def _health(self, send: Send) -> None:
        status, doc = 200, {"status": "ok", "draining": self.instrumented.shutting_down}
        if self.config.upstream_health_path is not None:
            status, doc["upstream_status"] = await self._upstream_health()
            if status != 200:
                doc["status"] = "upstream_unhealthy"
        body = json.dumps(doc).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _upstream_health(self) -> tuple[int, int | None]:
        """The upstream's health status passed through; 503 when it does not answer."""
        url = self.config.proxy.upstream.rstrip("/") + str(self.config.upstream_health_path)
        try:
            async with self.proxy.session().get(
                url, timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT), allow_redirects=False
            ) as response:
                await response.read()
                return response.status, response.status
        except (aiohttp.ClientError, TimeoutError):
            return 503, None
