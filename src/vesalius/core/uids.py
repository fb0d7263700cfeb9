"""UID syntax checks (PS3.5 §9.1): digits and dots, no leading zeros, at most 64 chars."""

from __future__ import annotations

import re

from vesalius.core.errors import InvalidInput


def is_tolerable_uid(value: str) -> bool:
    """Looser check for UIDs read from real-world files.

    Real modalities write UIDs with leading zeros in a component; we accept
    those (tolerant reading) but never anything outside digits and dots, so a
    UID can never smuggle path separators or markup into the system.
    """
    return 0 < len(value) <= 64 and re.fullmatch(r"[0-9]+(\.[0-9]+)*", value) is not None


def require_uid(value: str, what: str = "UID") -> str:
    """Return ``value`` or raise :class:`InvalidInput` naming ``what``."""
    if not is_tolerable_uid(value):
        raise InvalidInput(f"{what} is not a valid DICOM UID")
    return value
