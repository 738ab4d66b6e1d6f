"""The `sessionwatch` entry point: subcommand dispatch, usage errors, the lazy `lab` delegation."""

from __future__ import annotations

import subprocess
import sys
import types

import pytest

from ops.cli import main


def test_lab_delegates_its_argv_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def lab_main(argv: list[str]) -> int:
        seen.append(argv)
        return 3

    # The lab's entry point belongs to another part; only the delegation is under test here.
    monkeypatch.setitem(sys.modules, "lab.__main__", types.SimpleNamespace(main=lab_main))
    assert main(["lab", "--scenario", "rolling", "--help"]) == 3
    assert seen == [["--scenario", "rolling", "--help"]]


def test_lab_missing_is_a_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "lab.__main__", None)  # import raises ModuleNotFoundError
    assert main(["lab"]) == 2
    assert "lab is not installed" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["nope"],
        ["audit", "--cluster", "c"],
        ["probe"],
        ["audit", "--cluster", "c", "--service", "s", "--fail-on", "sometimes"],
    ],
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2


def test_audit_does_not_import_the_mcp_sdk_or_the_lab() -> None:
    # `sessionwatch audit` runs in deploy pipelines: it must not drag in the server or lab stack.
    code = (
        "import sys, ops.cli, ops.audit; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'mcp', 'lab', 'httpx'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ops", "audit", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "--fail-on" in out.stdout
