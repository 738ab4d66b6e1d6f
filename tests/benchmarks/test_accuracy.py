"""The accuracy benchmark on a small sample, through the real handlers over moto.

What it asserts is what the detectors are known to pass when this test last changed (the full
confusion matrices are in the benchmark's output, `python -m benchmarks.accuracy`): the harness
runs cleanly, every lost session gets a verdict, and the causes listed in KNOWN_RIGHT are right
in every timeline of the sample. STRICT (or ACCURACY_STRICT=1) asserts the goal of the issue:
every cause right and no report count error.
"""

from __future__ import annotations

import io
import os

import pytest

from benchmarks.accuracy import print_results, run

SAMPLE = 6
LOAD = 0.3
SEED = 5
STRICT = os.environ.get("ACCURACY_STRICT") == "1"
# Causes decided right wherever they are the truth, by the detectors on main today.
KNOWN_RIGHT = {"task_failure", "infrastructure", "expired", "unknown"}
# Strategies whose every cause (true x decided) is right today.
KNOWN_RIGHT_STRATEGIES = {"ROLLING"}


@pytest.fixture(scope="module")
def results():
    return run(SAMPLE, SEED, load=LOAD)


def test_harness_runs_every_timeline(results) -> None:
    assert results.timelines == SAMPLE
    assert results.handler_errors == 0
    assert results.sessions() > 50 and results.reports_checked >= SAMPLE


def test_every_lost_session_gets_a_verdict(results) -> None:
    undecided = {
        (s, t, d): n
        for s, m in results.matrices.items()
        for (t, d), n in m.items()
        if d in ("none", "pending")
    }
    assert not undecided


def test_known_right_causes(results) -> None:
    out = io.StringIO()
    print_results(results, out)
    wrong = {
        (s, t, d): n
        for s, m in results.matrices.items()
        for (t, d), n in m.items()
        if t != d and (STRICT or t in KNOWN_RIGHT or s in KNOWN_RIGHT_STRATEGIES)
    }
    assert not wrong, out.getvalue()
    if STRICT:
        assert results.report_errors == 0, out.getvalue()
