"""The benchmarks drive the real handlers with a simulated clock and a stubbed ECS client, set
on ``runtime`` (``runtime.clock``, ``runtime.ecs``) by ``benchmarks.accuracy.RuntimeOverride``,
which the harnesses restore when they close. A benchmark that failed half-way may not have
closed: put the real ones back after each module anyway, so a later test in the same process
(the lab's in-process detectors, the peers) runs on wall time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sessionwatch.detectors.handlers import runtime


@pytest.fixture(autouse=True, scope="module")
def restore_detector_runtime() -> Iterator[None]:
    clock, ecs = runtime.clock, runtime.ecs
    yield
    runtime.clock, runtime.ecs = clock, ecs
    runtime.reset()
