"""Value forms shared by indexing and searching: normalized strings, date ranges, numbers with
their implicit precision (https://hl7.org/fhir/R4/search.html#prefix)."""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from vesalius.core.errors import InvalidInput

#: Bounds standing for an open end of a period.
MIN_DATE = datetime(1, 1, 1)
MAX_DATE = datetime(9999, 12, 31, 23, 59, 59, 999999)

STRING_LENGTH = 255

_DATE = re.compile(
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?P<fraction>\.\d+)?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?")


def normalize(text: str) -> str:
    """Case-folded text without accents, as string search compares it
    (https://hl7.org/fhir/R4/search.html#string)."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.casefold()[:STRING_LENGTH]


def like_escape(text: str) -> str:
    """``text`` with LIKE wildcards escaped by ``\\``, so ``%``/``_`` match literally."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def date_range(value: str) -> tuple[datetime, datetime]:
    """The half-open UTC range ``[low, high)`` a date, dateTime or instant covers at its precision.

    A time without a zone is taken as UTC (https://hl7.org/fhir/R4/search.html#date).
    Raises ValueError for anything that is not a FHIR date.
    """
    m = _DATE.fullmatch(value.strip())
    if m is None:
        raise ValueError(value)
    year = int(m["year"])
    if m["month"] is None:
        low = datetime(year, 1, 1)
        return low, _add_years(low)
    month = int(m["month"])
    if m["day"] is None:
        low = datetime(year, month, 1)
        return low, _add_months(low)
    day = int(m["day"])
    if m["hour"] is None:
        low = datetime(year, month, day)
        return low, low + timedelta(days=1)
    low = datetime(year, month, day, int(m["hour"]), int(m["minute"]))
    step = timedelta(minutes=1)
    if m["second"] is not None:
        low = low.replace(second=int(m["second"]))
        step = timedelta(seconds=1)
        if m["fraction"]:
            digits = m["fraction"][1:7]
            low = low.replace(microsecond=int(digits.ljust(6, "0")))
            step = timedelta(microseconds=10 ** (6 - len(digits)))
    if m["tz"] and m["tz"] != "Z":
        sign = 1 if m["tz"][0] == "+" else -1
        hours, minutes = int(m["tz"][1:3]), int(m["tz"][4:6])
        low -= sign * timedelta(hours=hours, minutes=minutes)
    return low, low + step


def _add_months(moment: datetime) -> datetime:
    if moment.month == 12:
        return _add_years(moment.replace(month=1))
    return moment.replace(month=moment.month + 1)


def _add_years(moment: datetime) -> datetime:
    return moment.replace(year=moment.year + 1) if moment.year < 9999 else MAX_DATE


def search_date(name: str, value: str) -> tuple[datetime, datetime]:
    try:
        return date_range(value)
    except ValueError:
        raise InvalidInput(f"search parameter {name}: {value!r} is not a FHIR date") from None


def as_aware(moment: datetime) -> datetime:
    """A naive UTC datetime as an aware one (for timestamp-with-zone columns)."""
    return moment.replace(tzinfo=UTC)


def number_range(name: str, value: str) -> tuple[float, float, float]:
    """(value, low, high) of a search number: the implicit range of its significant figures,
    e.g. ``100`` → [99.5, 100.5) (https://hl7.org/fhir/R4/search.html#number)."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise InvalidInput(f"search parameter {name}: {value!r} is not a number") from None
    if not number.is_finite():
        raise InvalidInput(f"search parameter {name}: {value!r} is not a number")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    half = Decimal(5).scaleb(exponent - 1)
    exact, high = float(number), float(number + half)
    # With more significant figures than a double holds (1000000000000000000), the upper
    # bound rounds to the value itself and the half-open range would be empty.
    if high <= exact:
        high = math.nextafter(exact, math.inf)
    return exact, float(number - half), high
