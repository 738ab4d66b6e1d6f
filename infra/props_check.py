"""`SessionWatchProps` checked at synth time: every mistake named with its prop and its fix.

Pure functions over the props' values (no construct is built here), so the rules live in one
place and a wrong value fails before jsii or CloudFormation sees it. The naming rules are AWS's:

- ECS cluster and service names: "Up to 255 letters (uppercase and lowercase), numbers,
  underscores, and hyphens are allowed" (ECS API Reference, CreateCluster `clusterName`,
  CreateService `serviceName`).
- CloudWatch Logs log group names: 1 to 512 characters of a-z, A-Z, 0-9, `_`, `-`, `/`, `.` and
  `#` (CloudWatch Logs API Reference, CreateLogGroup `logGroupName`, pattern
  `[\\.\\-_/#A-Za-z0-9]+`); names starting with `aws/` are reserved for AWS services.
- An ECS cluster ARN: `arn:<partition>:ecs:<region>:<account>:cluster/<name>` (ECS Developer
  Guide, "Amazon Resource Names (ARNs) and IDs").

Values that are CDK tokens (resolved at deploy time) are not checked: only their type is.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aws_cdk import Duration, Token

ECS_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")
LOG_GROUP_NAME = re.compile(r"[A-Za-z0-9_\-/.#]{1,512}")
CLUSTER_ARN = re.compile(
    r"arn:(?P<partition>[a-z-]+):ecs:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"cluster/(?P<name>[^/]*)"
)
EXAMPLE_LOG_GROUP = 'logs.LogGroup.from_log_group_name(stack, "ServerLogs", "/ecs/orders-mcp")'


class SessionWatchPropsError(ValueError):
    """A `SessionWatchProps` value SessionWatch cannot build a working deployment from."""

    def __init__(self, prop: str, problem: str, fix: str) -> None:
        super().__init__(f"SessionWatchProps.{prop}: {problem}. Fix: {fix}")
        self.prop = prop


@dataclass(frozen=True)
class ClusterRef:
    """The watched cluster, normalized once: its name, and where its ARN's parts come from.

    ``arn`` is None when only a name was given: the construct builds it in the stack's own
    account and region. ``partition``, ``region`` and ``account`` are None when they are the
    stack's (a name, or an ARN held as a token).
    """

    name: str
    arn: str | None
    partition: str | None = None
    region: str | None = None
    account: str | None = None


def _is_token(value: object) -> bool:
    return isinstance(value, str) and Token.is_unresolved(value)


def _require_str(prop: str, value: object, fix: str) -> str:
    if not isinstance(value, str):
        raise SessionWatchPropsError(prop, f"expected a string, got {type(value).__name__}", fix)
    return value


def parse_cluster_arn(prop: str, arn: str) -> ClusterRef:
    """The parts of a concrete ECS cluster ARN, or an error naming what is wrong with it."""
    match = CLUSTER_ARN.fullmatch(arn)
    if match is None:
        raise SessionWatchPropsError(
            prop,
            f"{arn!r} is not an ECS cluster ARN",
            "give arn:aws:ecs:<region>:<account-id>:cluster/<name>, or just the cluster's name",
        )
    check_ecs_name(prop, match["name"], "cluster")
    return ClusterRef(
        name=match["name"],
        arn=arn,
        partition=match["partition"],
        region=match["region"],
        account=match["account"],
    )


def check_ecs_name(prop: str, name: str, what: str) -> None:
    if not ECS_NAME.fullmatch(name):
        problem = "is empty" if not name else f"{name!r} is not a valid ECS {what} name"
        raise SessionWatchPropsError(
            prop,
            problem,
            f"give the {what}'s name as ECS shows it: 1-255 letters, digits, '-' and '_'",
        )


def resolve_cluster(cluster_name: object, cluster_arn: object) -> ClusterRef:
    """``cluster_name`` may be a name or an ARN; ``cluster_arn`` (optional) must agree with it."""
    name = _require_str(
        "cluster_name", cluster_name, 'give the cluster\'s name ("orders") or its ARN'
    )
    if cluster_arn is not None:
        arn = _require_str("cluster_arn", cluster_arn, "give the cluster's ARN as a string")
        if _is_token(arn):
            if name.startswith("arn:"):
                name = parse_cluster_arn("cluster_name", name).name
            elif not _is_token(name):
                check_ecs_name("cluster_name", name, "cluster")
            return ClusterRef(name=name, arn=arn)
        ref = parse_cluster_arn("cluster_arn", arn)
        given = parse_cluster_arn("cluster_name", name).name if name.startswith("arn:") else name
        if given and given != ref.name:
            raise SessionWatchPropsError(
                "cluster_arn",
                f"names cluster {ref.name!r} but cluster_name is {given!r}",
                "give the same cluster in both, or only one of them",
            )
        return ref
    if _is_token(name):
        return ClusterRef(name=name, arn=None)
    if name.startswith("arn:"):
        return parse_cluster_arn("cluster_name", name)
    check_ecs_name("cluster_name", name, "cluster")
    return ClusterRef(name=name, arn=None)


def check_service_names(service_names: object) -> tuple[str, ...]:
    """A non-empty list of distinct, valid ECS service names (a lone string is refused)."""
    fix = 'give a list of ECS service names, e.g. service_names=["orders-mcp"]'
    if isinstance(service_names, str):
        raise SessionWatchPropsError(
            "service_names",
            f"got the string {service_names!r}, not a list of names",
            f'write service_names=["{service_names}"]',
        )
    if not isinstance(service_names, Sequence) or isinstance(service_names, bytes):
        raise SessionWatchPropsError(
            "service_names", f"expected a list, got {type(service_names).__name__}", fix
        )
    if not service_names:
        raise SessionWatchPropsError("service_names", "is empty: nothing would be watched", fix)
    seen: set[str] = set()
    for name in service_names:
        name = _require_str("service_names", name, fix)
        if _is_token(name):
            raise SessionWatchPropsError(
                "service_names",
                "holds a token: alarms and dashboard rows are built per service name",
                "give the service names as plain strings",
            )
        check_ecs_name("service_names", name, "service")
        if name in seen:
            raise SessionWatchPropsError(
                "service_names", f"names {name!r} twice", "list each service once"
            )
        seen.add(name)
    return tuple(service_names)


def check_log_group_name(prop: str, name: str) -> None:
    if _is_token(name):
        return
    if not LOG_GROUP_NAME.fullmatch(name) or name.startswith("aws/"):
        raise SessionWatchPropsError(
            prop,
            f"{name!r} is not a log group name CloudWatch Logs accepts",
            "use 1-512 characters of letters, digits, '_', '-', '/', '.', '#', not starting "
            "with 'aws/' (e.g. /ecs/orders-mcp)",
        )


def check_server_log_group(log_group: object) -> None:
    """An ``ILogGroup`` construct (a plain string is the common mistake)."""
    if isinstance(log_group, str):
        raise SessionWatchPropsError(
            "server_log_group",
            f"got the string {log_group!r}, not a log group construct",
            f"pass {EXAMPLE_LOG_GROUP.replace('/ecs/orders-mcp', log_group)}",
        )
    # ILogGroup is a jsii interface (a Protocol Python cannot isinstance-check): duck-typed.
    if not all(hasattr(log_group, a) for a in ("log_group_name", "log_group_arn", "node")):
        raise SessionWatchPropsError(
            "server_log_group",
            f"expected an aws_logs.ILogGroup, got {type(log_group).__name__}",
            f"pass {EXAMPLE_LOG_GROUP}",
        )
    check_log_group_name("server_log_group", str(getattr(log_group, "log_group_name", "")))


def check_types(props: Any) -> None:
    """The remaining props' types, checked before jsii turns a mistake into a long error."""
    from aws_cdk import aws_logs as logs

    from sessionwatch.infra.alarms import Thresholds

    expected: dict[str, tuple[type | tuple[type, ...], str]] = {
        "grace_period": (Duration, "Duration.seconds(120)"),
        "thresholds": (Thresholds, "Thresholds(...)"),
        "log_retention": (logs.RetentionDays, "logs.RetentionDays.ONE_MONTH"),
        "high_resolution_alarms": (bool, "True or False"),
    }
    for prop, (kind, example) in expected.items():
        value = getattr(props, prop)
        if not isinstance(value, kind):
            raise SessionWatchPropsError(
                prop, f"expected {example}, got {type(value).__name__}", f"write {prop}={example}"
            )
    for prop in ("ledger_ttl_days", "deregistration_delay_seconds", "stop_timeout_seconds"):
        value = getattr(props, prop)
        if value is None and prop != "ledger_ttl_days":
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SessionWatchPropsError(
                prop, f"expected a whole number of at least 0, got {value!r}", f"give {prop}=30"
            )
    clock = props.clock_error_seconds
    if clock is not None and (
        isinstance(clock, bool)
        or not isinstance(clock, (int, float))
        or not math.isfinite(clock)
        or clock < 0
    ):
        raise SessionWatchPropsError(
            "clock_error_seconds",
            f"expected a number of seconds of at least 0, got {clock!r}",
            "give clock_error_seconds=0.05, or leave it out for the detectors' 1 s",
        )
    if props.ledger_ttl_days < 1:
        raise SessionWatchPropsError(
            "ledger_ttl_days", "must be at least 1", "give ledger_ttl_days=14 (the default)"
        )
    for prop in ("server_service_name", "dashboard_name"):
        value = getattr(props, prop)
        if value is not None and (not isinstance(value, str) or not value):
            raise SessionWatchPropsError(
                prop, f"expected a non-empty string or None, got {value!r}", f"leave {prop} out"
            )
    emails = props.alarm_email_subscribers
    if isinstance(emails, str):
        raise SessionWatchPropsError(
            "alarm_email_subscribers",
            f"got the string {emails!r}, not a list of addresses",
            f'write alarm_email_subscribers=["{emails}"]',
        )
    for email in emails:
        if not isinstance(email, str) or "@" not in email:
            raise SessionWatchPropsError(
                "alarm_email_subscribers",
                f"{email!r} is not an e-mail address",
                'give addresses like "oncall@example.com"',
            )
    if isinstance(props.chat_channels, (str, bytes)):
        raise SessionWatchPropsError(
            "chat_channels",
            "got a string, not a list of channel configurations",
            "pass the aws_chatbot channel configuration constructs in a list",
        )


def has_subscriber(props: Any) -> bool:
    """Whether anyone hears the alarms: e-mails, chat channels, or the user's own topic."""
    return bool(props.alarm_email_subscribers or props.chat_channels or props.notification_topic)


NO_SUBSCRIBER_WARNING = (
    "SessionWatch's alarms and deployment reports go to an SNS topic nobody is subscribed to: "
    "set SessionWatchProps.alarm_email_subscribers, chat_channels or notification_topic, or "
    "subscribe to the TopicArn output yourself"
)


def check_props(props: Any) -> ClusterRef:
    """Every check above, in the order a reader of the props meets them; the normalized cluster."""
    cluster = resolve_cluster(props.cluster_name, props.cluster_arn)
    check_service_names(props.service_names)
    check_server_log_group(props.server_log_group)
    check_types(props)
    return cluster
