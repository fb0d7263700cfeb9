"""SQL conditions matching one search value against index rows of one table
(https://hl7.org/fhir/R4/search.html#ptypes). Values are always bound parameters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, not_, or_
from sqlalchemy.sql.expression import FromClause

from vesalius.core.errors import InvalidInput
from vesalius.record.search.query import prefixed, split_unescaped, unescape
from vesalius.record.search.values import (
    MAX_DATE,
    MIN_DATE,
    like_escape,
    normalize,
    number_range,
    search_date,
)

Condition = ColumnElement[bool]


def ordered(prefix: str, low: Any, high: Any, s_low: Any, s_high: Any, *,
            point: bool = False, slack: Any = None) -> Condition:
    """A prefix comparison of the target range ``[low, high)`` with the search range
    ``[s_low, s_high)``; a ``point`` target has no width (https://hl7.org/fhir/R4/search.html#prefix)."""
    conditions: dict[str, Condition]
    if point:
        eq = and_(low >= s_low, low < s_high)
        conditions = {"gt": low >= s_high, "lt": low < s_low, "ge": low >= s_low,
                      "le": low < s_high, "sa": low >= s_high, "eb": low < s_low}
    else:
        eq = and_(low >= s_low, high <= s_high)
        # ge is gt or eq, which reduces to one comparison per indexed column (likewise le)
        conditions = {"gt": high > s_high, "lt": low < s_low,
                      "ge": or_(high > s_high, low >= s_low),
                      "le": or_(low < s_low, high <= s_high),
                      "sa": low >= s_high, "eb": high <= s_low}
    if prefix == "eq":
        return eq
    if prefix == "ne":
        return not_(eq)
    if prefix == "ap":
        return and_(low < s_high + slack, (low if point else high) >= s_low - slack)
    return conditions[prefix]


def date(name: str, low: Any, high: Any, value: str, *, point: bool = False,
         aware: bool = False) -> Condition:
    prefix, rest = prefixed(name, value)
    s_low, s_high = search_date(name, rest)
    # ap: within 10% of the distance from now (https://hl7.org/fhir/R4/search.html#prefix)
    now = datetime.now(UTC).replace(tzinfo=None)
    slack = max(abs(now - s_low) / 10, timedelta(days=1))
    if aware:
        s_low, s_high = s_low.replace(tzinfo=UTC), s_high.replace(tzinfo=UTC)
    return ordered(prefix, low, high, _clamp(s_low), _clamp(s_high), point=point, slack=slack)


def _clamp(moment: datetime) -> datetime:
    return min(max(moment, MIN_DATE.replace(tzinfo=moment.tzinfo)),
               MAX_DATE.replace(tzinfo=moment.tzinfo))


def number(name: str, table: FromClause, value: str) -> Condition:
    """Numbers match by the implicit range of the search value's significant figures."""
    prefix, rest = prefixed(name, value)
    exact, s_low, s_high = number_range(name, rest)
    c = table.c
    if prefix == "eq":
        return and_(c.low >= s_low, c.high < s_high)
    if prefix == "ne":
        return not_(and_(c.low >= s_low, c.high < s_high))
    if prefix == "ap":
        slack = abs(exact) / 10
        return and_(c.low <= exact + slack, c.high >= exact - slack)
    return {"gt": c.high > exact, "lt": c.low < exact, "ge": c.high >= exact,
            "le": c.low <= exact, "sa": c.low > exact, "eb": c.high < exact}[prefix]


def quantity(name: str, table: FromClause, value: str) -> Condition:
    """``[prefix]number|system|code`` or ``number||unit`` (no unit conversion)."""
    parts = [unescape(p) for p in split_unescaped(value, "|")]
    if len(parts) not in (1, 3):
        raise InvalidInput(f"search parameter {name}: {value!r} is not number|system|code")
    condition = number(name, table, parts[0])
    if len(parts) == 3:
        system, code = parts[1], parts[2]
        c = table.c
        if system:
            condition = and_(condition, c.system == system, c.code == code)
        elif code:
            condition = and_(condition, or_(c.code == code, c.unit == code))
    return condition


def string(table: FromClause, modifier: str | None, value: str) -> Condition:
    text = unescape(value)
    if modifier == "exact":
        return and_(table.c.value == normalize(text), table.c.exact == text)
    pattern = like_escape(normalize(text))
    if modifier == "contains":
        return table.c.value.like(f"%{pattern}%", escape="\\")
    return table.c.value.like(f"{pattern}%", escape="\\")


def token(name: str, table: FromClause, modifier: str | None, value: str) -> Condition:
    c = table.c
    if modifier == "text":
        return c.text.like(f"{like_escape(normalize(unescape(value)))}%", escape="\\")
    parts = [unescape(p) for p in split_unescaped(value, "|")]
    if modifier == "of-type":
        if len(parts) != 3:
            raise InvalidInput(f"search parameter {name}: :of-type needs system|code|value")
        return and_(c.type_system == parts[0], c.type_code == parts[1], c.code == parts[2])
    if len(parts) == 1:
        return c.code == parts[0]
    if len(parts) != 2:
        raise InvalidInput(f"search parameter {name}: {value!r} is not [system|]code")
    system, code = parts
    if not system:
        return and_(c.system.is_(None), c.code == code)
    if not code:
        return c.system == system
    return and_(c.system == system, c.code == code)


def uri(table: FromClause, modifier: str | None, value: str) -> Condition:
    text = unescape(value)
    if modifier == "below":
        return table.c.value.like(f"{like_escape(text)}%", escape="\\")
    if modifier == "above":
        segments = text.split("/")
        return table.c.value.in_(["/".join(segments[:i]) for i in range(1, len(segments) + 1)])
    return table.c.value == text


def identifier(table: FromClause, value: str) -> Condition:
    """``:identifier`` on a reference: matches Reference.identifier like a token."""
    parts = [unescape(p) for p in split_unescaped(value, "|")]
    c = table.c
    if len(parts) == 1:
        return c.identifier_value == parts[0]
    if not parts[0]:
        return and_(c.identifier_system.is_(None), c.identifier_value == parts[1])
    if not parts[1]:
        return c.identifier_system == parts[0]
    return and_(c.identifier_system == parts[0], c.identifier_value == parts[1])

