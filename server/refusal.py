"""The one recognizer of "no room for another session" answers, for every MCP SDK known.

Shared by the instrumentation (which logs ``session_refused``) and the lab (which counts refused
clients): a refusal must be the same thing to both. Pure and stdlib-only, like
``server.lost_session``. What each SDK does when full (read from its source; the table in
server/README.md):

========================================  ======  =================================================
server                                    HTTP    body
========================================  ======  =================================================
mcp (Python) 2.2+ (2.3 tested)            503     JSON-RPC -32603 "Too many open sessions", id null
mcp 1.30                                  503     the same with id "server-error"
fastmcp 4.x (Python)                      503     as mcp 2.x: its session manager is the SDK's
                                                  (no cap setting of its own: always 10,000)
mcp 1.x up to 1.29, TypeScript SDK 1.x    --      no cap: sessions are never refused, memory grows
========================================  ======  =================================================

The rule: the request carried no ``Mcp-Session-Id`` (it would open a session) and the answer is
a 503 (or 429) whose message says the server holds too many sessions. A 503 from anything else (a
load balancer with no healthy target, an overloaded proxy) names no session limit and is not a
refusal; a request that carried a session id was never asking for a new one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sessionwatch.server.lost_session import read_error_body

REFUSAL_STATUSES = frozenset({503, 429})
_FULL = re.compile(
    r"too many (?:open |concurrent |active )?sessions|session limit"
    r"|maximum (?:number of )?(?:open |concurrent )?sessions",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class RefusalAnswer:
    """The form in which a server refused a new session.

    ``jsonrpc_code`` is ``None`` for a plain-text answer; ``message`` is the server's text (at
    most ``lost_session.MAX_TEXT`` characters).
    """

    http_status: int
    jsonrpc_code: int | None
    message: str


def recognize_refusal(
    http_status: int | None,
    body: bytes | str | None,
    *,
    sent_session: bool,
    content_type: str = "",
) -> RefusalAnswer | None:
    """The session refusal in this HTTP answer, or ``None`` when it is something else.

    ``body`` may be a prefix of the body (the middleware peeks 4 KiB).
    """
    if sent_session or http_status not in REFUSAL_STATUSES:
        return None
    seen = read_error_body(body, content_type)
    if _FULL.search(seen.message) is None:
        return None
    return RefusalAnswer(http_status, seen.jsonrpc_code, seen.message)
