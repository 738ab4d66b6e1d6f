"""Fixtures shared by every part's suite; each part keeps its own in tests/<part>/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.version import Version

from lab.forkserver import ForkServer
from tests.requirements import REQUIREMENTS, require, status

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _share_botocore_models() -> None:
    """Every botocore session in a test process shares one loader of its JSON models (per data
    path). Tests, moto and boto3 make sessions by the dozen (a session per test, moto's region
    lists), and each would parse the same read-only models again: the audit's moto tests spent
    40% of their CPU there. Sharing a cache of read-only files changes no behaviour. botocore
    has no public hook for this; without the method the tests run as before, only slower."""
    import botocore.loaders
    import botocore.session

    if not hasattr(botocore.session.Session, "_register_data_loader"):
        return
    loaders: dict[object, botocore.loaders.Loader] = {}

    def register(session: botocore.session.Session) -> None:
        def shared() -> botocore.loaders.Loader:
            path = session.get_config_variable(
                "data_path"
            )  # read when first asked, as botocore does
            if path not in loaders:
                loaders[path] = botocore.loaders.create_loader(path)
            return loaders[path]

        session._components.lazy_register_component("data_loader", shared)

    botocore.session.Session._register_data_loader = register  # type: ignore[method-assign]


_share_botocore_models()


@pytest.fixture(scope="session")
def task_forks() -> Iterator[ForkServer]:
    """A fork server for the server and sidecar tasks a test process starts (``ServerTask(...,
    forkserver=task_forks)``): each task is still a process of its own, forked from an
    interpreter that imported the server once, where ``python -m`` costs 1.3 CPU-s per start.
    tests/lab/test_lab_forkserver.py holds a forked task to what ``python -m`` does, and the
    SIGTERM drain tests still start theirs with ``python -m``."""
    preload = ["sessionwatch.server.__main__", "sessionwatch.sidecar.__main__"]
    with ForkServer(preload=preload) as s:
        yield s


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*names): parts of tests/requirements.py the test needs (skip outside CI, "
        "fail under CI=true when missing)",
    )
    # pytest-xdist's own marker, declared here too for runs without the plugin (-p no:xdist).
    config.addinivalue_line("markers", "xdist_group(name): run these tests on one xdist worker")
    config.addinivalue_line(
        "markers", "spread: the module's tests may run on different xdist workers (each is whole)"
    )
    if config.getoption("dist", "no") == "loadgroup" and not _xdist_groups_work():
        raise pytest.UsageError(
            f"pytest-xdist {version('pytest-xdist')} cannot keep `xdist_group`s on one worker "
            f"under pytest {pytest.__version__} (it tags node ids pytest 9.2 no longer reads), so "
            "each worker would rebuild a group's fixtures; `make setup` installs the pinned pytest"
        )


def _xdist_groups_work() -> bool:
    """pytest-xdist up to 3.8 groups tests by rewriting ``Item._nodeid``; pytest 9.2 keeps node
    ids elsewhere (``_id``), and the groups silently split across workers."""
    return Version(pytest.__version__) < Version("9.2") or Version(
        version("pytest-xdist")
    ) > Version("3.8.0")


def pytest_report_header(config: pytest.Config) -> str:
    return status()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist tags the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each module runs on one worker (its module fixtures, a moto server or a 100-timeline
    sample, are built once), except modules marked `spread`, whose tests are independent
    end-to-end runs; the `slow` ones go first, so parallel workers start the long runs early and
    fill in with short tests instead of ending on one long test (with --no-loadscope-reorder,
    pytest-xdist keeps this order)."""
    for item in items:
        if not item.get_closest_marker("xdist_group") and not item.get_closest_marker("spread"):
            item.add_marker(pytest.mark.xdist_group(_group(item.nodeid.split("::")[0])))
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_modules)


# Packages whose modules share session fixtures too costly to build once per worker: the
# infra tests' two CDK synths with cdk-nag (about 10 CPU-s each per worker) run on one worker.
ONE_WORKER_PACKAGES = ("tests/infra/",)


def _group(module: str) -> str:
    return next((p for p in ONE_WORKER_PACKAGES if module.startswith(p)), module)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires"):
        for name in mark.args:
            if name not in REQUIREMENTS:
                raise pytest.UsageError(f"{item.nodeid}: unknown requirement {name!r}")
            require(name)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
