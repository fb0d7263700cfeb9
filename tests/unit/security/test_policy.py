"""The pure DIMSE access decision."""

from __future__ import annotations

import pytest

from vesalius.security.policy import DimseCaller, may_dimse

UNKNOWN = DimseCaller("ANY", "10.0.0.1", None)
READER = DimseCaller("READER", "127.0.0.1", frozenset({"find", "get"}))


@pytest.mark.parametrize(("caller", "action", "allowed"), [
    (UNKNOWN, "echo", True),
    (UNKNOWN, "store", True),
    (UNKNOWN, "commit", True),
    (UNKNOWN, "find", False),
    (UNKNOWN, "mwl", False),
    (UNKNOWN, "mpps", False),
    (UNKNOWN, "move", False),
    (READER, "find", True),
    (READER, "mpps", True),
    (READER, "get", True),
    (READER, "store", False),
    (READER, "move", False),
])
def test_decisions(caller: DimseCaller, action: str, allowed: bool) -> None:
    assert may_dimse(caller, action, ("store",)) is allowed


def test_unknown_callers_follow_the_configured_default() -> None:
    assert may_dimse(UNKNOWN, "find", ("store", "find"))
    assert not may_dimse(UNKNOWN, "store", ())
