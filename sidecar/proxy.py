"""The reverse proxy: an ASGI app that forwards every request to the MCP server in the same task.

It streams both ways and holds nothing: a request body goes upstream as it arrives (a one-chunk
body as bytes, a longer one chunked), a response goes back chunk by chunk as the upstream writes it
(an SSE stream is never buffered and has no read timeout), and a client that hangs up cancels the
upstream request, so the server behind sees the disconnect too. Status codes and headers pass as
they are, less the hop-by-hop fields (``sidecar.headers``).

The client is aiohttp with one keep-alive pool per process (README "Why aiohttp and uvicorn"):
pooled connections are kept ``pool_keepalive`` seconds, under the 5 s keep-alive timeout of
Node's ``http.Server`` and of uvicorn, so the sidecar never reuses a connection the upstream is
closing. An upstream that refuses, resets or times out gets the client a 502 (504 for a timeout)
with a JSON-RPC error body and one ``upstream_error`` log line (at most one a second, the rest
counted in the next), never a hang: connecting is bounded by ``connect_timeout``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from sessionwatch import contract
from sessionwatch.sidecar.headers import end_to_end, is_event_stream, request_headers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
LogFn = Callable[..., None]

MAX_LOGGED_PATH = 200  # a client-supplied string: bounded before it is logged


@dataclass(frozen=True)
class ProxySettings:
    """How the proxy talks to the upstream (every field has a default; README lists them)."""

    upstream: str  # http://127.0.0.1:3000 (no path: the request's path is kept)
    connect_timeout: float = 3.0
    headers_timeout: float = 300.0  # request sent -> response headers (a slow tool call)
    read_timeout: float = 300.0  # between two chunks of a non-SSE body; SSE: none
    pool_keepalive: float = 4.0  # < the 5 s keep-alive of Node's http.Server and uvicorn
    preserve_host: bool = False  # True: the client's Host goes upstream (default: upstream's)


def check_upstream(url: str) -> str:
    """``url`` when it is an http(s) URL with a host (the upstream's origin), else ValueError."""
    parsed = URL(url)
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ValueError(f"upstream must be an http(s) URL, got {url!r}")
    return url


class UpstreamUnavailable(Exception):
    """The upstream could not be reached or did not answer in time (the client gets 502/504)."""

    def __init__(self, status: int, kind: str) -> None:
        super().__init__(kind)
        self.status = status
        self.kind = kind


def error_body(message: str) -> bytes:
    """A JSON-RPC error an MCP client can parse (-32603, id null)."""
    doc = {"jsonrpc": "2.0", "id": None, "error": {"code": -32603, "message": message}}
    return json.dumps(doc, separators=(",", ":")).encode()


class _RateLimitedLog:
    """One line a second at most; the lines held back are counted in the next one."""

    def __init__(self, log: LogFn, interval: float = 1.0) -> None:
        self.log = log
        self.interval = interval
        self._last = float("-inf")
        self.suppressed = 0

    def __call__(self, message: str, **fields: Any) -> None:
        now = time.monotonic()
        if now - self._last < self.interval:
            self.suppressed += 1
            return
        self._last = now
        fields["suppressed"], self.suppressed = self.suppressed, 0
        self.log(message, **fields)


class UpstreamProxy:
    """ASGI app: every HTTP request forwarded to ``settings.upstream``; lifespan opens the pool."""

    def __init__(self, settings: ProxySettings, log_warning: LogFn) -> None:
        self.settings = settings
        base = URL(check_upstream(settings.upstream))
        self._origin = str(base.origin())
        port = base.explicit_port
        self._authority = (base.raw_host or "") + (f":{port}" if port else "")
        self._authority_b = self._authority.encode("idna")
        self._session: aiohttp.ClientSession | None = None
        self._log_error = _RateLimitedLog(log_warning)
        self.errors = 0

    # -- the pool --------------------------------------------------------------------------------

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=0,  # GET streams hold a connection each: never queue behind them
                keepalive_timeout=self.settings.pool_keepalive,
                enable_cleanup_closed=False,
                force_close=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,  # bytes pass as they are, Content-Encoding with them
                cookie_jar=aiohttp.DummyCookieJar(),  # never keep a client's cookie
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
                timeout=aiohttp.ClientTimeout(
                    total=None,
                    connect=self.settings.connect_timeout,
                    sock_connect=self.settings.connect_timeout,
                    sock_read=None,  # bounded per response below; none on SSE
                ),
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self.forward(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.session()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            response, body_done = await self._open(scope, receive)
        except UpstreamUnavailable as exc:
            await self._answer_unavailable(scope, send, exc)
            return
        try:
            await self._relay(scope["method"], response, receive, send, body_done)
        finally:
            response.release()

    async def _open(
        self, scope: Scope, receive: Receive
    ) -> tuple[aiohttp.ClientResponse, asyncio.Event]:
        client = scope.get("client")
        headers = request_headers(
            scope["headers"],
            upstream_authority=self._authority_b,
            client_ip=client[0] if client else None,
            scheme=scope.get("scheme", "http"),
            preserve_host=self.settings.preserve_host,
        )
        raw_path = scope.get("raw_path") or scope["path"].encode()
        query = scope.get("query_string", b"")
        target = raw_path + (b"?" + query if query else b"")
        url = URL(self._origin + target.decode("latin-1"), encoded=True)
        body, body_done = await self._body(receive)
        try:
            async with asyncio.timeout(self.settings.headers_timeout):
                response = await self.session().request(
                    scope["method"],
                    url,
                    headers=CIMultiDict(
                        (k.decode("latin-1"), v.decode("latin-1")) for k, v in headers
                    ),
                    data=body,
                    allow_redirects=False,
                    compress=None,
                )
            return response, body_done
        except TimeoutError as exc:
            raise UpstreamUnavailable(504, "timeout") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(502, type(exc).__name__) from exc

    async def _body(
        self, receive: Receive
    ) -> tuple[bytes | AsyncIterator[bytes] | None, asyncio.Event]:
        """The request body: bytes when it came in one message (the usual JSON-RPC call), else
        an iterator that streams the rest as it arrives; and an event set once it is all read
        (only then may the hang-up watch call ``receive``)."""
        done = asyncio.Event()
        first = await receive()
        chunk = first.get("body", b"")
        if first["type"] != "http.request" or not first.get("more_body", False):
            done.set()
            return (chunk or None), done

        async def rest() -> AsyncIterator[bytes]:
            try:
                if chunk:
                    yield chunk
                while True:
                    message = await receive()
                    if message["type"] != "http.request":
                        # The client went away mid-body: the chunked body ends here, short; the
                        # upstream answers it to nobody (JSON-RPC bodies are one chunk anyway).
                        return
                    if part := message.get("body", b""):
                        yield part
                    if not message.get("more_body", False):
                        return
            finally:
                done.set()

        return rest(), done

    async def _relay(
        self,
        method: str,
        response: aiohttp.ClientResponse,
        receive: Receive,
        send: Send,
        body_done: asyncio.Event,
    ) -> None:
        headers = end_to_end(response.raw_headers)
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if method == "GET" and is_event_stream(response.raw_headers):
            # A GET stream is held open as long as the upstream writes, so a client hang-up must
            # cancel the upstream read. A POST's stream ends with its answer: no watch (two
            # tasks fewer per call), at worst the upstream finishes writing to nobody.
            pump = asyncio.ensure_future(self._pump(response, send, None))
            hangup = asyncio.ensure_future(_disconnected(receive, body_done))
            try:
                await asyncio.wait((pump, hangup), return_when=asyncio.FIRST_COMPLETED)
            finally:
                hangup.cancel()
                if not pump.done():
                    pump.cancel()
            if pump.cancelled():
                response.close()  # drop the upstream connection: the server sees the hang-up
                return
            pump.result()
        else:
            sse = is_event_stream(response.raw_headers)
            await self._pump(response, send, None if sse else self.settings.read_timeout)

    async def _pump(
        self, response: aiohttp.ClientResponse, send: Send, read_timeout: float | None
    ) -> None:
        content = response.content
        try:
            while True:
                if read_timeout is None:
                    chunk = await content.readany()
                else:
                    async with asyncio.timeout(read_timeout):
                        chunk = await content.readany()
                if not chunk:
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Headers are out: no 502 now. End without completing, so the server closes the
            # connection and the client sees a cut response, never a short one taken as whole.
            self.errors += 1
            self._log_error(
                "upstream response cut",
                event=contract.EVENT_UPSTREAM_ERROR,
                error=type(exc).__name__,
                status=response.status,
            )
            response.close()
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _answer_unavailable(self, scope: Scope, send: Send, exc: UpstreamUnavailable) -> None:
        self.errors += 1
        self._log_error(
            "upstream unavailable",
            event=contract.EVENT_UPSTREAM_ERROR,
            error=exc.kind,
            status=exc.status,
            http_method=scope.get("method"),
            path=str(scope.get("path", ""))[:MAX_LOGGED_PATH],
            upstream=self._origin,
        )
        body = error_body(
            "upstream MCP server unavailable" if exc.status == 502 else "upstream timeout"
        )
        await send(
            {
                "type": "http.response.start",
                "status": exc.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})


async def _disconnected(receive: Receive, body_done: asyncio.Event) -> None:
    await body_done.wait()
    while (await receive())["type"] != "http.disconnect":
        pass
