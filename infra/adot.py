"""The metrics pipeline in AWS: the ADOT collector sidecar's config, in ONE place.

The server exports OTLP; the sidecar's `awsemf` exporter writes it to CloudWatch as EMF. The
namespace and the dimension sets below decide which CloudWatch metrics exist, so the dashboard,
the detectors' spike check and the lab (which imitates awsemf locally) all import them from here.
"""

from __future__ import annotations

import json
from typing import Any, Final

from sessionwatch import contract
from sessionwatch.contract import SERVER_METRICS_NAMESPACE

# awsemf emits each datapoint once per dimension set whose every key is present on it, so a set
# such as [service.name, mcp.protocol.version] rolls the per-task series up without aggregation.
DIMENSION_SETS: Final[tuple[tuple[str, ...], ...]] = (
    (contract.RESOURCE_SERVICE_NAME,),
    (contract.RESOURCE_SERVICE_NAME, contract.ATTR_ECS_TASK_ID),
    (contract.RESOURCE_SERVICE_NAME, contract.ATTR_MCP_PROTOCOL_VERSION),
    (contract.RESOURCE_SERVICE_NAME, contract.ATTR_MCP_METHOD_NAME, contract.ATTR_ERROR_TYPE),
    # Who still holds sessions: requests by era, and by era and (bounded) client name.
    (contract.RESOURCE_SERVICE_NAME, contract.ATTR_MCP_PROTOCOL_ERA),
    (contract.RESOURCE_SERVICE_NAME, contract.ATTR_MCP_PROTOCOL_ERA, contract.ATTR_MCP_CLIENT_NAME),
)

COLLECTOR_IMAGE: Final = "public.ecr.aws/aws-observability/aws-otel-collector:v0.49.0"
OTLP_HTTP_PORT: Final = 4318
# The server container reaches the sidecar over the task's shared network namespace.
OTLP_ENDPOINT_FOR_SERVER: Final = f"http://localhost:{OTLP_HTTP_PORT}"
CONFIG_ENV_VAR: Final = "AOT_CONFIG_CONTENT"


def metric_name_selectors() -> list[str]:
    """Anchored regexes for exactly the server's instruments: nothing else becomes a metric."""
    return ["^" + name.replace(".", r"\.") + "$" for name in contract.SERVER_METRICS]


def collector_config(log_group_name: str, namespace: str = SERVER_METRICS_NAMESPACE) -> str:
    """The collector config for `AOT_CONFIG_CONTENT`: OTLP/HTTP in, awsemf out.

    JSON is valid YAML, and it keeps CDK tokens (the log group name) intact as plain strings.
    """
    config: dict[str, Any] = {
        "extensions": {"health_check": {}},
        "receivers": {
            "otlp": {
                "protocols": {
                    # Loopback only: the server container shares the task's network namespace.
                    "http": {"endpoint": f"127.0.0.1:{OTLP_HTTP_PORT}"},
                }
            }
        },
        "processors": {"batch/metrics": {"timeout": "10s"}},
        "exporters": {
            "awsemf": {
                "namespace": namespace,
                "log_group_name": log_group_name,
                "log_stream_name": "{TaskId}",
                # Resource attributes (service.name) become labels, so they can be dimensions.
                "resource_to_telemetry_conversion": {"enabled": True},
                "dimension_rollup_option": "NoDimensionRollup",
                "metric_declarations": [
                    {
                        "dimensions": [list(dims) for dims in DIMENSION_SETS],
                        "metric_name_selectors": metric_name_selectors(),
                    }
                ],
            }
        },
        "service": {
            "extensions": ["health_check"],
            "pipelines": {
                "metrics": {
                    "receivers": ["otlp"],
                    "processors": ["batch/metrics"],
                    "exporters": ["awsemf"],
                }
            },
        },
    }
    return json.dumps(config, indent=2)
