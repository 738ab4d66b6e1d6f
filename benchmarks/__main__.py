"""Run every benchmark in turn: ``python -m benchmarks [name ...]``.

Each benchmark module exposes ``main() -> None`` and prints its own table. The machine is noisy, so
each one compares variants inside the same run and prints ratios, not just absolute numbers.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("server_overhead", "sidecar_overhead", "detector_core", "accuracy", "ledger_cost")


def main(argv: list[str]) -> int:
    names = argv or list(BENCHMARKS)
    for name in names:
        if name not in BENCHMARKS:
            print(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}", file=sys.stderr)
            return 2
    for name in names:
        print(f"\n=== benchmark: {name} ===", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
