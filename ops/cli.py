"""The ``sessionwatch`` command: ``probe``, ``audit``, ``redrive`` (the lab is ``python -m lab``).

Argument parsing lives here; each subcommand's work lives in its own module, imported only when
that subcommand runs, so ``sessionwatch audit`` does not need the MCP SDK or uvicorn loaded.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

EXIT_USAGE = 2
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
    sub = parser.add_subparsers(dest="command", required=True, metavar="{probe,audit,redrive}")

    probe = sub.add_parser(
        "probe",
        help="hold one MCP session through the load balancer and report every call",
        description="Open a handshake-era MCP session, write then read every interval, and name "
        "session loss (in any MCP SDK's form), stickiness breaks and failed calls; after a loss it "
        "re-initializes and keeps counting (with --duration). Exit 0: no loss and no failed call, "
        "1: any session lost, 2: no session could be opened or calls failed for another reason.",
    )
    probe.add_argument("url", help="MCP endpoint, e.g. https://mcp.example.com/mcp")
    probe.add_argument("--interval", type=_positive, default=5.0, help="seconds between cycles")
    probe.add_argument(
        "--duration", type=_positive, default=None, help="seconds to run (default: until loss)"
    )
    probe.add_argument("--json", action="store_true", help="one JSON object per call (JSON lines)")
    cookies = probe.add_mutually_exclusive_group()
    cookies.add_argument(
        "--stale-cookie",
        action="store_true",
        help="keep sending the first sticky cookie (a client that never stores the rotated one)",
    )
    cookies.add_argument(
        "--no-cookies",
        action="store_true",
        help="never return a cookie (the TypeScript SDK's fetch, many agents)",
    )
    probe.add_argument(
        "--timeout", type=_positive, default=10.0, help="per-request timeout in seconds"
    )

    audit = sub.add_parser(
        "audit",
        help="audit an ECS service's session survival window and risks",
        description="Read the ECS service, task definition, target groups and alarms (Describe* "
        "only) and report the session survival window of a rolling deployment and its risks. "
        "Exit 0: nothing at or above --fail-on, 1: risk found, 2: could not audit.",
    )
    audit.add_argument("--cluster", required=True)
    audit.add_argument("--service", required=True)
    audit.add_argument("--region", default=None)
    audit.add_argument("--profile", default=None, help="AWS named profile")
    audit.add_argument("--json", action="store_true", help="machine-readable output")
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
        description="Receive every message of the queue, hand its event (the body of an "
        "EventBridge DLQ message, or the requestPayload of a Lambda on-failure record) to the "
        "detectors again, and delete it once that succeeded. Safe to repeat: nothing counts "
        "twice. Exit 0: all redriven, 1: some failed again (left queued), 2: usage error.",
    )
    redrive.add_argument("--queue-url", required=True)
    target = redrive.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--function",
        choices=("ecs_events", "session_events"),
        help="run that detector handler in this process (ledger settings from the environment)",
    )
    target.add_argument("--invoke", metavar="FUNCTION_NAME", help="invoke the deployed function")
    redrive.add_argument("--max", type=int, default=None, help="at most this many messages")
    redrive.add_argument("--region", default=None)
    redrive.add_argument("--profile", default=None, help="AWS named profile")

    return parser


def _run_redrive(args: argparse.Namespace) -> int:
    import boto3

    from sessionwatch.ops.redrive import invoke_delivery, local_delivery, redrive

    session = boto3.Session(region_name=args.region, profile_name=args.profile)
    if args.invoke:
        deliver = invoke_delivery(session.client("lambda"), args.invoke)
    else:
        deliver = local_delivery(args.function)
    result = redrive(session.client("sqs"), args.queue_url, deliver, args.max)
    print(
        f"received {result.received}, redriven {result.redriven}, failed again {result.failed}, "
        f"unreadable {result.unreadable}"
    )
    return 0 if result.failed == 0 and result.unreadable == 0 else 1


def _run_audit(args: argparse.Namespace) -> int:
    import boto3
    from botocore.exceptions import BotoCoreError

    from sessionwatch.ops.audit import EXIT_ERROR, AuditError, audit, render_json, render_text
    from sessionwatch.ops.audit_rules import Severity

    try:
        session = boto3.Session(region_name=args.region, profile_name=args.profile)
        server = None if args.server_service_name.lower() == "none" else args.server_service_name
        report = audit(session, args.cluster, args.service, server)
    except AuditError as exc:
        if args.json:
            import json

            print(json.dumps({"error": exc.kind, "message": str(exc)}))
        print(f"sessionwatch audit: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BotoCoreError as exc:  # e.g. an unknown --profile
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
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sessionwatch`` console script; returns the exit status."""
    args = build_parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.command == "audit":
        return _run_audit(args)
    if args.command == "redrive":
        return _run_redrive(args)
    return _run_probe(args)


if __name__ == "__main__":
    sys.exit(main())
