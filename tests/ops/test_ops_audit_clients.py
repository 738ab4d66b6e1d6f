"""`sessionwatch audit` says which clients going stateless would affect, from the server's metrics
as the ADOT collector writes them to CloudWatch (moto): requests by era and client name."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from sessionwatch import contract
from sessionwatch.ops.audit import audit
from sessionwatch.ops.audit_clients import ClientUsage, StatelessReadiness, summarize
from sessionwatch.ops.cli import main
from tests.ops.conftest import CLUSTER, REGION, SERVICE, ServiceSpec, build_service

SERVER = "orders-mcp"


def put_requests(
    service: str, era: str, client: str | None, count: float, hours_ago: float = 1.0
) -> None:
    """One datapoint of mcp.server.requests under a dimension set awsemf writes."""
    dims = [
        {"Name": contract.RESOURCE_SERVICE_NAME, "Value": service},
        {"Name": contract.ATTR_MCP_PROTOCOL_ERA, "Value": era},
    ]
    if client is not None:
        dims.append({"Name": contract.ATTR_MCP_CLIENT_NAME, "Value": client})
    boto3.client("cloudwatch", region_name=REGION).put_metric_data(
        Namespace=contract.SERVER_METRICS_NAMESPACE,
        MetricData=[
            {
                "MetricName": contract.METRIC_REQUESTS,
                "Dimensions": dims,
                "Timestamp": datetime.now(UTC) - timedelta(hours=hours_ago),
                "Value": count,
            }
        ],
    )


def test_audit_names_the_clients_still_holding_sessions(session: boto3.Session) -> None:
    build_service(ServiceSpec())
    put_requests(SERVER, contract.ERA_HANDSHAKE, "editor-agent", 70)
    put_requests(SERVER, contract.ERA_HANDSHAKE, "editor-agent", 30, hours_ago=30)
    put_requests(SERVER, contract.ERA_HANDSHAKE, "cli-agent", 10)
    put_requests(SERVER, contract.ERA_MODERN, "cli-agent", 40)
    put_requests(SERVER, contract.ERA_MODERN, "new-agent", 50)
    # The same counter under its era-only dimension set, another service, and an old datapoint
    # outside the week: none of them is a client of this server now.
    put_requests(SERVER, contract.ERA_HANDSHAKE, None, 110)
    put_requests("other-mcp", contract.ERA_HANDSHAKE, "stranger", 99)
    put_requests(SERVER, contract.ERA_HANDSHAKE, "gone-agent", 5, hours_ago=24 * 9)

    report = audit(session, CLUSTER, SERVICE, SERVER)
    stateless = report.stateless
    assert stateless is not None and stateless.error is None
    assert stateless.affected == [
        ClientUsage("editor-agent", 100, 0),
        ClientUsage("cli-agent", 10, 40),
    ]
    assert stateless.share_held == pytest.approx(110 / 200)
    as_json = report.to_dict()["stateless"]
    assert [c["client"] for c in as_json["affected_clients"]] == ["editor-agent", "cli-agent"]


def test_cli_prints_the_affected_clients(
    session: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    build_service(ServiceSpec())
    put_requests(SERVER, contract.ERA_HANDSHAKE, "editor-agent", 3)
    put_requests(SERVER, contract.ERA_MODERN, "new-agent", 1)
    base = ["audit", "--cluster", CLUSTER, "--service", SERVICE, "--region", REGION]
    main([*base, "--server-service-name", SERVER])
    text = capsys.readouterr().out
    assert "75.0% of requests still hold sessions" in text
    assert "affected: editor-agent" in text and "new-agent" not in text
    main([*base, "--server-service-name", "none", "--json"])
    assert json.loads(capsys.readouterr().out)["stateless"] is None


def test_no_metrics_and_no_sessions_say_so() -> None:
    empty = StatelessReadiness(SERVER, 86_400)
    assert "no mcp.server.requests" in " ".join(empty.lines())
    modern_only = StatelessReadiness(SERVER, 86_400, summarize([("modern", "new-agent", 5.0)]))
    assert modern_only.share_held == 0 and modern_only.affected == []
    assert "no client holds sessions" in " ".join(modern_only.lines())
