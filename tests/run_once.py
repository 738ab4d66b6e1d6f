"""Build an expensive file artifact once per test run, shared by every pytest-xdist worker.

Session fixtures run once per worker; a synthesized template or a built wheel is the same for
all of them, so the first worker to ask builds it under a lock in the run's shared temporary
directory and the others reuse it (the pattern pytest-xdist documents for session fixtures)::

    @pytest.fixture(scope="session")
    def template(tmp_path_factory):
        return run_once(tmp_path_factory, "addon-template", lambda d: synth_addon(d, ...))
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

import pytest


def shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary directory all workers of this run share (the run's own when not parallel)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def run_once(
    tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Path]
) -> Path:
    """``build(<a fresh directory>)``'s result, built by the first worker that asks for ``name``.

    ``build`` returns a path inside the directory it is given. A build that raised is tried
    again by the next worker (nothing is recorded), so each worker sees the real error.
    """
    root = shared_dir(tmp_path_factory)
    done = root / f"{name}.built"
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            workdir = root / name
            workdir.mkdir(exist_ok=True)
            done.write_text(str(build(workdir)))
        return Path(done.read_text())
