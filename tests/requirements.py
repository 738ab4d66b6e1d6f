"""What a test needs from outside Python (HAProxy, Node.js, the installed peers), said in one place.

A test whose tool is missing skips with the reason and the install command on a developer's
machine, and FAILS under ``CI=true``: in CI a missing part is a broken setup, never a quiet skip.

Three ways to use it, all with the same outcome::

    pytestmark = pytest.mark.requires("haproxy")        # a whole module (or one test)
    node = require("node")                               # inside a fixture or test: its path
    tool = require_command("jq", "apt-get install jq")   # a tool the registry does not know yet

Add a part to ``REQUIREMENTS`` when several tests need it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
_PEERS = REPO_ROOT / "tests" / "peers"
_PEER_VENVS = REPO_ROOT / ".venv-peers"


def in_ci() -> bool:
    """True under CI (``CI=true``, as GitHub Actions, GitLab and most runners set it)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def missing(what: str, how: str) -> NoReturn:
    """Stop the current test: a failure naming what to install under CI, a skip elsewhere."""
    message = f"{what} is missing: {how}"
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message, allow_module_level=True)  # also from a conftest, before an import


def require_command(name: str, how: str) -> str:
    """The path of command ``name`` on PATH, or :func:`missing`."""
    path = shutil.which(name)
    if path is None:
        missing(f"the command `{name}`", how)
    return path


def require_path(path: Path, what: str, how: str) -> Path:
    """``path`` when it exists, or :func:`missing`."""
    if not path.exists():
        missing(f"{what} ({path})", how)
    return path


@dataclass(frozen=True)
class Requirement:
    """A part tests need: how to find it (its path, or None) and how to install it."""

    what: str
    find: Callable[[], str | None]
    how: str


def _haproxy() -> str | None:
    from lab.haproxy import HAPROXY_BIN  # the binary the lab itself starts

    return HAPROXY_BIN if Path(HAPROXY_BIN).exists() else None


def _node_peer() -> str | None:
    node = shutil.which("node")
    installed = (_PEERS / "node_modules" / "@modelcontextprotocol" / "sdk").is_dir()
    return node if node and installed else None


def _peer_python(version: str) -> Callable[[], str | None]:
    def find() -> str | None:
        python = _PEER_VENVS / f"mcp-{version}" / "bin" / "python"
        stamp = python.parent.parent / ".sessionwatch-stamp"  # written only by a full install
        return str(python) if python.exists() and stamp.exists() else None

    return find


_MAKE_PEERS = "run `make peers` (scripts/install-peers.sh) and read its error"
REQUIREMENTS: dict[str, Requirement] = {
    "haproxy": Requirement(
        "HAProxy (the lab's load balancer)",
        _haproxy,
        "`make system-deps` as root, or `sudo apt-get install haproxy` / `brew install haproxy`; "
        "or set SESSIONWATCH_HAPROXY to its path",
    ),
    "node": Requirement(
        "Node.js (the CDK synth runs on it)",
        lambda: shutil.which("node"),
        "install Node.js 20 or later (`sudo apt-get install nodejs`, https://nodejs.org)",
    ),
    "npm": Requirement(
        "npm (installs the TypeScript SDK peer)",
        lambda: shutil.which("npm"),
        "install Node.js 20 or later with npm (`sudo apt-get install nodejs npm`)",
    ),
    "ts-sdk-peer": Requirement(
        "the TypeScript SDK peer (Node.js and tests/peers/node_modules)",
        _node_peer,
        f"install Node.js 20 or later, then {_MAKE_PEERS}",
    ),
    "mcp-1.30-peer": Requirement(
        "the mcp 1.30 peer venv (.venv-peers/mcp-1.30)", _peer_python("1.30"), _MAKE_PEERS
    ),
    "mcp-1.9-peer": Requirement(
        "the mcp 1.9 peer venv (.venv-peers/mcp-1.9)", _peer_python("1.9"), _MAKE_PEERS
    ),
}


def require(name: str) -> str:
    """The path of registered part ``name`` (see ``REQUIREMENTS``), or :func:`missing`."""
    part = REQUIREMENTS[name]
    found = part.find()
    if found is None:
        missing(part.what, part.how)
    return found


def status() -> str:
    """One line for pytest's header: which parts this machine has."""
    marks = [f"{name} {'ok' if part.find() else 'MISSING'}" for name, part in REQUIREMENTS.items()]
    return f"requirements (CI={'true' if in_ci() else 'false'}): " + ", ".join(marks)
