"""Helpers to read synthesized CloudFormation: resolve the few intrinsics our templates use.

The event pattern and the dashboard body hold `Ref`/`Fn::Join`/`Fn::GetAtt`; tests resolve them
against a fixed account and region (the ECS fixtures' own) to evaluate them as AWS would.
"""

from __future__ import annotations

from typing import Any

ACCOUNT = "111122223333"
REGION = "us-east-1"
PSEUDO = {
    "AWS::AccountId": ACCOUNT,
    "AWS::Region": REGION,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}


def resolve(value: Any, refs: dict[str, str] | None = None) -> Any:
    """Resolve Ref / Fn::Join / Fn::GetAtt; unknown Refs and GetAtts become readable markers."""
    refs = refs or {}
    if isinstance(value, list):
        return [resolve(v, refs) for v in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Ref"}:
        name = value["Ref"]
        return PSEUDO.get(name, refs.get(name, f"ref-{name}"))
    if set(value) == {"Fn::Join"}:
        sep, parts = value["Fn::Join"]
        return sep.join(str(resolve(p, refs)) for p in parts)
    if set(value) == {"Fn::GetAtt"}:
        logical, attribute = value["Fn::GetAtt"]
        return refs.get(f"{logical}.{attribute}", f"getatt-{logical}-{attribute}")
    return {k: resolve(v, refs) for k, v in value.items()}


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == type_}


def one(template: dict[str, Any], type_: str) -> tuple[str, dict[str, Any]]:
    found = resources(template, type_)
    assert len(found) == 1, f"expected one {type_}, found {sorted(found)}"
    return next(iter(found.items()))


def logical_id_by_path(template: dict[str, Any], type_: str, path_part: str) -> str:
    """The logical id of the resource of `type_` whose construct path contains `path_part`."""
    matches = [
        k
        for k, v in resources(template, type_).items()
        if path_part in v.get("Metadata", {}).get("aws:cdk:path", "")
    ]
    assert len(matches) == 1, f"{type_} with path {path_part!r}: {matches}"
    return matches[0]
