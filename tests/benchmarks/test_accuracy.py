"""The accuracy benchmark on a small sample, through the real handlers over moto.

Six generated timelines (seed 6, a light client load) that together hold ROLLING, back-to-back
rollouts, a circuit-breaker rollback, BLUE_GREEN with and without lifecycle hooks, CANARY with
hooks, a failed health check, a Spot interruption and a scale-in 15 s after COMPLETED,
delivered late, reordered and duplicated. The detectors on main passed it whole when this test
was written, so it asserts the goal: every lost session's cause right, every deployment's report
count right and its outcome as the truth says. The full run is
`python -m benchmarks.accuracy --timelines 1000 --seed 1`.
"""

from __future__ import annotations

import io
import time

import pytest

from benchmarks.accuracy import print_results, run
from benchmarks.timelines import generate
from sessionwatch.detectors.handlers import runtime

# The real ones, as imported (before any benchmark ran in this process).
runtime_clock, runtime_ecs = runtime.clock, runtime.ecs

SAMPLE = 6
LOAD = 0.3
SEED = 6


@pytest.fixture(scope="module")
def results():
    return run(SAMPLE, SEED, load=LOAD)


def test_the_sample_covers_the_hard_shapes() -> None:
    shapes = {
        s.split("(")[0] for k in range(SAMPLE) for s in generate(SEED * 100_003 + k, LOAD).shapes
    }
    assert {"rolling", "back-to-back", "rollback", "blue_green", "blue_green+hooks"} <= shapes
    assert {"canary+hooks", "spot", "health", "scale-in-15s-after"} <= shapes


def test_harness_runs_every_timeline(results) -> None:
    assert results.timelines == SAMPLE
    assert results.handler_errors == 0
    assert results.sessions() > 50 and results.reports_checked >= SAMPLE


def test_every_cause_and_report_is_right(results) -> None:
    out = io.StringIO()
    print_results(results, out)
    assert results.wrong_causes() == 0, out.getvalue()
    assert results.report_errors == 0, out.getvalue()
    assert results.outcome_errors == 0, out.getvalue()


def test_the_harness_leaves_the_detectors_on_wall_time(results) -> None:
    """After a run the handlers' runtime has its real clock and ECS client back, so later code
    in the same process (the lab's in-process detectors, the peer tests) is not on the
    simulated clock."""
    assert runtime.clock is runtime_clock and runtime.ecs is runtime_ecs
    assert abs(runtime.clock() - time.time()) < 5


def test_the_confusion_matrices_are_drawn_as_one_png(results, tmp_path) -> None:
    from benchmarks.accuracy_chart import draw_matrices, headline

    path = tmp_path / "accuracy.png"
    draw_matrices(results, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert f"{results.timelines} timelines" in headline(results)
