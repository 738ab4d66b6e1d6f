"""Who this process is: the ECS task identity, read once from the task metadata endpoint.

Every log line and metric carries the task id, so the detectors can tell which task created a
session and which one answered 404 for it. On Fargate the agent sets
``ECS_CONTAINER_METADATA_URI_V4``; ``GET {uri}/task`` returns the task ARN, cluster, family,
revision and availability zone. Outside ECS (or when the endpoint is broken) the server must still
start and still be distinguishable, so the fallback is ``SESSIONWATCH_TASK_ID`` or the host name.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from dataclasses import dataclass
from typing import Any

METADATA_ENV = "ECS_CONTAINER_METADATA_URI_V4"
TASK_ID_ENV = "SESSIONWATCH_TASK_ID"
DEFAULT_TIMEOUT_S = 1.0


@dataclass(frozen=True)
class TaskIdentity:
    """The task this process runs in. Fields are ``None`` where unknown (local runs)."""

    task_id: str
    task_arn: str | None = None
    cluster: str | None = None
    family: str | None = None
    revision: str | None = None
    availability_zone: str | None = None
    source: str = "fallback"  # "ecs-metadata" | "env" | "hostname" | "explicit"


class MetadataError(Exception):
    """The metadata endpoint was set but did not give a usable task document."""


def task_id_from_arn(task_arn: str) -> str:
    """The last path segment of a task ARN (``arn:...:task/cluster/<id>`` -> ``<id>``)."""
    return task_arn.rsplit("/", 1)[-1]


def parse_task_metadata(doc: Any) -> TaskIdentity:
    """Turn a ``GET {uri}/task`` document into an identity; raise :class:`MetadataError` if odd."""
    if not isinstance(doc, dict):
        raise MetadataError("task metadata is not a JSON object")
    arn = doc.get("TaskARN")
    if not isinstance(arn, str) or ":task/" not in arn:
        raise MetadataError("task metadata has no usable TaskARN")

    def text(key: str) -> str | None:
        value = doc.get(key)
        return str(value) if isinstance(value, str | int) and value != "" else None

    return TaskIdentity(
        task_id=task_id_from_arn(arn),
        task_arn=arn,
        cluster=text("Cluster"),
        family=text("Family"),
        revision=text("Revision"),
        availability_zone=text("AvailabilityZone"),
        source="ecs-metadata",
    )


def fetch_task_metadata(uri: str, timeout: float = DEFAULT_TIMEOUT_S) -> TaskIdentity:
    """Read ``{uri}/task`` with a short timeout (start-up must not hang on a broken endpoint)."""
    if not uri.startswith(("http://", "https://")):
        raise MetadataError("metadata URI is not an http(s) URL")
    try:
        with urllib.request.urlopen(f"{uri.rstrip('/')}/task", timeout=timeout) as resp:  # noqa: S310
            body = resp.read(1_000_000)
    except OSError as exc:  # URLError, HTTPError, timeouts and refused connections
        raise MetadataError(f"metadata endpoint unreachable: {type(exc).__name__}") from exc
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise MetadataError("metadata endpoint returned a body that is not JSON") from exc
    return parse_task_metadata(doc)


def fallback_identity(task_id: str | None) -> TaskIdentity:
    """The identity outside ECS: the configured task id, else the host name."""
    if task_id:
        return TaskIdentity(task_id=task_id, source="env")
    return TaskIdentity(task_id=socket.gethostname() or "local", source="hostname")


def resolve_identity(
    metadata_uri: str | None,
    fallback_task_id: str | None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> tuple[TaskIdentity, MetadataError | None]:
    """Return the task identity and, when the metadata endpoint was set but failed, why.

    Never raises: a metadata failure must not stop the server from serving (it is reported by the
    caller, logged once and counted).
    """
    if not metadata_uri:
        return fallback_identity(fallback_task_id), None
    try:
        return fetch_task_metadata(metadata_uri, timeout), None
    except MetadataError as exc:
        return fallback_identity(fallback_task_id), exc
