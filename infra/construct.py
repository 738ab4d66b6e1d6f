"""`SessionWatch`: the add-on construct that watches one ECS cluster's stateful MCP services.

Give it the cluster, the service names, the server's log group (and optionally the ALB) and it
creates the ledger, the three detectors and what feeds them (an EventBridge rule for the cluster's
ECS events, a Logs subscription for the server's session events, a one-minute schedule), the
encrypted alarm/report topic, the alarms of docs/architecture.md §6 and the dashboard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from aws_cdk import (
    Acknowledgment,
    Annotations,
    ArnFormat,
    CfnOutput,
    Duration,
    RemovalPolicy,
    Stack,
    Validations,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_logs_destinations as log_destinations
from aws_cdk import aws_sns as sns
from constructs import Construct

from sessionwatch import contract
from sessionwatch.contract import SERVER_METRICS_NAMESPACE
from sessionwatch.dashboards.body import DashboardInputs, dashboard_body
from sessionwatch.infra import failures, functions, topic
from sessionwatch.infra.alarms import (
    HIGH_RESOLUTION_PERIOD,
    PERIOD,
    ServiceAlarms,
    Thresholds,
    detector_errors_alarm,
    load_balancer_refused_alarm,
    queue_depth_alarm,
    service_alarms,
    session_capacity_alarm,
)
from sessionwatch.infra.event_pattern import ecs_event_pattern
from sessionwatch.infra.guards import (
    GATE_HANDLER,
    GATE_LEDGER_ACTIONS,
    DrainGateOptions,
    drain_gate_hook,
    grant_stops,
    guard_environment,
)
from sessionwatch.infra.props_check import NO_SUBSCRIBER_WARNING, check_props, has_subscriber
from sessionwatch.infra.topic import ChatChannel

# Exactly the item calls detectors/ledger.py makes (no Scan, no stream reads, no table admin).
LEDGER_ACTIONS = [
    "dynamodb:BatchGetItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:UpdateItem",
]
# What the detectors read of a deployment, once per deployment (detectors/ecs_read.py), scoped to
# the watched services: DescribeServices and ListServiceDeployments on the services,
# DescribeServiceDeployments on their service deployments.
ECS_SERVICE_ACTIONS = ["ecs:DescribeServices", "ecs:ListServiceDeployments"]
ECS_DEPLOYMENT_ACTIONS = ["ecs:DescribeServiceDeployments"]
# The detectors that make that call: the ECS-events handler only.
ECS_READERS = ("EcsEvents",)
# Kept importable from here (tests, users); the name itself is the contract's.
SESSIONS_LOST_RESOLUTION_ENV = contract.SESSIONS_LOST_RESOLUTION_ENV


def _nag_rendered(stack: Stack, value: str) -> str:
    """A token-bearing string as cdk-nag names it in a finding: ``Ref`` as ``<Name>``."""
    resolved = stack.resolve(value)
    if isinstance(resolved, str):
        return resolved
    parts = resolved["Fn::Join"][1]
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif "Ref" in part:
            out.append(f"<{part['Ref']}>")
        elif "Fn::GetAtt" in part:
            out.append(f"<{part['Fn::GetAtt'][0]}.{part['Fn::GetAtt'][1]}>")
        else:
            raise ValueError(f"cannot name {part} as cdk-nag does")
    return "".join(out)


@dataclass(frozen=True)
class SessionWatchProps:
    """What SessionWatch needs to know about the MCP service it watches.

    Only the first three fields are required; every other field documents its default.
    """

    cluster_name: str
    """The ECS cluster: its name (`orders`) or its ARN (`arn:aws:ecs:<region>:<account>:cluster/
    orders`); an ARN's account and region are used for every ARN built from it. The ECS event
    rule matches only this cluster's events (by `detail.clusterArn` and by the long service ARN
    `service/<cluster>/...`). Required; checked at synth time like every prop."""

    service_names: Sequence[str]
    """The ECS services in scope: a list of at least one distinct name (a lone string is
    refused). Alarms, the deployment-read permissions and the dashboard rows are per service;
    events of other services of the cluster are ignored."""

    server_log_group: logs.ILogGroup
    """The log group the MCP server containers write their stdout to (the awslogs driver), as a
    construct: `logs.LogGroup.from_log_group_name(stack, "ServerLogs", "/ecs/orders-mcp")`. It
    gets SessionWatch's subscription filter, so it needs a free slot (Logs allows two per group)."""

    cluster_arn: str | None = None
    """The cluster's ARN. Default: the ARN given as `cluster_name`, or built from the name in
    this stack's account and region; set it when you hold the ARN as a token."""

    server_service_name: str | None = None
    """The server's OpenTelemetry `service.name` (`instrument(service=...)`,
    `SESSIONWATCH_SERVICE`), for the server-metric spike check and the dashboard's server
    widgets. Default: each watched ECS service's own name (README's snippet instruments
    `service="orders-mcp"` for the ECS service `orders-mcp`); set it when they differ."""

    load_balancer_full_name: str | None = None
    """The ALB's CloudWatch dimension value (`app/<name>/<id>`). Default: none (no ALB spike
    check, no ALB widgets)."""

    target_group_full_name: str | None = None
    """The target group's CloudWatch dimension value (`targetgroup/<name>/<id>`). Default: none
    (no `NonStickyRequestCount` spike check)."""

    group_stickiness: Duration | None = None
    """The listener rule's target group stickiness duration (`AWSALBTG`, blue/green), quoted in
    the lock-out paragraph of a deployment report. Default: none ("not configured in
    SessionWatch"); SessionWatch does not read it from AWS."""

    alarm_email_subscribers: Sequence[str] = ()
    """Email addresses subscribed to the topic (each must confirm). Default: none."""

    thresholds: Thresholds = field(default_factory=Thresholds)
    """Alarm thresholds per period. Default: 1 lost session (deployment), 1 lost session
    (stickiness), 1 spike flag: any loss alarms; a task at 80% of its session cap (only with
    `server_service_name`, whose metrics it reads)."""

    grace_period: Duration = field(default_factory=lambda: Duration.seconds(120))
    """How long the detectors wait for late or out-of-order facts, and how long after a
    deployment ends before its report. Default: 120 s (CloudWatch Logs and EventBridge deliver
    well within it)."""

    ledger_ttl_days: int = 14
    """Lifetime of ledger items; older sessions become `unknown`. Default: 14 days."""

    deregistration_delay_seconds: int | None = None
    """The target group's deregistration delay, quoted in reports. Default: none ("not
    configured" in the report); SessionWatch does not read it from AWS."""

    stop_timeout_seconds: int | None = None
    """The server container's stop timeout, quoted in reports. Default: none."""

    clock_error_seconds: float | None = None
    """How far a task's log clock may be off ECS's event stamps, in seconds
    (`CLOCK_ERROR_SECONDS`): a 404 logged up to this long before its task's drain is the drain's.
    Default: none, the detectors' 1 s; a Fargate task reports its own bound (`ClockErrorBound`,
    task metadata v4). Too small calls a drain's first 404s `stickiness` (detectors/README.md,
    "Clocks")."""

    log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH
    """Retention of the detectors' own log groups. Default: one month."""

    removal_policy: RemovalPolicy = RemovalPolicy.RETAIN
    """What happens to the ledger, the KMS key, the log groups and the failure queues on stack
    deletion. Default: RETAIN (the ledger and queued events outlive a mistaken delete)."""

    dashboard_name: str | None = None
    """The CloudWatch dashboard's name. Default: generated by CloudFormation (unique, stable);
    the stack output `DashboardName` gives it."""

    chat_channels: Sequence[ChatChannel] = ()
    """Amazon Q Developer in chat applications (AWS Chatbot) channel configurations defined in
    your app (`aws_chatbot.SlackChannelConfiguration`, `CfnSlackChannelConfiguration`,
    `CfnMicrosoftTeamsChannelConfiguration`): SessionWatch's topic is added to each, so alarms
    (rendered natively) and deployment reports (custom notifications, threaded per deployment)
    reach the channel. Default: none. A configuration imported by ARN cannot be changed from
    here: add the `TopicArn` output to it instead."""

    notification_topic: sns.ITopic | None = None
    """An existing topic to publish alarms and reports to instead of creating one (and its KMS
    key), e.g. one your chat channel already follows (SNS topics cannot subscribe to topics, so
    SessionWatch uses yours). Its policy must let `cloudwatch.amazonaws.com` publish and its key,
    if any, must let CloudWatch use it; the reporter is granted `sns:Publish` on it and its
    `master_key`. Default: none (SessionWatch creates an encrypted topic)."""

    high_resolution_alarms: bool = False
    """10-second periods (instead of 60) on the deployment and stickiness alarms, and the
    detectors told to store SessionsLost at 1-second resolution (EMF `StorageResolution` 1;
    CloudWatch evaluates a 10 s alarm only on a high-resolution metric). Default: False,
    because the gain is typically about 50 s and at most about 100 s (alarm evaluation: about
    60 s typical and 120 s worst at 60-s periods, 10 s and 20 s at 10-s periods), and
    high-resolution alarms cost three times as much (USD 0.30 instead of 0.10 per alarm-month
    in us-east-1). Turn it on where ECS deployment alarms should stop a rollout sooner."""

    drain_gate: DrainGateOptions | None = None
    """The drain gate: a Lambda lifecycle hook (`drain_gate_function`, attached with
    `attach_drain_gate(service)`) that holds a BLUE_GREEN / LINEAR / CANARY deployment at
    POST_PRODUCTION_TRAFFIC_SHIFT while the blue tasks still hold sessions opened before the
    shift, up to `max_hold`; it answers SUCCEEDED when SessionWatch itself fails. Default:
    none (no gate; blue is cleaned up after the bake time whatever it holds)."""

    stop_on_loss: int | None = None
    """Roll a deployment back (StopServiceDeployment, ROLLBACK) the moment it has lost this
    many sessions, seconds after the loss instead of the deployment alarm's minutes; once
    per deployment; never a rollback deployment. Default: none (off)."""

    first_loss_alert: bool = False
    """One message to the topic (and chat, in the deployment's thread) as soon as a
    deployment's first loss is decided. Default: False (the report comes after the
    deployment ends plus the grace period)."""


class SessionWatch(Construct):
    """SessionWatch for one cluster: ledger, detectors, wiring, topic, alarms, dashboard."""

    def __init__(self, scope: Construct, id: str, props: SessionWatchProps) -> None:
        # Checked before anything is built, so a mistake is one clear error, not a jsii trace.
        self.cluster = check_props(props)
        super().__init__(scope, id)
        stack = Stack.of(self)
        self.props = props
        self.cluster_arn = self.cluster.arn or self._cluster_arn_of(stack, "cluster", None)
        if not has_subscriber(props):
            Annotations.of(self).add_warning_v2("sessionwatch:no-subscriber", NO_SUBSCRIBER_WARNING)

        self.ledger = self._ledger(props)
        self.key: kms.IKey | None
        self.topic: sns.ITopic
        if props.notification_topic is None:
            self.key = topic.topic_key(self, "TopicKey", props.removal_policy)
            self.topic = topic.alarm_topic(self, "Topic", self.key, props.alarm_email_subscribers)
        else:
            self.key = props.notification_topic.master_key
            self.topic = props.notification_topic
            topic.allow_alarms_to_publish(self.topic)
            topic.subscribe_emails(self.topic, props.alarm_email_subscribers)
        topic.subscribe_chat_channels(self.topic, props.chat_channels)
        self.loss_alarm_period = HIGH_RESOLUTION_PERIOD if props.high_resolution_alarms else PERIOD

        code = functions.detectors_code()
        layer = lambda_.LayerVersion.from_layer_version_arn(
            self, "PowertoolsLayer", functions.powertools_layer_arn()
        )
        environment = self._environment(props)
        self.failed_invocations = {
            name: failures.failure_queue(
                self,
                f"{name}FailedInvocations",
                description=(
                    f"Invocations the {name} detector failed after Lambda's retries; "
                    "`sessionwatch redrive` re-feeds them"
                ),
                output_id=f"{failures.FAILED_INVOCATIONS_OUTPUT}{name}",
                removal_policy=props.removal_policy,
            )
            for name in functions.HANDLERS
        }
        # One dead-letter queue per EventBridge target, so each queue holds one kind of event
        # and `sessionwatch redrive` hands it to one handler.
        self.undelivered = {
            name: failures.failure_queue(
                self,
                f"{name}Undelivered",
                description=(
                    f"Events EventBridge could not deliver to the {name} detector; "
                    "`sessionwatch redrive` re-feeds them"
                ),
                output_id=f"{failures.EVENTS_DLQ_OUTPUT}{name}",
                removal_policy=props.removal_policy,
            )
            for name in failures.EVENTBRIDGE_TARGETS
        }
        detectors = {
            name: functions.detector_function(
                self,
                name,
                code=code,
                layer=layer,
                environment=environment,
                timeout=Duration.seconds(60),
                log_retention=props.log_retention,
                removal_policy=props.removal_policy,
                failed_invocations=self.failed_invocations[name],
                retry_attempts=failures.ASYNC_RETRY_ATTEMPTS,
                max_event_age=failures.ASYNC_MAX_EVENT_AGE,
            )
            for name in functions.HANDLERS
        }
        for detector in detectors.values():
            detector.role.add_to_principal_policy(
                iam.PolicyStatement(actions=LEDGER_ACTIONS, resources=[self.ledger.table_arn])
            )
        self.ecs_events = detectors["EcsEvents"]
        self.session_events = detectors["SessionEvents"]
        self.reporter = detectors["Reporter"]
        topic.grant_publish(self.topic, self.key, self.reporter.role)
        self._guards(stack, props, detectors, code, layer, environment)
        self._grant_metric_reads(self.reporter.role)
        for name in ECS_READERS:
            self._grant_deployment_reads(stack, detectors[name].role)

        self.ecs_rule = self._ecs_rule(stack)
        self.subscription = logs.SubscriptionFilter(
            self,
            "SessionEventsSubscription",
            log_group=props.server_log_group,
            destination=log_destinations.LambdaDestination(self.session_events.function),
            filter_pattern=logs.FilterPattern.literal(contract.SESSION_EVENTS_FILTER_PATTERN),
        )
        self.schedule = events.Rule(
            self,
            "ReporterSchedule",
            description="SessionWatch: decide pending verdicts and send deployment reports",
            schedule=events.Schedule.rate(Duration.minutes(1)),
            targets=[
                targets.LambdaFunction(
                    self.reporter.function,
                    dead_letter_queue=self.undelivered["Reporter"],
                    retry_attempts=failures.SCHEDULE_RETRY_ATTEMPTS,
                    max_event_age=failures.SCHEDULE_MAX_EVENT_AGE,
                )
            ],
        )

        self.alarms: dict[str, ServiceAlarms] = {
            service: service_alarms(
                Construct(self, f"Alarms-{service}"),
                name_prefix=stack.stack_name,
                service=service,
                thresholds=props.thresholds,
                topic=self.topic,
                loss_period=self.loss_alarm_period,
            )
            for service in props.service_names
        }
        # One per server service.name: the server's metrics are keyed by it, not by the ECS
        # service (it defaults to each watched service's own name).
        self.capacity_alarms: dict[str, cloudwatch.Alarm] = {
            server: session_capacity_alarm(
                Construct(self, f"Alarms-SessionCapacity-{server}"),
                "SessionCapacity",
                name=f"{stack.stack_name}-SessionWatch-{server}-session-cap",
                server_service=server,
                threshold=props.thresholds.session_capacity,
                topic=self.topic,
            )
            for server in dict.fromkeys(
                self.server_service_name(service) for service in props.service_names
            )
        }
        # The ALB's own 503s: clients a blue/green clean-up locked out leave no other trace.
        self.load_balancer_alarm = (
            load_balancer_refused_alarm(
                Construct(self, "Alarms-LoadBalancer"),
                "LoadBalancerRefused",
                name=f"{stack.stack_name}-SessionWatch-LoadBalancer-503",
                load_balancer_full_name=props.load_balancer_full_name,
                topic=self.topic,
            )
            if props.load_balancer_full_name
            else None
        )
        self.detector_alarms = {
            name: detector_errors_alarm(
                Construct(self, f"Alarms-{name}"),
                name,
                name=f"{stack.stack_name}-SessionWatch-{name}-errors",
                function=detector.function,
                topic=self.topic,
            )
            for name, detector in detectors.items()
        }
        queues = {
            **{
                f"{name}FailedInvocations": (queue, f"a failed invocation of the {name} detector")
                for name, queue in self.failed_invocations.items()
            },
            **{
                f"{name}Undelivered": (queue, f"an event EventBridge could not deliver to {name}")
                for name, queue in self.undelivered.items()
            },
        }
        self.queue_alarms = {
            id: queue_depth_alarm(
                Construct(self, f"Alarms-{id}"),
                id,
                name=f"{stack.stack_name}-SessionWatch-{id}-waiting",
                queue=queue,
                what=what,
                period=failures.DEPTH_PERIOD,
                topic=self.topic,
            )
            for id, (queue, what) in queues.items()
        }
        self.dashboard = cloudwatch.CfnDashboard(
            self,
            "Dashboard",
            dashboard_name=props.dashboard_name,
            dashboard_body=stack.to_json_string(dashboard_body(self.dashboard_inputs())),
        )
        CfnOutput(self, "TopicArn", value=self.topic.topic_arn)
        CfnOutput(self, "DashboardName", value=self.dashboard.ref)

    def _cluster_arn_of(self, stack: Stack, resource: str, resource_name: str | None) -> str:
        """An ECS ARN in the watched cluster's partition, account and region (the stack's when
        the cluster was given by name): the cluster itself, its services, their deployments."""
        cluster = self.cluster
        return stack.format_arn(
            service="ecs",
            resource=resource,
            resource_name=resource_name if resource_name is not None else cluster.name,
            arn_format=ArnFormat.SLASH_RESOURCE_NAME,
            partition=cluster.partition,
            region=cluster.region,
            account=cluster.account,
        )

    def server_service_name(self, service: str) -> str:
        """The OTel `service.name` the server of ECS service `service` reports its metrics as."""
        return self.props.server_service_name or service

    def deployment_alarm(self, service: str) -> cloudwatch.Alarm:
        """The alarm to name in the service's ECS deployment alarms (docs/architecture.md §6)."""
        return self.alarms[service].deployment_loss

    def dashboard_inputs(self) -> DashboardInputs:
        props = self.props
        return DashboardInputs(
            region=Stack.of(self).region,
            services=tuple(props.service_names),
            server_service_name=props.server_service_name,
            load_balancer_full_name=props.load_balancer_full_name,
            target_group_full_name=props.target_group_full_name,
            alarm_arns=(
                *(alarm.alarm_arn for alarms in self.alarms.values() for alarm in alarms.all()),
                *(alarm.alarm_arn for alarm in self.detector_alarms.values()),
                *(alarm.alarm_arn for alarm in self.queue_alarms.values()),
                *(alarm.alarm_arn for alarm in self.capacity_alarms.values()),
                *((self.load_balancer_alarm.alarm_arn,) if self.load_balancer_alarm else ()),
            ),
            # Both decide verdicts: session events as they arrive, the reporter for pending ones.
            verdict_log_groups=(
                self.session_events.log_group.log_group_name,
                self.reporter.log_group.log_group_name,
            ),
        )

    def _ledger(self, props: SessionWatchProps) -> dynamodb.Table:
        return dynamodb.Table(
            self,
            "Ledger",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            time_to_live_attribute="expires_at",
            removal_policy=props.removal_policy,
        )

    def _environment(self, props: SessionWatchProps) -> dict[str, str]:
        """The one config every handler reads (the contract's environment variables)."""
        env = {
            "LEDGER_TABLE_NAME": self.ledger.table_name,
            "CLUSTER_NAME": self.cluster_arn,
            "SERVICE_NAMES": ",".join(props.service_names),
            "REPORT_TOPIC_ARN": self.topic.topic_arn,
            "GRACE_PERIOD_SECONDS": str(int(props.grace_period.to_seconds())),
            "LEDGER_TTL_DAYS": str(props.ledger_ttl_days),
            "SERVER_METRICS_NAMESPACE": SERVER_METRICS_NAMESPACE,
            "POWERTOOLS_SERVICE_NAME": "sessionwatch",
            "POWERTOOLS_METRICS_NAMESPACE": contract.NAMESPACE,
            SESSIONS_LOST_RESOLUTION_ENV: "1" if props.high_resolution_alarms else "60",
            # One name everywhere: each service's server metrics, for the spike check.
            "SERVER_SERVICE_NAMES": ",".join(
                f"{service}={self.server_service_name(service)}" for service in props.service_names
            ),
        }
        optional = {
            "DEREGISTRATION_DELAY_SECONDS": props.deregistration_delay_seconds,
            "STOP_TIMEOUT_SECONDS": props.stop_timeout_seconds,
            "CLOCK_ERROR_SECONDS": props.clock_error_seconds,
            "LOAD_BALANCER_FULL_NAME": props.load_balancer_full_name,
            "TARGET_GROUP_FULL_NAME": props.target_group_full_name,
            "GROUP_STICKINESS_SECONDS": (
                None if props.group_stickiness is None else int(props.group_stickiness.to_seconds())
            ),
        }
        env.update({key: str(value) for key, value in optional.items() if value is not None})
        env.update(guard_environment(props.drain_gate, props.stop_on_loss, props.first_loss_alert))
        return env

    def _guards(
        self,
        stack: Stack,
        props: SessionWatchProps,
        detectors: dict[str, functions.DetectorFunction],
        code: lambda_.Code,
        layer: lambda_.ILayerVersion,
        environment: dict[str, str],
    ) -> None:
        """Stop on loss, first-loss alert, drain gate: permissions only where turned on."""
        actors = [detectors[name].role for name in functions.HANDLERS]  # every one decides
        if props.stop_on_loss is not None:
            grant_stops(
                stack,
                actors,
                props.cluster_name,
                props.service_names,
                lambda value: _nag_rendered(stack, value),
            )
        if props.first_loss_alert:
            for role in actors:
                if role is not self.reporter.role:
                    topic.grant_publish(self.topic, self.key, role)
        self.drain_gate_function: lambda_.Function | None = None
        if props.drain_gate is not None:
            gate = functions.detector_function(
                self,
                "DrainGate",
                code=code,
                layer=layer,
                environment=environment,
                timeout=Duration.seconds(30),
                log_retention=props.log_retention,
                removal_policy=props.removal_policy,
                failed_invocations=None,  # ECS invokes it synchronously and reads the answer
                retry_attempts=0,
                max_event_age=None,
                handler=GATE_HANDLER,
            )
            gate.role.add_to_principal_policy(
                iam.PolicyStatement(actions=GATE_LEDGER_ACTIONS, resources=[self.ledger.table_arn])
            )
            self.drain_gate_function = gate.function

    def attach_drain_gate(self, service: ecs.BaseService) -> ecs.DeploymentLifecycleLambdaTarget:
        """Hook the drain gate to a watched BLUE_GREEN / LINEAR / CANARY service."""
        if self.drain_gate_function is None or self.props.drain_gate is None:
            raise ValueError("attach_drain_gate needs SessionWatchProps(drain_gate=...)")
        return drain_gate_hook(service, self.drain_gate_function, self.props.drain_gate)

    def _ecs_rule(self, stack: Stack) -> events.CfnRule:
        """The cluster-scoped ECS rule; L1 because the typed EventPattern has no `$or`."""
        service_prefix = self._cluster_arn_of(stack, "service", f"{self.cluster.name}/")
        function = self.ecs_events.function
        rule = events.CfnRule(
            self,
            "EcsEventsRule",
            description="SessionWatch: ECS deployment, task and service events of one cluster",
            event_pattern=ecs_event_pattern(self.cluster_arn, service_prefix),
            state="ENABLED",
            targets=[
                events.CfnRule.TargetProperty(
                    id="EcsEventsDetector",
                    arn=function.function_arn,
                    retry_policy=events.CfnRule.RetryPolicyProperty(
                        maximum_event_age_in_seconds=int(
                            failures.ECS_RULE_MAX_EVENT_AGE.to_seconds()
                        ),
                        maximum_retry_attempts=failures.ECS_RULE_RETRY_ATTEMPTS,
                    ),
                    dead_letter_config=events.CfnRule.DeadLetterConfigProperty(
                        arn=self.undelivered["EcsEvents"].queue_arn
                    ),
                )
            ],
        )
        failures.allow_rule_to_send(
            self.undelivered["EcsEvents"], rule.attr_arn, "EcsEventsRuleDlq"
        )
        function.add_permission(
            "InvokedByEcsEventsRule",
            principal=iam.ServicePrincipal("events.amazonaws.com"),
            source_arn=rule.attr_arn,
        )
        return rule

    def _grant_deployment_reads(self, stack: Stack, role: iam.IRole) -> None:
        """Describe the watched services and their deployments, nothing else of the cluster."""

        def per_service(resource: str, suffix: str = "") -> list[str]:
            return [
                self._cluster_arn_of(stack, resource, f"{self.cluster.name}/{service}{suffix}")
                for service in self.props.service_names
            ]

        services = per_service("service")
        deployments = per_service("service-deployment", "/*")
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=ECS_SERVICE_ACTIONS, resources=services)
        )
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=ECS_DEPLOYMENT_ACTIONS, resources=deployments)
        )
        for arn in deployments:
            Validations.of(role).acknowledge(
                Acknowledgment(
                    id=f"AwsSolutions::AwsSolutions-IAM5[Resource::{_nag_rendered(stack, arn)}]",
                    reason=(
                        "ecs:DescribeServiceDeployments names a deployment whose id exists only "
                        "once ECS created it; the wildcard is that id, under one watched "
                        "service, read when a deployment's start event arrives late."
                    ),
                )
            )

    @staticmethod
    def _grant_metric_reads(role: iam.IRole) -> None:
        """The reporter's spike check reads metrics; GetMetricData has no resource-level scope."""
        role.add_to_principal_policy(
            iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])
        )
        Validations.of(role).acknowledge(
            Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM5[Resource::*]",
                reason=(
                    "cloudwatch:GetMetricData supports no resource-level permissions; the "
                    "reporter reads the MCP server's and the ALB's metrics for the spike check."
                ),
            )
        )
