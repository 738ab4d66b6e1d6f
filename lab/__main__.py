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
    p.add_argument(
        "--scenario",
        choices=[*sorted(SCENARIOS), "all"],
        default="rolling-deploy",
        help="'all': every scenario (two at a time, one template) and a summary table",
    )
    p.add_argument("--sessions", type=int, default=None, help="concurrent client sessions")
    p.add_argument("--tasks", type=int, default=2, help="tasks in the service")
    p.add_argument(
        "--min-healthy-percent", type=int, default=None, help="rolling: default the scenario's"
    )
    p.add_argument("--max-percent", type=int, default=None, help="rolling: default the scenario's")
    p.add_argument(
        "--sweep",
        action="store_true",
        help="measure when sessions die against delay, stop timeout, tasks, minimumHealthyPercent",
    )
    p.add_argument("--interval", type=float, default=1.0, help="seconds between probe cycles")
    p.add_argument(
        "--deregistration-delay", type=float, default=3.0, help="seconds (ALB default: 300)"
    )
    p.add_argument("--stop-timeout", type=float, default=3.0, help="seconds (ECS default: 30)")
    p.add_argument(
        "--time-scale",
        type=float,
        default=None,
        help="alarm periods and the reporter's 1-minute schedule run this many times faster "
        "(default 20; beyond 50 sessions 20*50/sessions, at least 5)",
    )
    p.add_argument(
        "--stickiness-duration",
        type=float,
        default=None,
        help="target group lb_cookie duration, seconds, scaled by --time-scale "
        "(default: the scenario's; the demo's 86400)",
    )
    p.add_argument("--warmup", type=float, default=4.0, help="seconds of probing before acting")
    p.add_argument("--after", type=float, default=4.0, help="seconds of probing after acting")
    p.add_argument("--report-dir", type=Path, default=Path("lab-report"))
    p.add_argument("--template", type=Path, default=None, help="reuse a synthesized template")
    p.add_argument("--keep-workdir", action="store_true", help="keep HAProxy/moto logs and cdk.out")
    p.add_argument("--verbose-probes", type=int, default=2, help="probes printed call by call")
    p.add_argument(
        "--no-dashboard-preview",
        dest="dashboard_preview",
        action="store_false",
        help="skip dashboard.png (about 1.5 CPU-s a run; the timeline is always drawn)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.sweep:
        from lab.sweep import main as sweep

        passed_on = [a for a in (argv if argv is not None else sys.argv[1:]) if a != "--sweep"]
        passed_on = _without(passed_on, ("--report-dir", "--template", "--scenario"))
        return sweep(args.template, args.report_dir, passed_on)
    if args.scenario == "all":
        return run_every_scenario(args, list(argv if argv is not None else sys.argv[1:]))
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
        stickiness_duration=args.stickiness_duration,
        min_healthy_percent=args.min_healthy_percent,
        max_percent=args.max_percent,
        dashboard_preview=args.dashboard_preview,
    )
    # SIGTERM (CI timeouts, `kill`) takes the same path as Ctrl-C: asyncio cancels the run and
    # its finally blocks stop every process it started (they run in their own sessions).
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        code = asyncio.run(run(options))
        if options.scenario.side_by_side:
            code = max(code, side_by_side(options))
        return code
    except (HAProxyError, LabStartError) as exc:
        print(f"lab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lab: interrupted; everything it started has been stopped", file=sys.stderr)
        return 130


def side_by_side(options: RunOptions) -> int:
    """Run the scenario's variants one after the other, each in ``<report dir>/<variant>``,
    then print them beside the scenario's own run and check what the guard saved."""
    import dataclasses
    import json

    from lab.scenarios import VARIANTS, compare

    code = 0
    dirs = {options.scenario.name: options.report_dir}
    for name in options.scenario.side_by_side:
        variant = dataclasses.replace(
            options, scenario=VARIANTS[name], report_dir=options.report_dir / name
        )
        code = max(code, asyncio.run(run(variant)))
        dirs[name] = variant.report_dir
    results = {}
    for name, directory in dirs.items():
        path = directory / "summary.json"
        results[name] = json.loads(path.read_text()) if path.exists() else {}
    problems = compare(results)
    rows = [
        f"{'run':<28} | lost | rolled back by | first loss -> stop / alert | report says",
        "-" * 100,
    ]
    for name, r in results.items():
        g = r.get("guards") or {}
        stop, alert = g.get("first_loss_stop_s"), g.get("first_loss_alert_s")
        timing = " / ".join("-" if v is None else f"{v:.1f} s" for v in (stop, alert))
        said = "; ".join(g.get("report_lines") or []) or "-"
        rows.append(
            f"{name:<28} | {r.get('lost', '?'):>4} | {r.get('rolled_back_by') or '-':<14} | "
            f"{timing:<26} | {said}"
        )
    print("\n== side by side ==\n" + "\n".join(rows), flush=True)
    (options.report_dir / "side-by-side.json").write_text(
        json.dumps({"runs": results, "problems": problems}, indent=1, sort_keys=True)
    )
    for problem in problems:
        print(f"side by side: {problem}", flush=True)
    return max(code, 1 if problems else 0)


def run_every_scenario(args: argparse.Namespace, argv: list[str]) -> int:
    """``--scenario all``: each scenario as its own run, then one table; exit 0 when all pass."""
    import tempfile

    from lab.suite import run_all, table
    from lab.template import LabSettings, synth_addon

    passed_on = _without(argv, ("--scenario", "--report-dir", "--template"))
    with tempfile.TemporaryDirectory(prefix="sessionwatch-lab-all-") as tmp:
        template = args.template or synth_addon(Path(tmp) / "cdk.out", LabSettings())
        finished = run_all(sorted(SCENARIOS), template, args.report_dir, passed_on)
    print(table(finished))
    codes = {run.returncode for run in finished.values()}
    return 0 if codes == {0} else (2 if 2 in codes else 1)


def _without(argv: list[str], options: tuple[str, ...]) -> list[str]:
    """``argv`` minus the given options and their values (both ``--x v`` and ``--x=v``)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in options:
            skip = True
        elif not any(arg.startswith(o + "=") for o in options):
            kept.append(arg)
    return kept


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
