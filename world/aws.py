"""Real boto3 clients whose calls the simulation answers in process (no request leaves it).

A botocore ``before-call`` handler that returns a response short-circuits the call before it is
signed or sent (botocore's documented event system: "before-call.<service>.<operation>"), so
the detectors run their real client code, parameter validation included, against answers the
world gives: ECS reads answered from a timeline at the simulated time, SNS publishes recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

Answer = Callable[[dict[str, Any]], dict[str, Any]]


class NotModelled(Exception):
    """An operation the world does not answer: the client gets AccessDeniedException, as a
    role without that permission would."""


def answer_calls(client: Any, service: str, answers: dict[str, Answer]) -> Any:
    """Make ``client`` answer each operation in ``answers`` with ``answers[op](params)``; any
    other operation of ``service`` is refused (AccessDeniedException, HTTP 400)."""
    from botocore.awsrequest import AWSResponse
    from botocore.compat import HTTPHeaders

    def handle(model: Any, params: Any, **_: Any) -> tuple[Any, dict[str, Any]]:
        body = params.get("body") or b"{}"
        # JSON-protocol services (ECS) send a JSON body; query-protocol ones (SNS) form fields.
        request = body if isinstance(body, dict) else json.loads(body)
        fn = answers.get(model.name)
        if fn is None:
            parsed: dict[str, Any] = {
                "Error": {"Code": "AccessDeniedException", "Message": "not modelled"},
                "ResponseMetadata": {"HTTPStatusCode": 400},
            }
            return AWSResponse("https://aws", 400, HTTPHeaders(), None), parsed
        parsed = fn(request)
        parsed["ResponseMetadata"] = {"HTTPStatusCode": 200}
        return AWSResponse("https://aws", 200, HTTPHeaders(), None), parsed

    client.meta.events.register(f"before-call.{service}.*", cast(Any, handle))
    return client


def record_publishes(client: Any) -> list[dict[str, Any]]:
    """Record every ``Publish`` of an SNS client (its API parameters), answer with a message
    id; returns the list the records are appended to."""
    published: list[dict[str, Any]] = []

    def capture(params: dict[str, Any], **_: Any) -> None:
        published.append(dict(params))

    # provide-client-params sees the caller's own keyword arguments, before serialization.
    client.meta.events.register("provide-client-params.sns.Publish", cast(Any, capture))
    answer_calls(client, "sns", {"Publish": lambda _: {"MessageId": f"m-{len(published)}"}})
    return published
