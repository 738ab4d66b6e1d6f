"""Which headers the sidecar forwards (RFC 9110 7.6.1), as pure functions."""

from __future__ import annotations

from sessionwatch.sidecar.headers import end_to_end, is_event_stream, request_headers


def test_hop_by_hop_fields_and_those_connection_names_are_dropped() -> None:
    headers = [
        (b"Connection", b"keep-alive, X-Private"),
        (b"X-Private", b"1"),
        (b"Keep-Alive", b"timeout=5"),
        (b"Transfer-Encoding", b"chunked"),
        (b"TE", b"trailers"),
        (b"Upgrade", b"h2c"),
        (b"Proxy-Connection", b"close"),
        (b"Mcp-Session-Id", b"abc"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
    ]
    assert end_to_end(headers) == [
        (b"Mcp-Session-Id", b"abc"),
        (b"Set-Cookie", b"a=1"),
        (b"Set-Cookie", b"b=2"),
    ]


def test_the_upstream_gets_its_own_host_and_the_forwarded_fields() -> None:
    out = request_headers(
        [(b"host", b"mcp.example.com"), (b"x-forwarded-for", b"198.51.100.7"), (b"accept", b"*/*")],
        upstream_authority=b"127.0.0.1:3000",
        client_ip="10.0.0.5",
        scheme="http",
    )
    assert out[0] == (b"host", b"127.0.0.1:3000")
    assert (b"x-forwarded-for", b"198.51.100.7, 10.0.0.5") in out
    assert (b"x-forwarded-host", b"mcp.example.com") in out
    assert (b"x-forwarded-proto", b"http") in out
    assert (b"accept", b"*/*") in out


def test_preserve_host_and_an_albs_proto_are_kept() -> None:
    out = request_headers(
        [(b"host", b"mcp.example.com"), (b"x-forwarded-proto", b"https")],
        upstream_authority=b"127.0.0.1:3000",
        client_ip=None,
        scheme="http",
        preserve_host=True,
    )
    assert out[0] == (b"host", b"mcp.example.com")
    assert [v for k, v in out if k == b"x-forwarded-proto"] == [b"https"]
    assert not [k for k, _ in out if k == b"x-forwarded-for"]


def test_event_stream_is_recognized_by_content_type() -> None:
    assert is_event_stream([(b"Content-Type", b"text/event-stream; charset=utf-8")])
    assert not is_event_stream([(b"content-type", b"application/json")])
