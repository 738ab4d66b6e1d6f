"""The accuracy benchmark on a CI sample: 100 generated timelines through the real handlers on
the in-memory ledger, and the first few again on the DynamoDB ledger over moto, run for run.

The truth is the story's (which task held the session and why the request went elsewhere), so
the sample also holds the hard cases: 404s seconds after a drain, cookie-less clients during
deployments, idle-expired sessions returning elsewhere, sessions on the new revision drawn
back during a partial shift, timelines whose ECS events all arrive after the grace period.
Where a server's stamp and ECS's fall within the clocks' error of each other in the order
opposite to what happened (``KNOWN_GAPS``, README), no detector can tell; every other verdict
and report must be right. The full run is
`python -m benchmarks.accuracy --timelines 1000 --seed 1 --jobs 2`.
"""

from __future__ import annotations

import io
import time

import pytest

from benchmarks.accuracy import HARD_CASES, KNOWN_GAPS, agreement, print_results, run
from sessionwatch.detectors.handlers import runtime

# The real ones, as imported (before any benchmark ran in this process).
runtime_clock, runtime_ecs, runtime_ledger = runtime.clock, runtime.ecs, runtime.ledger

SAMPLE = 100
MOTO_SAMPLE = 3
LOAD = 0.3
SEED = 6


@pytest.fixture(scope="module")
def results():
    return run(SAMPLE, SEED, load=LOAD, ledger="memory")


@pytest.fixture(scope="module")
def on_moto():
    return run(MOTO_SAMPLE, SEED, load=LOAD, ledger="moto")


def test_the_sample_generates_every_hard_case(results) -> None:
    # The known gaps (stamps within the clocks' error of a drain) are rarer than one in a
    # hundred light timelines: the full run counts them.
    for case in HARD_CASES:
        if case not in KNOWN_GAPS:
            assert results.hard[(case, True)] + results.hard[(case, False)] > 0, case


def test_harness_runs_every_timeline(results) -> None:
    assert results.timelines == SAMPLE
    assert results.handler_errors == 0
    assert results.sessions() > 1000 and results.reports_checked >= SAMPLE


def test_every_cause_and_report_outside_the_known_gaps_is_right(results) -> None:
    out = io.StringIO()
    print_results(results, out)
    causes = [f for f in results.failures if f.kind == "cause"]
    assert [f for f in causes if not set(f.cases) & set(KNOWN_GAPS)] == [], out.getvalue()
    # A wrong verdict moves its session into or out of a deployment's count: report errors only
    # where a timeline has one.
    gap_seeds = {f.seed for f in causes}
    reports = [f for f in results.failures if f.kind in ("report", "outcome")]
    assert [f for f in reports if f.seed not in gap_seeds] == [], out.getvalue()
    assert results.outcome_errors == 0, out.getvalue()


def test_a_404_before_its_drain_is_wrong_only_within_the_clocks_error(results) -> None:
    """A drain's 404 cannot precede ECS's stop time but by the clocks' error (the allowance is
    asymmetric, ``BEFORE_DRAIN_S``): a cookie-less 404 seconds before its task's drain is the
    client's own hop, and only those whose stamps fall within the clocks' error (the known
    gap: no stamp can order them) may be decided otherwise."""
    before, gap = "cookie-less 404 within 6 s before its task's drain", KNOWN_GAPS[0]
    assert results.hard[(before, True)] > 0
    assert results.hard[(before, False)] == results.hard[(gap, False)]
    assert results.wrong_indistinguishable <= results.wrong_causes()


def test_the_moto_ledger_decides_and_reports_the_same_run_for_run(results, on_moto) -> None:
    both, differ = agreement(results, on_moto)
    assert both == MOTO_SAMPLE and differ == []


def test_the_harness_leaves_the_detectors_on_wall_time(results, on_moto) -> None:
    """After a run the handlers' runtime has its real clock, ECS client and ledger back, so
    later code in the same process (the lab's in-process detectors, the peer tests) is not on
    the simulated clock."""
    assert runtime.clock is runtime_clock and runtime.ecs is runtime_ecs
    assert runtime.ledger is runtime_ledger
    assert abs(runtime.clock() - time.time()) < 5


def test_the_confusion_matrices_are_drawn_as_one_png(results, tmp_path) -> None:
    from benchmarks.accuracy_chart import draw_matrices, headline

    path = tmp_path / "accuracy.png"
    draw_matrices(results, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    assert f"{results.timelines} timelines" in headline(results)


# Timelines of ``--seed 1`` whose cookie-less clients hopped to another task less than 1 s
# before their task's drain (0.07 to 0.84 s): with perfect clocks and the detectors told so.
HOPS_JUST_BEFORE_A_DRAIN = (100025, 100090, 100383)


def test_with_perfect_clocks_a_hop_just_before_its_drain_is_stickiness(monkeypatch) -> None:
    """The benchmark tells the detectors the clocks' bound it simulates (``CLOCK_ERROR_SECONDS``,
    through the handlers' config): at 0 s every story of these timelines is decided right,
    hops a fraction of a second before the drain included; at 1 s (the stress run) those hops are
    the known gap."""
    from benchmarks import timelines
    from benchmarks.accuracy import Driver, Results, check

    def wrong(bound: float) -> list[str]:
        monkeypatch.setattr(timelines, "CLOCK_ERROR_S", bound)
        res, driver = Results(), Driver("memory")
        for seed in HOPS_JUST_BEFORE_A_DRAIN:
            tl = timelines.generate(seed)
            assert any(x.shape.endswith("-6s-before-drain") for x in tl.losses)
            decided, reported, _ = driver.run(tl)
            check(tl, decided, reported, res, driver.ended)
        return [f.detail for f in res.failures]

    assert wrong(0.0) == []
    assert len([d for d in wrong(1.0) if "before-drain" in d]) == len(HOPS_JUST_BEFORE_A_DRAIN)
