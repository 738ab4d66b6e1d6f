"""The ledger cost benchmark's pure parts: cloning keeps item sizes and swaps every id; the
cost model's arithmetic."""

from __future__ import annotations

import pytest

from benchmarks.dynamodb_model import item_size
from benchmarks.ledger_cost import CLUSTERS, PRICES, ZEROS, build_unit, clone_items, monthly


def test_clones_keep_sizes_and_swap_ids() -> None:
    unit = build_unit(3, 1_777_000_000.0)
    task, fp, dep = unit.old[0].id, unit.sessions[0][0], unit.d1.id
    items = [
        {"pk": {"S": f"TASK#{task}"}, "sk": {"S": "FACTS"}, "f": {"SS": [f"by={dep}", "x"]}},
        {"pk": {"S": f"SESS#{fp}"}, "sk": {"S": "CREATED"}, "task": {"S": task}},
        {"pk": {"S": "GLOBAL"}, "sk": {"S": "ALL"}, "n": {"N": "1"}},
    ]
    make, shared = clone_items(items, unit.ids(), range(0))
    assert shared == 1  # the item keyed by no id of the unit cannot be cloned
    a, b = make(1), make(0x2A)
    assert [item_size(i) for i in a] == [item_size(i) for i in items[:2]]
    assert a[0]["pk"]["S"] == "TASK#" + task.replace(ZEROS, "000001", 1)
    assert b[0]["f"]["SS"][0] == "by=" + dep.replace(ZEROS, "00002a", 1)
    assert b[1]["task"]["S"] == task.replace(ZEROS, "00002a", 1)


def test_cost_model_arithmetic() -> None:
    small = CLUSTERS[0]
    units = {
        "ecs_task_event": (1.0, 2.0),
        "deployment_event": (0.0, 0.0),
        "session_created": (0.0, 0.0),
        "not_found_batch_10": (0.0, 0.0),
        "reporter_run": (0.0, 0.0),
        "follow_up_report": (0.0, 0.0),
    }
    m = monthly(small, units)
    # 1 deployment a day x 30 days x 2 tasks x 5 task events = 300 events.
    assert m["dynamodb_read"] == pytest.approx(300 * 1.0 / 1e6 * PRICES["dynamodb_rru_per_million"])
    assert m["dynamodb_write"] == pytest.approx(
        300 * 2.0 / 1e6 * PRICES["dynamodb_wru_per_million"]
    )
    assert m["alarms"] == pytest.approx(3 * 0.10) and m["metrics"] == pytest.approx(11 * 0.30)
