"""The SessionWatch CDK construct and this repository's CDK app.

Add ``SessionWatch(scope, "SessionWatch", SessionWatchProps(...))`` to any CDK (Python) app beside
the ECS service it watches. Public names load lazily, so ``import sessionwatch.infra.adot`` (the
ADOT collector mapping the lab reuses) does not start the jsii runtime.
Install with ``pip install "sessionwatch[cdk]"``.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sessionwatch.infra.alarms import Thresholds
    from sessionwatch.infra.construct import SessionWatch, SessionWatchProps

_PUBLIC = {
    "SessionWatch": "sessionwatch.infra.construct",
    "SessionWatchProps": "sessionwatch.infra.construct",
    "Thresholds": "sessionwatch.infra.alarms",
}
__all__ = ["SessionWatch", "SessionWatchProps", "Thresholds"]


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
