"""Date ranges, number precision, string normalization, escaping and expression rewriting."""

from __future__ import annotations

from datetime import datetime

import pytest

from vesalius.core.errors import InvalidInput
from vesalius.record.search.extract import evaluate, lenient
from vesalius.record.search.query import ParamName, prefixed, split_unescaped, unescape
from vesalius.record.search.values import (
    date_range,
    like_escape,
    normalize,
    number_range,
    search_date,
)


@pytest.mark.parametrize(("value", "low", "high"), [
    ("2020", datetime(2020, 1, 1), datetime(2021, 1, 1)),
    ("2020-12", datetime(2020, 12, 1), datetime(2021, 1, 1)),
    ("2020-02-28", datetime(2020, 2, 28), datetime(2020, 2, 29)),
    ("2020-02-28T10:15", datetime(2020, 2, 28, 10, 15), datetime(2020, 2, 28, 10, 16)),
    ("2020-02-28T10:15:30Z", datetime(2020, 2, 28, 10, 15, 30),
     datetime(2020, 2, 28, 10, 15, 31)),
    ("2020-02-28T10:15:30.25+02:00", datetime(2020, 2, 28, 8, 15, 30, 250000),
     datetime(2020, 2, 28, 8, 15, 30, 260000)),
    ("2020-12-31T23:30:00-01:00", datetime(2021, 1, 1, 0, 30), datetime(2021, 1, 1, 0, 30, 1)),
])
def test_date_range_covers_the_precision(value: str, low: datetime, high: datetime) -> None:
    assert date_range(value) == (low, high)


@pytest.mark.parametrize("value", ["", "20", "2020-13", "2020-02-30", "yesterday",
                                   "2020-01-01T25:00", "2020-01-01 10:00"])
def test_bad_dates_are_named(value: str) -> None:
    with pytest.raises(InvalidInput, match="birthdate"):
        search_date("birthdate", value)


@pytest.mark.parametrize(("value", "low", "high"), [
    ("100", 99.5, 100.5), ("100.0", 99.95, 100.05), ("1e2", 50.0, 150.0), ("-2.5", -2.55, -2.45),
])
def test_number_implicit_precision(value: str, low: float, high: float) -> None:
    _, got_low, got_high = number_range("n", value)
    assert (got_low, got_high) == pytest.approx((low, high))


@pytest.mark.parametrize("value", ["abc", "", "NaN", "Infinity", "1,0"])
def test_bad_numbers(value: str) -> None:
    with pytest.raises(InvalidInput, match="value-quantity"):
        number_range("value-quantity", value)


def test_normalize_and_like_escape() -> None:
    assert normalize("Ångström MÜLLER") == "angstrom muller"
    assert normalize("Straße") == "strasse"
    assert like_escape("50%_a\\b") == "50\\%\\_a\\\\b"


def test_prefixes() -> None:
    assert prefixed("d", "ge2020") == ("ge", "2020")
    assert prefixed("d", "2020") == ("eq", "2020")
    assert prefixed("n", "-5") == ("eq", "-5")
    with pytest.raises(InvalidInput, match="prefix"):
        prefixed("d", "xx2020")


def test_escaping_and_names() -> None:
    assert split_unescaped(r"a\,b,c", ",") == [r"a\,b", "c"]
    assert [unescape(p) for p in split_unescaped(r"sys|a\|b", "|")] == ["sys", "a|b"]
    assert split_unescaped(r"x$gt5", "$") == ["x", "gt5"]
    assert ParamName.parse("subject:Patient.name:exact") == ParamName(
        "subject", "Patient", "name:exact")
    assert ParamName.parse("name") == ParamName("name", None, None)


def test_lenient_expressions_select_every_instance() -> None:
    assert lenient("(Observation.value as Quantity)") == "Observation.value.ofType(Quantity)"
    assert lenient("value.as(DateTime) | value.as(Period)") == (
        "value.ofType(dateTime) | value.ofType(Period)")
    observation = {"resourceType": "Observation", "component": [
        {"code": {"text": "a"}, "valueQuantity": {"value": 1}},
        {"code": {"text": "b"}, "valueQuantity": {"value": 2}}]}
    values = evaluate("(Observation.component.value as Quantity)", observation)
    assert [v["value"] for v in values] == [1, 2]


def test_number_beyond_double_precision_still_has_a_range() -> None:
    _, low, high = number_range("x", "1000000000000000000")
    assert low <= 1e18 < high
