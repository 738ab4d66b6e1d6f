"""A local stand-in for one ECS task's metadata endpoint (task metadata v4).

On Fargate the agent sets ``ECS_CONTAINER_METADATA_URI_V4`` in every container; ``GET {uri}``
returns the container's metadata and ``GET {uri}/task`` the task's (``TaskARN``, ``Cluster``,
``Family``, ``Revision``, ``AvailabilityZone``, ...). The server reads it once at start-up to learn
who it is. This stub serves the same JSON shapes for one made-up task, so a local process behaves
like a task without any AWS call, and it can misbehave on demand (``mode``) to test the fallback.

Usage::

    with EcsMetadataStub(task_id="a1b2...", family="mcp-server", revision="3") as stub:
        env = {"ECS_CONTAINER_METADATA_URI_V4": stub.uri}
        ...  # start a server process with env; stub.task_arn is what it should report
        stub.mode = "garbage"  # later requests answer 200 with a body that is not JSON
"""

from __future__ import annotations

import json
import secrets
import threading
from dataclasses import dataclass, field
from typing import Any, Literal

from lab.loopback_http import LoopbackHTTPService, QuietHandler

Mode = Literal["ok", "garbage", "error", "hang"]

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "123456789012"
CONTAINER_NAME = "mcp-server"


@dataclass
class EcsMetadataStub(LoopbackHTTPService):
    """One task's metadata endpoint on ``127.0.0.1:<free port>``, served from a daemon thread.

    ``mode`` switches behaviour at any time: ``ok`` (the documented JSON), ``garbage`` (200 with a
    body that is not JSON), ``error`` (HTTP 500), ``hang`` (never answers within 30 s, to exercise
    the client's timeout). ``requests`` counts the paths asked for, for tests that need to know the
    server read the endpoint once.
    """

    task_id: str = field(default_factory=lambda: secrets.token_hex(16))
    cluster: str = "sessionwatch-lab"
    family: str = "mcp-server"
    revision: str = "1"
    availability_zone: str = "us-east-1a"
    region: str = DEFAULT_REGION
    account: str = DEFAULT_ACCOUNT
    service_name: str | None = "mcp-server"
    mode: Mode = "ok"
    requests: list[str] = field(default_factory=list)
    thread_name = "ecs-metadata-stub"

    @property
    def cluster_arn(self) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:cluster/{self.cluster}"

    @property
    def task_arn(self) -> str:
        return f"arn:aws:ecs:{self.region}:{self.account}:task/{self.cluster}/{self.task_id}"

    @property
    def uri(self) -> str:
        """The value for ``ECS_CONTAINER_METADATA_URI_V4`` (no trailing slash, like the agent's)."""
        return f"http://127.0.0.1:{self.port}/v4/{self.task_id}-{CONTAINER_NAME}"

    def container_document(self) -> dict[str, Any]:
        """``GET {uri}``: the container metadata, labels carrying the task identity."""
        return {
            "DockerId": f"{self.task_id}-0000000000",
            "Name": CONTAINER_NAME,
            "DockerName": CONTAINER_NAME,
            "Image": f"{self.account}.dkr.ecr.{self.region}.amazonaws.com/mcp-server:latest",
            "Labels": {
                "com.amazonaws.ecs.cluster": self.cluster_arn,
                "com.amazonaws.ecs.container-name": CONTAINER_NAME,
                "com.amazonaws.ecs.task-arn": self.task_arn,
                "com.amazonaws.ecs.task-definition-family": self.family,
                "com.amazonaws.ecs.task-definition-version": self.revision,
            },
            "DesiredStatus": "RUNNING",
            "KnownStatus": "RUNNING",
            "Limits": {"CPU": 256, "Memory": 512},
            "Type": "NORMAL",
            "ContainerARN": (
                f"arn:aws:ecs:{self.region}:{self.account}:container/"
                f"{self.cluster}/{self.task_id}/{CONTAINER_NAME}"
            ),
            "Networks": [{"NetworkMode": "awsvpc", "IPv4Addresses": ["127.0.0.1"]}],
        }

    def task_document(self) -> dict[str, Any]:
        """``GET {uri}/task``: the task metadata of a Fargate task."""
        doc: dict[str, Any] = {
            "Cluster": self.cluster_arn,
            "TaskARN": self.task_arn,
            "Family": self.family,
            "Revision": self.revision,
            "DesiredStatus": "RUNNING",
            "KnownStatus": "RUNNING",
            "Limits": {"CPU": 0.25, "Memory": 512},
            "AvailabilityZone": self.availability_zone,
            "LaunchType": "FARGATE",
            "Containers": [self.container_document()],
        }
        if self.service_name is not None:
            doc["ServiceName"] = self.service_name
        return doc

    def handler_class(self) -> type[QuietHandler]:
        stub = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                stub.requests.append(self.path)
                base = f"/v4/{stub.task_id}-{CONTAINER_NAME}"
                if stub.mode == "hang":
                    threading.Event().wait(30)
                    return
                if stub.mode == "error":
                    self.send_body(500, b"internal error", "application/json")
                elif stub.mode == "garbage":
                    self.send_body(200, b"<html>this is not the metadata you want", "text/html")
                elif self.path.rstrip("/") == base:
                    self._json(stub.container_document())
                elif self.path.rstrip("/") == f"{base}/task":
                    self._json(stub.task_document())
                else:
                    self.send_body(404, b"not found", "application/json")

            def _json(self, document: dict[str, Any]) -> None:
                self.send_body(200, json.dumps(document).encode(), "application/json")

        return Handler
