"""The repository's layout and import rules (docs/architecture.md section 1).

- each part is importable only as ``sessionwatch.<part>``: ``sessionwatch/<part>`` links to the
  top-level folder, and no code imports a part under its folder name;
- dependencies point one way: the live-service tools (``sessionwatch.ops``) never import the lab,
  the dashboard never imports the construct, nothing in the package imports the lab, the
  benchmarks or the tests, and ``contract`` imports nothing of the project;
- the project carries its own architecture document: nothing points at a design file outside it.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PARTS = ("server", "detectors", "infra", "dashboards", "ops")
REPO_TOOLS = ("lab", "benchmarks", "tests")
SKIP_DIRS = {".git", ".venv", "node_modules", "cdk.out", "lab-report", "__pycache__", "build"}


def _files(suffixes: tuple[str, ...]) -> Iterator[Path]:
    for path in REPO_ROOT.rglob("*"):
        rel = path.relative_to(REPO_ROOT)
        if rel.parts[0] == "sessionwatch" and len(rel.parts) > 1 and rel.parts[1] in PARTS:
            continue  # the links: the same files are checked under their real folders
        if any(p in SKIP_DIRS or p.startswith(".venv") for p in rel.parts):
            continue
        if path.is_file() and path.suffix in suffixes:
            yield path


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _part_of(path: Path) -> str:
    rel = path.relative_to(REPO_ROOT)
    return rel.parts[0] if len(rel.parts) > 1 else ""


def test_each_part_is_linked_into_the_package() -> None:
    for part in PARTS:
        link = REPO_ROOT / "sessionwatch" / part
        assert link.is_symlink() and link.resolve() == (REPO_ROOT / part).resolve(), part


def test_no_code_imports_a_part_under_its_folder_name() -> None:
    offenders = [
        (str(path.relative_to(REPO_ROOT)), module)
        for path in _files((".py",))
        for module in _imports(path)
        if module.split(".")[0] in PARTS
    ]
    assert offenders == []


@pytest.mark.parametrize(
    ("part", "forbidden"),
    [
        ("ops", ("lab", "benchmarks", "tests", "sessionwatch.infra", "uvicorn")),
        ("dashboards", ("sessionwatch.infra", "lab", "benchmarks", "tests")),
        ("detectors", ("sessionwatch.server", "sessionwatch.infra", "sessionwatch.ops", "lab")),
        ("server", ("sessionwatch.detectors", "sessionwatch.infra", "sessionwatch.ops", "lab")),
        ("infra", ("lab", "benchmarks", "tests", "sessionwatch.ops")),
    ],
)
def test_dependencies_point_one_way(part: str, forbidden: tuple[str, ...]) -> None:
    allowed_uvicorn = {"server"}  # the server runs under uvicorn; nothing else needs it
    for path in _files((".py",)):
        if _part_of(path) != part:
            continue
        for module in _imports(path):
            for name in forbidden:
                if name == "uvicorn" and part in allowed_uvicorn:
                    continue
                assert module != name and not module.startswith(name + "."), (path, module)


def test_contract_imports_only_the_standard_library() -> None:
    modules = _imports(REPO_ROOT / "sessionwatch" / "contract.py")
    assert {m.split(".")[0] for m in modules} <= {"__future__", "enum", "typing"}


def test_nothing_points_outside_the_project_for_its_design() -> None:
    needles = ("DESIGN section", "shared/DESIGN", "../shared", "shared/fixtures")
    offenders = [
        (str(path.relative_to(REPO_ROOT)), needle)
        for path in _files((".py", ".md", ".toml", ".json", ".sh", ".cfg", ".txt", ""))
        if path.name != "test_layout.py"
        for needle in needles
        if needle in path.read_text(errors="replace")
    ]
    assert offenders == []


# The detectors' ledger (detectors/ledger/): storage behind a typed interface, deciding nothing.
_LEDGER = REPO_ROOT / "detectors" / "ledger"
_DECIDERS = ("core", "rules", "classify", "ingest", "reporter_run", "report_document")
_STORAGE_NAMES = ("sent_at", "sent_end", "followup_due", "followup_at", "claim_at", "LOST#")


def _detector_modules() -> Iterator[Path]:
    return (p for p in (REPO_ROOT / "detectors").rglob("*.py") if "__pycache__" not in p.parts)


def test_the_ledger_imports_no_rule() -> None:
    for path in _LEDGER.glob("*.py"):
        for module in _imports(path):
            for name in _DECIDERS:
                assert module != f"sessionwatch.detectors.{name}", (path.name, module)


def test_only_the_ledger_knows_its_dynamodb_layout() -> None:
    """Item layout and attribute names stay inside detectors/ledger/dynamodb*.py."""
    for path in _detector_modules():
        if path.parent == _LEDGER and path.name.startswith(("dynamodb", "__init__")):
            continue
        for module in _imports(path):
            assert not module.startswith("sessionwatch.detectors.ledger.dynamodb_items"), path
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert node.value not in _STORAGE_NAMES, (str(path), node.value)


def test_the_detectors_decide_in_rules_only() -> None:
    """``detectors.core`` is a re-export for outside callers; inside, rules are ``rules``."""
    for path in _detector_modules():
        assert "sessionwatch.detectors.core" not in _imports(path), path
