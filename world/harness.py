"""The detectors' three handlers, driven in process at a simulated time: one context manager.

``detector_harness(env)`` sets the environment the Lambda functions get (``env``; a ``None``
value unsets the variable while the harness is open), points the
handlers' runtime at a simulated clock (``h.now``), an ECS client of the caller's
(``h.ecs_client``, a real boto3 client whose reads a ``before-call`` hook answers), optionally a
ledger of the caller's (the in-memory one; by default the runtime builds the DynamoDB one from
``env``) and a log sink
(``h.sink``: Powertools' registered handler, reached through its public ``registered_handler``,
writes there; so does stdout, where the metrics' EMF lines go), and on exit, however it exits,
puts back the environment, the clock, the ECS client and the stream, and resets the runtime's
cached clients so nothing of the simulation leaks into later code in the same process.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import IO, Any


class LambdaContext:
    """The attributes Powertools' Logger reads from a Lambda context."""

    function_name = "sessionwatch-simulated"
    memory_limit_in_mb = 256
    invoked_function_arn = f"arn:aws:lambda:us-east-1:111122223333:function:{function_name}"
    aws_request_id = "simulated"


@dataclass
class Harness:
    """What a simulation reads and sets while the harness is open."""

    runtime: Any
    now: float = 0.0
    ecs_client: Any = None
    sink: IO[str] = field(default_factory=io.StringIO)
    context: LambdaContext = field(default_factory=LambdaContext)

    def call(self, kind: str, payload: Any) -> Any:
        """Invoke handler ``kind`` ("ecs", "logs" or "reporter") with ``payload`` at ``now``."""
        from sessionwatch.detectors.handlers import ecs_events, reporter, session_events

        handler: Callable[[Any, Any], Any] = {
            "ecs": ecs_events.handler,
            "logs": session_events.handler,
            "reporter": reporter.handler,
        }[kind]
        with contextlib.redirect_stdout(self.sink):
            return handler(payload, self.context)

    def drain(self) -> str:
        """What the handlers wrote since the last drain (log lines and EMF documents)."""
        assert isinstance(self.sink, io.StringIO), "drain() reads the default in-memory sink"
        out = self.sink.getvalue()
        self.sink.seek(0)
        self.sink.truncate()
        return out

    def emf(self, text: str | None = None) -> list[dict[str, Any]]:
        """The EMF documents among the lines (``drain()`` if no text is given), each metric's
        values summed (Powertools writes a list when a metric is added more than once)."""
        return emf_docs(self.drain() if text is None else text)

    def docs(self, text: str | None = None) -> list[dict[str, Any]]:
        """The JSON documents among the lines (``drain()`` if no text is given)."""
        found = []
        for raw in (self.drain() if text is None else text).splitlines():
            if raw.startswith("{"):
                with contextlib.suppress(ValueError):
                    found.append(json.loads(raw))
        return found


def emf_docs(text: str) -> list[dict[str, Any]]:
    """The EMF documents (CloudWatch embedded metric format) among ``text``'s lines, each
    metric's values summed."""
    docs = []
    for raw in text.splitlines():
        if raw.startswith("{") and '"_aws"' in raw:
            doc = json.loads(raw)
            for m in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                value = doc[m["Name"]]
                doc[m["Name"]] = sum(value) if isinstance(value, list) else value
            docs.append(doc)
    return docs


@contextlib.contextmanager
def detector_harness(
    env: Mapping[str, str | None],
    now: float = 0.0,
    sink: IO[str] | None = None,
    ledger: Any = None,
) -> Iterator[Harness]:
    """Open the handlers at simulated time ``now`` with ``env`` (their output going to ``sink``,
    an in-memory buffer by default; their ledger ``ledger`` if given); always restore on exit."""
    from sessionwatch.detectors.handlers import runtime

    h = Harness(runtime, now) if sink is None else Harness(runtime, now, sink=sink)
    saved_env = {k: os.environ.get(k) for k in env}
    saved = (runtime.clock, runtime.ecs, runtime.ledger)
    handler = runtime.logger.registered_handler
    stream = getattr(handler, "stream", None)
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    runtime.reset()  # before the overrides: reset() clears the real factories' caches
    runtime.clock = lambda: h.now
    runtime.ecs = lambda: h.ecs_client if h.ecs_client is not None else saved[1]()
    if ledger is not None:
        runtime.use_ledger(ledger)
    if stream is not None:
        handler.setStream(h.sink)  # type: ignore[attr-defined]
    try:
        yield h
    finally:
        runtime.clock, runtime.ecs, runtime.ledger = saved
        if ledger is not None:
            runtime.use_ledger(None)
        if stream is not None:
            handler.setStream(stream)  # type: ignore[attr-defined]
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        runtime.reset()


def route_ecs_reads(runtime: Any, client: Any) -> None:
    """Point the handlers' ECS reads (the strategy read) at ``client`` for the rest of this
    process: the lab's long-lived in-process Lambda runtime, whose ECS API stand-in answers what
    moto cannot for the lab's played service. Unlike ``detector_harness`` it is not undone: the
    lab's process ends with its run."""
    runtime.ecs = lambda: client
