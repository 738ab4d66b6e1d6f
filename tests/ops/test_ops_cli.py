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


@pytest.mark.parametrize(
    ("argv", "kind", "says"),
    [
        (["--profile", "sw-no-such-profile"], "no_credentials", "sw-no-such-profile"),
        (["--cluster", ""], "usage", "--cluster is empty"),
        (["--service", " "], "usage", "--service is empty"),
    ],
)
def test_audit_json_errors_stay_json(
    argv: list[str],
    kind: str,
    says: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: object,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`--json` promises one JSON object on stdout, on every error path too."""
    import json

    monkeypatch.setenv("AWS_CONFIG_FILE", f"{tmp_path}/config")  # no profiles at all
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", f"{tmp_path}/credentials")
    args = {"--cluster": "prod", "--service": "orders-mcp", "--region": "us-east-1"}
    flags = dict(zip(argv[::2], argv[1::2], strict=True))
    merged = [item for pair in {**args, **flags}.items() for item in pair]
    assert main(["audit", *merged, "--json"]) == 2
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["error"] == kind and says in doc["message"]
    assert says in captured.err
