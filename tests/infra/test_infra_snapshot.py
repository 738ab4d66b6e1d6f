"""A snapshot of the add-on stack's template: any change to what users deploy shows up in review.

The snapshot is the template synthesized from cdk.json's context, with the one part that changes
on every unrelated edit normalized: asset hashes (the Lambda asset's S3 key is the hash of the
detectors' code). Update it deliberately after a reviewed change:

    SESSIONWATCH_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/infra/test_infra_snapshot.py
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from sessionwatch.infra.app import ADDON_STACK
from tests.infra.conftest import Synth

SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / f"{ADDON_STACK}.template.json"
UPDATE_ENV = "SESSIONWATCH_UPDATE_SNAPSHOTS"
ASSET_HASH = re.compile(r"\b[0-9a-f]{64}\b")


def normalized(template: dict[str, Any]) -> dict[str, Any]:
    """The template with every 64-hex asset hash replaced by a placeholder."""
    text = ASSET_HASH.sub("<asset-hash>", json.dumps(template, sort_keys=True))
    result: dict[str, Any] = json.loads(text)
    return result


def _differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Where two JSON values differ, as readable paths (the first few)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for key in sorted(set(old) | set(new)):
            if key not in old:
                out.append(f"added {path}/{key}")
            elif key not in new:
                out.append(f"removed {path}/{key}")
            else:
                out += _differences(old[key], new[key], f"{path}/{key}")
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [
            d
            for i, (a, b) in enumerate(zip(old, new, strict=True))
            for d in _differences(a, b, f"{path}[{i}]")
        ]
    return (
        []
        if old == new
        else [f"changed {path}: {json.dumps(old)[:120]} -> {json.dumps(new)[:120]}"]
    )


def test_addon_template_matches_its_snapshot(synthesized: Synth) -> None:
    current = normalized(synthesized.addon_template.to_json())
    if os.environ.get(UPDATE_ENV) == "1":
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    assert SNAPSHOT.exists(), f"no snapshot yet: run with {UPDATE_ENV}=1 and commit {SNAPSHOT}"
    recorded = json.loads(SNAPSHOT.read_text())
    differences = _differences(recorded, current)
    assert not differences, (
        f"{ADDON_STACK} differs from {SNAPSHOT.name} ({len(differences)} places; if intended, "
        f"rerun with {UPDATE_ENV}=1 and review the diff):\n" + "\n".join(differences[:20])
    )


def test_the_normalization_hides_only_asset_hashes(synthesized: Synth) -> None:
    """The snapshot would be useless if normalizing erased real content."""
    raw = json.dumps(synthesized.addon, sort_keys=True)
    hashes = set(ASSET_HASH.findall(raw))
    assert hashes, "the Lambda asset's key is a content hash"
    code_keys = {
        f["Properties"]["Code"]["S3Key"]
        for f in synthesized.addon_template.find_resources("AWS::Lambda::Function").values()
    }
    assert {key.removesuffix(".zip") for key in code_keys} == hashes
