"""`DemoServiceStack`: the experiment of the design, deployable, with SessionWatch attached.

Two AZs, an ALB with `lb_cookie` stickiness (one day), and a Fargate service of two tasks running
`server/`, each with an ADOT collector sidecar that turns the server's OTLP metrics into
CloudWatch metrics. Rolling deployments with the circuit breaker, exactly the setup whose
deployments lose sessions while every stock signal stays green; SessionWatch makes it visible.

Exposure: the reference server has no authentication, so the ALB is internal (reachable from
inside the VPC only) unless client CIDRs are allowed at deploy time; then it is internet-facing
and admits exactly those CIDRs. With a certificate it listens on HTTPS 443 only, else HTTP 80.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from aws_cdk import Acknowledgment, CfnOutput, Duration, RemovalPolicy, Stack, Validations
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from sessionwatch.infra import adot
from sessionwatch.infra.construct import SessionWatch, SessionWatchProps
from sessionwatch.infra.functions import REPO_ROOT
from sessionwatch.infra.guards import DrainGateOptions
from sessionwatch.infra.sidecar import (
    SIDECAR_DOCKERFILE,
    SIDECAR_PORT,
    SidecarContainer,
    SidecarProps,
    add_sessionwatch_sidecar,
)

# The demo's stop on loss (blue_green_guards): two sessions lost roll the deployment back.
DEMO_STOP_ON_LOSS: Final = 2

SERVER_PORT: Final = 8000
SERVER_CONTAINER: Final = "mcp-server"
COLLECTOR_CONTAINER: Final = "aws-otel-collector"
# The server's Dockerfile builds from the repo root (the image installs the project).
IMAGE_CONTEXT: Final = REPO_ROOT
SERVER_DOCKERFILE: Final = "server/Dockerfile"
# The build context is exactly what server/Dockerfile copies. Anything more would change the
# asset hash on unrelated edits, and every new hash is a rolling deployment that loses sessions.
IMAGE_EXCLUDE: Final = [
    "*",
    ".*",
    "!pyproject.toml",
    "!README.md",
    "!server",
    "!server/**",
    "**/__pycache__",
]
# `server_runtime="typescript"`: the TypeScript SDK's own example server, unchanged, behind the
# SessionWatch sidecar (sidecar/README.md). Its image builds from its own folder; the sidecar's
# from the repository root with exactly what sidecar/Dockerfile copies.
SERVER_RUNTIMES: Final = ("python", "typescript")
TS_SERVER_PORT: Final = 3000
TS_SERVER_CONTEXT: Final = REPO_ROOT / "sidecar" / "examples" / "typescript-server"
SIDECAR_IMAGE_EXCLUDE: Final = [
    "*",
    ".*",
    "!pyproject.toml",
    "!README.md",
    "!sessionwatch",
    "!sessionwatch/**",
    "!server",
    "!server/**",
    "!sidecar",
    "!sidecar/**",
    "sidecar/examples",
    "**/__pycache__",
]
# Served by the same uvicorn process and port as /mcp (server/app.py), so healthy means MCP is up.
# A literal (CDK's default range) so the ALB's in-VPC ingress rule names it, not a token.
VPC_CIDR: Final = "10.0.0.0/16"
HEALTH_CHECK_PATH: Final = "/health"
HEALTHY_HTTP_CODES: Final = "200"
# After its drain the server still needs uvicorn's graceful shutdown (5 s) and a final metrics
# flush (3 s) before ECS's SIGKILL at the stop timeout; keep 2 s of margin on top.
DRAIN_HEADROOM_SECONDS: Final = 10


def client_cidrs(values: Sequence[str]) -> tuple[str, ...]:
    """The allowed client CIDRs, normalized; the whole internet is refused.

    The reference server has no authentication: opening it to everyone must be a code change,
    not a context value. IPv4 only (the demo VPC and ALB are IPv4).
    """
    cidrs = []
    for value in values:
        try:
            network = ipaddress.ip_network(value.strip(), strict=False)
        except ValueError as error:
            raise ValueError(f"sessionwatch:allowedClientCidrs: {value!r} is not a CIDR") from error
        if network.version != 4:
            raise ValueError(f"sessionwatch:allowedClientCidrs: {value!r}: IPv4 only")
        if network.prefixlen == 0:
            raise ValueError(
                "sessionwatch:allowedClientCidrs: 0.0.0.0/0 would open the unauthenticated demo "
                "server to the internet; list your clients' networks instead"
            )
        cidrs.append(str(network))
    return tuple(dict.fromkeys(cidrs))


def drain_seconds_for(stop_timeout_seconds: int) -> int:
    """SESSIONWATCH_DRAIN_SECONDS that fits in the stop timeout, so SIGKILL never cuts it short."""
    return max(stop_timeout_seconds - DRAIN_HEADROOM_SECONDS, 0)


@dataclass(frozen=True)
class DemoServiceProps:
    """Knobs of the experiment. The two that set the session cliff are the deregistration delay
    (how long a replaced task keeps its sticky clients) and the stop timeout (how long it may
    drain after SIGTERM before SIGKILL); both are quoted in SessionWatch's reports.
    """

    service_name: str = "mcp-service"
    server_service_name: str = "mcp-server"
    desired_count: int = 2
    deregistration_delay_seconds: int = 300
    stop_timeout_seconds: int = 30
    stickiness_duration: Duration = field(default_factory=lambda: Duration.days(1))
    alarm_email_subscribers: Sequence[str] = ()
    # None: no ECS deployment alarms. Otherwise how ECS treats SessionWatch's deployment alarm.
    deployment_alarm_behavior: ecs.AlarmBehavior | None = ecs.AlarmBehavior.FAIL_ON_ALARM
    removal_policy: RemovalPolicy = RemovalPolicy.DESTROY
    # Empty: an internal ALB, reachable from inside the VPC only. Otherwise internet-facing,
    # admitting exactly these CIDRs (validated by `client_cidrs`).
    allowed_client_cidrs: Sequence[str] = ()
    # An ACM certificate ARN: HTTPS on 443 only (no plain-HTTP listener). None: HTTP on 80.
    certificate_arn: str | None = None
    # 10-second loss alarms (SessionWatchProps.high_resolution_alarms): the ECS deployment alarm
    # then fails the rollout sooner.
    high_resolution_alarms: bool = False
    # "python": the reference server, instrumented in process. "typescript": the TypeScript SDK's
    # example server behind the SessionWatch sidecar (context sessionwatch:serverRuntime).
    server_runtime: str = "python"

    # ECS native blue/green (a green target group, a production listener rule forwarding to
    # both with target-group stickiness) with SessionWatch's drain gate on the production
    # shift, stop on loss after 2 lost sessions and the first-loss alert. False: rolling.
    blue_green_guards: bool = False
    drain_gate_max_hold: Duration = field(default_factory=lambda: Duration.hours(1))

    def __post_init__(self) -> None:
        if self.server_runtime not in SERVER_RUNTIMES:
            raise ValueError(
                f"sessionwatch:serverRuntime: {self.server_runtime!r}, expected one of "
                f"{', '.join(SERVER_RUNTIMES)}"
            )

    @property
    def public(self) -> bool:
        return bool(self.allowed_client_cidrs)

    @property
    def listener_port(self) -> int:
        return 443 if self.certificate_arn else 80


def _acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    Validations.of(scope).acknowledge(Acknowledgment(id=rule, reason=reason))


class DemoServiceStack(Stack):
    """The demo MCP service on Fargate behind a sticky ALB, watched by SessionWatch."""

    def __init__(
        self, scope: Construct, id: str, *, props: DemoServiceProps, **kwargs: Any
    ) -> None:
        super().__init__(scope, id, **kwargs)
        self.allowed_client_cidrs = client_cidrs(props.allowed_client_cidrs)
        self.props = props
        self.vpc = self._vpc(props)
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=self.vpc,
            container_insights_v2=ecs.ContainerInsights.ENABLED,
        )
        self.server_logs = logs.LogGroup(
            self,
            "ServerLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=props.removal_policy,
        )
        self.task_definition = self._task_definition(props)
        self.alb, self.target_group = self._load_balancer(props)

        self.sessionwatch = SessionWatch(
            self,
            "SessionWatch",
            SessionWatchProps(
                cluster_name=self.cluster.cluster_name,
                cluster_arn=self.cluster.cluster_arn,
                service_names=[props.service_name],
                server_log_group=self.server_logs,
                server_service_name=props.server_service_name,
                load_balancer_full_name=self.alb.load_balancer_full_name,
                target_group_full_name=self.target_group.target_group_full_name,
                alarm_email_subscribers=props.alarm_email_subscribers,
                deregistration_delay_seconds=props.deregistration_delay_seconds,
                stop_timeout_seconds=props.stop_timeout_seconds,
                removal_policy=props.removal_policy,
                high_resolution_alarms=props.high_resolution_alarms,
                drain_gate=(
                    DrainGateOptions(max_hold=props.drain_gate_max_hold)
                    if props.blue_green_guards
                    else None
                ),
                stop_on_loss=DEMO_STOP_ON_LOSS if props.blue_green_guards else None,
                first_loss_alert=props.blue_green_guards,
            ),
        )
        self.service = self._service(props)
        CfnOutput(
            self,
            "McpEndpoint",
            description=(
                "Point MCP clients and `sessionwatch probe` here"
                + (
                    " (through a DNS name of your certificate, CNAMEd to this one)"
                    if props.certificate_arn
                    else ""
                )
                + ("" if props.public else " (internal: from inside the VPC only)")
            ),
            value=(
                f"{'https' if props.certificate_arn else 'http'}://"
                f"{self.alb.load_balancer_dns_name}/mcp"
            ),
        )
        CfnOutput(self, "ClusterName", value=self.cluster.cluster_name)

    def _vpc(self, props: DemoServiceProps) -> ec2.Vpc:
        """Public subnets only: tasks get public IPs to pull images, so no NAT gateway to pay."""
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=2,
            ip_addresses=ec2.IpAddresses.cidr(VPC_CIDR),
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=24
                )
            ],
            # The restricting custom resource would add a Lambda with a managed policy; the
            # default security group is attached to nothing here.
            restrict_default_security_group=False,
        )
        flow_logs = logs.LogGroup(
            self,
            "VpcFlowLogs",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=props.removal_policy,
        )
        vpc.add_flow_log(
            "FlowLog", destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs)
        )
        return vpc

    def _task_definition(self, props: DemoServiceProps) -> ecs.FargateTaskDefinition:
        task_definition = ecs.FargateTaskDefinition(
            self, "TaskDefinition", cpu=512, memory_limit_mib=1024
        )
        metrics_logs = logs.LogGroup(
            self,
            "ServerMetricsEmf",
            retention=logs.RetentionDays.ONE_MONTH,
            removal_policy=props.removal_policy,
        )
        collector_logs = logs.LogGroup(
            self,
            "CollectorLogs",
            retention=logs.RetentionDays.ONE_WEEK,
            removal_policy=props.removal_policy,
        )
        collector = task_definition.add_container(
            COLLECTOR_CONTAINER,
            image=ecs.ContainerImage.from_registry(adot.COLLECTOR_IMAGE),
            essential=False,  # losing metrics must not take the MCP server down
            environment={adot.CONFIG_ENV_VAR: adot.collector_config(metrics_logs.log_group_name)},
            logging=ecs.LogDrivers.aws_logs(stream_prefix="adot", log_group=collector_logs),
        )
        task_definition.add_to_task_role_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                resources=[metrics_logs.log_group_arn],
            )
        )
        self.sidecar: SidecarContainer | None = None
        if props.server_runtime == "typescript":
            self.sidecar = self._typescript_behind_sidecar(task_definition, props, collector)
        else:
            self._python_server(task_definition, props, collector)
        _acknowledge(
            task_definition,
            "AwsSolutions::AwsSolutions-ECS2",
            "The environment holds only non-secret settings (service name, drain seconds, the "
            "collector's loopback endpoint and its awsemf config); there are no secrets.",
        )
        if task_definition.execution_role is not None:
            _acknowledge(
                task_definition.execution_role,
                "AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                "ecr:GetAuthorizationToken supports no resource-level permissions; the image "
                "pull actions themselves are scoped to the asset repository.",
            )
        return task_definition

    def _python_server(
        self,
        task_definition: ecs.FargateTaskDefinition,
        props: DemoServiceProps,
        collector: ecs.ContainerDefinition,
    ) -> None:
        drain_seconds = drain_seconds_for(props.stop_timeout_seconds)
        server = task_definition.add_container(
            SERVER_CONTAINER,
            image=ecs.ContainerImage.from_asset(
                str(IMAGE_CONTEXT), file=SERVER_DOCKERFILE, exclude=IMAGE_EXCLUDE
            ),
            essential=True,
            port_mappings=[ecs.PortMapping(container_port=SERVER_PORT)],
            stop_timeout=Duration.seconds(props.stop_timeout_seconds),
            environment={
                "SESSIONWATCH_SERVICE": props.server_service_name,
                "SESSIONWATCH_DRAIN_SECONDS": str(drain_seconds),
                "OTEL_EXPORTER_OTLP_ENDPOINT": adot.OTLP_ENDPOINT_FOR_SERVER,
                "OTEL_METRIC_EXPORT_INTERVAL": "10000",
            },
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix=SERVER_CONTAINER, log_group=self.server_logs
            ),
        )
        server.add_container_dependencies(
            ecs.ContainerDependency(
                container=collector, condition=ecs.ContainerDependencyCondition.START
            )
        )

    def _typescript_behind_sidecar(
        self,
        task_definition: ecs.FargateTaskDefinition,
        props: DemoServiceProps,
        collector: ecs.ContainerDefinition,
    ) -> SidecarContainer:
        """The TypeScript SDK's example server on loopback port 3000, the sidecar in front."""
        server = task_definition.add_container(
            SERVER_CONTAINER,
            image=ecs.ContainerImage.from_asset(str(TS_SERVER_CONTEXT)),
            essential=True,
            environment={"MCP_PORT": str(TS_SERVER_PORT)},
            stop_timeout=Duration.seconds(props.stop_timeout_seconds),
            # No log configuration: the example prints raw session ids ("Session initialized
            # with ID: ..."), which SessionWatch never stores; the sidecar writes the events.
        )
        _acknowledge(
            task_definition,
            "AwsSolutions::AwsSolutions-ECS7",
            "The TypeScript SDK example container prints raw MCP session ids, which must not be "
            "stored; the SessionWatch sidecar container logs the session events with awslogs.",
        )
        sidecar = add_sessionwatch_sidecar(
            task_definition,
            SidecarProps(
                image=ecs.ContainerImage.from_asset(
                    str(IMAGE_CONTEXT), file=SIDECAR_DOCKERFILE, exclude=SIDECAR_IMAGE_EXCLUDE
                ),
                app_container=server,
                app_port=TS_SERVER_PORT,
                log_group=self.server_logs,
                service_name=props.server_service_name,
                stop_timeout_seconds=props.stop_timeout_seconds,
                otlp_endpoint=adot.OTLP_ENDPOINT_FOR_SERVER,
            ),
        )
        sidecar.container.add_container_dependencies(
            ecs.ContainerDependency(
                container=collector, condition=ecs.ContainerDependencyCondition.START
            )
        )
        return sidecar

    def _load_balancer(
        self, props: DemoServiceProps
    ) -> tuple[elbv2.ApplicationLoadBalancer, elbv2.ApplicationTargetGroup]:
        alb = elbv2.ApplicationLoadBalancer(
            self,
            "Alb",
            vpc=self.vpc,
            internet_facing=props.public,
            drop_invalid_header_fields=True,
            # Internal: still placed in the (only) public subnets, with private addresses only.
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
        )
        target_group = elbv2.ApplicationTargetGroup(
            self,
            "Targets",
            vpc=self.vpc,
            port=SIDECAR_PORT if props.server_runtime == "typescript" else SERVER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=Duration.seconds(props.deregistration_delay_seconds),
            stickiness_cookie_duration=props.stickiness_duration,
            health_check=elbv2.HealthCheck(
                path=HEALTH_CHECK_PATH,
                healthy_http_codes=HEALTHY_HTTP_CODES,
                interval=Duration.seconds(10),
                healthy_threshold_count=2,
            ),
        )
        port = props.listener_port
        if props.certificate_arn:
            self.listener = alb.add_listener(
                "Https",
                port=port,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_arn(props.certificate_arn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                open=False,
                default_target_groups=[target_group],
            )
        else:
            self.listener = alb.add_listener(
                "Http",
                port=port,
                protocol=elbv2.ApplicationProtocol.HTTP,
                open=False,
                default_target_groups=[target_group],
            )
        peers = (
            [ec2.Peer.ipv4(cidr) for cidr in self.allowed_client_cidrs]
            if props.public
            else [ec2.Peer.ipv4(VPC_CIDR)]
        )
        for peer in peers:
            alb.connections.allow_from(peer, ec2.Port.tcp(port), "MCP clients")
        _acknowledge(
            alb,
            "AwsSolutions::AwsSolutions-ELB2",
            "Demo load balancer: its access logs would need an S3 bucket the demo does not "
            "otherwise have; SessionWatch reads the 404s from the server's own logs.",
        )
        return alb, target_group

    def _service(self, props: DemoServiceProps) -> ecs.FargateService:
        alarms = None
        if props.deployment_alarm_behavior is not None:
            alarm = self.sessionwatch.deployment_alarm(props.service_name)
            alarms = ecs.DeploymentAlarmConfig(
                alarm_names=[alarm.alarm_name], behavior=props.deployment_alarm_behavior
            )
        service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=self.task_definition,
            service_name=props.service_name,
            desired_count=props.desired_count,
            assign_public_ip=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            deployment_controller=ecs.DeploymentController(type=ecs.DeploymentControllerType.ECS),
            deployment_alarms=alarms,
            health_check_grace_period=Duration.seconds(30),
            deployment_strategy=(
                ecs.DeploymentStrategy.BLUE_GREEN
                if props.blue_green_guards
                else ecs.DeploymentStrategy.ROLLING
            ),
        )
        if props.blue_green_guards:
            self._blue_green(props, service)
        elif self.sidecar is not None:  # the sidecar's port, not the default container's
            self.sidecar.attach_to_target_group(service, self.target_group)
        else:
            service.attach_to_application_target_group(self.target_group)
        return service

    def _blue_green(self, props: DemoServiceProps, service: ecs.FargateService) -> None:
        """Green target group, the production rule ECS shifts (weighted forward with
        target-group stickiness: AWSALBTG), and the drain gate on the production shift."""
        green = elbv2.ApplicationTargetGroup(
            self,
            "GreenTargets",
            vpc=self.vpc,
            port=SERVER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=Duration.seconds(props.deregistration_delay_seconds),
            stickiness_cookie_duration=props.stickiness_duration,
            health_check=self.target_group.health_check,
        )
        rule = elbv2.ApplicationListenerRule(
            self,
            "ProductionRule",
            listener=self.listener,
            priority=1,
            conditions=[elbv2.ListenerCondition.path_patterns(["/*"])],
            action=elbv2.ListenerAction.weighted_forward(
                [
                    elbv2.WeightedTargetGroup(target_group=self.target_group, weight=100),
                    elbv2.WeightedTargetGroup(target_group=green, weight=0),
                ],
                stickiness_duration=props.stickiness_duration,
            ),
        )
        target = service.load_balancer_target(
            container_name=SERVER_CONTAINER,
            container_port=SERVER_PORT,
            alternate_target=ecs.AlternateTarget(
                "Green",
                alternate_target_group=green,
                production_listener=ecs.ListenerRuleConfiguration.application_listener_rule(rule),
            ),
        )
        target.attach_to_application_target_group(self.target_group)
        _acknowledge(
            service,
            "AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/"
            "AmazonECSInfrastructureRolePolicyForLoadBalancers]",
            "The role ECS assumes to shift blue/green traffic between the two target groups: "
            "AWS documents this managed policy for it and keeps it current with ECS.",
        )
        self.sessionwatch.attach_drain_gate(service)
