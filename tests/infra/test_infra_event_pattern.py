"""The ECS rule's pattern, evaluated by moto's EventBridge matcher against real-shaped events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from moto.events.models import EventPattern

from sessionwatch.infra.event_pattern import DETAIL_TYPES
from tests.infra import cfn
from tests.infra.conftest import Synth

ECS_FIXTURES = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "ecs").glob("*.json"))
# The demo stack's cluster resolves to this name (its `Ref`), like the fixtures' cluster.
CLUSTER = "mcp-cluster"


def _rule_pattern(template: dict[str, Any], refs: dict[str, str]) -> EventPattern:
    rule = cfn.resources(template, "AWS::Events::Rule")
    patterns = [
        r["Properties"]["EventPattern"] for r in rule.values() if "EventPattern" in r["Properties"]
    ]
    assert len(patterns) == 1, "exactly one event-pattern rule (the ECS rule)"
    return EventPattern.load(json.dumps(cfn.resolve(patterns[0], refs)))


@pytest.fixture(scope="module")
def addon_pattern(synthesized: Synth) -> EventPattern:
    return _rule_pattern(synthesized.addon, {})


@pytest.fixture(scope="module")
def demo_pattern(synthesized: Synth) -> EventPattern:
    cluster_id = cfn.one(synthesized.demo, "AWS::ECS::Cluster")[0]
    arn = f"arn:aws:ecs:{cfn.REGION}:{cfn.ACCOUNT}:cluster/{CLUSTER}"
    return _rule_pattern(synthesized.demo, {cluster_id: CLUSTER, f"{cluster_id}.Arn": arn})


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
        moved = json.loads(json.dumps(_load(path)).replace(cfn.ACCOUNT, "999988887777"))
        assert not addon_pattern.matches_event(moved), path.stem
