"""The `sessionwatch` entry point: dispatch, usage errors, what each subcommand imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

from sessionwatch.ops.cli import main


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["lab"],  # the lab is a repository tool (python -m lab), not a subcommand
        ["audit", "--cluster", "c"],
        ["probe"],
        ["audit", "--cluster", "c", "--service", "s", "--fail-on", "sometimes"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2


def test_audit_does_not_import_the_mcp_sdk_uvicorn_or_the_lab() -> None:
    # `sessionwatch audit` runs in deploy pipelines: it must not drag in the server or lab stack.
    code = (
        "import sys, sessionwatch.ops.cli, sessionwatch.ops.audit; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'mcp', 'lab', 'httpx', 'uvicorn'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "sessionwatch.ops", "audit", "--help"],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0 and "--fail-on" in out.stdout
