"""Session fingerprints: the only form in which a session id leaves the process.

A raw ``Mcp-Session-Id`` is a bearer token for a live session, so SessionWatch never logs, stores or
sends it. Everywhere it is replaced by the first 16 hex characters of SHA-256 over its UTF-8 bytes
(docs/architecture.md §2): stable across tasks and detectors, short, not reversible.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import OrderedDict

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
    """Replace known session ids, then id-shaped tokens, in ``text`` by their fingerprints.

    By value: every id the instrumentation saw in a request or response header
    (:data:`SEEN_IDS`), whatever its shape. By shape: any 32+ hex-digit or UUID-shaped token
    (the shapes of the ids SDKs issue), except those in ``keep``. Used on every line the server
    writes and on any server text the probe prints.
    """
    text = SEEN_IDS.scrub(text)
    return _ID_TOKEN.sub(lambda m: m[0] if m[0] in keep else fingerprint(m[0]), text)


class SeenSessionIds:
    """The most recent session ids seen in headers, to scrub by value (bounded: an LRU).

    A client may send any string as ``Mcp-Session-Id`` and a server may mint ids in any format,
    so shape alone cannot find them in a log line. Matching is by exact substring, indexed by
    each id's first ``PREFIX`` characters so a line costs one dict lookup per character however
    many ids are remembered. Ids shorter than ``MIN_LENGTH`` are not remembered: replacing
    every occurrence of a few characters would shred unrelated text (the spec asks for
    cryptographically secure ids; none of the SDKs' are that short). The JSON-escaped form of
    an id is remembered too, since JSON log lines escape ``"`` and ``\\``.
    """

    PREFIX = 4
    MIN_LENGTH = 8

    def __init__(self, capacity: int = 4096) -> None:
        self.capacity = capacity
        self._ids: OrderedDict[str, tuple[str, ...]] = OrderedDict()  # id -> forms
        self._by_prefix: dict[str, tuple[str, ...]] = {}  # prefix -> forms, longest first
        self._replacement: dict[str, str] = {}  # form -> fingerprint of its id
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._ids)

    def remember(self, session_id: str) -> None:
        """Note ``session_id`` (cheap when already known: it only becomes the most recent)."""
        if len(session_id) < self.MIN_LENGTH:
            return
        with self._lock:
            if session_id in self._ids:
                self._ids.move_to_end(session_id)
                return
            forms = tuple(dict.fromkeys((session_id, json.dumps(session_id)[1:-1])))
            self._ids[session_id] = forms
            replacement = fingerprint(session_id)
            for form in forms:
                self._replacement[form] = replacement
                self._index(form, add=True)
            while len(self._ids) > self.capacity:
                _, old_forms = self._ids.popitem(last=False)
                for form in old_forms:
                    self._replacement.pop(form, None)
                    self._index(form, add=False)

    def _index(self, form: str, *, add: bool) -> None:
        key = form[: self.PREFIX]
        forms = [f for f in self._by_prefix.get(key, ()) if f != form]
        if add:
            forms.append(form)
        if forms:
            # Longest first: an id that extends another is replaced whole.
            self._by_prefix[key] = tuple(sorted(forms, key=len, reverse=True))
        else:
            self._by_prefix.pop(key, None)

    def scrub(self, text: str) -> str:
        """``text`` with every remembered id replaced by its fingerprint."""
        by_prefix = self._by_prefix
        if not by_prefix or len(text) < self.MIN_LENGTH:
            return text
        out: list[str] = []
        start = i = 0
        end = len(text) - self.MIN_LENGTH + 1
        while i < end:
            forms = by_prefix.get(text[i : i + self.PREFIX])
            if forms:
                for form in forms:
                    if text.startswith(form, i):
                        out += (text[start:i], self._replacement.get(form, ""))
                        i = start = i + len(form)
                        break
                else:
                    i += 1
                continue
            i += 1
        if not out:
            return text
        out.append(text[start:])
        return "".join(out)

    def clear(self) -> None:
        with self._lock:
            self._ids.clear()
            self._by_prefix.clear()
            self._replacement.clear()


# Process-wide, like the output it scrubs: the middleware fills it, every scrubber reads it.
SEEN_IDS = SeenSessionIds()
