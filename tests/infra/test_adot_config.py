"""The ADOT collector config: OTLP/HTTP in, awsemf out, with the contract's names and dimensions."""

from __future__ import annotations

import json
import re

from sessionwatch import contract
from sessionwatch.infra import adot


def test_pipeline_receives_otlp_http_and_exports_awsemf() -> None:
    config = json.loads(adot.collector_config("/sessionwatch/emf"))
    pipeline = config["service"]["pipelines"]["metrics"]
    assert pipeline["receivers"] == ["otlp"] and pipeline["exporters"] == ["awsemf"]
    for name in pipeline["processors"]:
        assert name in config["processors"]
    endpoint = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert endpoint.endswith(f":{adot.OTLP_HTTP_PORT}")
    assert adot.OTLP_ENDPOINT_FOR_SERVER.endswith(f":{adot.OTLP_HTTP_PORT}")
    emf = config["exporters"]["awsemf"]
    assert emf["namespace"] == adot.SERVER_METRICS_NAMESPACE == "SessionWatch/MCPServer"
    assert emf["log_group_name"] == "/sessionwatch/emf"
    assert emf["resource_to_telemetry_conversion"] == {"enabled": True}


def test_dimension_sets_are_the_contracts() -> None:
    assert [list(d) for d in adot.DIMENSION_SETS] == [
        ["service.name"],
        ["service.name", "aws.ecs.task.id"],
        ["service.name", "mcp.protocol.version"],
        ["service.name", "mcp.method.name", "error.type"],
        ["service.name", "mcp.protocol.era"],
        ["service.name", "mcp.protocol.era", "mcp.client.name"],
    ]
    emf = json.loads(adot.collector_config("g"))["exporters"]["awsemf"]
    (declaration,) = emf["metric_declarations"]
    assert declaration["dimensions"] == [list(d) for d in adot.DIMENSION_SETS]


def test_selectors_keep_exactly_the_server_instruments() -> None:
    emf = json.loads(adot.collector_config("g"))["exporters"]["awsemf"]
    selectors = [re.compile(s) for s in emf["metric_declarations"][0]["metric_name_selectors"]]

    def kept(name: str) -> bool:
        return any(s.search(name) for s in selectors)

    assert all(kept(name) for name in contract.SERVER_METRICS)
    for other in (
        "http.server.duration",
        "mcp.server.session.createdX",
        "mcpXserver.session.active",
    ):
        assert not kept(other), other
