"""HAProxy as the sticky ALB: stickiness, cookie rotation, deregistration loss, stale cookies."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lab.haproxy import HAProxy, HAProxyError, render_config
from sessionwatch.ops.client import ProbeClient, ProbeMode
from tests.lab.conftest import SdkServer

pytestmark = pytest.mark.anyio


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[HAProxy]:
    with HAProxy(tmp_path / "haproxy", slots=4, cookie_maxidle_s=2, health_interval_ms=200) as h:
        yield h


@pytest.fixture(scope="module")
def two_tasks(sdk_servers: Callable[[str], SdkServer]) -> tuple[SdkServer, SdkServer]:
    return sdk_servers("task-one"), sdk_servers("task-two")


def register_both(lb: HAProxy, tasks: tuple[SdkServer, SdkServer]) -> None:
    for task in tasks:
        lb.register(task.task_id, task.port)
    for task in tasks:
        lb.wait_status(task.task_id, "UP")


def test_config_declares_sticky_slots(tmp_path: Path) -> None:
    text = render_config(
        port=1234,
        admin_socket=tmp_path / "s",
        slots=3,
        cookie_maxidle_s=5,
        health_interval_ms=100,
    )
    assert "cookie AWSALB insert nocache maxidle 5s" in text
    assert "option httpchk GET /health" in text
    assert text.count("    server slot") == 3
    assert "bind 127.0.0.1:1234" in text


async def test_session_sticks_and_cookie_rotates(lb: HAProxy, two_tasks) -> None:  # type: ignore[no-untyped-def]
    register_both(lb, two_tasks)
    async with ProbeClient(lb.url + "/mcp", name="sticky") as probe:
        await probe.connect()
        # HAProxy dates its cookie in steps of about 4 s: 5 s of calls must see one rotation
        for _ in range(11):
            await probe.cycle()
            await asyncio.sleep(0.45)
        tasks = {r.task_id for r in probe.records}
        assert len(tasks) == 1, "a client that stores every cookie stays on its task"
        assert all(r.ok for r in probe.records)
        assert any(r.cookie_rotated for r in probe.records), "AWSALB value rotates over time"


async def test_deregistering_the_task_loses_the_session(lb: HAProxy, two_tasks) -> None:  # type: ignore[no-untyped-def]
    register_both(lb, two_tasks)
    async with ProbeClient(lb.url + "/mcp", name="dereg") as probe:
        await probe.connect()
        ok, _ = await probe.cycle()
        assert ok.ok and ok.task_id is not None
        lb.deregister(ok.task_id)
        assert lb.states()[ok.task_id].status.startswith("MAINT")
        lost, _ = await probe.cycle()
        assert lost.session_not_found
        assert lost.task_id not in (None, ok.task_id)
        lb.shutdown_sessions(ok.task_id)


async def test_stale_cookie_client_is_routed_away(lb: HAProxy, two_tasks) -> None:  # type: ignore[no-untyped-def]
    register_both(lb, two_tasks)
    async with ProbeClient(lb.url + "/mcp", mode=ProbeMode.STALE_COOKIE, name="stale") as probe:
        await probe.connect()
        home = probe.records[0].task_id
        lost = None
        for _ in range(30):
            for record in await probe.cycle():
                if record.session_not_found:
                    lost = record
            if lost:
                break
            await asyncio.sleep(0.3)
        assert lost is not None, "a stale AWSALB value must eventually route the session away"
        assert lost.task_id != home


def test_unknown_target_state_change_is_refused(lb: HAProxy) -> None:
    with pytest.raises(HAProxyError):
        lb._checked("set server targets/nope state maint")


def test_missing_haproxy_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("lab.haproxy.HAPROXY_BIN", str(tmp_path / "no-haproxy"))
    with pytest.raises(HAProxyError, match="apt-get install haproxy"):
        HAProxy(tmp_path / "h").start()
