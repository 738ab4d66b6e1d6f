"""Session ids are scrubbed by value, whatever their shape: every id the middleware sees in a
request or response header is replaced by its fingerprint in every line the process writes.

The end-to-end checks run README's instrument snippet in a subprocess (the scrubbing is
process-wide) against the real mcp SDK and uvicorn, with a client-made id of no known shape.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from lab.haproxy import free_port
from sessionwatch.server.fingerprint import SeenSessionIds, fingerprint, scrub
from tests.conftest import REPO_ROOT

MADE_UP = "Zq-made-up-session-77"


def test_a_remembered_id_of_any_shape_is_replaced_wherever_it_appears() -> None:
    seen = SeenSessionIds(capacity=8)
    quoted = 'id"with\\quote'
    for session_id in (MADE_UP, quoted, "Zq-made-up-session-77-longer"):
        seen.remember(session_id)
    text = f"a={MADE_UP}; b=Zq-made-up-session-77-longer; c={json.dumps(quoted)}"
    out = seen.scrub(text)
    assert MADE_UP not in out and "quote" not in out
    # The longer id is replaced whole, not as the shorter id plus a tail.
    assert fingerprint("Zq-made-up-session-77-longer") in out
    assert out.startswith(f"a={fingerprint(MADE_UP)}; ")
    assert seen.scrub("nothing to see here") == "nothing to see here"


def test_memory_is_bounded_and_forgets_the_least_recently_seen() -> None:
    seen = SeenSessionIds(capacity=3)
    ids = [f"session-number-{n}" for n in range(4)]
    for session_id in ids[:3]:
        seen.remember(session_id)
    seen.remember(ids[0])  # seen again: now the most recent
    seen.remember(ids[3])  # evicts ids[1], the least recently seen
    assert len(seen) == 3
    text = " ".join(ids)
    assert seen.scrub(text).split() == [
        fingerprint(ids[0]),
        ids[1],
        fingerprint(ids[2]),
        fingerprint(ids[3]),
    ]


def test_ids_too_short_to_be_secret_are_not_remembered() -> None:
    seen = SeenSessionIds()
    seen.remember("abc")
    assert len(seen) == 0 and seen.scrub("abc abc") == "abc abc"


SNIPPET = textwrap.dedent(
    """
    import logging, os, sys
    import uvicorn
    from mcp.server.mcpserver import MCPServer

    from sessionwatch.server import instrument, route_library_logs

    if os.environ.get("SDK_INFO"):
        logging.getLogger("mcp").setLevel(logging.INFO)  # the caller's choice wins
    if os.environ.get("OWN_HANDLER"):
        # A server's own plain handler, made before instrument() (as a sidecar's server would).
        logging.basicConfig(level=logging.INFO, stream=sys.stderr)
        logging.getLogger("mcp").setLevel(logging.INFO)

    mcp = MCPServer("orders")
    app = instrument(
        mcp.streamable_http_app(stateless_http=False, host="0.0.0.0"),
        service="orders-mcp",
        session_manager=mcp.session_manager,
    )
    if not os.environ.get("OWN_HANDLER"):
        route_library_logs(app.logger)
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_config=None)
    """
)


def _readme_snippet() -> str:
    """README's instrument snippet exactly as shown, on a free port (from $PORT)."""
    readme = (REPO_ROOT / "README.md").read_text()
    (block,) = [
        b for b in re.findall(r"```python\n(.*?)```", readme, flags=re.S) if "instrument(" in b
    ]
    assert "port=8000" in block
    return "import os\n" + block.replace("port=8000", 'port=int(os.environ["PORT"])')


def _run_snippet(tmp_path: Path, source: str = SNIPPET, **env: str) -> str:
    """Start the snippet, send one request with the made-up id, stop it; all it wrote."""
    script = tmp_path / "server.py"
    script.write_text(source)
    port = free_port()
    out = tmp_path / "out.txt"
    with out.open("w") as sink:
        proc = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env={**_env(), "PORT": str(port), "PYTHONPATH": str(REPO_ROOT), **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}/mcp"
            deadline = time.monotonic() + 30
            while True:
                try:
                    answer = httpx.post(
                        url,
                        headers={
                            "mcp-session-id": MADE_UP,
                            "content-type": "application/json",
                            "accept": "application/json, text/event-stream",
                            "mcp-protocol-version": "2025-11-25",
                        },
                        json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                        timeout=5,
                    )
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline, out.read_text()
                    time.sleep(0.1)
            assert answer.status_code == 404
            time.sleep(0.3)  # let the lines reach the file
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    return out.read_text()


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}


@pytest.mark.slow
def test_the_sdks_own_line_about_a_made_up_id_never_shows_it(tmp_path: Path) -> None:
    output = _run_snippet(tmp_path, SDK_INFO="1")
    assert MADE_UP not in output
    rejected = [line for line in output.splitlines() if "unknown or expired session" in line]
    assert rejected, output  # the SDK did write its line: it proves the scrubbing, not silence
    assert all(fingerprint(MADE_UP) in line for line in rejected)


@pytest.mark.slow
def test_readmes_snippet_as_written_keeps_the_sdks_info_lines_and_the_id_out(
    tmp_path: Path,
) -> None:
    output = _run_snippet(tmp_path, _readme_snippet())
    assert MADE_UP not in output
    assert "unknown or expired session" not in output  # no repeat of session_not_found
    not_found = [json.loads(x) for x in output.splitlines() if '"session_not_found"' in x]
    assert [e["session"] for e in not_found] == [fingerprint(MADE_UP)]


@pytest.mark.slow
def test_instrument_alone_scrubs_a_handler_the_server_made_before_it(tmp_path: Path) -> None:
    """What a sidecar gets: no route_library_logs, the wrapped server's own logging setup."""
    output = _run_snippet(tmp_path, OWN_HANDLER="1")
    assert MADE_UP not in output
    assert any(fingerprint(MADE_UP) in x and "unknown or expired" in x for x in output.splitlines())


def test_shape_scrubbing_still_applies_to_ids_never_seen_in_a_header() -> None:
    raw = "0123456789abcdef0123456789abcdef"
    assert scrub(f"id {raw}") == f"id {fingerprint(raw)}"
