"""EMF emission: one document per dimension set; SessionsLost at high resolution when asked.

The construct's 10-second loss alarms (``high_resolution_alarms``) only see data when the
metric is stored at 1-second resolution; the construct sets SESSIONS_LOST_STORAGE_RESOLUTION.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sessionwatch.contract import (
    METRIC_BAD_INPUT,
    METRIC_SESSIONS_LOST,
    SESSIONS_LOST_RESOLUTION_ENV,
    Cause,
)
from sessionwatch.detectors.config import ConfigError, load_config
from sessionwatch.detectors.emit import bad_input, emit, sessions_lost


def _resolutions(out: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for line in out.splitlines():
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                found[metric["Name"]] = metric.get("StorageResolution", 60)
    return found


@pytest.mark.parametrize(("setting", "expected"), [(1, 1), (60, 60)])
def test_sessions_lost_storage_resolution_follows_the_setting(
    setting: int, expected: int, capsys: pytest.CaptureFixture[str]
) -> None:
    emit([sessions_lost("svc", Cause.DEPLOYMENT), bad_input(2)], sessions_lost_resolution_s=setting)
    resolutions = _resolutions(capsys.readouterr().out)
    assert resolutions == {METRIC_SESSIONS_LOST: expected, METRIC_BAD_INPUT: 60}


def test_resolution_setting_is_read_and_checked() -> None:
    base = {"LEDGER_TABLE_NAME": "t", "CLUSTER_NAME": "c"}
    assert load_config(base).sessions_lost_resolution_s == 60
    assert load_config({**base, SESSIONS_LOST_RESOLUTION_ENV: "1"}).sessions_lost_resolution_s == 1
    with pytest.raises(ConfigError, match=SESSIONS_LOST_RESOLUTION_ENV):
        load_config({**base, SESSIONS_LOST_RESOLUTION_ENV: "10"})
