"""The real synthesized add-on template, and what the lab reads from it.

The lab does not restate SessionWatch's AWS wiring: it synthesizes ``SessionWatchStack`` (the
add-on, attached to the lab's cluster, service and log group) and reads from the template the
alarms, the subscription filter pattern, the ECS event rule's pattern, the ledger table's keys
and the detector functions' environment. A change in infra/ therefore changes the lab.

Only the add-on stack is synthesized: the demo stack builds a container image asset the lab does
not need. cdk-nag runs in infra's own tests, not here (it would add seconds to every lab run).
CloudFormation intrinsics are resolved with ``resolve`` against the lab's values (pseudo
parameters and the physical names the lab gave to the table and the topic in moto).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADDON_STACK = "SessionWatchStack"
HANDLER_PREFIX = "sessionwatch.detectors.handlers."


@dataclass(frozen=True)
class LabSettings:
    """The add-on's inputs for the lab's local "account" (scaled-down durations)."""

    cluster: str = "sessionwatch-lab"
    service: str = "mcp-server"
    log_group: str = "/lab/mcp-server"
    grace_period_s: int = 5
    deregistration_delay_s: int = 3
    stop_timeout_s: int = 3
    # The stand-in ALB's CloudWatch dimension (lab.alb_metrics publishes its metrics under it):
    # turns on the ELB 503 alarm and the report's lock-out paragraph.
    load_balancer_full_name: str = "app/sessionwatch-lab/haproxy"
    drain_gate_max_hold_s: int = 600


def synth_addon(outdir: Path, settings: LabSettings) -> Path:
    """Synthesize the add-on stack into ``outdir``; returns the template path (~5-10 s)."""
    # jsii prints a large Node end-of-life banner on every start; the lab's output is for people.
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
    from aws_cdk import App  # imported here: starting jsii costs seconds, only synth needs it

    from sessionwatch.infra.addon import AddonSettings, SessionWatchStack

    app = App(outdir=str(outdir))
    SessionWatchStack(
        app,
        ADDON_STACK,
        settings=AddonSettings(
            cluster_name=settings.cluster,
            service_names=(settings.service,),
            log_group_name=settings.log_group,
            server_service_name=settings.service,
            grace_period_seconds=settings.grace_period_s,
            deregistration_delay_seconds=settings.deregistration_delay_s,
            stop_timeout_seconds=settings.stop_timeout_s,
            load_balancer_full_name=settings.load_balancer_full_name,
            # The drain gate's function is in the template (nothing invokes it unless a
            # scenario's service has the hook); each scenario sets the guards' values.
            drain_gate_max_hold_seconds=settings.drain_gate_max_hold_s,
        ),
    )
    app.synth()
    return outdir / f"{ADDON_STACK}.template.json"


_SUB = re.compile(r"\$\{([^}]+)\}")


def resolve(value: Any, refs: Mapping[str, str]) -> Any:
    """``value`` with ``Ref``, ``Fn::GetAtt``, ``Fn::Join`` and ``Fn::Sub`` resolved via ``refs``.

    ``refs`` maps logical ids and pseudo parameters (``AWS::Region``) to values, and
    ``LogicalId.Attribute`` to attribute values. Unknown names resolve to ``<name>`` so a lab
    value that is missing shows up in the output instead of raising.
    """
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Ref":
            return refs.get(str(arg), f"<{arg}>")
        if key == "Fn::GetAtt":
            name = ".".join(arg) if isinstance(arg, list) else str(arg)
            return refs.get(name, f"<{name}>")
        if key == "Fn::Join":
            separator, parts = arg
            return str(separator).join(str(resolve(p, refs)) for p in parts)
        if key == "Fn::Sub":
            text = arg if isinstance(arg, str) else arg[0]
            return _SUB.sub(lambda m: refs.get(m.group(1), f"<{m.group(1)}>"), text)
    return {k: resolve(v, refs) for k, v in value.items()}


@dataclass(frozen=True)
class AddonTemplate:
    """The raw template plus accessors for what the lab wires up."""

    raw: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> AddonTemplate:
        return cls(json.loads(path.read_text()))

    def resources(self, type_name: str) -> dict[str, dict[str, Any]]:
        return {
            logical_id: resource.get("Properties") or {}
            for logical_id, resource in (self.raw.get("Resources") or {}).items()
            if resource.get("Type") == type_name
        }

    def only(self, type_name: str) -> tuple[str, dict[str, Any]]:
        found = self.resources(type_name)
        if len(found) != 1:
            raise ValueError(f"expected one {type_name} in the template, found {len(found)}")
        return next(iter(found.items()))

    def subscription_filter_pattern(self) -> str:
        return str(self.only("AWS::Logs::SubscriptionFilter")[1]["FilterPattern"])

    def ecs_event_pattern(self, refs: Mapping[str, str]) -> dict[str, Any]:
        """The pattern of the rule whose pattern names source ``aws.ecs``."""
        for props in self.resources("AWS::Events::Rule").values():
            pattern = props.get("EventPattern")
            if isinstance(pattern, dict) and "aws.ecs" in (pattern.get("source") or []):
                resolved: dict[str, Any] = resolve(pattern, refs)
                return resolved
        raise ValueError("no aws.ecs event rule in the template")

    def table(self) -> tuple[str, dict[str, Any]]:
        return self.only("AWS::DynamoDB::Table")

    def topic_id(self) -> str:
        return self.only("AWS::SNS::Topic")[0]

    def function_env(self, handler: str, refs: Mapping[str, str]) -> dict[str, str]:
        """The resolved environment of the function whose handler is ``handler``."""
        for props in self.resources("AWS::Lambda::Function").values():
            if props.get("Handler") == handler:
                env = (props.get("Environment") or {}).get("Variables") or {}
                return {k: str(resolve(v, refs)) for k, v in env.items()}
        raise ValueError(f"no function with handler {handler} in the template")
