"""Session fingerprints: the only form in which a session id leaves the process.

A raw ``Mcp-Session-Id`` is a bearer token for a live session, so SessionWatch never logs, stores or
sends it. Everywhere it is replaced by the first 16 hex characters of SHA-256 over its UTF-8 bytes
(docs/architecture.md §2): stable across tasks and detectors, short, not reversible.
"""

from __future__ import annotations

import hashlib
import re

FINGERPRINT_LENGTH = 16
FINGERPRINT_PATTERN = re.compile(r"^[0-9a-f]{16}$")
# A session id from the SDK is uuid4().hex; other servers use dashed UUIDs or longer tokens.
_ID_TOKEN = re.compile(
    r"(?<![0-9A-Za-z])(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[0-9a-fA-F]{32,})(?![0-9A-Za-z])"
)


def fingerprint(session_id: str) -> str:
    """Return the fingerprint of ``session_id`` (16 lowercase hex characters)."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]


def is_fingerprint(value: object) -> bool:
    """True when ``value`` has the shape of a fingerprint (and so cannot be a raw session id)."""
    return isinstance(value, str) and FINGERPRINT_PATTERN.fullmatch(value) is not None


def scrub(text: str, keep: frozenset[str] = frozenset()) -> str:
    """Replace id-shaped tokens in ``text`` by their fingerprints, except those in ``keep``.

    Any 32+ hex-digit or UUID-shaped token: the shapes of the session ids SDKs issue. Used on
    every line the server writes and on any server text the probe prints.
    """
    return _ID_TOKEN.sub(lambda m: m[0] if m[0] in keep else fingerprint(m[0]), text)
