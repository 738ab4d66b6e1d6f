"""What one HTTP exchange says about MCP: pure functions over the bytes the middleware peeked at.

The middleware never buffers a body: it copies at most ``PEEK_BYTES`` of the request and response
bodies while passing every chunk through untouched. These functions read what they can from that
prefix (the JSON-RPC method, the requested or negotiated protocol version, a JSON-RPC error code)
and return ``None`` for anything they cannot tell, never raising on odd input.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass

from sessionwatch import contract

PEEK_BYTES = 4096
# Where a 2026-07-28 request says who sent it (mcp_types.CLIENT_INFO_META_KEY): in
# ``params._meta``, since there is no initialize to carry ``clientInfo``.
CLIENT_INFO_META_KEY = "io.modelcontextprotocol/clientInfo"

_METHOD = re.compile(rb'"method"\s*:\s*"([^"\\]{1,128})"')
_PROTOCOL = re.compile(rb'"protocolVersion"\s*:\s*"([^"\\]{1,64})"')
_ERROR_CODE = re.compile(rb'"error"\s*:\s*\{[^{}]*?"code"\s*:\s*(-?\d{1,9})')
_TOOL_ERROR = re.compile(rb'"isError"\s*:\s*true')
# A clientInfo object cut off by the peek: its flat name/version strings, read without parsing.
_CLIENT_INFO = re.compile(rb'"clientInfo"\s*:\s*\{([^{}]{0,1024})')
_STRING_FIELD = {
    key: re.compile(rb'"' + key.encode() + rb'"\s*:\s*"((?:[^"\\]|\\.){0,256})"')
    for key in ("name", "version")
}
TOOL_ERROR = "tool_error"  # error.type of a tool result with isError (OTel MCP conventions)


@dataclass(frozen=True)
class RequestInfo:
    """The JSON-RPC method of a POST body and, for ``initialize``, the requested version.

    ``client_name`` / ``client_version``: what the client says it is (``clientInfo`` of an
    initialize, or the clientInfo ``_meta`` of a 2026-07-28 request), already passed through
    :func:`clean_client_text`: client-supplied, so bounded and free of control characters.
    """

    method: str | None = None
    protocol_version: str | None = None
    client_name: str | None = None
    client_version: str | None = None


def clean_client_text(value: object, limit: int = contract.MAX_CLIENT_TEXT) -> str | None:
    """A client-supplied string made safe to log: control and format characters removed
    (no forged log lines, no terminal escapes, no invisible look-alikes), surrounding space
    stripped, at most ``limit`` characters; ``None`` for a non-string or nothing left."""
    if not isinstance(value, str):
        return None
    kept = "".join(ch for ch in value[: limit * 4] if unicodedata.category(ch)[0] != "C")
    kept = kept.strip()[:limit].strip()
    return kept or None


def protocol_era(header_version: str | None) -> str:
    """The era a request is served in, decided as mcp 2.x decides it: a request whose
    ``MCP-Protocol-Version`` header names a revision outside the handshake ones goes to the
    sessionless 2026-07-28 path; every other request (no header: an initialize or a client older
    than the header) to the handshake path, where sessions live."""
    if header_version is not None and header_version not in contract.HANDSHAKE_PROTOCOL_VERSIONS:
        return contract.ERA_MODERN
    return contract.ERA_HANDSHAKE


def _client_info(params: object, method: object) -> tuple[str | None, str | None]:
    if not isinstance(params, dict):
        return None, None
    info = params.get("clientInfo") if method == "initialize" else None
    if info is None:
        meta = params.get("_meta")
        info = meta.get(CLIENT_INFO_META_KEY) if isinstance(meta, dict) else None
    if not isinstance(info, dict):
        return None, None
    return clean_client_text(info.get("name")), clean_client_text(info.get("version"))


def _client_info_prefix(prefix: bytes) -> tuple[str | None, str | None]:
    found = _CLIENT_INFO.search(prefix)
    if found is None:
        return None, None
    values: list[str | None] = []
    for key in ("name", "version"):
        field = _STRING_FIELD[key].search(found[1])
        raw = None
        if field is not None:
            try:
                raw = json.loads(b'"' + field[1] + b'"')
            except ValueError:
                raw = None
        values.append(clean_client_text(raw))
    return values[0], values[1]


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
            *_client_info(params, method),
        )
    # A large body (a tool call with a big argument): the method is near the start in practice.
    found = _METHOD.search(prefix)
    method = found[1].decode("utf-8", "replace") if found else None
    version = None
    name = client_version = None
    if method == "initialize":
        if pv := _PROTOCOL.search(prefix):
            version = pv[1].decode("utf-8", "replace")
        name, client_version = _client_info_prefix(prefix)
    return RequestInfo(method, version, name, client_version)


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
