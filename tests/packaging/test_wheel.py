"""The wheel as users install it: one import package, extras by role, outside this repository.

Builds the wheel, installs it into fresh virtual environments in a temporary directory (one per
role, each with only its own extra, from the package index or pip's cache) and checks:

- the wheel holds exactly one top-level import package, ``sessionwatch``, and no lab, benchmark
  or test code; the ``server`` extra pulls in no boto3, CDK, moto or matplotlib;
- an MCP project with its own ``server.py`` and ``infra/`` package, written as README's snippet
  says, serves one initialize through the instrumented app (a real uvicorn process) and logs
  ``session_created`` with a fingerprint, never the raw id;
- a small CDK app of the user's own adds ``SessionWatch(...)`` beside its own log group and
  synthesizes offline, with the Lambda asset found inside the installed package;
- the ``sessionwatch`` console script works with the ``cli`` extra alone;
- the ``sidecar`` extra alone runs the sidecar in front of a server and answers its ``/health``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import venv
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from email.parser import Parser
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO_ROOT

# One worker builds the wheel and the three venvs once and runs every test that uses them.
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("packaging")]

ROLES = ("server", "cdk", "cli")
# The dev venv's uv (a dev dependency) makes these venvs in seconds; without it, venv and pip.
UV = shutil.which("uv", path=str(Path(sys.executable).parent))
NOT_IN_SERVER_IMAGE = {"boto3", "aws-cdk-lib", "moto", "matplotlib", "cdk-nag", "constructs"}

USER_SERVER = '''
"""A user's own MCP server module, named server.py like most of them."""
import os

import uvicorn
from mcp.server.mcpserver import MCPServer

from sessionwatch.server import instrument, route_library_logs
import infra  # the user's own infra/ package must not collide with SessionWatch's

mcp = MCPServer("orders")


@mcp.tool()
def ping() -> str:
    return "pong"


app = instrument(
    mcp.streamable_http_app(stateless_http=False, host="0.0.0.0"),
    service="orders-mcp",
    session_manager=mcp.session_manager,
)
route_library_logs(app.logger)

if __name__ == "__main__":
    assert infra.OWNER == "user"
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["PORT"]), log_config=None)
'''

USER_CDK_APP = '''
"""A user's own CDK app: a stack of theirs, SessionWatch added beside their service's logs."""
import aws_cdk as cdk
from aws_cdk import aws_logs as logs

from sessionwatch.infra import SessionWatch, SessionWatchProps

app = cdk.App(outdir="cdk.out")
stack = cdk.Stack(app, "OrdersMcp")
server_logs = logs.LogGroup(stack, "ServerLogs", log_group_name="/ecs/orders-mcp")
SessionWatch(
    stack,
    "SessionWatch",
    SessionWatchProps(
        cluster_name="orders",
        service_names=["orders-mcp"],
        server_log_group=server_logs,
    ),
)
app.synth()
'''


def _run(cmd: list[str], cwd: Path, timeout: float = 600, **kw: object) -> str:
    out = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False, **kw
    )
    assert out.returncode == 0, f"{cmd} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH: nothing from this checkout may leak into the user's environment."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy without the repository's tools: proves the wheel needs none of them,
    # and keeps setuptools' build/ (whose stale files would end up in later wheels) out of it.
    source = tmp_path_factory.mktemp("source") / "sessionwatch"
    shutil.copytree(
        REPO_ROOT,
        source,
        symlinks=True,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv*",
            "node_modules",
            "cdk.out",
            "lab-report",
            "build",
            "__pycache__",
            "tests",
            "lab",
            "benchmarks",
            "*.egg-info",
        ),
    )
    out = tmp_path_factory.mktemp("dist")
    if UV:
        build = [UV, "build", "-q", "--wheel", "--out-dir", str(out), str(source)]
    else:
        build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out)]
        build.append(str(source))
    _run(build, cwd=out)
    (built,) = out.glob("sessionwatch-*.whl")
    return built


@pytest.fixture(scope="module")
def role_envs(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One fresh venv per role, created in parallel (pip's cache makes the installs cheap)."""
    root = tmp_path_factory.mktemp("venvs")
    with ThreadPoolExecutor(max_workers=len(ROLES)) as pool:
        return dict(pool.map(lambda role: _role_env(wheel, root, role), ROLES))


@pytest.fixture(scope="module")
def sidecar_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the ``sidecar`` extra alone (its own fixture: its own time budget)."""
    return _role_env(wheel, tmp_path_factory.mktemp("venv-sidecar"), "sidecar")[1]


def _role_env(wheel: Path, root: Path, role: str) -> tuple[str, Path]:
    """A fresh venv under ``root`` with the wheel and its ``role`` extra, resolved from the index
    (or the installer's cache) exactly as a user's ``pip install 'sessionwatch[role]'`` would."""
    env_dir = root / role
    python = env_dir / "bin" / "python"
    if UV:
        _run([UV, "venv", "-q", "--python", sys.executable, str(env_dir)], cwd=root,
             env=_clean_env())  # fmt: skip
        install = [UV, "pip", "install", "-q", "--python", str(python)]
    else:
        venv.EnvBuilder(with_pip=True).create(env_dir)
        install = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    _run([*install, f"{wheel}[{role}]"], cwd=root, env=_clean_env())
    return role, python


def test_wheel_has_one_top_level_package_and_no_repository_tools(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    tops = {name.split("/")[0] for name in names}
    assert {t for t in tops if not t.endswith(".dist-info")} == {"sessionwatch"}
    for part in ("server", "sidecar", "detectors", "infra", "dashboards", "ops"):
        assert f"sessionwatch/{part}/__init__.py" in names, part
    assert "sessionwatch/detectors/handlers/ecs_events.py" in names
    assert not [n for n in names if n.split("/")[1:2] in (["lab"], ["benchmarks"], ["tests"])]
    assert not [n for n in names if "__pycache__" in n]

    requires = Parser().parsestr(metadata.decode()).get_all("Requires-Dist") or []
    server_deps = {
        r.split(";")[0].split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()
        for r in requires
        if 'extra == "server"' in r
    }
    assert "mcp" in server_deps
    assert not server_deps & NOT_IN_SERVER_IMAGE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def user_project(tmp_path: Path) -> Path:
    project = tmp_path / "orders-mcp"
    (project / "infra").mkdir(parents=True)
    (project / "server.py").write_text(textwrap.dedent(USER_SERVER))
    (project / "infra" / "__init__.py").write_text('OWNER = "user"\n')
    (project / "app.py").write_text(textwrap.dedent(USER_CDK_APP))
    return project


@contextlib.contextmanager
def _serving(python: Path, project: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = _free_port()
    env = _clean_env() | {"PORT": str(port), "SESSIONWATCH_TASK_ID": "task-user-1"}
    proc = subprocess.Popen(
        [str(python), "server.py"],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}/mcp"
    try:
        yield url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_user_server_py_runs_instrumented(role_envs: dict[str, Path], user_project: Path) -> None:
    python = role_envs["server"]
    no_boto = subprocess.run([str(python), "-c", "import boto3"], capture_output=True, check=False)
    assert no_boto.returncode != 0, "the server extra must not bring boto3"

    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "wheel-test", "version": "1"},
        },
    }
    headers = {"accept": "application/json, text/event-stream"}
    with _serving(python, user_project) as (url, proc):
        deadline = time.monotonic() + 60
        while True:
            try:
                answer = httpx.post(url, json=init, headers=headers, timeout=5)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "the user's server did not come up"
                time.sleep(0.3)
    session_id = answer.headers.get("mcp-session-id")
    assert answer.status_code == 200 and session_id
    output = proc.stdout.read() if proc.stdout else ""
    events = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    created = [e for e in events if e.get("event") == "session_created"]
    assert created and created[0]["task_id"] == "task-user-1"
    assert session_id not in output


@pytest.mark.requires("node")
def test_user_cdk_app_synthesizes_with_the_packaged_asset(
    role_envs: dict[str, Path], user_project: Path
) -> None:
    env = _clean_env() | {"JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20"}
    _run([str(role_envs["cdk"]), "app.py"], cwd=user_project, env=env)
    out = user_project / "cdk.out"
    template = json.loads((out / "OrdersMcp.template.json").read_text())
    functions = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    ]
    handlers = {f["Handler"] for f in functions}
    assert "sessionwatch.detectors.handlers.session_events.handler" in handlers
    keys = {f["Code"]["S3Key"].removesuffix(".zip") for f in functions}
    (asset_hash,) = keys
    asset = out / f"asset.{asset_hash}"
    assert (asset / "sessionwatch" / "detectors" / "handlers" / "session_events.py").is_file()
    assert sorted(p.name for p in (asset / "sessionwatch").iterdir()) == [
        "__init__.py",
        "contract.py",
        "detectors",
    ]


def test_console_script_works_with_the_cli_extra_alone(role_envs: dict[str, Path]) -> None:
    script = role_envs["cli"].parent / "sessionwatch"
    top = _run([str(script), "--help"], cwd=role_envs["cli"].parent, env=_clean_env())
    assert "probe" in top and "audit" in top
    for sub in ("probe", "audit"):
        _run([str(script), sub, "--help"], cwd=role_envs["cli"].parent, env=_clean_env())


def test_the_sidecar_extra_alone_runs_the_sidecar(sidecar_python: Path) -> None:
    """What the sidecar image installs: the proxy up, its own /health, 502 for a dead upstream."""
    python = sidecar_python
    port, dead = _free_port(), _free_port()
    proc = subprocess.Popen(
        [str(python), "-m", "sessionwatch.sidecar", "--upstream", f"http://127.0.0.1:{dead}",
         "--host", "127.0.0.1", "--port", str(port), "--drain-seconds", "0"],
        cwd=python.parent,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline and proc.poll() is None, "sidecar did not start"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        assert (
            httpx.post(f"http://127.0.0.1:{port}/mcp", content=b"{}", timeout=10).status_code == 502
        )
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    assert '"event":"upstream_error"' in output.replace(" ", "")
