"""Matchers (PS3.4 §C.2.2.2 semantics) as SQL conditions — shared by every SQL-backed query.

QIDO-RS, C-FIND and the modality worklist all match through :func:`condition`, so
the three surfaces cannot drift apart.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, false, or_, true

from vesalius.core.errors import InvalidInput
from vesalius.dicom.matching import (
    AnyOf,
    Fuzzy,
    Matcher,
    Range,
    Single,
    Universal,
    Wildcard,
    normalize_name,
    wildcard_to_like,
)


def _like(column: Any, pattern: str) -> ColumnElement[bool]:
    condition: ColumnElement[bool] = column.like(wildcard_to_like(pattern), escape="!")
    return condition


def _int(value: str) -> int:
    try:
        number = int(value)
    except ValueError as exc:
        raise InvalidInput(f"{value[:32]!r} is not an integer") from exc
    if not -(2**31) <= number < 2**31:
        raise InvalidInput(f"{value[:32]!r} is outside the range of this attribute")
    return number


def condition(table: Any, column_name: str, kind: str, matcher: Matcher) -> Any:
    """SQL for ``matcher`` on ``table.c[column_name]``.

    ``kind``: ``str``; ``int``; ``pn`` (person name: the table also has
    ``<column>_norm`` and ``<column>_fuzzy`` columns); ``multi`` (``\\A\\B\\`` sets).
    """
    column = table.c[column_name]
    if isinstance(matcher, Universal):
        return true()
    if kind == "pn":
        norm = table.c[column_name + "_norm"]
        if isinstance(matcher, Fuzzy):
            fuzzy = table.c[column_name + "_fuzzy"]
            return and_(*[fuzzy.like("% " + wildcard_to_like(w) + "%", escape="!")
                          for w in matcher.words])
        if isinstance(matcher, Single):
            return norm == normalize_name(matcher.value)
        if isinstance(matcher, Wildcard):
            return _like(norm, normalize_name(matcher.pattern))
        if isinstance(matcher, AnyOf):
            return or_(*[condition(table, column_name, kind, Single(v)) if "*" not in v
                         and "?" not in v else _like(norm, normalize_name(v))
                         for v in matcher.values])
        raise InvalidInput("range matching is not defined for person names")
    if kind == "multi":
        values = matcher.values if isinstance(matcher, AnyOf) else (
            (matcher.value,) if isinstance(matcher, Single) else None)
        if values is None:
            if isinstance(matcher, Wildcard):
                return _like(column, "*\\" + matcher.pattern + "\\*")
            raise InvalidInput("range matching is not defined for this attribute")
        return or_(*[column.like("%\\" + wildcard_to_like(v) + "\\%", escape="!")
                     for v in values])
    if kind == "int":
        if isinstance(matcher, Single):
            return column == _int(matcher.value)
        if isinstance(matcher, AnyOf):
            return column.in_([_int(v) for v in matcher.values])
        if isinstance(matcher, Range):
            conds = []
            if matcher.low is not None:
                conds.append(column >= _int(matcher.low))
            if matcher.high is not None:
                conds.append(column <= _int(matcher.high))
            return and_(*conds)
        raise InvalidInput("wildcards are not allowed for numeric attributes")
    if isinstance(matcher, Single):
        return column == matcher.value
    if isinstance(matcher, Wildcard):
        return _like(column, matcher.pattern)
    if isinstance(matcher, AnyOf):
        plain = [v for v in matcher.values if "*" not in v and "?" not in v]
        wild = [v for v in matcher.values if v not in plain]
        return or_(column.in_(plain) if plain else false(), *[_like(column, w) for w in wild])
    if isinstance(matcher, Range):
        conds = []
        if matcher.low is not None:
            conds.append(and_(column >= matcher.low, column != ""))
        if matcher.high is not None:
            # A partial upper bound ("2026", "10") must include values that extend it.
            conds.append(and_(column <= matcher.high + "\uffff", column != ""))
        return and_(*conds)
    raise InvalidInput("unsupported matching")  # pragma: no cover
