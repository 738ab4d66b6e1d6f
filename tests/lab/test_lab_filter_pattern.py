"""The CloudWatch Logs JSON filter-pattern evaluator, on the template's pattern and its edges."""

from __future__ import annotations

import json

import pytest

from lab.filter_pattern import PatternError, compile_pattern

TEMPLATE_PATTERN = (
    '{ $.event = "session_*" || $.event = "task_started" || $.event = "shutdown_started" }'
)


def line(**fields: object) -> str:
    return json.dumps(fields)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (line(event="session_created", session="0123456789abcdef"), True),
        (line(event="session_not_found"), True),
        (line(event="session_"), True),  # * matches the empty string
        (line(event="task_started"), True),
        (line(event="shutdown_started"), True),
        (line(event="task_started_late"), False),  # no implicit wildcard
        (line(event="http_request"), False),
        (line(event="xsession_created"), False),
        (line(level="INFO", message="session_created"), False),  # selector is $.event only
        (line(event=None), False),
        (line(event={"nested": "session_x"}), False),
        ("session_created", False),  # not JSON
        ("[1, 2]", False),  # JSON but not an object
        ("", False),
    ],
)
def test_template_pattern(message: str, expected: bool) -> None:
    assert compile_pattern(TEMPLATE_PATTERN)(message) is expected


def test_and_binds_tighter_than_or_and_parentheses() -> None:
    p = compile_pattern('{ $.a = "x" || $.b = "y" && $.c = "z" }')
    assert p(line(a="x"))
    assert not p(line(b="y"))
    assert p(line(b="y", c="z"))
    q = compile_pattern('{ ($.a = "x" || $.b = "y") && $.c = "z" }')
    assert not q(line(a="x"))
    assert q(line(a="x", c="z"))


def test_numbers_nested_selectors_and_not_equal() -> None:
    p = compile_pattern("{ $.http.status >= 500 }")
    assert p(line(http={"status": 503}))
    assert not p(line(http={"status": 404}))
    assert not p(line(http={"status": "503"}))  # a string is not a number
    assert not p(line(http={"status": True}))
    n = compile_pattern('{ $.event != "session_*" }')
    assert n(line(event="task_started"))
    assert not n(line(event="session_closed"))


def test_question_mark_is_literal() -> None:
    p = compile_pattern('{ $.event = "a?c" }')
    assert p(line(event="a?c"))
    assert not p(line(event="abc"))


def test_empty_pattern_matches_everything() -> None:
    assert compile_pattern("")("anything")


@pytest.mark.parametrize(
    "pattern",
    ["ERROR", "{ $.a[0] = 1 }", '{ $.a = "x" ', '{ $.a > "x" }', "{ $.a IS NULL }", "{ }"],
)
def test_unsupported_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(pattern)
