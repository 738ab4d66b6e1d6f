"""The Lambda asset contract: the staged asset imports on its own, with only what Lambda has.

Lambda's Python runtime has the stdlib and boto3; the Powertools v3 layer adds Powertools and
pydantic. The asset the construct ships (``infra.functions.detectors_asset_dir``) must import with
exactly that: nothing from the rest of this repository, nothing from the editable install.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import sysconfig
from pathlib import Path

from sessionwatch.infra.functions import HANDLERS, detectors_asset_dir

ALLOWED = {"boto3", "botocore", "aws_lambda_powertools", "pydantic"}
ASSET_MODULES = {"sessionwatch", "sessionwatch.contract"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    skipped: set[int] = set()  # imports under `if TYPE_CHECKING:` never run in Lambda
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for n in ast.walk(node)} - {id(node)}
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_asset_sources_import_only_lambda_modules_and_themselves() -> None:
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    package = detectors_asset_dir() / "sessionwatch"
    sources = sorted(package.rglob("*.py"))
    assert len(sources) > 10
    assert {p.name for p in package.iterdir()} == {"__init__.py", "contract.py", "detectors"}
    for path in sources:
        for module in _imports(path):
            top = module.split(".")[0]
            inside = module in ASSET_MODULES or module.startswith("sessionwatch.detectors")
            where = path.relative_to(package)
            assert inside or top in ALLOWED | stdlib, f"{where} imports {module}"


def test_every_handler_imports_from_the_asset_alone() -> None:
    # -S: no site processing, so neither the editable install nor any .pth reaches the import;
    # site-packages is appended by hand for boto3, Powertools and pydantic (the runtime + layer).
    # -B: the staged asset is the one a synth in this process ships; no __pycache__ may land in it.
    asset = str(detectors_asset_dir())
    modules = sorted({h.rsplit(".", 1)[0] for h in HANDLERS.values()})
    code = (
        "import sys, importlib; "
        f"sys.path.insert(0, {asset!r}); sys.path.append({sysconfig.get_paths()['purelib']!r}); "
        f"[importlib.import_module(m) for m in {modules!r}]; "
        "import sessionwatch; print(sessionwatch.__file__)"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-B", "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(asset)
