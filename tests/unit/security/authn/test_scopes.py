"""SMART scope parsing and the "does this grant allow that" question the policy asks."""

from __future__ import annotations

import pytest

from vesalius.core.errors import InvalidInput
from vesalius.security.authn.scopes import (
    Scope,
    allows,
    granted,
    parse_scope,
    split_scopes,
)


@pytest.mark.parametrize(("text", "expected"), [
    ("patient/Observation.rs", Scope("patient", "Observation", frozenset("rs"))),
    ("user/*.cruds", Scope("user", "*", frozenset("cruds"))),
    ("system/ImagingStudy.r", Scope("system", "ImagingStudy", frozenset("r"))),
    ("user/Patient.cud", Scope("user", "Patient", frozenset("cud"))),
    # SMART v1 forms
    ("patient/*.read", Scope("patient", "*", frozenset("rs"))),
    ("user/Observation.write", Scope("user", "Observation", frozenset("cud"))),
    ("system/*.*", Scope("system", "*", frozenset("cruds"))),
])
def test_parses_v2_and_v1_resource_scopes(text: str, expected: Scope) -> None:
    assert parse_scope(text) == expected


@pytest.mark.parametrize("text", [
    "", "patient", "patient/", "patient/Observation", "patient/Observation.",
    "doctor/Observation.rs",          # unknown context
    "patient/observation.rs",         # resource types start upper case
    "patient/Observation.sr",         # letters out of order
    "patient/Observation.rr",         # repeated letter
    "patient/Observation.x",          # unknown letter
    "patient/Observation.rs?category=laboratory",  # granular scopes are refused, not widened
    "patient/Obs ervation.rs", "patient/Observation.rs ", " patient/Observation.rs",
    "patient/*.cruds\n", "user/" + "A" * 100 + ".rs", "patient/Observation.rs\x00",
    "openid",                         # special scopes are not resource scopes
])
def test_refuses_malformed_resource_scopes(text: str) -> None:
    with pytest.raises(InvalidInput):
        parse_scope(text)


def test_split_accepts_special_and_refuses_unknown_scopes() -> None:
    assert split_scopes("openid fhirUser  launch/patient offline_access user/*.rs") == {
        "openid", "fhirUser", "launch/patient", "offline_access", "user/*.rs"}
    for bad in ("openid admin", "launch/encounter-ish", "user/*.rs patient/Foo.q"):
        with pytest.raises(InvalidInput):
            split_scopes(bad)


def test_split_refuses_oversized_requests() -> None:
    with pytest.raises(InvalidInput):
        split_scopes(" ".join(["openid"] * 101))
    with pytest.raises(InvalidInput):
        split_scopes("user/Observation.rs " * 300)


def test_granted_keeps_what_an_allowed_scope_covers() -> None:
    allowed = ["openid", "user/*.cruds", "patient/Observation.rs"]
    requested = ["openid", "profile", "user/Observation.rs", "patient/Observation.r",
                 "patient/Observation.rus", "patient/Condition.rs", "system/*.rs"]
    assert granted(requested, allowed) == {"openid", "user/Observation.rs",
                                           "patient/Observation.r"}


def test_allows_by_context_type_and_interaction() -> None:
    scopes = ["openid", "patient/Observation.rs", "user/*.r", "not a scope"]
    assert allows(scopes, "patient", "Observation", "s")
    assert not allows(scopes, "patient", "Observation", "c")
    assert not allows(scopes, "patient", "Condition", "r")
    assert allows(scopes, "user", "Condition", "r")
    assert not allows(scopes, "user", "Condition", "s")
    assert allows(scopes, None, "Condition", "r")
    assert not allows(scopes, "system", "Condition", "r")
    assert not allows([], None, "Patient", "r")
