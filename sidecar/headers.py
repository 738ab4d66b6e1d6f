"""Which headers a reverse proxy forwards: pure functions over ``(name, value)`` byte pairs.

RFC 9110 section 7.6.1: a proxy removes the connection-specific fields it receives (``Connection``
and every field it names, ``Proxy-Connection``, ``Keep-Alive``, ``TE``, ``Transfer-Encoding``,
``Upgrade``) before forwarding; everything else passes as it is, in order, duplicates kept.
``Host`` is the one end-to-end field a proxy chooses: like nginx's default
(``proxy_set_header Host $proxy_host``), the upstream sees its own authority, because the servers
behind the sidecar check it (the mcp SDK's and the TypeScript SDK's DNS-rebinding protection
reject a ``Host`` they do not serve); the client's goes in ``X-Forwarded-Host``.
"""

from __future__ import annotations

from collections.abc import Iterable

Header = tuple[bytes, bytes]

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"proxy-connection",
        b"keep-alive",
        b"te",
        b"transfer-encoding",
        b"upgrade",
    }
)


def _named_in_connection(headers: Iterable[Header]) -> frozenset[bytes]:
    named: set[bytes] = set()
    for key, value in headers:
        if key.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b",") if token.strip())
    return frozenset(named)


def end_to_end(headers: Iterable[Header]) -> list[Header]:
    """``headers`` without the hop-by-hop fields (RFC 9110 7.6.1), names as received."""
    headers = list(headers)
    drop = HOP_BY_HOP | _named_in_connection(headers)
    return [(k, v) for k, v in headers if k.lower() not in drop]


def request_headers(
    headers: Iterable[Header],
    *,
    upstream_authority: bytes,
    client_ip: str | None,
    scheme: str,
    preserve_host: bool = False,
) -> list[Header]:
    """What the sidecar sends upstream: end-to-end fields, ``Host`` chosen, ``X-Forwarded-*``.

    ``X-Forwarded-For`` is appended to (the ALB sets it; the sidecar adds the ALB's address), and
    ``X-Forwarded-Proto`` / ``X-Forwarded-Host`` are kept when the ALB already set them.
    """
    out: list[Header] = []
    host: bytes | None = None
    forwarded_for: bytes | None = None
    has_proto = has_fhost = False
    for key, value in end_to_end(headers):
        name = key.lower()
        if name == b"host":
            host = value
            continue
        if name == b"x-forwarded-for":
            forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
            continue
        has_proto = has_proto or name == b"x-forwarded-proto"
        has_fhost = has_fhost or name == b"x-forwarded-host"
        out.append((key, value))
    out.insert(0, (b"host", host if preserve_host and host else upstream_authority))
    if client_ip:
        ip = client_ip.encode("latin-1", "replace")
        out.append((b"x-forwarded-for", forwarded_for + b", " + ip if forwarded_for else ip))
    elif forwarded_for is not None:
        out.append((b"x-forwarded-for", forwarded_for))
    if not has_proto:
        out.append((b"x-forwarded-proto", scheme.encode("latin-1", "replace")))
    if host and not has_fhost:
        out.append((b"x-forwarded-host", host))
    return out


def is_event_stream(headers: Iterable[Header]) -> bool:
    """An SSE response: read with no timeout between chunks, never buffered."""
    return any(
        k.lower() == b"content-type" and v.lower().startswith(b"text/event-stream")
        for k, v in headers
    )
