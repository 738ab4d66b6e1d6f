"""The spike check reads each watched service's server metrics under that service's own name
(the construct's default, `SERVER_SERVICE_NAMES`), or one name given for all."""

from __future__ import annotations

import pytest

from sessionwatch import contract
from sessionwatch.detectors.config import ConfigError, load_config
from sessionwatch.detectors.reporter_run import _queries

BASE = {"LEDGER_TABLE_NAME": "ledger", "CLUSTER_NAME": "orders"}


def _server_dimension(cfg_env: dict[str, str], service: str) -> str | None:
    queries = dict(_queries(load_config({**BASE, **cfg_env}), service))
    metric = queries.get(contract.METRIC_SESSION_NOT_FOUND)
    return None if metric is None else metric["Dimensions"][0]["Value"]


def test_each_service_is_read_under_its_own_name() -> None:
    env = {"SERVER_SERVICE_NAMES": "orders-mcp=orders-mcp,billing=billing-otel"}
    assert _server_dimension(env, "orders-mcp") == "orders-mcp"
    assert _server_dimension(env, "billing") == "billing-otel"
    assert _server_dimension(env, "unknown") is None  # no name known: no server-metric check


def test_one_name_for_all_still_works_and_the_per_service_one_wins() -> None:
    assert _server_dimension({"SERVER_SERVICE_NAME": "mcp-server"}, "any") == "mcp-server"
    env = {"SERVER_SERVICE_NAME": "mcp-server", "SERVER_SERVICE_NAMES": "a=alpha"}
    assert _server_dimension(env, "a") == "alpha"
    assert _server_dimension(env, "b") == "mcp-server"


@pytest.mark.parametrize("bad", ["orders-mcp", "=x", "a=", "a=b,c"])
def test_a_malformed_mapping_fails_loudly(bad: str) -> None:
    with pytest.raises(ConfigError, match="SERVER_SERVICE_NAMES"):
        load_config({**BASE, "SERVER_SERVICE_NAMES": bad})
