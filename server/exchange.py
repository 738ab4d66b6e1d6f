"""What one HTTP exchange says about MCP: pure functions over the bytes the middleware peeked at.

The middleware never buffers a body: it copies at most ``PEEK_BYTES`` of the request and response
bodies while passing every chunk through untouched. These functions read what they can from that
prefix (the JSON-RPC method, the requested or negotiated protocol version, a JSON-RPC error code)
and return ``None`` for anything they cannot tell, never raising on odd input.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

PEEK_BYTES = 4096

_METHOD = re.compile(rb'"method"\s*:\s*"([^"\\]{1,128})"')
_PROTOCOL = re.compile(rb'"protocolVersion"\s*:\s*"([^"\\]{1,64})"')
_ERROR_CODE = re.compile(rb'"error"\s*:\s*\{[^{}]*?"code"\s*:\s*(-?\d{1,9})')
_TOOL_ERROR = re.compile(rb'"isError"\s*:\s*true')
TOOL_ERROR = "tool_error"  # error.type of a tool result with isError (OTel MCP conventions)


@dataclass(frozen=True)
class RequestInfo:
    """The JSON-RPC method of a POST body and, for ``initialize``, the requested version."""

    method: str | None = None
    protocol_version: str | None = None


def parse_request(prefix: bytes, complete: bool) -> RequestInfo:
    """Read the method from a request body prefix (a batch counts as its first message)."""
    if not prefix:
        return RequestInfo()
    if complete:
        try:
            doc = json.loads(prefix)
        except ValueError:
            return RequestInfo()
        if isinstance(doc, list):
            doc = doc[0] if doc else None
        if not isinstance(doc, dict):
            return RequestInfo()
        method = doc.get("method")
        params = doc.get("params")
        version = params.get("protocolVersion") if isinstance(params, dict) else None
        return RequestInfo(
            method if isinstance(method, str) else None,
            version if isinstance(version, str) and method == "initialize" else None,
        )
    # A large body (a tool call with a big argument): the method is near the start in practice.
    found = _METHOD.search(prefix)
    method = found[1].decode("utf-8", "replace") if found else None
    version = None
    if method == "initialize" and (pv := _PROTOCOL.search(prefix)):
        version = pv[1].decode("utf-8", "replace")
    return RequestInfo(method, version)


def error_code(prefix: bytes) -> int | None:
    """The JSON-RPC error code in a response body prefix (JSON or SSE), if any."""
    found = _ERROR_CODE.search(prefix)
    return int(found[1]) if found else None


def is_tool_error(prefix: bytes) -> bool:
    """True when a ``tools/call`` result says ``isError: true`` (a failed tool, HTTP 200)."""
    return _TOOL_ERROR.search(prefix) is not None


def negotiated_version(prefix: bytes) -> str | None:
    """The protocol version an ``initialize`` response agreed on."""
    found = _PROTOCOL.search(prefix)
    return found[1].decode("utf-8", "replace") if found else None
