"""`python -m sessionwatch.dashboards --service mcp-service`: the body for teams without CDK.

Load it with `aws cloudwatch put-dashboard --dashboard-name SessionWatch --dashboard-body
file://dashboard.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from sessionwatch.dashboards.body import DashboardInputs, dashboard_body

DEMO_SERVICE = "mcp-service"


def parse_args(argv: list[str] | None = None) -> DashboardInputs:
    parser = argparse.ArgumentParser(
        prog="python -m sessionwatch.dashboards",
        description="Print the SessionWatch dashboard body JSON.",
    )
    parser.add_argument(
        "--service",
        action="append",
        help=f"ECS service name (repeatable; default: the demo's {DEMO_SERVICE})",
    )
    parser.add_argument(
        "--server-service-name",
        default=None,
        help="the MCP server's OTel service.name (instrument(service=...), SESSIONWATCH_SERVICE) "
        "(default: each --service's own name, as README's snippets name both)",
    )
    parser.add_argument(
        "--region",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        help="region of the metrics (default: $AWS_REGION, $AWS_DEFAULT_REGION, us-east-1)",
    )
    parser.add_argument("--load-balancer", help="ALB full name, app/<name>/<id>")
    parser.add_argument("--target-group", help="target group full name, targetgroup/<name>/<id>")
    parser.add_argument("--alarm-arn", action="append", default=[], help="alarm ARN (repeatable)")
    parser.add_argument(
        "--log-group",
        action="append",
        default=[],
        help="a detector log group (session-events, reporter) for the lost-sessions table",
    )
    args = parser.parse_args(argv)
    return DashboardInputs(
        region=args.region,
        services=tuple(args.service or [DEMO_SERVICE]),
        server_service_name=args.server_service_name,
        load_balancer_full_name=args.load_balancer,
        target_group_full_name=args.target_group,
        alarm_arns=tuple(args.alarm_arn),
        verdict_log_groups=tuple(args.log_group),
    )


def main(argv: list[str] | None = None) -> int:
    json.dump(dashboard_body(parse_args(argv)), sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
