"""Parsing of search parameter names and values (https://hl7.org/fhir/R4/search.html):
modifiers, chains, escaping, prefixes, and the result parameters."""

from __future__ import annotations

import re
from dataclasses import dataclass

from vesalius.core.errors import InvalidInput

#: https://hl7.org/fhir/R4/search.html#prefix
PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap")

#: Search result parameters (https://hl7.org/fhir/R4/search.html#return) and ones ignored here.
RESULT_PARAMS = frozenset({"_count", "_offset", "_sort", "_include", "_revinclude", "_total",
                           "_summary", "_elements"})
IGNORED_PARAMS = frozenset({"_format", "_pretty"})
SUMMARY_VALUES = ("true", "text", "data", "count", "false")
TOTAL_VALUES = ("none", "estimate", "accurate")


class UnknownParameter(InvalidInput):
    """A parameter or modifier this server does not know: an error when the client asked for
    strict handling, otherwise the parameter is ignored
    (https://hl7.org/fhir/R4/search.html#errors)."""


@dataclass(frozen=True)
class ParamName:
    """``name[:modifier][.chain]`` of a search parameter."""

    code: str
    modifier: str | None
    chain: str | None

    @classmethod
    def parse(cls, key: str) -> ParamName:
        head, dot, chain = key.partition(".")
        code, colon, modifier = head.partition(":")
        if not code:
            raise UnknownParameter(f"unknown search parameter {key!r}")
        return cls(code, modifier if colon else None, chain if dot else None)


def split_unescaped(value: str, separator: str) -> list[str]:
    """Split on ``separator`` not escaped by ``\\`` (https://hl7.org/fhir/R4/search.html#escaping),
    keeping other escapes for a later split."""
    parts, current, i = [], [], 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value):
            current.append(value[i:i + 2])
            i += 2
            continue
        if char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    parts.append("".join(current))
    return parts


def unescape(value: str) -> str:
    return re.sub(r"\\([\\,$|])", r"\1", value)


def values_of(raw: str) -> list[str]:
    """The comma-separated alternatives of a parameter value (OR), still ``|``/``$``-escaped."""
    return split_unescaped(raw, ",")


def prefixed(name: str, value: str) -> tuple[str, str]:
    """(prefix, rest) of an ordered value; ``eq`` when none is given."""
    if value[:2] in PREFIXES:
        return value[:2], value[2:]
    if value[:1].isalpha():
        raise InvalidInput(f"search parameter {name}: unknown prefix in {value!r}")
    return "eq", value


def non_negative(name: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        raise InvalidInput(f"search parameter {name}: {value!r} is not a non-negative integer")
    return number


def choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise InvalidInput(f"search parameter {name}: {value!r} is not one of {allowed}")
    return value


def missing_flag(name: str, value: str) -> bool:
    return choice(name, value, ("true", "false")) == "true"
