"""`add_sessionwatch_sidecar`: put the SessionWatch sidecar beside any MCP server container.

What changes in the task definition (infra/README.md, "Any MCP server: the sidecar"):

- a container `sessionwatch-sidecar` (the `sidecar/Dockerfile` image), essential, with one port
  mapping (8080 by default), forwarding to the server on `127.0.0.1:<app_port>`: containers of an
  `awsvpc` task (every Fargate task) share one network namespace, so loopback reaches them;
- `dependsOn` the server container: the sidecar starts after the server started (or is HEALTHY
  when the server has a health check) and, because "when a dependency is defined for container
  startup, for container shutdown it is reversed" (ECS API reference, ContainerDependency), it is
  stopped FIRST: it drains and accounts for the open sessions while the server still answers;
- its logs go to the log group SessionWatch subscribes to (the events come from the sidecar now);
- CPU and memory of its own, out of the task's size;
- the target group must point at the sidecar's port, not the server's: CDK's
  `service.attach_to_application_target_group` picks the task definition's default container (the
  first essential one with a port mapping, usually the server), so use
  :meth:`SidecarContainer.attach_to_target_group`, which names the container and port.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aws_cdk import Duration
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_logs as logs

from sessionwatch.contract import ENV_DRAIN_SECONDS, ENV_SESSION_IDLE_TIMEOUT

SIDECAR_CONTAINER: Final = "sessionwatch-sidecar"
SIDECAR_PORT: Final = 8080
SIDECAR_DOCKERFILE: Final = "sidecar/Dockerfile"
# After its drain the sidecar needs uvicorn's graceful shutdown (5 s) and a final metrics flush
# (3 s) before SIGKILL; 2 s of margin on top (the same budget as the server's, drain_budget.py).
DRAIN_HEADROOM_SECONDS: Final = 10


@dataclass(frozen=True)
class SidecarProps:
    """The sidecar's settings; every field but the four first has a default.

    ``image``: the sidecar image (build ``sidecar/Dockerfile``). ``app_container``: the MCP
    server's container in the same task definition. ``app_port``: the port the server listens on
    inside the task. ``log_group``: the log group SessionWatch's subscription reads
    (``SessionWatchProps.server_log_group``).
    """

    image: ecs.ContainerImage
    app_container: ecs.ContainerDefinition
    app_port: int
    log_group: logs.ILogGroup
    service_name: str = "mcp-server"  # SESSIONWATCH_SERVICE: the metrics' service.name
    container_name: str = SIDECAR_CONTAINER
    sidecar_port: int = SIDECAR_PORT
    cpu: int = 256  # CPU units (1024 = one vCPU); measured: ~1,500 req/s per core
    memory_limit_mib: int = 256  # hard limit; measured resident ~50 MB
    memory_reservation_mib: int = 64
    stop_timeout_seconds: int = 30  # ECS default; drain = this - 10 s
    session_idle_timeout_seconds: float = 1800  # the server's own idle timeout (SDK default)
    # START: the server process started. HEALTHY needs a health check on the server container.
    app_condition: ecs.ContainerDependencyCondition = ecs.ContainerDependencyCondition.START
    # Pass the server's health (this path) through the sidecar's /health; None: the sidecar's own.
    upstream_health_path: str | None = None
    otlp_endpoint: str | None = None  # e.g. the ADOT collector's http://127.0.0.1:4318
    log_stream_prefix: str = "sidecar"

    @property
    def drain_seconds(self) -> int:
        return max(self.stop_timeout_seconds - DRAIN_HEADROOM_SECONDS, 0)


class SidecarContainer:
    """The sidecar container added to a task definition, and how to route to it."""

    def __init__(self, container: ecs.ContainerDefinition, props: SidecarProps) -> None:
        self.container = container
        self.props = props

    def attach_to_target_group(
        self, service: ecs.BaseService, target_group: elbv2.IApplicationTargetGroup
    ) -> None:
        """Register the service's tasks in ``target_group`` at the sidecar's port."""
        service.load_balancer_target(
            container_name=self.props.container_name, container_port=self.props.sidecar_port
        ).attach_to_application_target_group(target_group)


def sidecar_command(props: SidecarProps) -> list[str]:
    """The sidecar's command line (pure: what the task definition's ``command`` holds)."""
    command = [
        "python",
        "-m",
        "sessionwatch.sidecar",
        "--upstream",
        f"http://127.0.0.1:{props.app_port}",
        "--port",  # on every interface (the default): the ALB reaches it on the task's ENI
        str(props.sidecar_port),
        "--stop-timeout",
        str(props.stop_timeout_seconds),
    ]
    if props.upstream_health_path:
        command += ["--upstream-health-path", props.upstream_health_path]
    return command


def add_sessionwatch_sidecar(
    task_definition: ecs.TaskDefinition, props: SidecarProps
) -> SidecarContainer:
    """Add the sidecar container beside ``props.app_container`` (module docstring: what changes)."""
    if props.app_port == props.sidecar_port:
        raise ValueError(
            f"app_port and sidecar_port are both {props.app_port}: containers of an awsvpc task "
            "share one network namespace, so they need different ports"
        )
    environment = {
        "SESSIONWATCH_SERVICE": props.service_name,
        ENV_DRAIN_SECONDS: str(props.drain_seconds),
        ENV_SESSION_IDLE_TIMEOUT: f"{props.session_idle_timeout_seconds:g}",
    }
    if props.otlp_endpoint:
        environment["OTEL_EXPORTER_OTLP_ENDPOINT"] = props.otlp_endpoint
        environment["OTEL_METRIC_EXPORT_INTERVAL"] = "10000"
    container = task_definition.add_container(
        props.container_name,
        image=props.image,
        essential=True,  # without it nothing reaches the server: stop the task, let ECS replace it
        command=sidecar_command(props),
        port_mappings=[ecs.PortMapping(container_port=props.sidecar_port)],
        cpu=props.cpu,
        memory_limit_mib=props.memory_limit_mib,
        memory_reservation_mib=props.memory_reservation_mib,
        stop_timeout=Duration.seconds(props.stop_timeout_seconds),
        environment=environment,
        logging=ecs.LogDrivers.aws_logs(
            stream_prefix=props.log_stream_prefix, log_group=props.log_group
        ),
        health_check=ecs.HealthCheck(
            command=[
                "CMD",
                "python",
                "-c",
                "import urllib.request,sys; sys.exit(urllib.request.urlopen("
                f"'http://127.0.0.1:{props.sidecar_port}/health', timeout=2).status != 200)",
            ],
            interval=Duration.seconds(15),
            timeout=Duration.seconds(3),
            start_period=Duration.seconds(10),
            retries=3,
        ),
    )
    container.add_container_dependencies(
        ecs.ContainerDependency(container=props.app_container, condition=props.app_condition)
    )
    return SidecarContainer(container, props)
