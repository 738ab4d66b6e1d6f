"""SessionWatch instrumentation: one pure ASGI middleware around any MCP ASGI app.

``app = instrument(mcp.streamable_http_app(...), service="orders-mcp")`` gives the app:

- the task identity (ECS task metadata, read once) and a ``task_started`` log line;
- an ``X-Mcp-Task-Id`` header on every response, so clients can verify routing by task;
- the session lifecycle as JSON log events and OpenTelemetry metrics (docs/architecture.md §3, §4):
  created (a response carries a new ``mcp-session-id``), closed (DELETE answered 2xx, idle expiry,
  shutdown) and not found (any SDK's lost-session answer, ``server.lost_session``: 404 with
  JSON-RPC -32600 or -32001, 400 "No valid session ID provided", ...), refused (a new session
  turned away at the SDK's ``max_sessions``: ``server.refusal``), with the client's self-declared
  name from ``clientInfo``; requests counted by protocol era and client, and the SDK's cap and its
  open share as gauges;
- shutdown accounting: :meth:`SessionWatchMiddleware.begin_shutdown` on SIGTERM logs the open
  sessions; at ASGI lifespan shutdown (or :meth:`SessionWatchMiddleware.close`) the sessions still
  open are logged as closed with reason ``shutdown`` and counted as dropped.

The request path is sacred: bodies stream through untouched (only a few KiB are copied, to read
the JSON-RPC method and error code), and every failure of the instrumentation itself is swallowed,
logged once per kind and counted in ``sessionwatch.instrumentation.errors``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from aws_lambda_powertools import Logger
from opentelemetry.sdk.metrics import MeterProvider

from sessionwatch import contract
from sessionwatch.server import sdk_private
from sessionwatch.server.exchange import (
    PEEK_BYTES,
    TOOL_ERROR,
    RequestInfo,
    error_code,
    is_tool_error,
    negotiated_version,
    parse_request,
    protocol_era,
)
from sessionwatch.server.fingerprint import SEEN_IDS, fingerprint
from sessionwatch.server.identity import (
    DEFAULT_TIMEOUT_S,
    METADATA_ENV,
    TASK_ID_ENV,
    TaskIdentity,
    resolve_identity,
)
from sessionwatch.server.logs import build_event_logger, scrub_process_output
from sessionwatch.server.lost_session import LostSessionAnswer, recognize
from sessionwatch.server.refusal import REFUSAL_STATUSES, RefusalAnswer, recognize_refusal
from sessionwatch.server.sessions import OpenSession, SessionTracker
from sessionwatch.server.telemetry import SCOPE, ClientLabels, Instruments, build_meter_provider

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

SERVICE_ENV = "SESSIONWATCH_SERVICE"
DEFAULT_SERVICE = "mcp-server"
MAX_SHUTDOWN_FINGERPRINTS = 1000
# The mcp SDK's default session idle timeout (2.x and 1.x alike): the estimate's fallback when
# neither a session manager nor a timeout is known.
SDK_DEFAULT_IDLE_TIMEOUT = 1800.0
EVENT_INSTRUMENTATION_MODE = "instrumentation_mode"  # said once: how idle expiry is tracked
FLUSH_TIMEOUT_MS = 3000
_SESSION_HEADER = contract.SESSION_ID_HEADER.encode()
_PROTOCOL_HEADER = contract.MCP_PROTOCOL_VERSION_HEADER.encode()
_TASK_HEADER = contract.TASK_ID_HEADER.lower().encode()


class _Exchange:
    """Per-request state: what the middleware peeked at while passing messages through."""

    __slots__ = ("body", "complete", "resp_body", "resp_session", "status")

    def __init__(self) -> None:
        self.body = bytearray()
        self.complete = False
        self.status: int | None = None
        self.resp_session: str | None = None
        self.resp_body = bytearray()


class SessionWatchMiddleware:
    """The ASGI middleware returned by :func:`instrument` (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        service: str,
        identity: TaskIdentity,
        logger: Logger,
        meter_provider: MeterProvider,
        owns_meter_provider: bool,
        session_manager: Any = None,
        session_idle_timeout: float | None = None,
        reconcile_interval: float = 1.0,
        log_requests: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        # Session ages and idle expiry: monotonic seconds (tests pass a fake clock).
        self.clock = clock
        self.service = service
        self.identity = identity
        self.logger = logger
        self.meter_provider = meter_provider
        self.instruments = Instruments.create(
            meter_provider.get_meter(SCOPE), cap=self._cap_reading
        )
        self.sessions = SessionTracker()
        self.client_labels = ClientLabels()
        self.faults: dict[str, int] = {}
        self.log_requests = log_requests
        self.session_idle_timeout = session_idle_timeout
        self.reconcile_interval = reconcile_interval
        self.shutting_down = False  # SIGTERM seen: draining, still serving
        self._stopping = False  # lifespan shutdown: the SDK is about to drop every session
        self._owns_provider = owns_meter_provider
        self._closed = False
        self._task_header = (_TASK_HEADER, identity.task_id.encode("latin-1", "replace"))
        self._task_attrs = {contract.ATTR_ECS_TASK_ID: identity.task_id}
        self._reconciler: asyncio.Task[None] | None = None
        self._manager = session_manager
        self._manager_source = "argument" if session_manager is not None else None
        self.max_sessions: int | None = None  # the SDK's cap, read from its session manager
        self._tracking_resolved = False
        if session_manager is not None:
            try:
                sdk_private.check_session_manager(session_manager)
            except sdk_private.SdkSurfaceChanged as exc:
                self._manager = None
                self._manager_source = None
                self.fault("sdk_surface", exc)
            else:
                self.max_sessions = sdk_private.session_limit(session_manager)

    # -- failures of our own -------------------------------------------------------------------

    def fault(self, where: str, exc: BaseException | str) -> None:
        """Count a failure of the instrumentation; log only the first of each kind."""
        try:
            self.faults[where] = self.faults.get(where, 0) + 1
            if self.faults[where] == 1:
                detail = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
                self.logger.warning(
                    "SessionWatch instrumentation error (swallowed; further ones only counted)",
                    event="instrumentation_error",
                    fault=where,
                    error=detail,
                )
            self.instruments.instrumentation_errors.add(1, {contract.ATTR_FAULT: where})
        except Exception:  # noqa: S110 - the fault path itself must never raise
            pass

    # -- ASGI ------------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        ex = _Exchange()
        request_session: str | None = None
        header_version: str | None = None
        try:
            for key, value in scope["headers"]:
                if key == _SESSION_HEADER:
                    request_session = value.decode("latin-1")
                    SEEN_IDS.remember(request_session)  # scrubbed by value from now on
                elif key == _PROTOCOL_HEADER:
                    header_version = value.decode("latin-1")
            if not self._tracking_resolved and not self._stopping:
                self.resolve_idle_tracking()
        except Exception as exc:
            self.fault("request_headers", exc)
        is_post = scope.get("method") == "POST"
        peek_response = scope.get("method") != "GET"  # a GET is a long-lived SSE stream

        async def peek_receive() -> Message:
            message = await receive()
            if is_post and message["type"] == "http.request":
                room = PEEK_BYTES - len(ex.body)
                if room > 0:
                    ex.body += message.get("body", b"")[:room]
                if not message.get("more_body", False):
                    ex.complete = len(ex.body) < PEEK_BYTES
            return message

        async def tag_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                try:
                    message = self._on_response_start(message, ex, scope, request_session)
                except Exception as exc:
                    self.fault("response_start", exc)
            elif message["type"] == "http.response.body" and (
                peek_response or (ex.status is not None and ex.status >= 400)
            ):
                room = PEEK_BYTES - len(ex.resp_body)
                if room > 0:
                    ex.resp_body += message.get("body", b"")[:room]
            await send(message)

        failure: str | None = None
        try:
            await self.app(scope, peek_receive, tag_send)
        except BaseException as exc:
            failure = type(exc).__name__
            raise
        finally:
            try:
                self._after(scope, ex, request_session, header_version, start, failure)
            except Exception as exc:
                self.fault("request_accounting", exc)

    def _on_response_start(
        self, message: Message, ex: _Exchange, scope: Scope, request_session: str | None
    ) -> Message:
        ex.status = int(message["status"])
        headers = list(message.get("headers", ()))
        for key, value in headers:
            if key.lower() == _SESSION_HEADER:
                ex.resp_session = value.decode("latin-1")
                SEEN_IDS.remember(ex.resp_session)
        headers.append(self._task_header)
        # A client close: account for it before the SDK forgets the session, so the reconciler
        # cannot mistake it for an idle expiry.
        if scope.get("method") == "DELETE" and request_session and ex.status < 300:
            self._close(request_session, contract.CLOSE_CLIENT_DELETE)
        return {**message, "headers": headers}

    def _after(
        self,
        scope: Scope,
        ex: _Exchange,
        request_session: str | None,
        header_version: str | None,
        start: float,
        failure: str | None,
    ) -> None:
        now = self.clock()
        status = ex.status
        info = parse_request(bytes(ex.body), ex.complete) if ex.body else None
        code = error_code(bytes(ex.resp_body)) if ex.resp_body else None
        version = header_version or (info.protocol_version if info else None)

        client = info.client_name if info else None
        if request_session is not None:
            held = self.sessions.touch(request_session, now)
            client = held.client_name if held is not None else client
        new_session = ex.resp_session
        if new_session and new_session != request_session and status is not None and status < 400:
            negotiated = negotiated_version(bytes(ex.resp_body)) if ex.resp_body else None
            self._created(new_session, now, negotiated or version, info)
        refused = (
            recognize_refusal(status, bytes(ex.resp_body), sent_session=False)
            if request_session is None and status in REFUSAL_STATUSES
            else None
        )
        if refused is not None:
            self._refused(refused, info, version)
        lost = (
            recognize(status, bytes(ex.resp_body), sent_session=True)
            if request_session and status in (400, 404)
            else None
        )
        if lost is not None and request_session:
            self._not_found(request_session, scope.get("method", ""), lost)

        if info is not None and info.method is not None:
            attrs: dict[str, str] = {
                contract.ATTR_MCP_METHOD_NAME: info.method,
                **self._task_attrs,
            }
            if version:
                attrs[contract.ATTR_MCP_PROTOCOL_VERSION] = version
            if lost is not None:  # the form seen: -32600, -32001, -32000, or 400 (plain text)
                attrs[contract.ATTR_ERROR_TYPE] = lost.error_type
            elif code is not None:
                attrs[contract.ATTR_ERROR_TYPE] = str(code)
            elif failure is not None:
                attrs[contract.ATTR_ERROR_TYPE] = failure
            elif status is not None and status >= 400:
                attrs[contract.ATTR_ERROR_TYPE] = str(status)
            elif info.method == "tools/call" and is_tool_error(bytes(ex.resp_body)):
                attrs[contract.ATTR_ERROR_TYPE] = TOOL_ERROR
            self.instruments.operation_duration.record(time.perf_counter() - start, attrs)
            self.instruments.requests.add(
                1,
                {
                    **self._task_attrs,
                    contract.ATTR_MCP_PROTOCOL_ERA: protocol_era(header_version),
                    contract.ATTR_MCP_CLIENT_NAME: self.client_labels.label(client),
                },
            )

        if self.log_requests:
            known = request_session or new_session
            self.logger.info(
                "request",
                event=contract.EVENT_REQUEST,
                http_method=scope.get("method"),
                path=scope.get("path"),
                status=status,
                duration_ms=round((time.perf_counter() - start) * 1000, 3),
                mcp_method=info.method if info else None,
                session=fingerprint(known) if known else None,
                error_type=str(code) if code is not None else failure,
            )

    # -- session lifecycle -----------------------------------------------------------------------

    def _created(
        self, session_id: str, now: float, protocol_version: str | None, info: RequestInfo | None
    ) -> None:
        client_name = info.client_name if info else None
        session = self.sessions.created(session_id, now, protocol_version, client_name)
        if session is None:
            return
        self.logger.info(
            "session created",
            event=contract.EVENT_SESSION_CREATED,
            session=session.fingerprint,
            protocol_version=protocol_version,
            client_name=client_name,
            client_version=info.client_version if info else None,
        )
        self.instruments.session_created.add(
            1,
            {
                **self._task_attrs,
                contract.ATTR_MCP_PROTOCOL_ERA: contract.ERA_HANDSHAKE,  # sessions exist only there
                contract.ATTR_MCP_CLIENT_NAME: self.client_labels.label(client_name),
            },
        )
        self.instruments.session_active.add(1, self._task_attrs)

    def open_sessions(self) -> int:
        """Sessions open on this task: the SDK's own count when its manager is known."""
        if self._manager is not None:
            try:
                return len(sdk_private.live_session_ids(self._manager))
            except sdk_private.SdkSurfaceChanged:
                pass  # the reconciler counts the fault and drops the manager
        return len(self.sessions)

    def _cap_reading(self) -> tuple[dict[str, str], int, int] | None:
        """For the cap gauges at each collection (on the exporter's thread; never raises)."""
        try:
            if self.max_sessions is None:
                return None
            return self._task_attrs, self.open_sessions(), self.max_sessions
        except Exception as exc:
            self.fault("cap_gauge", exc)
            return None

    def _refused(
        self, refused: RefusalAnswer, info: RequestInfo | None, version: str | None
    ) -> None:
        self.logger.warning(
            "session refused: the server holds as many sessions as it may",
            event=contract.EVENT_SESSION_REFUSED,
            http_status=refused.http_status,
            jsonrpc_code=refused.jsonrpc_code,
            active_sessions=self.open_sessions(),
            max_sessions=self.max_sessions,
            protocol_version=version,
            client_name=info.client_name if info else None,
            client_version=info.client_version if info else None,
        )
        self.instruments.session_refused.add(1, self._task_attrs)

    def _close(self, session_id: str, reason: str) -> None:
        session = self.sessions.closed(session_id)
        if session is not None:
            self._log_closed(session, reason, self.clock())

    def _log_closed(self, session: OpenSession, reason: str, now: float) -> None:
        age = session.age(now)
        self.logger.info(
            "session closed",
            event=contract.EVENT_SESSION_CLOSED,
            session=session.fingerprint,
            reason=reason,
            age_s=round(age, 3),
        )
        self.instruments.session_active.add(-1, self._task_attrs)
        self.instruments.session_duration.record(age, self._task_attrs)

    def _not_found(self, session_id: str, http_method: str, lost: LostSessionAnswer) -> None:
        if session_id in self.sessions:
            # Opened here and now unknown to the SDK: it expired on this task. Say so first.
            self._close(session_id, contract.CLOSE_IDLE_TIMEOUT)
        self.logger.info(
            "session not found",
            event=contract.EVENT_SESSION_NOT_FOUND,
            session=fingerprint(session_id),
            http_method=http_method,
            jsonrpc_code=lost.jsonrpc_code,
            http_status=lost.http_status,
        )
        self.instruments.session_not_found.add(1, self._task_attrs)

    def reconcile(self) -> None:
        """Close the sessions the SDK dropped on its own (idle expiry)."""
        if self._stopping:
            return
        now = self.clock()
        if self._manager is not None:
            try:
                gone = self.sessions.missing_from(sdk_private.live_session_ids(self._manager))
            except sdk_private.SdkSurfaceChanged as exc:
                self.fault("sdk_surface", exc)
                self._manager = None
                return
        elif self.session_idle_timeout is not None:
            gone = self.sessions.idle_since(now - self.session_idle_timeout)
        else:
            return
        for _sid, session in gone:
            self._log_closed(session, contract.CLOSE_IDLE_TIMEOUT, now)

    def resolve_idle_tracking(self) -> None:
        """Decide, once, how idle expiry is seen, say so in one log line, start the reconciler.

        The SDK session manager's live sessions when one was passed or can be found inside the
        app (fastmcp builds its manager in its lifespan and hands none out); otherwise an estimate
        from last use after ``session_idle_timeout`` (the SDK's 1800 s default when none was
        given). Never silently nothing: without either, sessions the SDK expired would be counted
        as dropped at shutdown. Called at lifespan startup (after the app's own startup, so a
        manager built there exists) or at the first request.
        """
        if self._tracking_resolved:
            return
        self._tracking_resolved = True
        if self._manager is None:
            found = sdk_private.find_session_manager(self.app)
            if found is not None:
                self._manager, self._manager_source = found, "found_in_app"
                self.max_sessions = sdk_private.session_limit(found)
        if self._manager is not None:
            self.logger.info(
                "idle expiry read from the SDK session manager's live sessions",
                event=EVENT_INSTRUMENTATION_MODE,
                idle_expiry="session_manager",
                manager_source=self._manager_source,
                manager_type=type(self._manager).__name__,
                max_sessions=self.max_sessions,
                session_idle_timeout_s=getattr(self._manager, "session_idle_timeout", None),
            )
        else:
            given = self.session_idle_timeout is not None
            if not given:
                self.session_idle_timeout = SDK_DEFAULT_IDLE_TIMEOUT
            self.logger.info(
                "idle expiry estimated from last use: no SDK session manager passed or found; "
                "pass session_manager= for exact times"
                + (
                    ""
                    if given
                    else f", or session_idle_timeout= (assumed {SDK_DEFAULT_IDLE_TIMEOUT:g} s)"
                ),
                event=EVENT_INSTRUMENTATION_MODE,
                idle_expiry="estimated",
                idle_timeout_s=self.session_idle_timeout,
                idle_timeout_source="argument" if given else "sdk_default",
            )
        self._start_reconciler()

    def _start_reconciler(self) -> None:
        if self._reconciler is not None or (
            self._manager is None and self.session_idle_timeout is None
        ):
            return
        try:
            self._reconciler = asyncio.get_running_loop().create_task(self._reconcile_loop())
        except RuntimeError as exc:  # not under asyncio: idle expiry is then seen only on 404
            self.fault("reconciler", exc)

    async def _reconcile_loop(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.reconcile_interval)
            try:
                self.reconcile()
            except Exception as exc:
                self.fault("reconcile", exc)

    # -- lifespan and shutdown -------------------------------------------------------------------

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def watch_receive() -> Message:
            message = await receive()
            try:
                if message["type"] == "lifespan.shutdown":
                    self.begin_shutdown(None)
                    self._stopping = True
            except Exception as exc:
                self.fault("lifespan", exc)
            return message

        async def watch_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                try:
                    self.resolve_idle_tracking()
                except Exception as exc:
                    self.fault("lifespan", exc)
            elif message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await self.aclose()
            await send(message)

        await self.app(scope, watch_receive, watch_send)

    def begin_shutdown(self, signal_name: str | None) -> None:
        """Log ``shutdown_started`` with the open sessions (once). Call it on SIGTERM.

        Safe to call from the event loop thread only. Serving continues; the process owner decides
        how long to drain before stopping (see ``server.runner``).
        """
        if self.shutting_down:
            return
        try:
            self.reconcile()
        except Exception as exc:
            self.fault("reconcile", exc)
        self.shutting_down = True
        try:
            self.logger.info(
                "shutdown started",
                event=contract.EVENT_SHUTDOWN_STARTED,
                signal=signal_name,
                active_sessions=len(self.sessions),
                sessions=self.sessions.fingerprints(MAX_SHUTDOWN_FINGERPRINTS),
            )
        except Exception as exc:
            self.fault("shutdown_log", exc)

    def close(self) -> None:
        """Account for the sessions still open (reason ``shutdown``, dropped) and flush metrics.

        Idempotent. Called at ASGI lifespan shutdown; call it yourself if your server runs without
        lifespan. Blocks for at most a few seconds when the collector is unreachable.
        """
        if self._closed:
            return
        self._closed = True
        self.begin_shutdown(None)
        self._stopping = True
        if self._reconciler is not None:
            self._reconciler.cancel()
        try:
            now = self.clock()
            remaining = self.sessions.close_all()
            for session in remaining:
                self._log_closed(session, contract.CLOSE_SHUTDOWN, now)
            self.instruments.session_dropped.add(len(remaining), self._task_attrs)
        except Exception as exc:
            self.fault("shutdown_accounting", exc)
        try:
            # Shutdown exports once more itself; flushing first would export (and wait) twice.
            if self._owns_provider:
                self.meter_provider.shutdown(timeout_millis=FLUSH_TIMEOUT_MS)
            else:
                self.meter_provider.force_flush(timeout_millis=FLUSH_TIMEOUT_MS)
        except Exception as exc:
            self.fault("metrics_flush", exc)

    async def aclose(self) -> None:
        """:meth:`close` off the event loop (the final export is blocking network I/O)."""
        if self._closed:
            return
        if self._reconciler is not None:
            self._reconciler.cancel()
            with contextlib.suppress(BaseException):
                await self._reconciler
        await asyncio.to_thread(self.close)


def instrument(
    app: ASGIApp,
    *,
    service: str | None = None,
    identity: TaskIdentity | None = None,
    session_manager: Any = None,
    session_idle_timeout: float | None = None,
    meter_provider: MeterProvider | None = None,
    otlp_endpoint: str | None = None,
    export_interval_ms: int | None = None,
    logger: Logger | None = None,
    log_requests: bool = False,
    metadata_timeout: float = DEFAULT_TIMEOUT_S,
    reconcile_interval: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    scrub_output: bool = True,
) -> SessionWatchMiddleware:
    """Wrap any MCP ASGI app with SessionWatch; reads the task identity and logs ``task_started``.

    ``session_manager``: the SDK's ``StreamableHTTPSessionManager`` (``mcp_server.session_manager``)
    lets idle expiry be logged within ``reconcile_interval``; without it the middleware looks for
    the manager inside ``app`` (fastmcp 4.x keeps it on its route), and failing that estimates
    idle expiry from last use after ``session_idle_timeout`` (1800 s, the SDK default, when not
    given). Which of these it does is said once, in an ``instrumentation_mode`` log line.
    ``meter_provider``: bring your own (it is then yours to shut down); by default one is created
    that exports over OTLP/HTTP only when ``otlp_endpoint`` or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is
    set. ``clock``: the monotonic seconds session ages and idle expiry are measured in.
    ``scrub_output`` (default on): everything the process writes to stdout and stderr from now
    on, by any logger or library, has every session id this middleware sees in a header replaced
    by its fingerprint, whatever the id's shape (``server.logs.scrub_process_output``). Ids a
    server logs *before* its response names them (its own "created session X" line) are caught
    only by shape; :func:`route_library_logs` keeps the SDKs' own such lines out.
    """
    service = service or os.environ.get(SERVICE_ENV) or DEFAULT_SERVICE
    metadata_error = None
    if identity is None:
        identity, metadata_error = resolve_identity(
            os.environ.get(METADATA_ENV), os.environ.get(TASK_ID_ENV), metadata_timeout
        )
    logger = logger or build_event_logger(service, identity.task_id)
    if scrub_output:
        scrub_process_output(keep=(identity.task_id,))
    export_failures: list[SessionWatchMiddleware] = []

    def on_export_failure(detail: str) -> None:
        for middleware in export_failures:
            middleware.fault("otlp_export", detail)

    owns_provider = meter_provider is None
    provider = meter_provider or build_meter_provider(
        service, identity, on_export_failure, otlp_endpoint, export_interval_ms
    )
    middleware = SessionWatchMiddleware(
        app,
        service=service,
        identity=identity,
        logger=logger,
        meter_provider=provider,
        owns_meter_provider=owns_provider,
        session_manager=session_manager,
        session_idle_timeout=session_idle_timeout,
        reconcile_interval=reconcile_interval,
        log_requests=log_requests,
        clock=clock,
    )
    export_failures.append(middleware)
    logger.info(
        "task started",
        event=contract.EVENT_TASK_STARTED,
        task_arn=identity.task_arn,
        cluster=identity.cluster,
        family=identity.family,
        revision=identity.revision,
        availability_zone=identity.availability_zone,
        identity_source=identity.source,
    )
    if metadata_error is not None:
        middleware.fault("task_metadata", metadata_error)
    return middleware
