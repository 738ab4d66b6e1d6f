"""The EventBridge pattern that routes a cluster's ECS events to the ECS-events detector.

ECS events name their cluster in two places: task state changes (and service actions) carry
`detail.clusterArn`, while deployment state changes carry only `resources`, the service ARN,
whose long format is `arn:...:service/<cluster-name>/<service-name>`. One `$or` covers both, so
one rule sees every event of the cluster and none of any other cluster.
"""

from __future__ import annotations

from typing import Any, Final

DETAIL_TYPES: Final = (
    "ECS Deployment State Change",
    "ECS Task State Change",
    "ECS Service Action",
    # Only services with lifecycle hooks send these; they date the production traffic shift.
    "ECS Hook State Change",
)


def ecs_event_pattern(cluster_arn: str, service_arn_prefix: str) -> dict[str, Any]:
    """The raw event pattern (EventBridge JSON), for a cluster ARN and its services' ARN prefix.

    `service_arn_prefix` ends with `service/<cluster-name>/`: the trailing slash keeps cluster
    `prod` from matching the services of cluster `prod-2`.
    """
    return {
        "source": ["aws.ecs"],
        "detail-type": list(DETAIL_TYPES),
        "$or": [
            {"detail": {"clusterArn": [cluster_arn]}},
            {"resources": [{"prefix": service_arn_prefix}]},
        ],
    }
