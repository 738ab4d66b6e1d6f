"""``python -m lab --scenario all``: every scenario from a cold start, one summary table.

Each scenario runs as its own ``python -m lab`` process (its own moto_server, HAProxy and
server processes), two at a time (the lab is sized for a 2-core machine), all on one
synthesized template. Each run writes ``<report root>/<scenario>/summary.json``
(``lab.report.summary``); the table is made from those. The end-to-end tests use the same
runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lab.forkserver import ForkedProcess, ForkServer
from lab.task_process import REPO_ROOT


@dataclass
class Finished:
    name: str
    returncode: int
    output: str
    report_dir: Path

    @property
    def summary(self) -> dict[str, Any]:
        path = self.report_dir / "summary.json"
        if not path.exists():
            return {"scenario": self.name, "passed": False, "problems": ["no summary written"]}
        loaded: dict[str, Any] = json.loads(path.read_text())
        return loaded


# What a lab run imports, its pictures' matplotlib included: about 2 CPU-s that each run forked
# from ``lab_forkserver`` does not spend again.
LAB_PRELOAD = ("lab.__main__", "lab.report", "matplotlib.pyplot")


def lab_forkserver() -> ForkServer:
    """A fork server for ``run_one``: each run is still a process of its own."""
    return ForkServer(preload=LAB_PRELOAD)


def run_one(
    name: str,
    template: Path,
    report_dir: Path,
    extra: Sequence[str],
    timeout: float,
    forks: ForkServer | None = None,
) -> Finished:
    """One scenario as a ``python -m lab`` process (forked from ``forks`` when given); a run
    past ``timeout`` is stopped with SIGTERM."""
    argv = [
        "--scenario", name, "--template", str(template), "--report-dir", str(report_dir), *extra,
    ]  # fmt: skip
    process: subprocess.Popen[str] | ForkedProcess
    if forks is not None:
        process = forks.spawn("lab", argv, os.environ, REPO_ROOT, stderr_to_stdout=True)
    else:
        process = subprocess.Popen(
            [sys.executable, "-m", "lab", *argv],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()  # the lab stops what it started, then exits
        output, _ = process.communicate(timeout=60)
        return Finished(name, -1, "timed out:\n" + output, report_dir)
    return Finished(name, process.wait(), output, report_dir)


def run_all(
    names: Sequence[str],
    template: Path,
    report_root: Path,
    extra: Sequence[str] = (),
    workers: int = 2,
    timeout: float = 300.0,
) -> dict[str, Finished]:
    with lab_forkserver() as forks, ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            # A scenario with variants runs them too, one after the other: one timeout each.
            n: pool.submit(
                run_one, n, template, report_root / n, extra, timeout * variant_runs(n), forks
            )
            for n in names
        }
        return {n: f.result() for n, f in futures.items()}


def variant_runs(name: str) -> int:
    from lab.scenarios import SCENARIOS

    scenario = SCENARIOS.get(name)
    return 1 + (len(scenario.side_by_side) if scenario else 0)


def table(finished: dict[str, Finished]) -> str:
    """One line per scenario: verdict, losses by cause, alarms, reports, seconds."""
    rows = [("scenario", "result", "lost", "causes", "alarms fired", "reports", "rollback", "s")]
    for name, run in finished.items():
        s = run.summary
        causes = ", ".join(f"{c}={n}" for c, n in (s.get("causes") or {}).items()) or "-"
        result = "PASS" if s.get("passed") and run.returncode == 0 else f"FAIL({run.returncode})"
        rows.append(
            (
                name,
                result,
                str(s.get("lost", "-")),
                causes,
                ", ".join(a for a in s.get("alarms_fired") or [] if ":" not in a) or "-",
                str(s.get("reports", "-")),
                str(s.get("rolled_back_by") or "-"),
                str(s.get("seconds", "-")),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "-+-".join("-" * w for w in widths))
    problems = [
        f"  {name}: {p}" for name, run in finished.items() for p in run.summary.get("problems", [])
    ]
    return "\n".join(lines + (["", "Problems:", *problems] if problems else []))
