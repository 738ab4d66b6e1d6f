"""``sessionwatch sidecar`` and ``python -m sessionwatch.sidecar``: one parser, clear errors."""

from __future__ import annotations

import pytest

from sessionwatch.ops.cli import main as cli_main
from sessionwatch.sidecar.__main__ import build_parser


def test_the_cli_hands_every_flag_to_the_sidecar(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main(["sidecar", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: sessionwatch sidecar")
    for flag in (
        "--upstream",
        "--drain-seconds",
        "--session-idle-timeout",
        "--upstream-health-path",
    ):
        assert flag in out


def test_a_bad_upstream_is_refused_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exited:
        cli_main(["sidecar", "--upstream", "ftp://example.com"])
    assert exited.value.code == 2
    assert "upstream must be an http(s) URL" in capsys.readouterr().err


def test_defaults_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SESSIONWATCH_UPSTREAM", "http://127.0.0.1:3000")
    monkeypatch.setenv("SESSIONWATCH_SESSION_IDLE_TIMEOUT", "600")
    args = build_parser().parse_args([])
    assert args.upstream == "http://127.0.0.1:3000" and args.port == 8080
    assert args.session_idle_timeout == 600 and args.keep_alive_timeout > 60
    assert args.upstream_health_path is None and args.health_path == "/health"
