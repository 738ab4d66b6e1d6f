"""Property tests: order, duplication and batching never change verdicts or counts; garbage in
never raises out of a handler."""

from __future__ import annotations

import base64
import gzip
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from sessionwatch.detectors.config import Config
from sessionwatch.detectors.ingest import ingest_ecs_events, ingest_log_payload
from sessionwatch.detectors.ledger import DynamoDBLedger as Ledger
from sessionwatch.detectors.ledger import InMemoryLedger, LedgerStore
from sessionwatch.detectors.reporter_run import run_reporter
from tests.detectors.builders import SERVICE, T0, fp, subscription
from tests.detectors.conftest import create_table, report_clients
from tests.detectors.test_detectors_scenario import EXPECTED, GRACE, D, E, timeline
from world.harness import Harness, detector_harness

EARLY = T0 - 5000  # before every event: nothing is decided for lack of time, only by facts
LATE = T0 + 10_000  # every grace period has passed


def atoms() -> list[tuple[str, Any]]:
    """The scenario as single facts: one ECS event or one log line each."""
    out: list[tuple[str, Any]] = []
    for _, kind, payload in timeline():
        if kind == "ecs":
            out.append(("ecs", payload))
        else:
            doc = json.loads(gzip.decompress(base64.b64decode(payload["awslogs"]["data"])))
            out += [("line", e["message"]) for e in doc["logEvents"]]
    return out


ATOMS = atoms()


@st.composite
def deliveries(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Every atom at least once, some twice, in any order, log lines in any batching; with
    reporter runs (still early) sprinkled in."""
    extra = draw(st.lists(st.integers(0, len(ATOMS) - 1), max_size=8))
    order = draw(st.permutations(list(range(len(ATOMS))) + extra))
    steps: list[tuple[str, Any]] = []
    pending_lines: list[str] = []
    for i in order:
        kind, value = ATOMS[i]
        if kind == "line":
            pending_lines.append(value)
            if draw(st.booleans()):
                continue
        if pending_lines:
            steps.append(("logs", subscription(pending_lines)))
            pending_lines = []
        if kind == "ecs":
            steps.append(("ecs", value))
        if draw(st.integers(0, 9)) == 0:
            steps.append(("reporter", None))
    if pending_lines:
        steps.append(("logs", subscription(pending_lines)))
    return steps


@pytest.fixture(scope="module")
def env(aws: None) -> dict[str, Any]:
    return report_clients("property-reports")


def play(
    env: dict[str, Any], ledger: LedgerStore, table: str, steps: list[tuple[str, Any]]
) -> None:
    """Deliver ``steps`` early, then run the reporter late (twice): the verdicts, counts,
    locks and reports are the in-order story's."""
    quiet = Config(
        table_name=table,
        cluster_name="mcp-cluster",
        service_names=frozenset({SERVICE}),
        grace_period_s=GRACE,
    )
    counted: Counter[str] = Counter()
    for kind, payload in steps:
        if kind == "ecs":
            assert not ingest_ecs_events([payload], quiet, ledger, now=EARLY).bad
            continue
        if kind == "logs":
            out = ingest_log_payload(payload, quiet, ledger, EARLY)
            assert not out.bad
            decisions = out.decisions
        else:
            decisions = run_reporter(quiet, ledger, env["sns"], env["cw"], EARLY).decisions
        counted.update(d.verdict.cause.value for d in decisions if d.counted)
    final_cfg = Config(**{**quiet.__dict__, "report_topic_arn": env["topic"]})
    first = run_reporter(final_cfg, ledger, env["sns"], env["cw"], LATE)
    again = run_reporter(final_cfg, ledger, env["sns"], env["cw"], LATE + 60)
    counted.update(d.verdict.cause.value for d in first.decisions + again.decisions if d.counted)

    assert counted == Counter(c.value for c in EXPECTED.values())
    for name, cause in EXPECTED.items():  # one count lock per session, under its cause
        assert [lock.cause for lock in ledger.session_locks(fp(name))] == [cause]
    reports = {r.deployment_id: r for r in first.reports}
    assert set(reports) == {D, E} and again.reports == []
    assert (reports[D].sessions_lost, reports[D].sessions_at_risk, reports[D].tasks_replaced) == (
        2,
        3,
        ["task-a"],
    )


# The story as it happened: each ECS event and each log payload once, in order.
IN_ORDER = [("ecs" if kind == "ecs" else "logs", payload) for _, kind, payload in timeline()]


# On the in-memory ledger (the contract suite shows it decides as the DynamoDB one does): many
# orders for little time, and hypothesis may shrink a failure to a short one.
@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=deliveries())
@example(steps=IN_ORDER)
def test_any_order_duplicates_and_batching_give_the_same_verdicts_and_counts(env, steps) -> None:
    play(env, InMemoryLedger(), "in-memory", steps)


# The same on the DynamoDB ledger (moto): the story in order and a few generated orders. No
# shrink phase: each example replays ~40 deliveries against moto (a second or more each).
@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(steps=deliveries())
@example(steps=IN_ORDER)
def test_the_dynamodb_ledger_gives_the_same_verdicts_and_counts(env, steps) -> None:
    table = create_table(env["db"])
    play(env, Ledger(env["db"], table, 14), table, steps)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=20,
)
ecs_like = st.fixed_dictionaries(
    {
        "source": st.sampled_from(["aws.ecs", "aws.ec2"]),
        "detail-type": st.sampled_from(
            ["ECS Task State Change", "ECS Deployment State Change", "ECS Service Action", "x"]
        ),
        "detail": json_values,
    },
    optional={"id": st.text(max_size=8), "time": st.text(max_size=30), "resources": json_values},
)


def gz(doc: object) -> dict[str, Any]:
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(doc).encode())).decode()}}


log_like = st.one_of(
    st.binary(max_size=200).map(lambda b: {"awslogs": {"data": base64.b64encode(b).decode()}}),
    st.binary(max_size=200).map(
        lambda b: {"awslogs": {"data": base64.b64encode(gzip.compress(b)).decode()}}
    ),
    json_values.map(gz),
    st.lists(st.one_of(json_values.map(json.dumps), st.text(max_size=40)), max_size=5).map(
        subscription
    ),
    json_values,
)


@pytest.fixture(scope="module")
def handler_env(env: dict[str, Any]) -> Iterator[Harness]:
    """The three handlers over an in-memory ledger (garbage in never reaches a store)."""
    cfg = {"LEDGER_TABLE_NAME": "in-memory", "CLUSTER_NAME": "mcp-cluster"}
    with detector_harness(cfg | {"REPORT_TOPIC_ARN": env["topic"]}, ledger=InMemoryLedger()) as h:
        yield h


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event=st.one_of(ecs_like, json_values))
def test_arbitrary_json_never_raises_from_the_ecs_handler(handler_env, event) -> None:
    result = handler_env.call("ecs", event)
    handler_env.drain()
    assert result["stored"] + result["ignored"] + result["bad_input"] == 1


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(event=log_like)
def test_arbitrary_bytes_and_json_never_raise_from_the_session_handler(handler_env, event) -> None:
    result = handler_env.call("logs", event)
    handler_env.drain()
    assert result["counted"] == 0


def test_reporter_ignores_its_event(handler_env) -> None:
    assert handler_env.call("reporter", "anything") == {
        "decided": 0,
        "counted": 0,
        "reports": 0,
    }
