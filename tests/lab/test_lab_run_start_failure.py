"""A lab that cannot start: exit status 2 (not 1, a verdict failure) and nothing left behind."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from lab.run import LabStartError, RunOptions, run
from lab.scenarios import SCENARIOS
from tests.conftest import REPO_ROOT


def test_a_run_that_cannot_start_raises_and_removes_its_workdir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp puts the workdir
    options = RunOptions(
        scenario=SCENARIOS["rolling-deploy"],
        template=tmp_path / "no-such-template.json",
        report_dir=tmp_path / "report",
        out=io.StringIO(),
    )
    with pytest.raises(LabStartError, match=r"no-such-template\.json") as raised:
        asyncio.run(run(options))
    assert isinstance(raised.value.__cause__, FileNotFoundError)
    assert list(tmp_path.glob("sessionwatch-lab-*")) == []
    assert not (tmp_path / "report").exists()


def test_the_command_exits_2_when_the_lab_cannot_start(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "lab", "--template", str(tmp_path / "missing.json")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "lab: could not start" in done.stderr and "Traceback" not in done.stderr
