"""Helpers the probe tests share: run the probe in a thread, read its JSON lines, audit them."""

from __future__ import annotations

import io
import json
import re
import threading
import time
from typing import Any

from sessionwatch.ops.probe import run_probe
from sessionwatch.server.fingerprint import is_fingerprint

# SDK session ids are 32 hex characters (uuid4 hex), like ECS task ids: task ids are removed
# from the output before looking for one.
HEX_TOKEN = re.compile(r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def json_lines(text: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert "summary" in lines[-1]
    return lines[:-1], lines[-1]


def assert_no_raw_session_id(text: str, calls: list[dict[str, Any]]) -> None:
    for task_id in {c["task_id"] for c in calls if c["task_id"]} | {
        c["session_task"] for c in calls if c["session_task"]
    }:
        text = text.replace(task_id, "<task>")
    assert not HEX_TOKEN.search(text)
    assert all(c["session"] is None or is_fingerprint(c["session"]) for c in calls)


class BackgroundProbe:
    """``run_probe(..., as_json=True)`` on a daemon thread, so a test can act while it runs."""

    def __init__(self, url: str, **options: Any) -> None:
        self.out = io.StringIO()
        self.code: int | None = None
        self.thread = threading.Thread(
            target=self._run, args=(url,), kwargs=options, daemon=True, name="probe"
        )
        self.thread.start()

    def _run(self, url: str, **options: Any) -> None:
        self.code = run_probe(url, as_json=True, out=self.out, **options)

    def wait_for_holder(self, timeout: float = 10.0) -> str:
        """The task that answered the probe's first read: the one holding its session."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answered = [json.loads(line) for line in self.out.getvalue().splitlines() if line]
            holder = next(
                (c["task_id"] for c in answered if c["tool"] == "get_session_state"), None
            )
            if holder is not None:
                return str(holder)
            time.sleep(0.05)
        raise AssertionError(f"the probe read no session state within {timeout} s")

    def join(self, timeout: float) -> None:
        self.thread.join(timeout=timeout)
        assert not self.thread.is_alive(), f"the probe did not end within {timeout} s"
