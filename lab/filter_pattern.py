"""CloudWatch Logs JSON filter patterns, evaluated locally (moto ignores them).

The subscription filter of the synthesized template decides which of a task's log lines reach
the session-events detector, so the lab must apply that pattern as CloudWatch Logs would. This is
the subset of the JSON pattern syntax the template uses, and a little more:

    { $.event = "session_*" || $.event = "task_started" }
    { ($.level = "ERROR") && $.latency > 100 }
    { $.session != "abc" }

Selectors ``$.a.b`` (object members), string values with ``*`` wildcards (``=``/``!=``),
numbers (``= != < <= > >=``), ``&&`` binding tighter than ``||``, parentheses. A line that is not
a JSON object never matches (CloudWatch's JSON patterns only match JSON events). Anything else
(arrays ``[0]``, ``IS NULL``, ``EXISTS``) raises ``PatternError``: better to refuse loudly than to
pass lines CloudWatch would not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<lp>\()|(?P<rp>\))|(?P<or>\|\|)|(?P<and>&&)|
        (?P<op>!=|<=|>=|=|<|>)|
        (?P<sel>\$(?:\.[A-Za-z0-9_\-]+)+)|
        (?P<str>"(?:[^"\\]|\\.)*")|
        (?P<num>-?\d+(?:\.\d+)?)
    )""",
    re.VERBOSE,
)


class PatternError(ValueError):
    """A filter pattern outside the supported subset."""


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise PatternError(f"unsupported filter pattern near {text[pos : pos + 20]!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append((kind, match.group(kind)))
        pos = match.end()
    return out


def _lookup(event: dict[str, Any], selector: str) -> Any:
    value: Any = event
    for part in selector[2:].split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def _comparison(selector: str, op: str, kind: str, raw: str) -> Predicate:
    if kind == "str":
        wanted = json.loads(raw)
        if op not in ("=", "!="):
            raise PatternError(f"operator {op} needs a number")

        def match_str(event: dict[str, Any]) -> bool:
            value = _lookup(event, selector)
            if value is None or isinstance(value, dict | list):
                return False
            # Only * is a wildcard in CloudWatch (fnmatch would also expand ? and [...]).
            regex = ".*".join(re.escape(part) for part in wanted.split("*"))
            hit = re.fullmatch(regex, str(value)) is not None
            return hit if op == "=" else not hit

        return match_str
    number = float(raw)
    ops: dict[str, Callable[[float, float], bool]] = {
        "=": float.__eq__,
        "!=": float.__ne__,
        "<": float.__lt__,
        "<=": float.__le__,
        ">": float.__gt__,
        ">=": float.__ge__,
    }
    compare = ops[op]

    def match_num(event: dict[str, Any]) -> bool:
        value = _lookup(event, selector)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        return compare(float(value), number)

    return match_num


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos][0] if self.pos < len(self.tokens) else None

    def take(self, kind: str) -> str:
        if self.peek() != kind:
            raise PatternError(f"expected {kind} at token {self.pos}")
        value = self.tokens[self.pos][1]
        self.pos += 1
        return value

    def parse_or(self) -> Predicate:
        parts = [self.parse_and()]
        while self.peek() == "or":
            self.take("or")
            parts.append(self.parse_and())
        return parts[0] if len(parts) == 1 else (lambda e: any(p(e) for p in parts))

    def parse_and(self) -> Predicate:
        parts = [self.parse_term()]
        while self.peek() == "and":
            self.take("and")
            parts.append(self.parse_term())
        return parts[0] if len(parts) == 1 else (lambda e: all(p(e) for p in parts))

    def parse_term(self) -> Predicate:
        if self.peek() == "lp":
            self.take("lp")
            inner = self.parse_or()
            self.take("rp")
            return inner
        selector = self.take("sel")
        op = self.take("op")
        kind = self.peek()
        if kind not in ("str", "num"):
            raise PatternError("a comparison needs a string or number value")
        return _comparison(selector, op, kind, self.take(kind))


def compile_pattern(pattern: str) -> Callable[[str], bool]:
    """A matcher for one log message (the raw line) under ``pattern``.

    An empty pattern matches every line, as in CloudWatch Logs.
    """
    text = pattern.strip()
    if not text:
        return lambda _line: True
    if not (text.startswith("{") and text.endswith("}")):
        raise PatternError("only JSON filter patterns { ... } are supported")
    parser = _Parser(_tokens(text[1:-1]))
    predicate = parser.parse_or()
    if parser.peek() is not None:
        raise PatternError(f"unexpected token at {parser.pos}")

    def matches(line: str) -> bool:
        try:
            event = json.loads(line)
        except ValueError:
            return False
        return isinstance(event, dict) and predicate(event)

    return matches


__all__ = ["PatternError", "compile_pattern"]
