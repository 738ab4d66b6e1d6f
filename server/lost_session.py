"""The one recognizer of "your session is gone" answers, for every MCP SDK SessionWatch knows.

Shared by the instrumentation (which logs ``session_not_found``), the probe and the lab (which
count lost sessions): a lost session must be the same thing to all of them. Pure and stdlib-only,
so any part may import it.

Servers do not agree on how to say it (docs/architecture.md, "How SDKs answer an unknown session";
the table in server/README.md):

========================================  ======  =================================================
server                                    HTTP    body
========================================  ======  =================================================
mcp (Python) 2.x                          404     JSON-RPC -32600 "Session not found", id null
mcp 1.27 - 1.30                           404     JSON-RPC -32600 "Session not found",
                                                  id "server-error"
mcp 1.x up to 1.26                        400     plain text "Bad Request: No valid session ID
                                                  provided"
mcp 1.x transport (session terminated)    404     JSON-RPC -32600 "Not Found: Session has been
                                                  terminated" / "Invalid or expired session ID"
TypeScript SDK 1.x transport / examples   404     JSON-RPC -32001 "Session not found", id null
older TypeScript examples                 400     JSON-RPC -32000 "Bad Request: No valid session ID
                                                  provided"
TypeScript SDK single transport           400     JSON-RPC -32000 "Bad Request: Server not
                                                  initialized" (the process restarted)
========================================  ======  =================================================

The rule: the request carried an ``Mcp-Session-Id`` and the answer is a 404 that names a session
(or carries -32001, or -32600 without a message), or a 400 whose message says the session id is
not valid / the server holds no session. A 404 that names no session (a wrong path) and a 400 for
a request that sent no session id are not lost sessions.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sessionwatch import contract

MAX_TEXT = 200  # how much of the server's message is kept (callers scrub it before printing)

# 400 answers that mean "the id you sent names no session here".
_BAD_REQUEST_PHRASES = re.compile(
    r"no valid session|invalid or missing session|invalid session|unknown session"
    r"|expired session|session not found|session (?:id )?(?:is )?(?:unknown|expired|invalid)"
    r"|server not initiali[sz]ed|no transport found for session",
    re.IGNORECASE,
)
_NAMES_A_SESSION = re.compile(r"session", re.IGNORECASE)
_NOT_FOUND_CODES = frozenset(
    {contract.JSONRPC_SESSION_NOT_FOUND, contract.JSONRPC_SESSION_NOT_FOUND_TS}
)


@dataclass(frozen=True)
class LostSessionAnswer:
    """The form in which a server said the session is gone.

    ``jsonrpc_code`` is ``None`` for a plain-text answer. ``message`` is the server's text (at
    most ``MAX_TEXT`` characters): it may contain the raw session id, so scrub it before any
    output. ``sdk`` names the SDK family whose answer has exactly this form.
    """

    http_status: int
    jsonrpc_code: int | None
    message: str
    jsonrpc_id: str | int | None = None

    @property
    def sdk(self) -> str:
        return sdk_of(self)

    @property
    def error_type(self) -> str:
        """The metric ``error.type``: the JSON-RPC code, or the HTTP status of a plain answer."""
        return str(self.jsonrpc_code if self.jsonrpc_code is not None else self.http_status)

    @property
    def form(self) -> str:
        """A short label of the form, e.g. ``404/-32001`` or ``400/text``."""
        code = self.jsonrpc_code if self.jsonrpc_code is not None else "text"
        return f"{self.http_status}/{code}"


@dataclass(frozen=True)
class ErrorBody:
    """What an error body says: the JSON-RPC error, or else the plain text."""

    jsonrpc_code: int | None
    message: str
    jsonrpc_id: str | int | None = None


def read_error_body(body: bytes | str | None, content_type: str = "") -> ErrorBody:
    """The JSON-RPC error in a body (JSON or SSE ``data:`` lines), else its text; never raises."""
    if body is None:
        return ErrorBody(None, "")
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    text = text.strip()
    lines = text.splitlines()
    if "text/event-stream" in content_type or (lines and lines[0].startswith(("event:", "data:"))):
        candidates = [line[5:].strip() for line in lines if line.startswith("data:")]
    else:
        candidates = [text]
    for raw in candidates:
        try:
            doc = json.loads(raw)
        except ValueError:
            continue
        error = doc.get("error") if isinstance(doc, dict) else None
        if isinstance(error, dict):
            code = error.get("code")
            message = error.get("message")
            ident = doc.get("id")
            return ErrorBody(
                code if isinstance(code, int) and not isinstance(code, bool) else None,
                message[:MAX_TEXT] if isinstance(message, str) else "",
                ident if isinstance(ident, (str, int)) and not isinstance(ident, bool) else None,
            )
    looks_json = text.startswith(("{", "["))
    return ErrorBody(None, "" if looks_json else text[:MAX_TEXT])


def recognize(
    http_status: int | None,
    body: bytes | str | None,
    *,
    sent_session: bool,
    content_type: str = "",
) -> LostSessionAnswer | None:
    """The lost-session answer in this HTTP answer, or ``None`` when it is something else.

    ``sent_session``: whether the request carried an ``Mcp-Session-Id`` (without one, nothing
    can have been lost). ``body`` may be a prefix of the body (the middleware peeks 4 KiB).
    """
    if not sent_session or http_status not in (400, 404):
        return None
    seen = read_error_body(body, content_type)
    if http_status == 404:
        lost = (
            _NAMES_A_SESSION.search(seen.message) is not None
            or seen.jsonrpc_code == contract.JSONRPC_SESSION_NOT_FOUND_TS
            or (seen.jsonrpc_code in _NOT_FOUND_CODES and not seen.message)
        )
    else:
        lost = _BAD_REQUEST_PHRASES.search(seen.message) is not None
    if not lost:
        return None
    return LostSessionAnswer(http_status, seen.jsonrpc_code, seen.message, seen.jsonrpc_id)


def sdk_of(answer: LostSessionAnswer) -> str:
    """Which SDK answers in exactly this form (a hint for people; never used to decide)."""
    code, status, msg = answer.jsonrpc_code, answer.http_status, answer.message.lower()
    if status == 404 and code == contract.JSONRPC_SESSION_NOT_FOUND:
        if answer.jsonrpc_id == "server-error":
            return "mcp (Python) 1.27-1.30"
        if "terminated" in msg or "invalid or expired" in msg:
            return "mcp (Python) transport"
        return "mcp (Python) 2.x"
    if status == 404 and code == contract.JSONRPC_SESSION_NOT_FOUND_TS:
        return "TypeScript SDK 1.x"
    if status == 400 and code is None and "no valid session" in msg:
        return "mcp (Python) 1.x up to 1.26"
    if status == 400 and code == contract.JSONRPC_SERVER_ERROR:
        if "not initiali" in msg:
            return "TypeScript SDK 1.x (single transport, restarted)"
        return "TypeScript SDK examples (older pattern)"
    return "another server"
