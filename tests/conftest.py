"""Fixtures shared by every part's suite; each part keeps its own in tests/<part>/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.requirements import REQUIREMENTS, require, status

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "requires(*names): parts of tests/requirements.py the test needs (skip outside CI, "
        "fail under CI=true when missing)",
    )
    # pytest-xdist's own marker, declared here too for runs without the plugin (-p no:xdist).
    config.addinivalue_line("markers", "xdist_group(name): run these tests on one xdist worker")


def pytest_report_header(config: pytest.Config) -> str:
    return status()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with `slow` tests first, each module kept whole (its fixtures are built once):
    parallel workers then start the long end-to-end runs early and fill in with short tests
    instead of ending on one long test."""
    slow_modules = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_modules)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires"):
        for name in mark.args:
            if name not in REQUIREMENTS:
                raise pytest.UsageError(f"{item.nodeid}: unknown requirement {name!r}")
            require(name)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES
