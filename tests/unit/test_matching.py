"""Query value parsing (PS3.4 §C.2.2.2)."""

from __future__ import annotations

import pytest

from vesalius.core.errors import InvalidInput
from vesalius.dicom.matching import (
    AnyOf,
    Fuzzy,
    Range,
    Single,
    Universal,
    Wildcard,
    fuzzy_key,
    parse_matcher,
    wildcard_to_like,
)


@pytest.mark.parametrize(("value", "vr", "expected"), [
    ("", "LO", Universal()),
    ("*", "PN", Universal()),
    ("ABC", "LO", Single("ABC")),
    ("AB*", "LO", Wildcard("AB*")),
    ("A,B", "SH", AnyOf(("A", "B"))),
    ("1.2\\1.3", "UI", AnyOf(("1.2", "1.3"))),
    ("20250101-20251231", "DA", Range("20250101", "20251231")),
    ("-20251231", "DA", Range(None, "20251231")),
    ("10:00-", "TM", Range("1000", None)),
])
def test_parse(value: str, vr: str, expected: object) -> None:
    assert parse_matcher(value, vr) == expected


def test_fuzzy_words_are_accent_and_case_free() -> None:
    assert parse_matcher("Zoë Müller", "PN", fuzzy=True) == Fuzzy(("zoe", "muller"))
    assert fuzzy_key("Müller^Zoë") == " muller zoe "


@pytest.mark.parametrize("value", ["1.2.*", "x" * 2000, "a\x00b", "-"])
def test_rejected(value: str) -> None:
    with pytest.raises(InvalidInput):
        parse_matcher(value, "UI" if value.startswith("1.2") else "DA")


def test_like_escaping() -> None:
    assert wildcard_to_like("50%_a*?!") == "50!%!_a%_!!"


@pytest.mark.parametrize(("value", "vr"), [("2024-13-45--x", "DA"), ("2024-20250101", "DA"),
                                           ("10:00-2x", "TM"), ("abc-", "DT")])
def test_malformed_range_ends_are_rejected(value: str, vr: str) -> None:
    with pytest.raises(InvalidInput):
        parse_matcher(value, vr)
