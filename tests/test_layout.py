"""The repository's layout and import rules (docs/architecture.md section 1).

- each part is importable only as ``sessionwatch.<part>``: ``sessionwatch/<part>`` links to the
  top-level folder, and no code imports a part under its folder name;
- dependencies point one way: the live-service tools (``sessionwatch.ops``) never import the lab,
  the dashboard never imports the construct, nothing in the package imports the lab, the
  benchmarks or the tests, and ``contract`` imports nothing of the project;
- the project carries its own architecture document: nothing points at a design file outside it;
- the simulated world is built once: ``world`` (ECS events, server lines, Logs payloads, the
  handler harness) imports no lab, benchmark or test and nothing in the package imports it; no
  module outside it (and outside the detectors, which parse these events) spells ECS's stop codes,
  builds a Logs subscription payload, defines its own ``iso`` or reaches into Powertools'
  private ``_logger``; only ``world.harness`` points the handlers' runtime at a clock or an
  ECS client;
- the detectors' ledger decides nothing, and its DynamoDB layout (attribute names, key
  prefixes) is spelled only in ``detectors/ledger/dynamodb*.py``, split by job into modules
  read in one sitting.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PARTS = ("server", "sidecar", "detectors", "infra", "dashboards", "ops")
REPO_TOOLS = ("lab", "benchmarks", "tests", "world")
SKIP_DIRS = {".git", ".venv", "node_modules", "cdk.out", "lab-report", "__pycache__", "build"}


def _files(suffixes: tuple[str, ...]) -> Iterator[Path]:
    # os.walk, pruned: the venvs and node_modules hold tens of thousands of files.
    for folder, dirs, names in os.walk(REPO_ROOT):
        here = Path(folder)
        rel = here.relative_to(REPO_ROOT).parts
        dirs[:] = sorted(
            d
            for d in dirs
            if d not in SKIP_DIRS
            and not d.startswith(".venv")
            # the links: the same files are checked under their real folders
            and not (rel == ("sessionwatch",) and d in PARTS)
        )
        for name in sorted(names):
            path = here / name
            if path.suffix in suffixes and path.is_file():
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
        ("ops", ("lab", "benchmarks", "tests", "world", "sessionwatch.infra", "uvicorn")),
        ("dashboards", ("sessionwatch.infra", "lab", "benchmarks", "tests", "world")),
        (
            "detectors",
            ("sessionwatch.server", "sessionwatch.infra", "sessionwatch.ops", "lab", "world"),
        ),
        (
            "server",
            (
                "sessionwatch.detectors",
                "sessionwatch.infra",
                "sessionwatch.ops",
                "sessionwatch.sidecar",
                "lab",
                "world",
            ),
        ),
        ("infra", ("lab", "benchmarks", "tests", "world", "sessionwatch.ops")),
        ("world", ("lab", "benchmarks", "tests")),
        (
            "sidecar",
            ("sessionwatch.detectors", "sessionwatch.infra", "sessionwatch.ops", "lab", "world"),
        ),
    ],
)
def test_dependencies_point_one_way(part: str, forbidden: tuple[str, ...]) -> None:
    allowed_uvicorn = {"server", "sidecar"}  # they run under uvicorn; nothing else needs it
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


# What only the simulated world spells out (the detectors parse the same strings: they are AWS's).
WORLD_ONLY = (
    '"ServiceSchedulerInitiated"',
    '"EssentialContainerExited"',
    '"SpotInterruption"',
    '"logEvents":',
    "def iso(",
    "def _iso(",
    "._logger",
)


def test_the_simulated_world_is_built_once() -> None:
    offenders = [
        (str(path.relative_to(REPO_ROOT)), needle)
        for path in _files((".py",))
        if _part_of(path) in ("lab", "benchmarks", "tests") and path.name != "test_layout.py"
        for needle in WORLD_ONLY
        if needle in path.read_text()
    ]
    assert offenders == []


def test_the_world_is_used_where_it_was_written_before() -> None:
    """The lab, the benchmarks and the detector tests build their inputs from ``world``."""
    users = {
        "lab/cluster.py": "world.ecs",
        "benchmarks/timelines.py": "world.ecs",
        "benchmarks/accuracy.py": "world.harness",
        "benchmarks/ledger_cost.py": "world.harness",
        "tests/detectors/builders.py": "world.server_logs",
        "tests/detectors/conftest.py": "world.harness",
        "tests/detectors/test_detectors_handlers.py": "world.harness",
        "tests/detectors/test_detectors_late_facts.py": "world.harness",
        "tests/detectors/test_detectors_occurrence_order.py": "world.harness",
        "tests/detectors/test_detectors_properties.py": "world.harness",
        "tests/detectors/test_detectors_scenario.py": "world.harness",
        "tests/ops/test_ops_redrive.py": "world.harness",
    }
    for rel, module in users.items():
        assert module in _imports(REPO_ROOT / rel), rel


def _sets_the_handlers_runtime(tree: ast.AST) -> list[str]:
    """``runtime.clock = ...`` / ``runtime.ecs = ...`` or ``setattr(runtime, "clock", ...)``
    (monkeypatch's included): the harness's job."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                if (
                    isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "runtime"
                    and target.attr in ("clock", "ecs")
                ):
                    found.append(f"runtime.{target.attr} =")
        elif isinstance(node, ast.Call) and len(node.args) >= 2:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            owner, attr = node.args[0], node.args[1]
            if (
                name == "setattr"
                and isinstance(owner, ast.Name)
                and owner.id == "runtime"
                and isinstance(attr, ast.Constant)
                and attr.value in ("clock", "ecs")
            ):
                found.append(f"setattr(runtime, {attr.value!r})")
    return found


def test_only_the_harness_sets_the_handlers_clock_and_ecs_client() -> None:
    """The handler harness is written once (``world.harness``): no test, lab module or
    benchmark points the detectors' runtime at its own clock or ECS client."""
    offenders = [
        (str(path.relative_to(REPO_ROOT)), what)
        for path in _files((".py",))
        if _part_of(path) != "world" and path.name != "test_layout.py"
        for what in _sets_the_handlers_runtime(ast.parse(path.read_text(), str(path)))
    ]
    assert offenders == []
    planted = ast.parse('monkeypatch.setattr(runtime, "clock", f)\nruntime.ecs = g')
    assert sorted(_sets_the_handlers_runtime(planted)) == [
        "runtime.ecs =",
        "setattr(runtime, 'clock')",
    ]


# The detectors' ledger (detectors/ledger/): storage behind a typed interface, deciding nothing.
_LEDGER = REPO_ROOT / "detectors" / "ledger"
_DECIDERS = ("core", "rules", "classify", "ingest", "reporter_run", "report_document")


def _detector_modules() -> Iterator[Path]:
    return (p for p in (REPO_ROOT / "detectors").rglob("*.py") if "__pycache__" not in p.parts)


def _storage_names() -> tuple[set[str], tuple[str, ...]]:
    """The layout's attribute names (spelled whole) and its key prefixes (spelled at the start
    of a string), read from ``dynamodb_items`` so a new name is guarded once it is defined."""
    from sessionwatch.detectors.ledger import dynamodb_items as items

    names = {*items.REPORT_ATTRS.values(), items.REVISITED_ATTR, items.DEP_STARTED_ATTR}
    names.add(items.EXPIRES_ATTR)
    prefixes = tuple(
        value
        for name, value in vars(items).items()
        if name.endswith("_PREFIX") and isinstance(value, str) and len(value) > 2
    )
    return names, prefixes


def _spells_storage(path: Path) -> list[str]:
    names, prefixes = _storage_names()
    return [
        node.value
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
        if node.value in names or node.value.startswith(prefixes)
    ]


def test_the_ledger_imports_no_rule() -> None:
    for path in _LEDGER.glob("*.py"):
        for module in _imports(path):
            for name in _DECIDERS:
                assert module != f"sessionwatch.detectors.{name}", (path.name, module)


def test_the_dynamodb_ledger_is_split_by_job_into_modules_read_in_one_sitting() -> None:
    """``DynamoDBLedger`` is one public class over job modules (``dynamodb_*.py``), none long."""
    modules = sorted(_LEDGER.glob("dynamodb*.py"))
    assert len(modules) >= 6, [m.name for m in modules]
    for path in modules:
        assert len(path.read_text().splitlines()) <= 400, path.name


def test_only_the_ledger_knows_its_dynamodb_layout() -> None:
    """Item layout and attribute names stay inside detectors/ledger/dynamodb*.py: no other
    module of any part, the lab, the benchmarks or the tests imports the layout or spells
    an attribute name or key prefix of it (the tests of the DynamoDB layout itself aside)."""
    layout_tests = {
        # They measure the real items (sizes, the cost benchmark's cloning): they must see them.
        "tests/detectors/test_detectors_ledger_size.py",
        "tests/benchmarks/test_ledger_cost.py",
    }
    # The table's own definition (its TTL attribute) is infra's; the CDK table names it.
    table_definition = {"infra/construct.py", "tests/infra/test_infra_templates.py"}
    checked, offenders = 0, []
    for path in _files((".py",)):
        rel = str(path.relative_to(REPO_ROOT))
        if path.parent == _LEDGER and path.name.startswith(("dynamodb", "__init__")):
            continue
        if rel in layout_tests | table_definition:
            continue
        checked += 1
        for module in _imports(path):
            if module.startswith("sessionwatch.detectors.ledger.dynamodb_items"):
                offenders.append((rel, module))
        offenders += [(rel, name) for name in _spells_storage(path)]
    assert offenders == []
    assert checked > 100  # the walk found the repository


def test_the_detectors_decide_in_rules_only() -> None:
    """``detectors.core`` is a re-export for outside callers; inside, rules are ``rules``."""
    for path in _detector_modules():
        assert "sessionwatch.detectors.core" not in _imports(path), path
