"""The benchmarks drive the real handlers through ``world.harness.detector_harness``, which sets
a simulated clock, a stubbed ECS client and a ledger on ``runtime`` and always puts the real
ones back. Belt and braces for a benchmark killed half-way: put them back after each module
anyway, so a later test in the same process (the lab's in-process detectors, the peers) runs on
wall time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sessionwatch.detectors.handlers import runtime


@pytest.fixture(autouse=True, scope="module")
def restore_detector_runtime() -> Iterator[None]:
    clock, ecs, ledger = runtime.clock, runtime.ecs, runtime.ledger
    yield
    runtime.clock, runtime.ecs, runtime.ledger = clock, ecs, ledger
    runtime.reset()
