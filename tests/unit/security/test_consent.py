"""Consent decisions (vesalius.security.consent) on hand-built consents, on hostile input and
on the official R4 Consent examples (npm hl7.fhir.r4.examples@4.0.1, CC0)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from vesalius.core.errors import InvalidInput
from vesalius.security.consent import ConsentDecision, Disclosure, decide

AT = datetime(2024, 6, 1, 12, tzinfo=UTC)
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PRIVACY = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                       "code": "patient-privacy"}]}


def disclosure(*actors: str, purpose: str | None = "TREAT", resource_type: str | None = None,
               reference: str | None = None, at: datetime = AT) -> Disclosure:
    return Disclosure(frozenset(actors or {"Practitioner/p1", "Organization/o1"}), purpose,
                      resource_type, reference, at)


def consent(provision: dict[str, Any], *, id: str = "c1", date: str = "2024-01-01",
            status: str = "active", scope: Any = PRIVACY) -> dict[str, Any]:
    out: dict[str, Any] = {"resourceType": "Consent", "id": id, "status": status,
                           "dateTime": date, "provision": provision}
    if scope is not None:
        out["scope"] = scope
    return out


def actor(reference: str) -> dict[str, Any]:
    return {"role": {"coding": [{"code": "PRCP"}]}, "reference": {"reference": reference}}


def purpose(code: str) -> dict[str, str]:
    return {"system": ACT_REASON, "code": code}


def resource_class(code: str) -> dict[str, str]:
    return {"system": "http://hl7.org/fhir/resource-types", "code": code}


def permitted(consents: list[Any], what: Disclosure, default: str = "opt-in") -> bool:
    return decide(consents, what, default=default).permitted


# -- defaults ---------------------------------------------------------------------------

def test_no_consent_follows_the_default() -> None:
    denied = decide([], disclosure(), default="opt-in")
    allowed = decide([], disclosure(), default="opt-out")
    assert denied == ConsentDecision(False, denied.reason, None) and "opt-in" in denied.reason
    assert allowed.permitted and allowed.consent is None and "opt-out" in allowed.reason


def test_an_unknown_default_is_refused() -> None:
    with pytest.raises(InvalidInput):
        decide([], disclosure(), default="maybe")


# -- which consents count ------------------------------------------------------------------

@pytest.mark.parametrize("status", ["draft", "proposed", "rejected", "inactive",
                                    "entered-in-error", None, 7])
def test_only_active_consents_count(status: Any) -> None:
    assert not permitted([consent({"type": "permit"}, status=status)], disclosure())


@pytest.mark.parametrize("scope", [
    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                 "code": "research"}]},
    {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope",
                 "code": "treatment"}]},
    {"coding": [{"system": "http://example.org/other", "code": "patient-privacy"}]},
    "patient-privacy", ["x"], {"coding": "patient-privacy"},
])
def test_other_scopes_do_not_count(scope: Any) -> None:
    assert not permitted([consent({"type": "permit"}, scope=scope)], disclosure())


@pytest.mark.parametrize("scope", [None, {}, {"text": "privacy"}, {"coding": []}])
def test_a_consent_without_scope_coding_counts(scope: Any) -> None:
    decision = decide([consent({"type": "permit"}, scope=scope)], disclosure(),
                      default="opt-in")
    assert decision.permitted and decision.consent == "Consent/c1"


# -- criteria ------------------------------------------------------------------------------

def test_actor_matches_any_listed_reference() -> None:
    rule = consent({"type": "deny", "actor": [actor("Organization/zz"), actor("Organization/o1")]})
    assert not permitted([rule], disclosure(), default="opt-out")
    assert permitted([rule], disclosure("Practitioner/p9", "Organization/o9"), default="opt-out")


def test_purpose_compares_the_code() -> None:
    rule = consent({"type": "permit", "purpose": [purpose("TREAT")]})
    assert permitted([rule], disclosure(purpose="TREAT"))
    assert not permitted([rule], disclosure(purpose="HRESCH"))


def test_class_names_resource_types() -> None:
    rule = consent({"type": "permit", "class": [resource_class("ImagingStudy")]})
    assert permitted([rule], disclosure(resource_type="ImagingStudy"))
    assert not permitted([rule], disclosure(resource_type="Observation"))


def test_data_names_one_resource() -> None:
    rule = consent({"type": "deny", "data": [{"meaning": "instance",
                                              "reference": {"reference": "Observation/x"}}]})
    assert not permitted([rule], disclosure(resource_type="Observation",
                                            reference="Observation/x"), default="opt-out")
    assert permitted([rule], disclosure(resource_type="Observation",
                                        reference="Observation/y"), default="opt-out")
    assert permitted([rule], disclosure(resource_type="ImagingStudy"), default="opt-out")


@pytest.mark.parametrize(("start", "end", "inside"), [
    ("2024-01-01", "2024-12-31", True),
    ("2024-06-01", "2024-06-01", True),       # a date names the whole day
    ("2024-06", "2024-06", True),
    ("2024", None, True),
    (None, "2024-05-31", False),
    ("2024-06-01T12:00:01Z", None, False),
    ("2024-06-01T13:30:00+02:00", "2024-06-01T14:30:00+02:00", True),
    ("2025-01-01", None, False),
])
def test_period_must_contain_the_moment(start: str | None, end: str | None,
                                        inside: bool) -> None:
    period = {k: v for k, v in (("start", start), ("end", end)) if v is not None}
    assert permitted([consent({"type": "permit", "period": period})], disclosure()) is inside


def test_every_present_criterion_must_match() -> None:
    rule = consent({"type": "permit", "actor": [actor("Practitioner/p1")],
                    "purpose": [purpose("TREAT")], "class": [resource_class("ImagingStudy")]})
    assert permitted([rule], disclosure(resource_type="ImagingStudy"))
    assert not permitted([rule], disclosure(resource_type="ImagingStudy", purpose="HRESCH"))
    assert not permitted([rule], disclosure("Practitioner/p2", resource_type="ImagingStudy"))


def test_action_other_than_disclosure_does_not_match() -> None:
    correct = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                           "code": "correct"}]}
    access = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentaction",
                          "code": "access"}]}
    assert not permitted([consent({"type": "permit", "action": [correct]})], disclosure())
    assert permitted([consent({"type": "permit", "action": [correct, access]})], disclosure())


# -- what cannot be checked counts against the patient ------------------------------------

def test_an_unknown_purpose_never_permits_but_still_denies() -> None:
    permit = consent({"type": "permit", "purpose": [purpose("TREAT")]})
    deny = consent({"type": "deny", "purpose": [purpose("HRESCH")]})
    assert not permitted([permit], disclosure(purpose=None))
    assert not permitted([deny], disclosure(purpose=None), default="opt-out")


def test_a_class_limited_permit_does_not_open_the_whole_record() -> None:
    rule = consent({"type": "permit", "class": [resource_class("ImagingStudy")]})
    assert not permitted([rule], disclosure(resource_type=None))
    deny = consent({"type": "deny", "class": [resource_class("Observation")]})
    assert not permitted([deny], disclosure(resource_type=None), default="opt-out")


@pytest.mark.parametrize("criterion", [
    {"securityLabel": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": "PSY"}]},
    {"code": [{"coding": [{"system": "http://loinc.org", "code": "34133-9"}]}]},
    {"dataPeriod": {"start": "2020-01-01"}},
    {"class": [{"system": "urn:ietf:bcp:13", "code": "application/hl7-cda+xml"}]},
    {"period": {"start": "not a date"}},
    {"actor": [{"role": {"text": "someone"}}]},
])
def test_uncheckable_criteria_block_permits_and_keep_denies(criterion: dict[str, Any]) -> None:
    assert not permitted([consent({"type": "permit", **criterion})], disclosure())
    assert not permitted([consent({"type": "deny", **criterion})], disclosure(),
                         default="opt-out")


# -- nesting -------------------------------------------------------------------------------

def test_a_nested_exception_overrides_its_parent() -> None:
    rule = consent({"type": "permit", "provision": [
        {"type": "deny", "class": [resource_class("Observation")]}]})
    assert permitted([rule], disclosure(resource_type="ImagingStudy"))
    decision = decide([rule], disclosure(resource_type="Observation"), default="opt-out")
    assert not decision.permitted and decision.consent == "Consent/c1"


def test_the_most_specific_level_wins() -> None:
    rule = consent({"type": "deny", "provision": [
        {"type": "permit", "actor": [actor("Organization/o1")], "provision": [
            {"type": "deny", "purpose": [purpose("HRESCH")]}]}]})
    assert permitted([rule], disclosure(purpose="TREAT"))
    assert not permitted([rule], disclosure(purpose="HRESCH"), default="opt-out")
    assert not permitted([rule], disclosure("Organization/o2"), default="opt-out")


def test_an_exception_applies_only_inside_its_parent() -> None:
    rule = consent({"type": "deny", "actor": [actor("Organization/o1")], "provision": [
        {"type": "permit", "purpose": [purpose("ETREAT")]}]})
    assert permitted([rule], disclosure(purpose="ETREAT"))
    assert not permitted([rule], disclosure(purpose="TREAT"), default="opt-out")
    assert permitted([rule], disclosure("Organization/o2", purpose="ETREAT"), default="opt-out")
    assert not permitted([rule], disclosure("Organization/o2", purpose="ETREAT"))


def test_disagreeing_sibling_exceptions_deny() -> None:
    rule = consent({"type": "permit", "provision": [
        {"type": "permit", "purpose": [purpose("TREAT")]},
        {"type": "deny", "actor": [actor("Practitioner/p1")]}]})
    assert not permitted([rule], disclosure())


def test_a_provision_without_type_passes_matching_to_its_exceptions_only() -> None:
    silent = consent({"actor": [actor("Organization/o1")]})
    assert decide([silent], disclosure(), default="opt-out").consent is None
    parent = consent({"actor": [actor("Organization/o1")], "provision": [
        {"type": "permit", "purpose": [purpose("TREAT")]}]})
    assert permitted([parent], disclosure())
    assert not permitted([parent], disclosure("Organization/o2"))


def test_a_permit_below_an_uncertain_parent_does_not_grant() -> None:
    rule = consent({"type": "deny",
                    "securityLabel": [{"code": "PSY"}],
                    "provision": [{"type": "permit", "actor": [actor("Practitioner/p1")]}]})
    decision = decide([rule], disclosure(), default="opt-out")
    assert not decision.permitted and decision.consent == "Consent/c1"


# -- several consents ----------------------------------------------------------------------

def test_the_newest_applicable_consent_wins() -> None:
    old = consent({"type": "deny"}, id="old", date="2020-01-01")
    new = consent({"type": "permit"}, id="new", date="2023-05-05T10:00:00Z")
    newest_not_applicable = consent({"type": "deny", "actor": [actor("Organization/zz")]},
                                    id="newer", date="2024-05-05")
    decision = decide([old, newest_not_applicable, new], disclosure(), default="opt-in")
    assert decision.permitted and decision.consent == "Consent/new"
    assert decide([new, old], disclosure(), default="opt-in").consent == "Consent/new"


def test_a_tie_on_date_denies() -> None:
    a = consent({"type": "permit"}, id="a", date="2024-01-01")
    b = consent({"type": "deny"}, id="b", date="2024-01-01")
    assert decide([a, b], disclosure(), default="opt-out").consent == "Consent/b"
    assert decide([b, a], disclosure(), default="opt-out").consent == "Consent/b"


def test_a_consent_without_date_is_the_oldest() -> None:
    undated = consent({"type": "deny"}, id="u", date="")
    dated = consent({"type": "permit"}, id="d", date="1990")
    assert decide([undated, dated], disclosure(), default="opt-in").consent == "Consent/d"


def test_a_naive_moment_is_read_as_utc() -> None:
    rule = consent({"type": "permit", "period": {"start": "2024-06-01T12:00:00Z"}})
    assert permitted([rule], disclosure(at=datetime(2024, 6, 1, 12)))
    assert not permitted([rule], disclosure(at=datetime(2024, 6, 1, 11, 59)))


# -- hostile input ---------------------------------------------------------------------------

HOSTILE: list[Any] = [
    None, 1, "Consent", [], {}, {"status": "active"},
    {"resourceType": "Patient", "status": "active", "provision": {"type": "permit"}},
    consent({"type": "maybe"}), consent("permit"), consent({"type": "permit", "actor": "x"}),  # type: ignore[arg-type]
    consent({"type": "permit", "actor": [None, 3, {"reference": "Organization/o1"}]}),
    consent({"type": "permit", "purpose": {"code": "TREAT"}}),
    consent({"type": "permit", "purpose": [None, {"code": None}]}),
    consent({"type": "permit", "class": [{"system": None}]}),
    consent({"type": "permit", "period": "2024"}),
    consent({"type": "permit", "period": {"start": "2024-13-45"}}),
    consent({"type": "permit", "period": {"start": "99999-01-01"}}),
    consent({"type": "permit", "period": {"start": "2024-02-30T25:61:00Z"}}),
    consent({"type": "permit", "data": [{"reference": "Observation/x"}]}),
]
#: A plain root permit with junk around it: the junk is ignored, the permit stands.
JUNK_AROUND_A_PERMIT: list[Any] = [
    consent({"type": "permit", "provision": "deny"}),
    consent({"type": "permit", "provision": [None, "x", {"type": 5}]}),
    consent({"type": "permit"}, date="yesterday"),
    consent({"type": "permit"}, date=None),  # type: ignore[arg-type]
    {**consent({"type": "permit"}), "id": ["x"]},
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_malformed_consents_never_crash_and_never_grant(hostile: Any) -> None:
    decision = decide([hostile], disclosure(purpose=None), default="opt-in")
    assert isinstance(decision.reason, str) and decision.reason
    assert not decision.permitted


@pytest.mark.parametrize("hostile", JUNK_AROUND_A_PERMIT)
def test_junk_beside_a_plain_permit_is_ignored(hostile: Any) -> None:
    decision = decide([hostile], disclosure(purpose=None), default="opt-in")
    assert decision.permitted and decision.consent in ("Consent/c1", "Consent")


def test_a_non_string_consent_id_is_not_echoed() -> None:
    decision = decide([{**consent({"type": "deny"}), "id": {"$ne": 1}}], disclosure(),
                      default="opt-out")
    assert not decision.permitted and decision.consent == "Consent"


def test_deeply_nested_provisions_are_cut_off() -> None:
    provision: dict[str, Any] = {"type": "deny"}
    for _ in range(5000):
        provision = {"type": "permit", "provision": [provision]}
    decision = decide([consent(provision)], disclosure(), default="opt-in")
    assert decision.permitted  # the deny 5000 levels down is beyond the nesting bound


def test_many_consents() -> None:
    consents = [consent({"type": "deny", "actor": [actor(f"Organization/x{n}")]},
                        id=f"c{n}", date=f"2024-01-{1 + n % 28:02d}") for n in range(5000)]
    consents.append(consent({"type": "permit"}, id="yes", date="2000"))
    assert decide(consents, disclosure(), default="opt-in").consent == "Consent/yes"


def test_reasons_carry_no_patient_data() -> None:
    rule = consent({"type": "deny", "actor": [actor("Organization/o1")]}, id="c1")
    rule["patient"] = {"reference": "Patient/secret-patient", "display": "Jane Doe"}
    decision = decide([rule], disclosure(), default="opt-out")
    assert "secret" not in decision.reason and "Jane" not in decision.reason
    assert "o1" not in decision.reason


# -- official examples -------------------------------------------------------------------

def official(examples: Path) -> dict[str, dict[str, Any]]:
    return {path.stem.removeprefix("Consent-"): json.loads(path.read_text(encoding="utf-8"))
            for path in sorted(examples.glob("Consent-*.json"))}


def test_no_official_example_crashes(fhir_examples: Path) -> None:
    consents = official(fhir_examples)
    assert len(consents) >= 10
    probes = [disclosure(*actors, purpose=p, resource_type=t, at=at)
              for actors in (("Organization/f001",), ("Practitioner/f204",),
                             ("Practitioner/xcda-author",), ("Practitioner/13",))
              for p in ("TREAT", "ETREAT", None)
              for t in (None, "MedicationRequest", "Observation")
              for at in (datetime(2015, 1, 15, tzinfo=UTC), datetime(2016, 6, 23, 7, 10,
                                                                     tzinfo=UTC), AT)]
    for resource in consents.values():
        for probe in probes:
            for default in ("opt-in", "opt-out"):
                assert isinstance(decide([resource], probe, default=default), ConsentDecision)
    together = [decide(list(consents.values()), probe, default="opt-in") for probe in probes]
    assert all(d.consent is None or d.consent.startswith("Consent/consent-example-")
               for d in together)


def test_official_example_not_org_denies_that_organization(fhir_examples: Path) -> None:
    """consent-example-notOrg: a root deny for Organization/f001 (action access/correct)."""
    resource = official(fhir_examples)["consent-example-notOrg"]
    denied = decide([resource], disclosure("Organization/f001"), default="opt-out")
    assert not denied.permitted and denied.consent == "Consent/consent-example-notOrg"
    other = decide([resource], disclosure("Organization/f002"), default="opt-out")
    assert other.permitted and other.consent is None


def test_official_example_smart_on_fhir_permits_medication_requests_for_half_an_hour(
        fhir_examples: Path) -> None:
    """consent-example-smartonfhir: permit MedicationRequest from 2016-06-23T17:02:33+10:00
    for 30 minutes (07:02:33Z to 07:32:33Z)."""
    resource = official(fhir_examples)["consent-example-smartonfhir"]
    inside = datetime(2016, 6, 23, 7, 10, tzinfo=UTC)
    assert permitted([resource], disclosure(resource_type="MedicationRequest", at=inside))
    assert not permitted([resource], disclosure(resource_type="Observation", at=inside))
    assert not permitted([resource], disclosure(resource_type="MedicationRequest",
                                                at=datetime(2016, 6, 23, 7, 40, tzinfo=UTC)))


def test_official_example_not_them_states_no_rule(fhir_examples: Path) -> None:
    """consent-example-notThem names Practitioner/f204 but its provision has no ``type``: it
    states no rule, so the default decides either way."""
    resource = official(fhir_examples)["consent-example-notThem"]
    for default in ("opt-in", "opt-out"):
        decision = decide([resource], disclosure("Practitioner/f204"), default=default)
        assert decision.consent is None and decision.permitted is (default == "opt-out")


def test_official_example_emergency_denies_that_organization_in_emergencies(
        fhir_examples: Path) -> None:
    """consent-example-Emergency: a typeless root for Organization/f001 with purpose ETREAT,
    whose one exception denies Organization/f001."""
    resource = official(fhir_examples)["consent-example-Emergency"]
    assert not permitted([resource], disclosure("Organization/f001", purpose="ETREAT"),
                         default="opt-out")
    assert decide([resource], disclosure("Organization/f001", purpose="TREAT"),
                  default="opt-out").consent is None
