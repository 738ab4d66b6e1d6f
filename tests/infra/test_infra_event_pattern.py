"""The ECS rule's pattern, evaluated by moto's EventBridge matcher against real-shaped events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template
from moto.events.models import EventPattern

from lab.template import resolve
from sessionwatch.infra.event_pattern import DETAIL_TYPES
from tests.infra.conftest import ACCOUNT, PSEUDO_REFS, REGION, Synth, logical_id

ECS_FIXTURES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "ecs").glob("*.json"))
# The demo stack's cluster resolves to this name (its `Ref`), like the fixtures' cluster.
CLUSTER = "mcp-cluster"


def _rule_pattern(template: Template, refs: dict[str, str]) -> EventPattern:
    rules = template.find_resources(
        "AWS::Events::Rule", {"Properties": {"EventPattern": Match.any_value()}}
    )
    assert len(rules) == 1, "exactly one event-pattern rule (the ECS rule)"
    (rule,) = rules.values()
    pattern = resolve(rule["Properties"]["EventPattern"], {**PSEUDO_REFS, **refs})
    return EventPattern.load(json.dumps(pattern))


@pytest.fixture(scope="module")
def addon_pattern(synthesized: Synth) -> EventPattern:
    return _rule_pattern(synthesized.addon_template, {})


@pytest.fixture(scope="module")
def demo_pattern(synthesized: Synth) -> EventPattern:
    cluster_id = logical_id(synthesized.demo_stack.cluster)
    arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"
    return _rule_pattern(synthesized.demo_template, {cluster_id: CLUSTER, f"{cluster_id}.Arn": arn})


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _other_cluster(event: dict[str, Any], name: str) -> dict[str, Any]:
    """The same event, as another cluster of the same account would emit it."""
    text = json.dumps(event)
    assert CLUSTER in text
    return json.loads(text.replace(CLUSTER, name))


def test_fixtures_cover_every_detail_type() -> None:
    assert {_load(p)["detail-type"] for p in ECS_FIXTURES} == set(DETAIL_TYPES)


@pytest.mark.parametrize("path", ECS_FIXTURES, ids=lambda p: p.stem)
def test_every_sample_of_the_cluster_is_routed(
    path: Path, addon_pattern: EventPattern, demo_pattern: EventPattern
) -> None:
    event = _load(path)
    assert addon_pattern.matches_event(event)
    assert demo_pattern.matches_event(event)


@pytest.mark.parametrize("other", ["other-cluster", "mcp-cluster-2", "mcp"])
@pytest.mark.parametrize("path", ECS_FIXTURES, ids=lambda p: p.stem)
def test_events_of_another_cluster_are_rejected(
    path: Path, other: str, addon_pattern: EventPattern
) -> None:
    # "mcp-cluster-2" shares the prefix: the pattern's trailing slash must keep it out.
    assert not addon_pattern.matches_event(_other_cluster(_load(path), other))


def test_other_sources_and_detail_types_are_rejected(addon_pattern: EventPattern) -> None:
    event = _load(ECS_FIXTURES[0])
    not_ecs = copy.deepcopy(event)
    not_ecs["source"] = "aws.autoscaling"
    assert not addon_pattern.matches_event(not_ecs)
    other_type = copy.deepcopy(event)
    other_type["detail-type"] = "ECS Container Instance State Change"
    assert not addon_pattern.matches_event(other_type)


def test_another_account_is_rejected(addon_pattern: EventPattern) -> None:
    for path in ECS_FIXTURES:
        moved = json.loads(json.dumps(_load(path)).replace(ACCOUNT, "999988887777"))
        assert not addon_pattern.matches_event(moved), path.stem
