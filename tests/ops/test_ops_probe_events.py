"""The probe's call classification (pure): routing verified by task id, never by the cookie."""

from __future__ import annotations

from typing import Any

from sessionwatch.ops.client import CallRecord
from sessionwatch.ops.probe_events import ROTATION_NORMAL, Event, ProbeTally
from sessionwatch.server.fingerprint import fingerprint

S1 = fingerprint("session-one")
S2 = fingerprint("session-two")


def rec(tool: str, task: str | None, status: int | None = 200, **kw: Any) -> CallRecord:
    base: dict[str, Any] = dict(
        time=kw.pop("time", 100.0),
        probe="probe",
        call_number=1,
        tool=tool,
        http_status=status,
        task_id=task,
        session=kw.pop("session", S1),
    )
    return CallRecord(**base, **kw)


def lost(task: str, **kw: Any) -> CallRecord:
    return rec("get_session_state", task, 404, jsonrpc_code=-32600, **kw)


def test_rotated_cookie_on_the_same_task_is_normal() -> None:
    tally = ProbeTally()
    tally.observe(rec("initialize", "A"))
    obs = tally.observe(rec("set_session_value", "A", cookie_rotated=True))
    assert obs.event is Event.OK and not obs.task_changed
    assert obs.cookie_note == ROTATION_NORMAL
    assert tally.cookie_rotations == 1 and tally.stickiness_breaks == 0


def test_stale_cookie_mode_says_the_rotation_is_ignored() -> None:
    tally = ProbeTally(stale_cookie=True)
    tally.observe(rec("initialize", "A"))
    obs = tally.observe(rec("set_session_value", "A", cookie_rotated=True))
    assert obs.cookie_note is not None and "ignored: --stale-cookie" in obs.cookie_note


def test_task_change_with_a_surviving_session_is_a_stickiness_break() -> None:
    tally = ProbeTally()
    tally.observe(rec("initialize", "A"))
    obs = tally.observe(rec("set_session_value", "B", cookie_rotated=True))
    assert obs.event is Event.STICKINESS_BREAK and obs.session_task == "A"
    assert obs.note is not None and "session survived" in obs.note
    assert obs.cookie_note == "the cookie changed because the request was routed to another task"
    # The session is now on B: staying there is not another break.
    assert tally.observe(rec("get_session_state", "B")).event is Event.OK
    assert tally.stickiness_breaks == 1 and tally.losses == 0


def test_loss_on_another_task_is_named_and_counted_once_per_session() -> None:
    tally = ProbeTally()
    tally.observe(rec("initialize", "A", time=100.0))
    first = tally.observe(lost("B", time=112.5))
    again = tally.observe(lost("B", time=112.6))
    assert first.event is Event.SESSION_LOST and first.task_changed
    assert first.note is not None
    assert "from task B, the session lived on task A" in first.note
    assert "deregistered" in first.note
    assert again.event is Event.SESSION_LOST and "already reported lost" in (again.note or "")
    summary = tally.summary()
    assert summary["sessions_lost"] == 1 and summary["losses_routed_away"] == 1
    # "stickiness breaks" counts `stickiness_break` events only (ops/README.md): none here.
    assert summary["stickiness_breaks"] == 0
    assert summary["lost_sessions"] == [S1]
    assert summary["seconds_to_first_loss"] == 12.5


def test_a_new_session_lives_where_its_initialize_was_answered() -> None:
    tally = ProbeTally()
    tally.observe(rec("initialize", "A"))
    tally.observe(lost("B"))
    tally.observe(rec("initialize", "C", session=S2))
    assert tally.observe(rec("set_session_value", "C", session=S2)).event is Event.OK
    second = tally.observe(lost("C", session=S2))
    assert not second.task_changed and "closed or expired there" in (second.note or "")
    assert tally.summary()["sessions"] == [S1, S2] and tally.losses == 2


def test_stale_cookie_loss_names_the_stale_cookie_and_the_session_still_alive() -> None:
    tally = ProbeTally(stale_cookie=True)
    tally.observe(rec("initialize", "A"))
    assert "stale sticky cookie" in (tally.observe(lost("B")).note or "")
    # Round-robin brings the next call back to A, where the session still lives.
    back = tally.observe(rec("get_session_state", "A"))
    assert back.event is Event.OK and "still answers on its task A" in (back.note or "")
    assert tally.losses == 1


def test_transport_and_http_errors_are_not_losses() -> None:
    tally = ProbeTally()
    tally.observe(rec("initialize", "A"))
    broken = tally.observe(rec("set_session_value", None, None, transport_error="ConnectError"))
    assert broken.event is Event.TRANSPORT_ERROR and "ConnectError" in (broken.note or "")
    # A 503 without a task header (the load balancer answering) is an error, not a break.
    assert tally.observe(rec("set_session_value", None, 503)).event is Event.ERROR
    # A 404 without -32600 is not the session-loss signature.
    assert tally.observe(rec("get_session_state", "A", 404)).event is Event.ERROR
    assert (tally.losses, tally.transport_errors, tally.errors) == (0, 1, 2)


def test_observation_json_carries_only_the_fingerprint() -> None:
    tally = ProbeTally()
    doc = tally.observe(rec("initialize", "A")).to_dict()
    assert doc["session"] == S1 and doc["event"] == "ok" and doc["session_task"] == "A"
    assert "session-one" not in str(doc)


def test_without_the_header_the_first_answer_on_the_session_names_its_task() -> None:
    tally = ProbeTally()
    tally.observe(rec("initialize", None))  # no X-Mcp-Task-Id: initialize names no task
    who = tally.observe(rec("whoami", "A", task_source="result"))
    assert who.event is Event.OK and tally.session_task == "A"
    moved = tally.observe(rec("set_session_value", "B", task_source="result"))
    assert moved.event is Event.STICKINESS_BREAK and moved.session_task == "A"


def test_an_answer_on_an_older_session_does_not_name_the_new_ones_task() -> None:
    tally = ProbeTally()
    tally.observe(rec("initialize", None, session=S1))
    tally.observe(rec("initialize", None, session=S2))
    tally.observe(rec("get_session_state", "A", session=S1))
    assert tally.session_task is None


def test_headerless_404_names_no_answering_task_but_the_holder() -> None:
    tally = ProbeTally()
    tally.observe(rec("initialize", None))
    tally.observe(rec("whoami", "A", task_source="result"))
    obs = tally.observe(rec("get_session_state", None, 404, jsonrpc_code=-32600))
    assert obs.event is Event.SESSION_LOST and tally.losses == 1
    assert obs.note is not None
    assert "unidentified task" in obs.note and "the session lived on task A" in obs.note
    assert "restarted" not in obs.note  # not guessed to be the holder's own doing


def test_every_sdk_form_of_a_lost_session_is_a_loss_named_by_its_form() -> None:
    forms = [
        (dict(jsonrpc_code=-32001, jsonrpc_message="Session not found"), "TypeScript SDK 1.x"),
        (
            dict(
                jsonrpc_code=-32600, jsonrpc_message="Session not found", jsonrpc_id="server-error"
            ),
            "mcp (Python) 1.27-1.30",
        ),
    ]
    for kw, sdk in forms:
        tally = ProbeTally()
        tally.observe(rec("initialize", "A"))
        obs = tally.observe(rec("get_session_state", "B", 404, **kw))
        assert obs.event is Event.SESSION_LOST and sdk in (obs.note or "")
    for status, kw in (
        (400, dict(answer_text="Bad Request: No valid session ID provided")),
        (
            400,
            dict(jsonrpc_code=-32000, jsonrpc_message="Bad Request: No valid session ID provided"),
        ),
    ):
        tally = ProbeTally()
        tally.observe(rec("initialize", "A"))
        obs = tally.observe(rec("set_session_value", None, status, **kw))
        assert obs.event is Event.SESSION_LOST and tally.losses == 1
        assert f"{status}/" in (obs.note or "")


def test_a_failed_answer_from_another_task_is_never_a_surviving_session() -> None:
    tally = ProbeTally()
    tally.observe(rec("initialize", "A"))
    obs = tally.observe(rec("set_session_value", "B", 500, jsonrpc_code=-32603))
    assert obs.event is Event.ERROR and "survived" not in (obs.note or "")
    assert tally.stickiness_breaks == 0 and tally.session_task == "A"
    # A JSON-RPC error in a 200 from another task: no survival either.
    assert tally.observe(rec("get_session_state", "B", 200, jsonrpc_code=-32602)).event is (
        Event.ERROR
    )
    assert tally.stickiness_breaks == 0 and tally.errors == 2


def test_summary_has_loss_rate_and_failure_streak() -> None:
    tally = ProbeTally(no_cookies=True)
    tally.observe(rec("initialize", "A", session=S1))
    first = tally.observe(lost("B", session=S1))
    assert "returns no cookies" in (first.note or "")
    tally.observe(rec("initialize", "B", session=S2))
    tally.observe(rec("set_session_value", "B", session=S2))
    for _ in range(3):
        tally.observe(rec("get_session_state", None, 503, session=S2))
    tally.observe(rec("get_session_state", "B", session=S2))
    summary = tally.summary()
    assert summary["sessions_opened"] == 2 and summary["sessions_lost"] == 1
    assert summary["loss_rate"] == 0.5
    assert summary["calls_failed"] == 3 and summary["longest_failure_streak"] == 3
