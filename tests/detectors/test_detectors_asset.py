"""The Lambda asset contract: detectors/ imports only what the Powertools v3 layer provides."""

from __future__ import annotations

import ast
from pathlib import Path

ALLOWED = {"boto3", "botocore", "aws_lambda_powertools", "pydantic", "detectors"}
DETECTORS = Path(__file__).resolve().parents[2] / "detectors"


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module.split(".")[0])
    return found


def test_detectors_import_only_stdlib_aws_powertools_and_pydantic() -> None:
    import sys

    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    sources = sorted(DETECTORS.rglob("*.py"))
    assert len(sources) > 10
    for path in sources:
        outside = _imports(path) - ALLOWED - stdlib
        assert not outside, f"{path.relative_to(DETECTORS.parent)} imports {outside}"
