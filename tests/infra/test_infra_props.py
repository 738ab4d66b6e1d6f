"""Every `SessionWatchProps` field is documented where it is declared, with its default."""

from __future__ import annotations

import ast
import dataclasses
import inspect

from sessionwatch.infra import construct
from sessionwatch.infra.construct import SessionWatchProps


def _field_docstrings() -> dict[str, str]:
    (cls,) = [
        node
        for node in ast.parse(inspect.getsource(construct)).body
        if isinstance(node, ast.ClassDef) and node.name == SessionWatchProps.__name__
    ]
    docs: dict[str, str] = {}
    for statement, following in zip(cls.body, cls.body[1:], strict=False):
        if (
            isinstance(statement, ast.AnnAssign)
            and isinstance(statement.target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
        ):
            docs[statement.target.id] = str(following.value.value)
    return docs


def test_every_field_has_its_own_docstring() -> None:
    docs = _field_docstrings()
    fields = {f.name for f in dataclasses.fields(SessionWatchProps)}
    assert set(docs) == fields
    for name, doc in docs.items():
        assert len(doc.split()) >= 8, f"{name}: say what it does and why: {doc!r}"


def test_optional_fields_state_their_default_and_required_ones_say_so() -> None:
    docs = _field_docstrings()
    for f in dataclasses.fields(SessionWatchProps):
        has_default = f.default is not dataclasses.MISSING or (
            f.default_factory is not dataclasses.MISSING
        )
        if has_default:
            assert "Default" in docs[f.name], f.name
        else:
            assert "Default" not in docs[f.name], f.name
