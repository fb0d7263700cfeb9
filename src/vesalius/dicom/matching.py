"""Attribute matching semantics shared by QIDO-RS and C-FIND.

Parses one query value into a :class:`Matcher` following PS3.4 §C.2.2.2
(single value, universal, wildcard, list of UIDs, range) and the QIDO-RS
rules of PS3.18 §8.3.4.1 (comma-separated lists, ``fuzzymatching``). The
archive index turns matchers into SQL; nothing here knows about storage.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from vesalius.core.errors import InvalidInput

RANGE_VRS = frozenset({"DA", "TM", "DT"})

# Syntax of range ends (PS3.5 Table 6.2-1 for DA, TM and DT values).
_RANGE_END = {
    "DA": re.compile(r"^\d{8}$"),
    "TM": re.compile(r"^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$"),
    "DT": re.compile(r"^\d{4}(\d{2}){0,5}(\.\d{1,6})?([+-]\d{4})?$"),
}


@dataclass(frozen=True)
class Universal:
    """Empty value: matches everything, the attribute is only returned."""


@dataclass(frozen=True)
class Single:
    value: str


@dataclass(frozen=True)
class Wildcard:
    """``*`` matches any sequence, ``?`` any single character (PS3.4 §C.2.2.2.4)."""

    pattern: str


@dataclass(frozen=True)
class AnyOf:
    """List matching (PS3.4 §C.2.2.2.2 for UIDs; PS3.18 §8.3.4.1 comma lists)."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class Range:
    """Range matching for DA/TM/DT (PS3.4 §C.2.2.2.5); open ends are ``None``."""

    low: str | None
    high: str | None


@dataclass(frozen=True)
class Fuzzy:
    """Person-name fuzzy matching: every query word prefixes a name component.

    Case- and accent-insensitive, as PS3.18 §8.3.4.1 leaves the exact
    algorithm to the implementation; documented in the conformance statement.
    """

    words: tuple[str, ...]


Matcher = Universal | Single | Wildcard | AnyOf | Range | Fuzzy


def normalize_name(value: str) -> str:
    """Case-folded person name, used for case-insensitive PN matching."""
    return value.casefold()


def fuzzy_key(value: str) -> str:
    """Accent-free, case-folded name words, space separated and space padded.

    ``"Müller^Zoë Anne"`` → ``" muller zoe anne "`` so that ``LIKE '% zo%'``
    finds a component starting with ``zo``.
    """
    decomposed = unicodedata.normalize("NFKD", value.casefold())
    plain = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    words = [w for w in plain.replace("^", " ").replace("=", " ").replace(",", " ").split() if w]
    return " " + " ".join(words) + " " if words else ""


def normalize_time(value: str) -> str:
    """TM values written as ``HH:MM:SS`` (old style) become ``HHMMSS``."""
    return value.replace(":", "").strip()


def normalize_date(value: str) -> str:
    """DA values written as ``YYYY.MM.DD`` (ACR-NEMA style) become ``YYYYMMDD``."""
    return value.replace(".", "").replace("-", "").strip() if len(value) == 10 else value.strip()


def _has_wildcard(value: str) -> bool:
    return "*" in value or "?" in value


def parse_matcher(value: str, vr: str, *, fuzzy: bool = False) -> Matcher:
    """Turn one query value for an attribute of ``vr`` into a :class:`Matcher`."""
    if len(value) > 1024:
        raise InvalidInput("query value too long")
    if "\x00" in value:
        raise InvalidInput("query value contains a NUL character")
    value = value.strip()
    if value in ("", "*") and vr != "UI":
        return Universal()
    if value == "":
        return Universal()
    if vr in RANGE_VRS and "-" in value and not (vr == "DT" and value.count("-") > 1):
        low, _, high = value.partition("-")
        norm = normalize_time if vr == "TM" else (lambda v: v.strip())
        if not low.strip() and not high.strip():
            raise InvalidInput("a range needs at least one end")
        ends = (norm(low) or None, norm(high) or None)
        for end in ends:
            if end is not None and not _RANGE_END[vr].match(end):
                raise InvalidInput(f"{end[:32]!r} is not a valid {vr} value for a range")
        return Range(*ends)
    if vr == "UI":
        parts = tuple(p for p in value.replace("\\", ",").split(",") if p)
        if any(_has_wildcard(p) for p in parts):
            raise InvalidInput("wildcards are not allowed in UID matching")
        return Single(parts[0]) if len(parts) == 1 else AnyOf(parts)
    if vr == "PN" and fuzzy:
        words = tuple(w.strip("*?") for w in fuzzy_key(value).split())
        words = tuple(w for w in words if w)
        return Fuzzy(words) if words else Universal()
    if "," in value or "\\" in value:
        parts = tuple(p.strip() for p in value.replace("\\", ",").split(",") if p.strip())
        if len(parts) > 1:
            return AnyOf(parts)
        value = parts[0] if parts else ""
        if not value:
            return Universal()
    if vr == "TM":
        value = normalize_time(value)
    if _has_wildcard(value):
        return Wildcard(value)
    return Single(value)


def wildcard_to_like(pattern: str, escape: str = "!") -> str:
    """DICOM wildcard → SQL LIKE pattern with ``escape`` as the escape character."""
    out = []
    for ch in pattern:
        if ch in ("%", "_", escape):
            out.append(escape + ch)
        elif ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        else:
            out.append(ch)
    return "".join(out)
