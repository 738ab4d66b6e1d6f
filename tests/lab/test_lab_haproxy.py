"""HAProxy as the sticky ALB: stickiness, cookie rotation, deregistration loss, stale cookies."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from lab.alb_metrics import AlbMetrics, target_group_name
from lab.haproxy import GROUP_COOKIE, HAProxy, HAProxyError, cookie_lifetime_s, render_config
from sessionwatch.ops.client import ProbeClient, ProbeMode
from tests.lab.conftest import SdkServer
from tests.requirements import require

pytestmark = pytest.mark.anyio


@pytest.fixture
def lb(tmp_path: Path) -> Iterator[HAProxy]:
    require("haproxy")
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


def test_the_cookie_lives_the_stickiness_duration_scaled() -> None:
    # the demo's 1 day at 20x outlives any run; the stale-cookie scenario's 80 s is 4 s
    assert cookie_lifetime_s(86_400, 20) == 4320
    assert cookie_lifetime_s(80, 20) == 4
    assert cookie_lifetime_s(1, 60) == 1


async def test_a_kept_cookie_is_honoured_past_the_old_4_s_idle_limit(
    tmp_path: Path, two_tasks: tuple[SdkServer, SdkServer]
) -> None:
    # A client that pauses longer than the old fixed maxidle (4 s, up to 8 s) stays on its task
    # when the cookie lives as configured: the lab no longer invents `stickiness` losses.
    with HAProxy(tmp_path / "h", slots=4, cookie_maxidle_s=cookie_lifetime_s(86_400, 20)) as lb:
        register_both(lb, two_tasks)
        async with ProbeClient(lb.url + "/mcp", name="idle") as probe:
            await probe.connect()
            await probe.cycle()
            await asyncio.sleep(9)
            records = await probe.cycle()
            assert all(r.ok for r in records)
            assert {r.task_id for r in probe.records if r.task_id} == {probe.records[0].task_id}


async def test_two_target_groups_shift_by_weight_and_stick_by_awsalbtg(
    tmp_path: Path, two_tasks: tuple[SdkServer, SdkServer]
) -> None:
    blue, green = two_tasks
    with HAProxy(
        tmp_path / "bg",
        slots=2,
        groups=("blue", "green"),
        group_stickiness=True,
        group_stickiness_s=3,
    ) as lb:
        lb.register(blue.task_id, blue.port, group="blue")
        lb.register(green.task_id, green.port, group="green")
        for task in two_tasks:
            lb.wait_status(task.task_id, "UP")

        def fresh(group: str) -> dict[str, str]:
            """A group cookie as HAProxy issues it: ``<group>.<unix time of the answer>``."""
            return {GROUP_COOKIE: f"{group}.{int(time.time())}"}

        async def tasks_seen(n: int, cookies: dict[str, str] | None = None) -> list[str]:
            seen = []
            async with httpx.AsyncClient() as client:
                for _ in range(n):
                    client.cookies.clear()  # each request as a new client (or the given cookie)
                    # any /mcp answer carries the serving task's X-Mcp-Task-Id header
                    answer = await client.get(lb.url + "/mcp", cookies=cookies)
                    seen.append(answer.headers.get("x-mcp-task-id", f"HTTP {answer.status_code}"))
            return seen

        assert set(await tasks_seen(10)) == {blue.task_id}
        lb.shift(100)  # production traffic shift: every new request to green
        assert set(await tasks_seen(10)) == {green.task_id}
        # target-group stickiness keeps a blue client on blue whatever the weights
        assert set(await tasks_seen(5, fresh("blue"))) == {blue.task_id}
        lb.shift(50)
        assert set(await tasks_seen(40)) == {blue.task_id, green.task_id}
        lb.shift(100)
        # each answer of a target re-issues the cookie, dated now
        async with httpx.AsyncClient() as client:
            answer = await client.get(lb.url + "/mcp", cookies=fresh("blue"))
            issued = answer.cookies.get(GROUP_COOKIE) or ""
            assert issued.split(".")[0] == "blue"
            assert abs(int(issued.split(".")[1]) - time.time()) < 3
        lb.deregister(blue.task_id)
        # clean-up: a valid blue cookie still routes to blue, now empty: the load balancer's
        # own 503, which carries no fresh cookie (the lock-out ends when the cookie expires)
        async with httpx.AsyncClient() as client:
            answer = await client.get(lb.url + "/mcp", cookies=fresh("blue"))
            assert answer.status_code == 503
            assert "x-mcp-task-id" not in answer.headers
            assert GROUP_COOKIE not in answer.cookies
        # past its duration (3 s here) the cookie is ignored: the weights send it to green
        stale = {GROUP_COOKIE: f"blue.{int(time.time()) - 10}"}
        assert set(await tasks_seen(5, stale)) == {green.task_id}
        # what the lab publishes as ALB's own metrics, from HAProxy's counters
        metrics = AlbMetrics(lb)
        points = metrics.sample()
        by = {(p.metric_name, dict(p.dimensions).get("TargetGroup")): p.value for p in points}
        assert by[("HTTPCode_ELB_503_Count", None)] == 1  # only the refusal, not the relayed
        assert by[("HealthyHostCount", target_group_name("blue"))] == 0
        assert by[("HealthyHostCount", target_group_name("green"))] == 1
        assert by[("UnHealthyHostCount", target_group_name("blue"))] == 0  # deregistered
        assert by[("RequestCount", None)] == 10 + 10 + 5 + 40 + 1 + 1 + 5
        # counts are per-sample deltas, and a zero is not reported (ALB: non-zero values only)
        assert metrics.sample() == []
