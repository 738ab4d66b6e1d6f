"""The MCP probe client: one MCP client session through a sticky load balancer, call by call.

Shared by the lab and by ``sessionwatch probe``. Stable API (other parts build on it)::

    async with ProbeClient(url, mode=ProbeMode.SESSION, name="probe-1") as probe:
        await probe.connect()                 # initialize + notifications/initialized
        for record in await probe.cycle():    # set_session_value, then get_session_state
            print(record.line())
    # or, for a loop with an interval and a callback per call:
    await run_probe(url, cycles=10, interval=1.0, on_record=print)
    await drive(probe, interval=1.0, on_record=print, stop=event)  # the same loop, your probe

Modes (``ProbeMode``):
- ``session``: a handshake-era session (protocol ``2025-11-25``, ``Mcp-Session-Id``) and a cookie
  jar updated on every response, like a well-behaved client.
- ``stale_cookie``: the same session, but the client keeps the FIRST ``AWSALB`` value it was given
  and never stores a rotated one: the "natural implementation" that breaks ALB stickiness.
- ``no_cookies``: the same session, but the client never returns a cookie at all, like the
  TypeScript SDK's ``fetch`` and many agents: a sticky load balancer cannot keep it on its task.
- ``stateless``: protocol ``2026-07-28``, no initialize and no session: such clients cannot lose
  a session at all.

Each HTTP exchange yields a ``CallRecord`` (time, call number, tool, HTTP status, task id,
JSON-RPC error code/message, latency, whether ``AWSALB`` rotated). The task id comes from the
``X-Mcp-Task-Id`` header SessionWatch's instrumentation adds; a server without it still names its
task in its tool results (the reference server's tools, ``whoami`` included, all answer with a
``task_id``), so a successful call verifies its routing either way (``CallRecord.task_source``).
Error answers carry no tool result: without the header, a 404's task is unknown. The raw session
id lives only in the ``ProbeClient`` object, to send it; records, ``repr`` and every line this
module prints carry its fingerprint (``server.fingerprint``).

Why JSON-RPC over ``httpx`` and not the ``mcp`` SDK's ``Client``: the probe exists to observe the
wire, and the SDK hides exactly what it must see. On a 404 the SDK's transport replaces the
server's JSON-RPC error with its own ``"Session terminated"``, so the probe could not report the
server's real ``-32600 "Session not found"``; its transport logs the raw session id at INFO
("Received session ID: ..."); ``call_tool`` adds a ``tools/list`` round trip and the session opens
a background GET stream, so one tool call is not one HTTP exchange and per-call status, task id
and cookie cannot be attributed; and it gives no control over which cookie is sent, which the
``stale_cookie`` mode needs. The messages sent here are the ones the SDK sends, byte for byte in
shape (checked against the SDK's own client: initialize with ``protocolVersion``, then
``notifications/initialized``, then requests with ``Mcp-Session-Id`` and ``MCP-Protocol-Version``
headers; for 2026-07-28 the ``io.modelcontextprotocol/*`` ``_meta`` keys), and the lab's tests run
the probe against the real SDK server.
"""

from __future__ import annotations

import asyncio
import functools
import json
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from http.cookies import CookieError, SimpleCookie
from typing import Any, Literal

import httpx

from sessionwatch.contract import SESSION_ID_HEADER, TASK_ID_HEADER
from sessionwatch.server.fingerprint import fingerprint, scrub
from sessionwatch.server.lost_session import MAX_TEXT, read_error_body, recognize

PEEK_BYTES = 4096  # how much of an answer is read for an error (a lost-session answer is small)

HANDSHAKE_PROTOCOL = "2025-11-25"
STATELESS_PROTOCOL = "2026-07-28"
STICKY_COOKIE = "AWSALB"
PROTOCOL_HEADER = "mcp-protocol-version"
METHOD_HEADER = "mcp-method"
NAME_HEADER = "mcp-name"
CLIENT_INFO = {"name": "sessionwatch-probe", "version": "0.1.0"}
SET_TOOL = "set_session_value"
GET_TOOL = "get_session_state"
WHOAMI_TOOL = "whoami"
INITIALIZED = "initialized"  # the record name of the notifications/initialized exchange
TASK_ID_FIELD = "task_id"  # the key the reference server's tool results name their task with

OnLost = Literal["reconnect", "stop", "continue"]
TaskSource = Literal["header", "result"]


class ProbeMode(StrEnum):
    """How the probe behaves towards sessions and the sticky cookie (module docstring)."""

    SESSION = "session"
    STALE_COOKIE = "stale_cookie"
    NO_COOKIES = "no_cookies"
    STATELESS = "stateless"


@dataclass(frozen=True)
class CallRecord:
    """One HTTP exchange as the probe saw it. ``session`` is a fingerprint, never the raw id."""

    time: float
    probe: str
    call_number: int
    tool: str
    http_status: int | None
    task_id: str | None
    session: str | None
    jsonrpc_code: int | None = None
    jsonrpc_message: str | None = None
    latency_ms: float = 0.0
    cookie_rotated: bool = False
    transport_error: str | None = None
    task_source: TaskSource | None = None  # where task_id came from; None when it is unknown
    answer_text: str | None = None  # a plain-text error answer, ids scrubbed
    jsonrpc_id: str | int | None = None  # the id of an error answer (mcp 1.x: "server-error")
    # Derived from the fields above by the one recognizer (server.lost_session), never passed:
    # the server said the session is gone, in which form, and which SDK answers in that form.
    session_lost: bool = False
    lost_form: str | None = None  # e.g. "404/-32001" or "400/text"
    lost_sdk: str | None = None

    def __post_init__(self) -> None:
        if self.http_status not in (400, 404):
            return
        if self.jsonrpc_code is not None:
            error = {"code": self.jsonrpc_code, "message": self.jsonrpc_message or ""}
            body = json.dumps({"jsonrpc": "2.0", "id": self.jsonrpc_id, "error": error})
        else:
            body = self.answer_text or ""
        lost = recognize(self.http_status, body, sent_session=self.session is not None)
        object.__setattr__(self, "session_lost", lost is not None)
        object.__setattr__(self, "lost_form", lost.form if lost else None)
        object.__setattr__(self, "lost_sdk", lost.sdk if lost else None)

    @property
    def failed(self) -> bool:
        """Anything but a 2xx answer without a JSON-RPC error (lost sessions included)."""
        return not self.ok

    @property
    def ok(self) -> bool:
        """A 2xx answer without a JSON-RPC error."""
        return (
            self.http_status is not None
            and 200 <= self.http_status < 300
            and self.jsonrpc_code is None
        )

    @property
    def session_not_found(self) -> bool:
        """The failure SessionWatch exists for: the session is gone (404 -32600, 404 -32001,
        400 "No valid session ID provided", ...: ``server.lost_session``)."""
        return self.session_lost

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (what events.jsonl stores)."""
        return asdict(self)

    def line(self) -> str:
        """One human line, like the original experiment's client printed per call."""
        when = time.strftime("%H:%M:%S", time.gmtime(self.time))
        status = self.http_status if self.http_status is not None else "ERR"
        task = (self.task_id or "-")[:8]
        text = f"{when} {self.probe} #{self.call_number:<4} {self.tool:<18} {status} task={task}"
        if self.jsonrpc_code is not None:
            text += f" jsonrpc={self.jsonrpc_code} {self.jsonrpc_message!r}"
        elif self.answer_text:
            text += f" {self.answer_text!r}"
        if self.transport_error:
            text += f" error={self.transport_error}"
        if self.cookie_rotated:
            text += " cookie-rotated"
        return text + f" {self.latency_ms:.0f}ms"


def parse_jsonrpc_body(content_type: str, body: bytes, request_id: int | None) -> dict[str, Any]:
    """The JSON-RPC response in a Streamable HTTP answer, JSON or SSE, ``{}`` if there is none.

    A POST answer is either ``application/json`` or a ``text/event-stream`` whose ``data:`` lines
    carry messages; with SSE the response is the message whose ``id`` matches the request (or any
    error whose ``id`` is not a request id of ours: ``null`` in mcp 2.x and the TypeScript SDK,
    ``"server-error"`` in mcp 1.27-1.30, which is how SDKs answer a request they could not route).
    """
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return {}
    if "text/event-stream" in content_type:
        candidates = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
    else:
        candidates = [text]
    for raw in candidates:
        try:
            message = json.loads(raw)
        except ValueError:
            continue
        if not isinstance(message, dict):
            continue
        ident = message.get("id")
        if ident == request_id or ("error" in message and not isinstance(ident, int)):
            return message
    return {}


def task_id_from_result(message: dict[str, Any]) -> str | None:
    """The ``task_id`` a successful tool result names in its structured content, if any."""
    result = message.get("result")
    if not isinstance(result, dict) or result.get("isError"):
        return None
    structured = result.get("structuredContent")
    if not isinstance(structured, dict):
        # Servers older than structured tool output (mcp <= 1.9) send the same JSON as text.
        content = result.get("content")
        first = content[0] if isinstance(content, list) and content else None
        text = first.get("text") if isinstance(first, dict) else None
        try:
            structured = json.loads(text) if isinstance(text, str) else None
        except ValueError:
            structured = None
    task_id = structured.get(TASK_ID_FIELD) if isinstance(structured, dict) else None
    return task_id if isinstance(task_id, str) and task_id else None


def sticky_cookie_from(headers: httpx.Headers) -> str | None:
    """The ``AWSALB`` value a response sets, if it sets one."""
    for raw in headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(raw)
        except CookieError:
            continue
        if STICKY_COOKIE in jar:
            return jar[STICKY_COOKIE].value
    return None


@dataclass
class ProbeClient:
    """One probe: an MCP client over ``httpx`` whose every exchange becomes a ``CallRecord``.

    Not thread-safe; one asyncio task drives one probe (the lab runs hundreds side by side).
    """

    url: str
    mode: ProbeMode = ProbeMode.SESSION
    name: str = "probe-1"
    timeout: float = 5.0
    http_client: httpx.AsyncClient | None = None
    records: list[CallRecord] = field(default_factory=list)
    _session_id: str | None = field(default=None, init=False, repr=False)
    _first_cookie: str | None = field(default=None, init=False, repr=False)
    _last_cookie: str | None = field(default=None, init=False, repr=False)
    _request_id: int = field(default=0, init=False, repr=False)
    _call_number: int = field(default=0, init=False, repr=False)
    _owns_client: bool = field(default=False, init=False, repr=False)
    _seq: int = field(default=0, init=False, repr=False)
    _issued_ids: list[str] = field(default_factory=list, init=False, repr=False)
    # The last JSON-RPC result received (never printed: a tool result may hold anything).
    last_result: dict[str, Any] | None = field(default=None, init=False, repr=False)

    async def __aenter__(self) -> ProbeClient:
        if self.http_client is None:
            # One client (and so one cookie jar and connection pool) per probe: like one user.
            # The TLS context is shared: building one loads the CA bundle (~20 ms of CPU), which
            # for hundreds of probes would stall the event loop they all run on.
            self.http_client = httpx.AsyncClient(timeout=self.timeout, verify=_tls_context())
            self._owns_client = True
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this probe created it (no DELETE: see ``close_session``)."""
        if self._owns_client and self.http_client is not None:
            await self.http_client.aclose()
            self.http_client = None

    @property
    def session(self) -> str | None:
        """Fingerprint of the current session id (``None`` before connect or when stateless)."""
        return fingerprint(self._session_id) if self._session_id else None

    def raw_session_ids_for_leak_audit(self) -> list[str]:
        """Every raw session id the servers issued to this probe, oldest first.

        Only for checking that none of them was written anywhere (the lab's report audit); never
        print, log or store what this returns.
        """
        return list(self._issued_ids)

    @property
    def protocol_version(self) -> str:
        return STATELESS_PROTOCOL if self.mode is ProbeMode.STATELESS else HANDSHAKE_PROTOCOL

    def __repr__(self) -> str:
        return f"ProbeClient(name={self.name!r}, mode={self.mode.value}, session={self.session})"

    async def connect(self) -> CallRecord | None:
        """Start a session (handshake-era modes); a no-op returning ``None`` when stateless.

        Returns the ``initialize`` record, or the ``initialized`` notification's record when that
        one failed (the session is then not usable, and the caller must see why). Both records
        are in :meth:`handshake`'s answer.
        """
        records = await self.handshake()
        if not records:
            return None
        return records[-1] if not records[-1].ok else records[0]

    async def handshake(self) -> list[CallRecord]:
        """``initialize`` then ``notifications/initialized``: every record made (empty when
        stateless). The notification is part of the handshake, so it shares initialize's call
        number: the numbers a caller prints have no gaps."""
        if self.mode is ProbeMode.STATELESS:
            return []
        self._session_id = None
        params = {
            "protocolVersion": HANDSHAKE_PROTOCOL,
            "capabilities": {},
            "clientInfo": CLIENT_INFO,
        }
        record = await self._exchange("initialize", "initialize", params)
        records = [record]
        if record.ok and self._session_id is not None:
            records.append(
                await self._exchange(
                    "notifications/initialized", INITIALIZED, None, notify=True, same_call=True
                )
            )
        return records

    async def whoami(self) -> CallRecord:
        """Ask the answering task its identity (the reference server's ``whoami`` tool).

        What the probe uses when responses carry no ``X-Mcp-Task-Id``: the record's ``task_id``
        then comes from the tool result. One extra exchange, so callers use it only then.
        """
        return await self.call_tool(WHOAMI_TOOL, {})

    async def call_tool(self, tool: str, arguments: dict[str, Any]) -> CallRecord:
        """``tools/call`` once; the record says what came back."""
        params: dict[str, Any] = {"name": tool, "arguments": arguments}
        return await self._exchange("tools/call", tool, params)

    async def cycle(self) -> list[CallRecord]:
        """One probe cycle: write a value into the session, then read the session back."""
        self._seq += 1
        key = f"seq_{self._seq}"
        first = await self.call_tool(SET_TOOL, {"key": key, "value": key})
        second = await self.call_tool(GET_TOOL, {})
        return [first, second]

    async def close_session(self) -> CallRecord | None:
        """DELETE the session, as a polite client does when it is done (then it has none)."""
        if self._session_id is None:
            return None
        record = await self._exchange("DELETE", "delete_session", None, http_method="DELETE")
        self._session_id = None
        return record

    def _headers(self) -> dict[str, str]:
        headers = {
            "accept": "application/json, text/event-stream",
            "content-type": "application/json",
        }
        if self._session_id is not None:
            headers[SESSION_ID_HEADER] = self._session_id
            headers[PROTOCOL_HEADER] = HANDSHAKE_PROTOCOL
        if self.mode is ProbeMode.STATELESS:
            headers[PROTOCOL_HEADER] = STATELESS_PROTOCOL
        if self.mode is ProbeMode.STALE_COOKIE and self._first_cookie is not None:
            headers["cookie"] = f"{STICKY_COOKIE}={self._first_cookie}"
        return headers

    def _payload(
        self, method: str, params: dict[str, Any] | None, notify: bool
    ) -> tuple[dict[str, Any], int | None]:
        message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
        if self.mode is ProbeMode.STATELESS:
            # 2026-07-28 carries what initialize used to negotiate in every request's _meta.
            params = dict(params or {})
            params["_meta"] = {
                "io.modelcontextprotocol/protocolVersion": STATELESS_PROTOCOL,
                "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
                "io.modelcontextprotocol/clientCapabilities": {},
            }
        if params is not None:
            message["params"] = params
        if notify:
            return message, None
        self._request_id += 1
        message["id"] = self._request_id
        return message, self._request_id

    async def _exchange(
        self,
        method: str,
        tool: str,
        params: dict[str, Any] | None,
        *,
        notify: bool = False,
        http_method: str = "POST",
        same_call: bool = False,
    ) -> CallRecord:
        assert self.http_client is not None, "use ProbeClient as an async context manager"
        if not same_call:
            self._call_number += 1
        headers = self._headers()
        request_id: int | None = None
        content: bytes | None = None
        if http_method == "POST":
            message, request_id = self._payload(method, params, notify)
            content = json.dumps(message).encode()
            if self.mode is ProbeMode.STATELESS:
                # 2026-07-28 mirrors the method (and a tool's name) into headers; a server
                # rejects a request whose headers and body disagree.
                headers[METHOD_HEADER] = method
                if params is not None and "name" in params:
                    headers[NAME_HEADER] = str(params["name"])
        if self.mode in (ProbeMode.STALE_COOKIE, ProbeMode.NO_COOKIES):
            # The jar must not hand a rotated cookie back: only the first value is ever sent
            # (stale_cookie), or none at all (no_cookies).
            self.http_client.cookies.clear()
        session_sent = self.session
        started = time.time()
        clock = time.perf_counter()
        try:
            response = await self.http_client.request(
                http_method, self.url, headers=headers, content=content
            )
        except httpx.HTTPError as exc:
            record = CallRecord(
                time=started,
                probe=self.name,
                call_number=self._call_number,
                tool=tool,
                http_status=None,
                task_id=None,
                session=session_sent,
                latency_ms=(time.perf_counter() - clock) * 1000,
                transport_error=transport_error(self.url, exc),
            )
            self.records.append(record)
            return record
        latency_ms = (time.perf_counter() - clock) * 1000
        rotated = self._observe_cookie(response.headers)
        new_session = response.headers.get(SESSION_ID_HEADER)
        if method == "initialize" and new_session:
            self._session_id = new_session
            self._issued_ids.append(new_session)
        body = parse_jsonrpc_body(
            response.headers.get("content-type", ""), response.content, request_id
        )
        error = body.get("error") if isinstance(body.get("error"), dict) else None
        result = body.get("result")
        self.last_result = result if isinstance(result, dict) else None
        text = None
        if error is None and not response.is_success:
            text = scrub(read_error_body(response.content[:PEEK_BYTES]).message) or None
        task_id = response.headers.get(TASK_ID_HEADER)
        task_source: TaskSource | None = "header" if task_id else None
        if task_id is None and method == "tools/call" and response.is_success:
            task_id = task_id_from_result(body)
            task_source = "result" if task_id else None
        record = CallRecord(
            time=started,
            probe=self.name,
            call_number=self._call_number,
            tool=tool,
            http_status=response.status_code,
            task_id=task_id,
            session=self.session if method == "initialize" else session_sent,
            jsonrpc_code=_int_or_none(error.get("code")) if error else None,
            jsonrpc_message=scrub(str(error.get("message"))[:MAX_TEXT]) if error else None,
            latency_ms=latency_ms,
            cookie_rotated=rotated,
            task_source=task_source,
            answer_text=text,
            jsonrpc_id=_id_or_none(body.get("id")) if error else None,
        )
        self.records.append(record)
        return record

    def _observe_cookie(self, headers: httpx.Headers) -> bool:
        """Track the AWSALB value; True when a response set a value different from the last one."""
        value = sticky_cookie_from(headers)
        if value is None:
            return False
        rotated = self._last_cookie is not None and value != self._last_cookie
        self._last_cookie = value
        if self._first_cookie is None:
            self._first_cookie = value
        return rotated


def transport_error(url: str, exc: BaseException) -> str:
    """What failed, where: the exception's kind, the host and port tried, and the reason."""
    parts = httpx.URL(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    reason = " ".join(str(exc).split()) or "no reason given"
    # httpx says "All connection attempts failed"; the socket's own (innermost) error says why.
    root: BaseException | None = None
    cause = exc.__cause__ or exc.__context__
    while cause is not None:
        if isinstance(cause, OSError):
            root = cause
        cause = cause.__cause__ or cause.__context__
    if root is not None:
        reason += f" ({type(root).__name__}: {' '.join(str(root).split())})"
    return scrub(f"{type(exc).__name__} to {parts.host}:{port}: {reason}")[:MAX_TEXT]


@functools.cache
def _tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def _id_or_none(value: object) -> str | int | None:
    return value if isinstance(value, (str, int)) and not isinstance(value, bool) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


RecordCallback = Callable[[CallRecord], Awaitable[None] | None]


async def run_probe(
    url: str,
    *,
    mode: ProbeMode = ProbeMode.SESSION,
    name: str = "probe-1",
    cycles: int | None = None,
    interval: float = 1.0,
    on_record: RecordCallback | None = None,
    on_lost: OnLost = "reconnect",
    stop: asyncio.Event | None = None,
    timeout: float = 5.0,
) -> list[CallRecord]:
    """Open a probe on ``url`` and :func:`drive` it; returns every record it made."""
    async with ProbeClient(url, mode=mode, name=name, timeout=timeout) as probe:
        return await drive(
            probe, cycles=cycles, interval=interval, on_record=on_record, on_lost=on_lost, stop=stop
        )


async def drive(
    probe: ProbeClient,
    *,
    cycles: int | None = None,
    interval: float = 1.0,
    on_record: RecordCallback | None = None,
    on_lost: OnLost = "reconnect",
    stop: asyncio.Event | None = None,
    on_closed: RecordCallback | None = None,
) -> list[CallRecord]:
    """Connect, then run ``cycle()`` every ``interval`` s until ``cycles`` or ``stop`` is set.

    One loop for ``sessionwatch probe`` and the lab's hundreds of clients, so both count and
    reconnect the same way. ``on_lost`` says what to do after a lost session: ``reconnect`` (a new
    initialize right after the cycle that lost it, as the spec asks of a client), ``stop``, or
    ``continue`` with the dead session (like the original experiment's client, which had no retry
    logic). When a new session's ``initialize`` answer carries no ``X-Mcp-Task-Id``, a ``whoami``
    call follows it (reported like any other record) so the session's task is known before the
    first write. With ``on_closed``, a lost session is DELETEd before the new initialize (it may
    still live on its task, e.g. after a stickiness break) and the DELETE's record goes there,
    not to ``on_record``: closing is housekeeping, not a probe call.
    """
    pending_connect = True
    done = 0
    while (cycles is None or done < cycles) and not (stop is not None and stop.is_set()):
        started = time.monotonic()
        records: list[CallRecord] = []
        if pending_connect:
            pending_connect = await _open(probe, records, on_closed)
        if not pending_connect:
            cycle = await probe.cycle()
            records.extend(cycle)
            if any(r.session_not_found for r in cycle) and on_lost == "reconnect":
                # What the spec asks of a client after a lost session: a new initialize
                # without a session id, at once (the next cycle then runs on the new session).
                pending_connect = await _open(probe, records, on_closed)
        done += 1  # a failed connect counts too: a dead endpoint must not loop forever
        for record in records:
            if on_record is not None:
                await _deliver(on_record, record)
        if on_lost == "stop" and any(r.session_not_found for r in records):
            break
        await _sleep_until(started + interval, stop)
    return list(probe.records)


async def _deliver(callback: RecordCallback, record: CallRecord | None) -> None:
    if record is None:
        return
    result = callback(record)
    if asyncio.iscoroutine(result):
        await result


async def _open(
    probe: ProbeClient, records: list[CallRecord], on_closed: RecordCallback | None = None
) -> bool:
    """Connect ``probe``, appending every record made; True when a connect is still pending.

    With ``on_closed``, the session a failed handshake or a loss left behind is DELETEd first.
    """
    if on_closed is not None:
        await _deliver(on_closed, await probe.close_session())
    made = await probe.handshake()
    # The initialize always; its notification only when it failed (it shares the call number).
    records.extend(r for i, r in enumerate(made) if i == 0 or not r.ok)
    if not made:
        return False  # stateless: nothing to open
    usable = all(r.ok for r in made)
    if usable and made[0].task_id is None:
        # No X-Mcp-Task-Id: learn the new session's task before the first write, so a write
        # routed elsewhere is named against it. Once per session.
        records.append(await probe.whoami())
    return not usable


async def _sleep_until(deadline: float, stop: asyncio.Event | None) -> None:
    delay = max(0.0, deadline - time.monotonic())
    if stop is None:
        await asyncio.sleep(delay)
        return
    # asyncio.wait, not wait_for: Python 3.11's wait_for can turn the task's own cancellation
    # (Ctrl-C: asyncio.run cancels the main task) into a TimeoutError when it meets the timeout
    # (CPython gh-86296), and the loop would go on probing after Ctrl-C.
    waiter = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({waiter}, timeout=delay)
    finally:
        waiter.cancel()
