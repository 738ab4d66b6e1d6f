"""``python -m lab`` (``make lab``, ``sessionwatch lab``): reproduce the deployment session loss.

Exit status 0 when SessionWatch reached the scenario's expected verdict, 1 when it did not, 2
when the lab could not run (for example HAProxy missing; the message says how to install it).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from lab.haproxy import HAProxyError
from lab.run import LabStartError, RunOptions, run
from lab.scenarios import SCENARIOS


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m lab", description=__doc__)
    p.add_argument("--scenario", choices=sorted(SCENARIOS), default="rolling-deploy")
    p.add_argument("--sessions", type=int, default=None, help="concurrent client sessions")
    p.add_argument("--tasks", type=int, default=2, help="tasks in the service")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between probe cycles")
    p.add_argument(
        "--deregistration-delay", type=float, default=3.0, help="seconds (ALB default: 300)"
    )
    p.add_argument("--stop-timeout", type=float, default=3.0, help="seconds (ECS default: 30)")
    p.add_argument(
        "--time-scale",
        type=float,
        default=20.0,
        help="alarm periods and the reporter's 1-minute schedule run this many times faster",
    )
    p.add_argument("--warmup", type=float, default=4.0, help="seconds of probing before acting")
    p.add_argument("--after", type=float, default=4.0, help="seconds of probing after acting")
    p.add_argument("--report-dir", type=Path, default=Path("lab-report"))
    p.add_argument("--template", type=Path, default=None, help="reuse a synthesized template")
    p.add_argument("--keep-workdir", action="store_true", help="keep HAProxy/moto logs and cdk.out")
    p.add_argument("--verbose-probes", type=int, default=2, help="probes printed call by call")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    options = RunOptions(
        scenario=SCENARIOS[args.scenario],
        sessions=args.sessions,
        tasks=args.tasks,
        interval=args.interval,
        deregistration_delay=args.deregistration_delay,
        stop_timeout=args.stop_timeout,
        time_scale=args.time_scale,
        report_dir=args.report_dir,
        template=args.template,
        verbose_probes=args.verbose_probes,
        warmup=args.warmup,
        after=args.after,
        keep_workdir=args.keep_workdir,
    )
    # SIGTERM (CI timeouts, `kill`) takes the same path as Ctrl-C: asyncio cancels the run and
    # its finally blocks stop every process it started (they run in their own sessions).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        return asyncio.run(run(options))
    except (HAProxyError, LabStartError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lab: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
