"""All five lab scenarios end to end, each from a cold start, as `python -m lab` subprocesses.

One real CDK synth for the module; each scenario then starts its own moto_server, HAProxy,
server processes and detectors, and must exit 0 (SessionWatch reached the expected verdict).
Two scenarios run side by side to keep the suite short on a 2-core machine.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from lab.scenarios import SCENARIOS
from sessionwatch.server.fingerprint import is_fingerprint
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


@dataclass
class Finished:
    returncode: int
    output: str
    report_dir: Path


def _run(name: str, template: Path, report_dir: Path) -> Finished:
    command = [
        sys.executable, "-m", "lab",
        "--scenario", name,
        "--template", str(template),
        "--report-dir", str(report_dir),
        "--warmup", "2",
        "--after", "2",
        "--time-scale", "30",
        "--verbose-probes", "0",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        output, _ = process.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        process.terminate()  # SIGTERM: the lab stops what it started, then exits
        output, _ = process.communicate(timeout=60)
        return Finished(-1, "timed out:\n" + output, report_dir)
    return Finished(process.returncode, output, report_dir)


@pytest.fixture(scope="module")
def finished(
    tmp_path_factory: pytest.TempPathFactory, addon_template: Path
) -> Iterator[dict[str, Finished]]:
    base = tmp_path_factory.mktemp("lab")
    template = addon_template
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(_run, name, template, base / name) for name in sorted(SCENARIOS)
        }
        yield {name: future.result() for name, future in futures.items()}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_reaches_its_verdict(finished: dict[str, Finished], name: str) -> None:
    run = finished[name]
    assert run.returncode == 0, run.output[-4000:]
    assert f"== {name}: PASS ==" in run.output
    report = run.report_dir / "report.md"
    assert report.exists() and (run.report_dir / "timeline.png").stat().st_size > 10_000
    assert "| What the infrastructure shows | What SessionWatch shows |" in report.read_text()
    events = [json.loads(line) for line in (run.report_dir / "events.jsonl").open()]
    calls = [e for e in events if e["kind"] == "call"]
    # every session the probes report is a fingerprint (the raw id never leaves the client)
    assert all(e["session"] is None or is_fingerprint(e["session"]) for e in calls)
    scenario = SCENARIOS[name]
    lost = {e["session"] for e in calls if e["http_status"] == 404}
    if scenario.expect.loss_cause is None:
        assert not lost
    else:
        assert lost
        assert f"by cause: {scenario.expect.loss_cause.value}={len(lost)}" in run.output
    if scenario.deploy:
        names = [
            e["detail"].get("eventName")
            for e in events
            if e["kind"] == "ecs_event" and e["detail_type"] == "ECS Deployment State Change"
        ]
        assert names == ["SERVICE_DEPLOYMENT_IN_PROGRESS", "SERVICE_DEPLOYMENT_COMPLETED"]
