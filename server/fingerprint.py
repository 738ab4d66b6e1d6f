"""Session fingerprints: the only form in which a session id leaves the process.

A raw ``Mcp-Session-Id`` is a bearer token for a live session, so SessionWatch never logs, stores or
sends it. Everywhere it is replaced by the first 16 hex characters of SHA-256 over its UTF-8 bytes
(DESIGN section 2): stable across tasks and detectors, short enough for dashboards, not reversible.
"""

from __future__ import annotations

import hashlib
import re

FINGERPRINT_LENGTH = 16
FINGERPRINT_PATTERN = re.compile(r"^[0-9a-f]{16}$")


def fingerprint(session_id: str) -> str:
    """Return the fingerprint of ``session_id`` (16 lowercase hex characters)."""
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()[:FINGERPRINT_LENGTH]


def is_fingerprint(value: object) -> bool:
    """True when ``value`` has the shape of a fingerprint (and so cannot be a raw session id)."""
    return isinstance(value, str) and FINGERPRINT_PATTERN.fullmatch(value) is not None
