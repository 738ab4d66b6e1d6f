"""The ``sessionwatch`` command: ``probe``, ``audit``, ``redrive`` (the lab is ``python -m lab``).

Argument parsing lives here; each subcommand's work lives in its own module, imported only when
that subcommand runs, so ``sessionwatch audit`` does not need the MCP SDK or uvicorn loaded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_USAGE = 2
WAIT_SECONDS = 5  # = sessionwatch.ops.redrive.WAIT_SECONDS (not imported: boto3-free parsing)
_FAIL_ON = ("high", "medium", "low", "never")


def _positive(value: str) -> float:
    number = float(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {value}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sessionwatch",
        description="Operator tools for stateful MCP servers on ECS behind a sticky ALB.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="{probe,audit,redrive,sidecar}"
    )

    probe = sub.add_parser(
        "probe",
        help="hold one MCP session through the load balancer and report every call",
        description="Open a handshake-era MCP session, write then read every interval, and name "
        "session loss (in any MCP SDK's form), stickiness breaks and failed calls; after a loss it "
        "re-initializes and keeps counting (with --duration). Exit 0: no loss and no failed call, "
        "1: any session lost, 2: no session could be opened or calls failed for another reason.",
    )
    probe.add_argument("url", help="MCP endpoint, e.g. https://mcp.example.com/mcp")
    probe.add_argument(
        "--interval", type=_positive, default=5.0, help="seconds between cycles (default: 5)"
    )
    probe.add_argument(
        "--duration",
        type=_positive,
        default=None,
        help="seconds to run, re-initializing after each loss (default: until the first loss)",
    )
    probe.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per call (JSON lines) (default: one human line per call)",
    )
    cookies = probe.add_mutually_exclusive_group()
    cookies.add_argument(
        "--stale-cookie",
        action="store_true",
        help="keep sending the first sticky cookie (a client that never stores the rotated one) "
        "(default: return every cookie, like a browser)",
    )
    cookies.add_argument(
        "--no-cookies",
        action="store_true",
        help="never return a cookie (the TypeScript SDK's fetch, many agents) (default: off)",
    )
    probe.add_argument(
        "--timeout",
        type=_positive,
        default=10.0,
        help="per-request timeout in seconds (default: 10)",
    )
    probe.add_argument(
        "--no-close",
        action="store_true",
        help="never DELETE the probe's sessions (default: DELETE each one it opened; mcp "
        "(Python) 1.9 and older servers stop serving after any client's DELETE)",
    )

    sidecar = sub.add_parser(
        "sidecar",
        add_help=False,  # --help is the sidecar's own
        help="run the SessionWatch sidecar in front of an MCP server in any language "
        '(pip install "sessionwatch[sidecar]"); sessionwatch sidecar --help lists its flags',
    )
    sidecar.add_argument("sidecar_args", nargs=argparse.REMAINDER)

    audit = sub.add_parser(
        "audit",
        help="audit an ECS service's session survival window and risks",
        description="Read the ECS service, task definition, target groups and alarms (Describe* "
        "only) and report the session survival window of a rolling deployment and its risks. "
        "Exit 0: nothing at or above --fail-on, 1: risk found, 2: could not audit.",
    )
    audit.add_argument("--cluster", required=True, help="ECS cluster name or ARN")
    audit.add_argument("--service", required=True, help="ECS service name")
    audit.add_argument(
        "--region", default=None, help="AWS region (default: $AWS_REGION or the profile's)"
    )
    audit.add_argument(
        "--profile", default=None, help="AWS named profile (default: the default credentials)"
    )
    audit.add_argument(
        "--json",
        action="store_true",
        help="machine-readable output, errors included (default: text)",
    )
    audit.add_argument(
        "--server-service-name",
        default="mcp-server",
        help="the MCP server's service.name (SESSIONWATCH_SERVICE), whose metrics say which "
        "clients still hold sessions; 'none' skips that section (default: mcp-server)",
    )
    audit.add_argument(
        "--fail-on",
        choices=_FAIL_ON,
        default="high",
        help="lowest severity that makes the exit status 1 (default: high)",
    )

    redrive = sub.add_parser(
        "redrive",
        help="re-feed events queued by a detector failure (DLQ, on-failure destination)",
        description="Receive every message of the queue (long polling, until a poll finds it "
        "empty), hand its event (the body of an EventBridge DLQ message, or the requestPayload of "
        "a Lambda on-failure record) to the detectors again, and delete it once that succeeded; "
        "a message that fails again stays queued and the run says why. Safe to repeat: nothing "
        "counts twice. Exit 0: every message redriven (or, with --dry-run, shown), 1: some failed "
        "again, were unreadable, or were in flight (hidden by an earlier receive): left queued, "
        "2: could not redrive (usage, a missing queue, "
        "permissions, credentials, the detector's settings): one line says what to fix.",
    )
    redrive.add_argument(
        "--queue-url", required=True, help="the queue (a stack output, FailedInvocations*)"
    )
    target = redrive.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--function",
        choices=("ecs_events", "session_events"),
        help="run that detector handler in this process (its settings, LEDGER_TABLE_NAME and "
        "CLUSTER_NAME at least, from the environment) (default: none; this or --invoke)",
    )
    target.add_argument(
        "--invoke",
        metavar="FUNCTION_NAME",
        help="invoke the deployed function (default: none; this or --function)",
    )
    redrive.add_argument(
        "--max", type=int, default=None, help="at most this many messages (default: all)"
    )
    redrive.add_argument(
        "--wait",
        type=_wait_seconds,
        default=WAIT_SECONDS,
        help="seconds each receive long-polls (1-20); a poll that finds nothing ends the run "
        f"(default: {WAIT_SECONDS})",
    )
    redrive.add_argument(
        "--dry-run",
        action="store_true",
        help="show what would be redriven; change nothing (default: redrive)",
    )
    redrive.add_argument(
        "--region", default=None, help="AWS region (default: $AWS_REGION or the profile's)"
    )
    redrive.add_argument("--profile", default=None, help="AWS named profile (default: none)")

    return parser


def _wait_seconds(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 20:  # SQS's range for WaitTimeSeconds
        raise argparse.ArgumentTypeError(f"must be 1-20 seconds, got {value}")
    return number


def _run_redrive(args: argparse.Namespace) -> int:
    import boto3

    from sessionwatch.ops.aws_errors import explain
    from sessionwatch.ops.redrive import (
        RedriveError,
        check_local_settings,
        check_queue,
        invoke_delivery,
        local_delivery,
        redrive,
    )

    def say(line: str) -> None:
        print(line, flush=True)

    try:
        with explain("boto3.Session", f"profile {args.profile}", RedriveError):
            session = boto3.Session(region_name=args.region, profile_name=args.profile)
        sqs = session.client("sqs")
        if args.invoke:
            deliver = invoke_delivery(session.client("lambda"), args.invoke)
        else:
            check_local_settings(args.function)
            deliver = local_delivery(args.function)
        state = check_queue(sqs, args.queue_url)
        if state.in_flight:
            say(
                f"note: {state.in_flight} message(s) are in flight (received by an earlier run "
                f"or a consumer) and hidden for up to {state.visibility_timeout} s: they are not "
                "redriven by this run; rerun after that"
            )
        in_flight = state.in_flight
        result = redrive(
            sqs,
            args.queue_url,
            deliver,
            args.max,
            wait_seconds=args.wait,
            dry_run=args.dry_run,
            on_message=lambda outcome: say(outcome.line()),
        )
    except RedriveError as exc:
        print(f"sessionwatch redrive: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        say(
            f"dry run: {result.would_redrive} message(s) would be redriven, "
            f"unreadable {result.unreadable}; nothing was changed"
        )
        return 0 if result.unreadable == 0 else 1
    say(
        f"received {result.received}, redriven {result.redriven}, failed again {result.failed}, "
        f"unreadable {result.unreadable}"
    )
    return 0 if result.failed == 0 and result.unreadable == 0 and in_flight == 0 else 1


def _run_audit(args: argparse.Namespace) -> int:
    import boto3

    from sessionwatch.ops.audit import EXIT_ERROR, AuditError, audit, render_json, render_text
    from sessionwatch.ops.audit_rules import Severity
    from sessionwatch.ops.aws_errors import explain

    try:
        for flag, value in (("--cluster", args.cluster), ("--service", args.service)):
            if not value.strip():
                raise AuditError("usage", f"{flag} is empty: give the ECS {flag[2:]}'s name or ARN")
        with explain("sessionwatch audit", f"service {args.service}", AuditError):
            session = boto3.Session(region_name=args.region, profile_name=args.profile)
            server = (
                None if args.server_service_name.lower() == "none" else args.server_service_name
            )
            report = audit(session, args.cluster, args.service, server)
    except AuditError as exc:
        # Every error path keeps the promise of --json: one JSON object on stdout.
        if args.json:
            import json

            print(json.dumps({"error": exc.kind, "message": str(exc)}))
        print(f"sessionwatch audit: {exc}", file=sys.stderr)
        return EXIT_ERROR
    (render_json if args.json else render_text)(report, sys.stdout)
    fail_on = None if args.fail_on == "never" else Severity[args.fail_on.upper()]
    return report.exit_code(fail_on)


def _run_probe(args: argparse.Namespace) -> int:
    from sessionwatch.ops.probe import run_probe

    return run_probe(
        args.url,
        interval=args.interval,
        duration=args.duration,
        as_json=args.json,
        stale_cookie=args.stale_cookie,
        no_cookies=args.no_cookies,
        timeout=args.timeout,
        out=sys.stdout,
        close_sessions=not args.no_close,
    )


def _run_sidecar(argv: list[str]) -> int:
    try:
        from sessionwatch.sidecar.__main__ import main as sidecar_main
    except ImportError as exc:  # the cli extra does not bring the server stack
        print(
            f'sessionwatch sidecar: needs pip install "sessionwatch[sidecar]" ({exc})',
            file=sys.stderr,
        )
        return EXIT_USAGE
    return sidecar_main(argv, prog="sessionwatch sidecar")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sessionwatch`` console script; returns the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments[:1] == ["sidecar"]:  # every flag after it is the sidecar's, --help included
        return _run_sidecar(arguments[1:])
    args = build_parser().parse_args(arguments)
    if args.command == "audit":
        return _run_audit(args)
    if args.command == "redrive":
        return _run_redrive(args)
    return _run_probe(args)


if __name__ == "__main__":
    sys.exit(main())
