"""Every line the process writes is scrubbed: any library's logger, print, uncaught tracebacks.

``route_library_logs`` is process-wide, so the end-to-end check runs in a subprocess: a library
logger with a handler of its own (as fastmcp's rich handler is), a plain ``print`` to stderr, a
thread's uncaught exception and the main thread's, each carrying a raw session id.
"""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import uuid

from sessionwatch.server.fingerprint import fingerprint
from sessionwatch.server.logs import ScrubbingStream
from tests.conftest import REPO_ROOT

RAW = uuid.uuid4().hex
TASK = "0123456789abcdef0123456789abcdef"


def test_stream_scrubs_whole_lines_even_when_an_id_is_split_across_writes() -> None:
    raw = io.StringIO()
    stream = ScrubbingStream(raw, keep=[TASK])
    stream.write(f"session {RAW[:10]}")
    stream.write(f"{RAW[10:]} on task {TASK}\nnext ")
    assert raw.getvalue() == f"session {fingerprint(RAW)} on task {TASK}\n"
    stream.write("line")
    stream.flush()
    assert raw.getvalue().endswith("next line")


SCRIPT = textwrap.dedent(
    f"""
    import logging, sys, threading
    from sessionwatch.server.logs import build_event_logger, route_library_logs

    own = logging.getLogger("some.library")
    own.addHandler(logging.StreamHandler(sys.stderr))  # a handler of its own, like rich's
    own.propagate = False
    logger = build_event_logger("svc", "{TASK}")
    route_library_logs(logger)
    own.error("library line for session %s", "{RAW}")
    logging.getLogger("fastmcp").warning("fastmcp line %s", "{RAW}")
    print("printed {RAW}", file=sys.stderr)
    def boom():
        raise KeyError("{RAW}")
    thread = threading.Thread(target=boom)
    thread.start(); thread.join()
    raise RuntimeError("uncaught for session {RAW}")
    """
)


def test_nothing_the_process_writes_carries_a_raw_id() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 1
    assert RAW not in output
    fp = fingerprint(RAW)
    for seen in ("library line", "fastmcp line", "printed", "KeyError", "uncaught for session"):
        line = next(line for line in output.splitlines() if seen in line)
        assert fp in line, line
