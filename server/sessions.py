"""Bookkeeping of the sessions this task has opened: plain data, no I/O, no clock of its own.

The middleware learns about sessions from HTTP (a new ``mcp-session-id`` in a response, a DELETE
answered 2xx) and, for closes the SDK does silently (idle expiry), from comparing this table with
the SDK's live sessions. Raw ids are only the in-memory keys (the SDK holds them anyway); every
value that leaves this module for a log or metric is the fingerprint.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass

from sessionwatch.server.fingerprint import fingerprint

MAX_TRACKED = 100_000  # beyond the SDK's own 10,000 default, so only a leak would reach it


@dataclass
class OpenSession:
    """One open session: its fingerprint, when it opened and was last used (monotonic seconds)."""

    fingerprint: str
    created_at: float
    last_seen: float
    protocol_version: str | None = None
    client_name: str | None = None  # clientInfo.name, sanitized (exchange.clean_client_text)

    def age(self, now: float) -> float:
        return max(0.0, now - self.created_at)


class SessionTracker:
    """The open sessions of this process, keyed by session id."""

    def __init__(self, max_tracked: int = MAX_TRACKED) -> None:
        self._open: dict[str, OpenSession] = {}
        self._max = max_tracked

    def __len__(self) -> int:
        return len(self._open)

    def __contains__(self, session_id: object) -> bool:
        return session_id in self._open

    def created(
        self,
        session_id: str,
        now: float,
        protocol_version: str | None,
        client_name: str | None = None,
    ) -> OpenSession | None:
        """Record a new session; ``None`` when it was already known (never double-count)."""
        if session_id in self._open:
            return None
        if len(self._open) >= self._max:  # a leak guard, not a policy: forget the oldest
            self._open.pop(next(iter(self._open)))
        session = OpenSession(fingerprint(session_id), now, now, protocol_version, client_name)
        self._open[session_id] = session
        return session

    def touch(self, session_id: str, now: float) -> OpenSession | None:
        session = self._open.get(session_id)
        if session is not None:
            session.last_seen = now
        return session

    def closed(self, session_id: str) -> OpenSession | None:
        """Forget a session; ``None`` when it was not open (a second close is not counted)."""
        return self._open.pop(session_id, None)

    def missing_from(self, live: Collection[str]) -> list[tuple[str, OpenSession]]:
        """Forget and return the sessions no longer in the SDK's ``live`` set (they expired)."""
        gone = [sid for sid in self._open if sid not in live]
        return [(sid, self._open.pop(sid)) for sid in gone]

    def idle_since(self, cutoff: float) -> list[tuple[str, OpenSession]]:
        """Forget and return the sessions unused since ``cutoff`` (no SDK view)."""
        gone = [sid for sid, s in self._open.items() if s.last_seen < cutoff]
        return [(sid, self._open.pop(sid)) for sid in gone]

    def close_all(self) -> list[OpenSession]:
        """Forget and return every open session (process shutdown)."""
        sessions = list(self._open.values())
        self._open.clear()
        return sessions

    def fingerprints(self, limit: int) -> list[str]:
        return [s.fingerprint for s, _ in zip(self._open.values(), range(limit), strict=False)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._open)
