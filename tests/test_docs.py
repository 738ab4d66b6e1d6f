"""The docs stay true: every command, import and module name README.md and the part READMEs show
exists as shown, so a renamed command, flag or module fails here.

The READMEs are parsed at test time, so passages added later are checked too. What runs:
- every import in a ```python block, from a directory outside the repository (the installed
  package, as a user has it);
- every `sessionwatch.*` name in inline code (and `server.x`, `infra.x`, ... read as
  `sessionwatch.server.x`, ...), imported the same way;
- every `sessionwatch SUB --flag` (subcommand and flags against the real parser), every
  `python -m MOD --flag` (the module found, its flags in its own `--help`), every `make TARGET`
  (and the flags in `LAB_ARGS`): in code blocks and inline code.
Commands that need AWS are never run, only checked this way; `aws ...` and `npx aws-cdk@2 ...`
are AWS's and npm's. A fenced block right after `<!-- docs-test: skip REASON -->` is skipped.
`python -m lab` / `benchmarks` are this repository's tools: checked from the repository root,
like any command the text says runs "from the repository root".
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

from sessionwatch.ops.cli import build_parser
from tests.conftest import REPO_ROOT

DOCS = sorted([REPO_ROOT / "README.md", *REPO_ROOT.glob("*/README.md")])
REPO_TOOLS = {"lab", "benchmarks", "pytest"}
PARTS = ("server", "detectors", "infra", "ops", "dashboards")
SKIP_MARK = re.compile(r"<!--\s*docs-test:\s*skip\b")
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")
SPAN = re.compile(r"`([^`\n]+(?:\n[^`\n]+)?)`")
COMMAND_START = re.compile(r"^(?:\.venv/bin/)?(?:python3? -m |sessionwatch |make )")
# Module paths (metric names such as `sessionwatch.instrumentation.errors` are not).
DOTTED = re.compile(
    r"^(?:sessionwatch\.)?(?:" + "|".join(PARTS) + r"|contract)(?:\.[A-Za-z_]\w*)+$"
)


@dataclass(frozen=True)
class Shown:
    """One thing a README shows: where, what, and whether it is run from the repository root."""

    where: str
    text: str
    from_repo: bool = False


def _blocks_and_prose(path: Path) -> tuple[list[tuple[str, str, int]], str]:
    """Fenced blocks (info string, body, first line) not marked skip, and the prose between."""
    blocks: list[tuple[str, str, int]] = []
    prose: list[str] = []
    lines = path.read_text().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            info = line[3:].strip()
            skip = any(SKIP_MARK.search(lines[j]) for j in range(max(0, i - 2), i))
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            if not skip:
                blocks.append((info, "\n".join(lines[i + 1 : j]), i + 2))
            prose.append("")
            i = j + 1
            continue
        prose.append(line)
        i += 1
    return blocks, "\n".join(prose)


def _command(line: str) -> str | None:
    line = line.strip()
    line = line.removeprefix("$ ")
    line = re.split(r"\s+#\s", line, maxsplit=1)[0].strip()
    line = re.sub(r"^(?:[A-Z_]+=\S+\s+)+", "", line)
    return line if COMMAND_START.match(line) else None


@functools.cache
def shown() -> tuple[list[Shown], list[Shown], list[Shown]]:
    """(commands, python blocks, dotted names) of every README."""
    commands: list[Shown] = []
    python: list[Shown] = []
    names: list[Shown] = []
    for path in DOCS:
        doc = str(path.relative_to(REPO_ROOT))
        blocks, prose = _blocks_and_prose(path)
        for info, body, first in blocks:
            if info.startswith("python"):
                python.append(Shown(f"{doc}:{first}", body))
                continue
            for n, line in enumerate(body.splitlines()):
                command = _command(line)
                if command:
                    commands.append(Shown(f"{doc}:{first + n}", command))
        for match in SPAN.finditer(prose):
            text = " ".join(match[1].split())
            where = f"{doc}:{prose.count(chr(10), 0, match.start()) + 1}"
            after = prose[match.end() : match.end() + 80]
            from_repo = "repository root" in after
            command = _command(text)
            if command:
                commands.append(Shown(where, command, from_repo))
            elif DOTTED.match(text):
                names.append(Shown(where, text))
    return commands, python, names


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(text: str) -> list[str]:
    return FLAG.findall(text)


@functools.cache
@functools.cache  # README shows some modules many times: one look each
def _module_help(module: str, from_repo: bool, tmp: str) -> tuple[bool, str]:
    """Whether ``python -m module`` is found (where a user runs it) and its ``--help`` text."""
    cwd = REPO_ROOT if from_repo else Path(tmp)
    found = subprocess.run(
        [sys.executable, "-c", f"import importlib.util as u; print(u.find_spec({module!r}))"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if found.stdout.strip() in ("None", ""):
        return False, found.stderr
    shown_help = subprocess.run(
        [sys.executable, "-m", module, "--help"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return True, shown_help.stdout + shown_help.stderr


@functools.cache
def _make_targets() -> frozenset[str]:
    text = (REPO_ROOT / "Makefile").read_text()
    return frozenset(re.findall(r"^([a-z][\w-]*):", text, flags=re.M))


def _check_command(item: Shown, tmp: str) -> str | None:
    """Why ``item`` does not work as shown, or None."""
    try:
        words = shlex.split(item.text)
    except ValueError:
        words = item.text.split()
    if words[0] == "make":
        target = words[1] if len(words) > 1 else "setup"
        if target not in _make_targets():
            return f"no make target {target!r}"
        lab_args = " ".join(w.split("=", 1)[1] for w in words if w.startswith("LAB_ARGS="))
        if lab_args:
            ok, text = _module_help("lab", True, tmp)
            missing = [f for f in _flags(lab_args) if f not in _flags(text)]
            return f"python -m lab has no {missing}" if missing else None
        return None
    if words[0] == "sessionwatch":
        subs = _subparsers(build_parser())
        if len(words) < 2 or words[1].startswith("-"):
            return None
        if words[1] not in subs:
            return f"sessionwatch has no subcommand {words[1]!r} (it has {sorted(subs)})"
        parser = subs[words[1]]
        if words[1] == "sidecar":  # it hands its arguments over to the sidecar's own parser
            from sessionwatch.sidecar.__main__ import build_parser as sidecar_parser

            parser = sidecar_parser()
        known = {s for a in parser._actions for s in a.option_strings}
        missing = [f for f in _flags(item.text) if f not in known]
        return f"sessionwatch {words[1]} has no {missing}" if missing else None
    module = words[words.index("-m") + 1]
    from_repo = module.split(".")[0] in REPO_TOOLS or item.from_repo
    if module == "pytest":
        return None
    ok, text = _module_help(module, from_repo, tmp)
    if not ok:
        where = "from the repository root" if from_repo else "outside the repository"
        return f"python -m {module} is not found {where}: name the installed module"
    missing = [f for f in _flags(item.text) if f not in _flags(text)]
    return f"python -m {module} --help shows no {missing}" if missing else None


@pytest.fixture(scope="module")
def outside(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A directory outside the repository: what a user's own project is."""
    return str(tmp_path_factory.mktemp("user-project"))


def test_the_docs_show_commands_imports_and_names_to_check() -> None:
    commands, python, names = shown()
    texts = {c.text.split()[0] + " " + c.text.split()[1] for c in commands if " " in c.text}
    # The parse itself must keep finding what the docs show, or this file checks nothing.
    assert {"sessionwatch probe", "sessionwatch audit", "sessionwatch redrive"} <= texts
    assert any("python -m sessionwatch.dashboards" in c.text for c in commands)
    assert len(python) >= 2 and len(names) >= 5


def test_every_command_shown_exists_with_its_flags(outside: str) -> None:
    commands, _, _ = shown()
    problems = [
        f"{c.where}: `{c.text}`: {why}" for c in commands if (why := _check_command(c, outside))
    ]
    assert not problems, "\n".join(problems)


IMPORT_CHECK = textwrap.dedent(
    """
    import importlib, json, sys
    failures = []
    for where, module, names in json.loads(sys.argv[1]):
        try:
            loaded = importlib.import_module(module)
            for name in names:
                getattr(loaded, name)
        except Exception as exc:
            failures.append(f"{where}: {module} {names}: {type(exc).__name__}: {exc}")
    for where, dotted in json.loads(sys.argv[2]):
        parts = dotted.split(".")
        for cut in range(len(parts), 0, -1):
            try:
                value = importlib.import_module(".".join(parts[:cut]))
                break
            except ImportError:
                continue
        else:
            failures.append(f"{where}: {dotted}: no such module")
            continue
        try:
            for name in parts[cut:]:
                value = getattr(value, name)
        except AttributeError as exc:
            failures.append(f"{where}: {dotted}: {exc}")
    print(json.dumps(failures))
    """
)


def _imports(item: Shown) -> list[tuple[str, str, list[str]]]:
    import ast

    try:
        tree = ast.parse(item.text)
    except SyntaxError:
        return []
    found: list[tuple[str, str, list[str]]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((item.where, node.module, [a.name for a in node.names]))
        elif isinstance(node, ast.Import):
            found += [(item.where, a.name, []) for a in node.names]
    return found


def test_every_import_and_module_name_shown_resolves_outside_the_repository(outside: str) -> None:
    _, python, names = shown()
    imports = [imp for block in python for imp in _imports(block)]
    dotted = [
        (n.where, n.text if n.text.startswith("sessionwatch.") else f"sessionwatch.{n.text}")
        for n in names
    ]
    assert imports and dotted
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_CHECK, json.dumps(imports), json.dumps(dotted)],
        cwd=outside,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    failures = json.loads(done.stdout.strip().splitlines()[-1])
    assert not failures, "\n".join(failures)


def _readme_block(containing: str) -> str:
    _, python, _ = shown()
    (block,) = [b for b in python if b.where.startswith("README.md") and containing in b.text]
    return block.text


@pytest.mark.slow
def test_readmes_cdk_snippet_run_as_shown_writes_the_template_where_readme_says(
    tmp_path: Path,
) -> None:
    """`python app.py` in a fresh directory, exactly as README shows it."""
    (tmp_path / "app.py").write_text(_readme_block("SessionWatchProps("))
    done = subprocess.run(
        [sys.executable, "app.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**_env(), "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    readme = (REPO_ROOT / "README.md").read_text()
    said = re.search(r"writes (cdk\.out/\S+\.template\.json)", readme)
    assert said, "README says where the template is written"
    template = json.loads((tmp_path / said[1]).read_text())
    kinds = {r["Type"] for r in template["Resources"].values()}
    assert {"AWS::DynamoDB::Table", "AWS::Events::Rule", "AWS::CloudWatch::Dashboard"} <= kinds
    # One service name everywhere: the instrument snippet's service="orders-mcp" is what the
    # dashboard's server widgets and the spike check read, with no extra prop.
    instrument = _readme_block("instrument(")
    assert 'service="orders-mcp"' in instrument
    (dashboard,) = [
        r for r in template["Resources"].values() if r["Type"] == "AWS::CloudWatch::Dashboard"
    ]
    body = dashboard["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    body_text = "".join(part for part in parts if isinstance(part, str))
    assert r"\"service.name\"=\"orders-mcp\"" in body_text
    text = json.dumps(template)
    assert '"SERVER_SERVICE_NAMES": "orders-mcp=orders-mcp"' in text


def _env() -> dict[str, str]:
    import os

    return dict(os.environ)


def test_what_10_second_alarms_gain_is_computed_from_readmes_alarm_model() -> None:
    """README's latency table (typical, worst per alarm period) gives the gain; the construct's
    docstring and infra/README.md must state that gain, not another."""
    from sessionwatch.infra import construct

    readme = (REPO_ROOT / "README.md").read_text()
    rows = dict(
        (period, (int(typical), int(worst)))
        for period, typical, worst in re.findall(
            r"^\| (60|10) s[^|]*\| about (\d+) s \| about (\d+) s \|", readme, flags=re.M
        )
    )
    typical = rows["60"][0] - rows["10"][0]
    worst = rows["60"][1] - rows["10"][1]
    doc = " ".join((construct.__file__ and Path(construct.__file__).read_text()).split())
    infra = " ".join((REPO_ROOT / "infra" / "README.md").read_text().split())
    for text in (doc, infra):
        assert f"typically about {typical} s and at most about {worst} s" in text
