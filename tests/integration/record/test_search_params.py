"""Search by each parameter type against the official examples; expected hits are computed
from the example JSON in the test, not from the extractor."""

from __future__ import annotations

from typing import Any

import pytest

from integration.record.search_store import Store, fold
from vesalius.core.errors import InvalidInput


def _name_parts(patient: dict[str, Any]) -> list[str]:
    parts: list[str] = []
    for name in patient.get("name", []):
        parts += [name.get("family", ""), name.get("text", ""), *name.get("given", []),
                  *name.get("prefix", []), *name.get("suffix", [])]
    return [p for p in parts if p]


def _codings(concept: dict[str, Any] | None) -> list[tuple[str | None, str | None]]:
    return [(c.get("system"), c.get("code")) for c in (concept or {}).get("coding", [])]


def test_string_starts_with_case_and_accent_insensitive(store: Store) -> None:
    patients = store.by_type["Patient"]
    for query in ("peter", "PET", "chal", "Jim"):
        expected = {i for i, p in patients.items()
                    if any(fold(part).startswith(fold(query)) for part in _name_parts(p))}
        assert expected
        assert store.ids("Patient", [("name", query)]) == expected
    store.add([{"resourceType": "Patient", "id": "accent", "name": [{"family": "Müller-Léon"}]}])
    assert store.ids("Patient", [("family", "muller-leon")]) == {"accent"}
    assert store.ids("Patient", [("family", "MÜLLER")]) == {"accent"}


def test_string_exact_and_contains(store: Store) -> None:
    patients = store.by_type["Patient"]
    assert store.ids("Patient", [("family:exact", "Chalmers")]) == {
        i for i, p in patients.items() if any(n.get("family") == "Chalmers"
                                              for n in p.get("name", []))}
    assert store.ids("Patient", [("family:exact", "chalmers")]) == set()
    expected = {i for i, p in patients.items()
                if any("alm" in fold(part) for part in _name_parts(p))}
    assert expected and store.ids("Patient", [("name:contains", "ALM")]) == expected


def test_token_forms(store: Store) -> None:
    observations = store.by_type["Observation"]
    loinc = "http://loinc.org"
    for code in ("29463-7", "8867-4", "85354-9"):
        expected = {i for i, o in observations.items() if (loinc, code) in _codings(o["code"])}
        assert expected
        assert store.ids("Observation", [("code", f"{loinc}|{code}")]) == expected
        assert store.ids("Observation", [("code", code)]) == expected
        assert store.ids("Observation", [("code", f"|{code}")]) == set()
    expected = {i for i, o in observations.items()
                if any(s == loinc for s, _ in _codings(o["code"]))}
    assert store.ids("Observation", [("code", f"{loinc}|")]) == expected
    patients = store.by_type["Patient"]
    females = {i for i, p in patients.items() if p.get("gender") == "female"}
    assert store.ids("Patient", [("gender", "female")]) == females
    assert store.ids("Patient", [("gender:not", "female")]) == set(patients) - females
    active = {i for i, p in patients.items() if p.get("active") is True}
    assert active and store.ids("Patient", [("active", "true")]) == active


def test_token_identifier_text_and_of_type(store: Store) -> None:
    patients = store.by_type["Patient"]
    expected = {i for i, p in patients.items() for ident in p.get("identifier", [])
                if ident.get("system") == "urn:oid:0.1.2.3.4.5.6.7"
                and ident.get("value") == "123456"}
    assert expected == {"pat2"}
    assert store.ids("Patient", [("identifier", "urn:oid:0.1.2.3.4.5.6.7|123456")]) == expected
    of_type = {i for i, p in patients.items() for ident in p.get("identifier", [])
               if ident.get("value") == "12345" and any(
                   (c.get("system"), c.get("code")) ==
                   ("http://terminology.hl7.org/CodeSystem/v2-0203", "MR")
                   for c in ident.get("type", {}).get("coding", []))}
    assert of_type
    assert store.ids("Patient", [(
        "identifier:of-type", "http://terminology.hl7.org/CodeSystem/v2-0203|MR|12345")]) == of_type
    observations = store.by_type["Observation"]
    texts = {i for i, o in observations.items()
             if fold(o["code"].get("text", "")).startswith("body")
             or any(fold(c.get("display", "")).startswith("body")
                    for c in o["code"].get("coding", []))}
    assert texts and store.ids("Observation", [("code:text", "Body")]) == texts


def test_missing(store: Store) -> None:
    patients = store.by_type["Patient"]
    with_birth = {i for i, p in patients.items() if "birthDate" in p}
    assert store.ids("Patient", [("birthdate:missing", "false")]) == with_birth
    assert store.ids("Patient", [("birthdate:missing", "true")]) == set(patients) - with_birth
    observations = store.by_type["Observation"]
    no_subject = {i for i, o in observations.items()
                  if "reference" not in o.get("subject", {})
                  and "identifier" not in o.get("subject", {})}
    assert store.ids("Observation", [("subject:missing", "true")]) == no_subject


def test_date_prefixes_and_periods(store: Store) -> None:
    patients = store.by_type["Patient"]
    births = {i: p["birthDate"] for i, p in patients.items() if "birthDate" in p}
    cases = {
        "1974": lambda d: d.startswith("1974"),
        "eq1974-12": lambda d: d.startswith("1974-12"),
        "ge1980": lambda d: d[:4] >= "1980",
        "lt1980": lambda d: d[:4] < "1980",
        "gt2000-01-01": lambda d: d[:10] > "2000-01-01",
        "le1974-12-25": lambda d: d[:10] <= "1974-12-25",
        "sa1990": lambda d: d[:4] > "1990",
        "eb1990": lambda d: d[:4] < "1990",
    }
    for value, predicate in cases.items():
        assert store.ids("Patient", [("birthdate", value)]) == {
            i for i, d in births.items() if predicate(d)}, value
    assert store.ids("Patient", [("birthdate", "ne1974-12-25")]) == {
        i for i, d in births.items() if d[:10] != "1974-12-25"}
    encounters = store.by_type["Encounter"]
    spans = {i: e["period"] for i, e in encounters.items() if "period" in e}
    assert spans
    for i, period in spans.items():
        start = period.get("start", "")[:10]
        if start:  # a period overlaps the day it starts on, and is not entirely before it
            assert i not in store.ids("Encounter", [("date", f"eb{start}")])
    observations = store.by_type["Observation"]
    day = next(o["effectiveDateTime"][:10] for o in observations.values()
               if len(o.get("effectiveDateTime", "")) >= 10)
    on_day = {i for i, o in observations.items()
              if o.get("effectiveDateTime", "").startswith(day)}
    assert on_day and store.ids("Observation", [("date", day)]) >= on_day


def test_date_timezones(store: Store) -> None:
    store.add([{"resourceType": "Observation", "id": "tz", "status": "final",
                "code": {"text": "tz"}, "effectiveDateTime": "2021-03-01T23:30:00-02:00"}])
    # 23:30 at UTC-2 is 01:30 UTC on 2 March
    assert "tz" in store.ids("Observation", [("date", "2021-03-02T01:30:00Z")])
    assert "tz" in store.ids("Observation", [("date", "2021-03-02")])
    assert "tz" not in store.ids("Observation", [("date", "2021-03-01T23:30:00Z")])
    assert "tz" in store.ids("Observation", [("date", "ap2021-03-02")])
    assert "tz" in store.ids("Observation", [("date", "gt2021-03-02T01:00:00+00:00")])


def test_quantity_and_number(store: Store) -> None:
    observations = store.by_type["Observation"]
    values = {i: o["valueQuantity"] for i, o in observations.items() if "valueQuantity" in o}
    for value, predicate in {"gt100": lambda v: v > 100, "le37": lambda v: v <= 37,
                             "lt0.5": lambda v: v < 0.5}.items():
        expected = {i for i, q in values.items() if predicate(q["value"])}
        assert store.ids("Observation", [("value-quantity", value)]) == expected, value
    weight = values["example"]
    query = f"{weight['value']}|{weight['system']}|{weight['code']}"
    assert "example" in store.ids("Observation", [("value-quantity", query)])
    assert "example" in store.ids("Observation", [("value-quantity", f"{weight['value']}||lbs")])
    assert "example" not in store.ids("Observation", [("value-quantity",
                                                       f"{weight['value']}|x|{weight['code']}")])
    # eq uses the implicit precision of the search value: 185 matches [184.5, 185.5)
    store.add([{"resourceType": "Observation", "id": "q1", "status": "final",
                "code": {"text": "x"}, "valueQuantity": {"value": 185.4}}])
    assert {"example", "q1"} <= store.ids("Observation", [("value-quantity", "185")])
    assert "q1" not in store.ids("Observation", [("value-quantity", "185.0")])
    groups = store.by_type["Group"]
    sizes = {i for i, g in groups.items() if g.get("quantity", -1) > 10}
    assert store.ids("Group", [("_id", ",".join(groups)), ("characteristic:missing", "false"),
                               ]) <= set(groups)
    assert "quantity" in next(iter(groups.values())) or sizes == set()


def test_reference_forms(store: Store) -> None:
    observations = store.by_type["Observation"]
    expected = {i for i, o in observations.items()
                if o.get("subject", {}).get("reference") == "Patient/example"}
    assert expected
    assert store.ids("Observation", [("subject", "Patient/example")]) == expected
    assert store.ids("Observation", [("patient", "example")]) == expected
    assert store.ids("Observation", [("subject:Patient", "example")]) == expected
    assert store.ids("Observation", [("subject:Group", "example")]) == set()
    assert store.ids("Observation", [("subject", "http://vesalius.test/fhir/Patient/example")]
                     ) == expected
    store.add([{"resourceType": "Observation", "id": "abs", "status": "final",
                "code": {"text": "x"},
                "subject": {"reference": "http://vesalius.test/fhir/Patient/example"}},
               {"resourceType": "Observation", "id": "ident", "status": "final",
                "code": {"text": "x"},
                "subject": {"identifier": {"system": "urn:mrn", "value": "77"}}}])
    assert "abs" in store.ids("Observation", [("subject", "Patient/example")])
    assert store.ids("Observation", [("subject:identifier", "urn:mrn|77")]) == {"ident"}


def test_uri_and_meta(store: Store) -> None:
    store.add([{"resourceType": "Patient", "id": "tagged",
                "meta": {"profile": ["http://example.org/fhir/StructureDefinition/p/v1"],
                         "tag": [{"system": "urn:tags", "code": "vip"}],
                         "security": [{"system": "urn:sec", "code": "R"}],
                         "source": "urn:source:lab"}}])
    assert store.ids("Patient", [("_tag", "urn:tags|vip")]) == {"tagged"}
    assert store.ids("Patient", [("_security", "R")]) == {"tagged"}
    assert store.ids("Patient", [("_source", "urn:source:lab")]) == {"tagged"}
    profile = "http://example.org/fhir/StructureDefinition/p/v1"
    assert store.ids("Patient", [("_profile", profile)]) == {"tagged"}
    assert store.ids("Patient", [("_profile", profile[:-3])]) == set()
    assert store.ids("Patient", [("_profile:below", "http://example.org/fhir/")]) == {"tagged"}
    assert store.ids("Patient", [("_profile:above", profile + "/extra")]) == {"tagged"}


def test_or_and_id(store: Store) -> None:
    patients = store.by_type["Patient"]
    assert store.ids("Patient", [("gender", "male,female")]) == {
        i for i, p in patients.items() if p.get("gender") in ("male", "female")}
    assert store.ids("Patient", [("gender", "male"), ("gender", "female")]) == set()
    assert store.ids("Patient", [("_id", "example,pat1,nope")]) == {"example", "pat1"}
    assert store.ids("Patient", [("gender", "male"), ("name", "peter")]) == {
        i for i, p in patients.items() if p.get("gender") == "male"
        and any(fold(x).startswith("peter") for x in _name_parts(p))}


def test_composite_matches_within_one_component(store: Store) -> None:
    observations = store.by_type["Observation"]

    def expected(code: str, predicate: Any) -> set[str]:
        return {i for i, o in observations.items() for c in o.get("component", [])
                if ("http://loinc.org", code) in _codings(c.get("code"))
                and "valueQuantity" in c and predicate(c["valueQuantity"]["value"])}

    hits = expected("8480-6", lambda v: v > 100)
    assert "blood-pressure" in hits
    assert store.ids("Observation", [("component-code-value-quantity",
                                      "http://loinc.org|8480-6$gt100")]) == hits
    # diastolic 60 sits in another component of blood-pressure: it must not pair with systolic
    low = expected("8480-6", lambda v: v < 70)
    assert "blood-pressure" not in low
    assert store.ids("Observation", [("component-code-value-quantity",
                                      "http://loinc.org|8480-6$lt70")]) == low
    top = {i for i, o in observations.items()
           if ("http://loinc.org", "29463-7") in _codings(o["code"])
           and o.get("valueQuantity", {}).get("value", 0) > 180}
    assert top == {"example"}
    assert store.ids("Observation", [("code-value-quantity",
                                      "http://loinc.org|29463-7$gt180")]) == top


def test_last_updated(store: Store) -> None:
    from datetime import UTC, datetime
    store.add([{"resourceType": "Patient", "id": "recent"}],
              last_updated=datetime(2024, 6, 1, 12, 0, tzinfo=UTC))
    assert store.ids("Patient", [("_lastUpdated", "gt2024-01-01")]) == {"recent"}
    assert store.ids("Patient", [("_lastUpdated", "2024-06-01")]) == {"recent"}
    assert "recent" not in store.ids("Patient", [("_lastUpdated", "lt2024-06-01T12:00:00Z")])
    assert len(store.ids("Patient", [("_lastUpdated", "le2020-01-01")])) == len(
        store.by_type["Patient"]) - 1


def test_deleted_never_match(store: Store) -> None:
    assert "example" in store.ids("Patient", [("name", "peter")])
    store.delete("Patient", "example")
    assert "example" not in store.ids("Patient", [("name", "peter")])
    assert "example" not in store.ids("Patient", [])
    assert store.ids("Observation", [("subject:Patient.name", "peter")]) == set()


def test_unknown_parameters_strict_and_lenient(store: Store) -> None:
    result = store.search("Patient", [("gender", "female"), ("nonsense", "1"),
                                      ("name:bogus", "x"), ("_format", "json")])
    assert result.params == [("gender", "female")]
    assert {r["id"] for r in result.matches} == {
        i for i, p in store.by_type["Patient"].items() if p.get("gender") == "female"}
    for resource_type, bad, named in [
            ("Patient", "nonsense", "nonsense"), ("Patient", "name:bogus", "bogus"),
            ("Observation", "subject.nonsense", "nonsense"),
            ("Patient", "_has:Observation:nope:code", "nope"),
            ("Patient", "_has:Observation:patient:nonsense", "nonsense"),
            ("Patient", "_sort", "nonsense"), ("Patient", "_include", "nonsense")]:
        value = "Patient:nonsense" if bad == "_include" else "nonsense" if bad == "_sort" else "1"
        with pytest.raises(InvalidInput, match=named):
            store.search(resource_type, [(bad, value)], strict=True)
        assert store.search(resource_type, [(bad, value)]).params == []
    with pytest.raises(InvalidInput, match="nonsense"), store.engine.connect() as conn:
        store.search_engine.match(conn, "Patient", [("nonsense", "1")])


@pytest.mark.parametrize(("key", "value", "message"), [
    ("birthdate", "notadate", "birthdate"),
    ("birthdate", "xx2010", "birthdate"),
    ("birthdate", "1974-13-45", "birthdate"),
    ("_count", "-1", "_count"),
    ("_count", "many", "_count"),
    ("_total", "maybe", "_total"),
])
def test_malformed_values(store: Store, key: str, value: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        store.search("Patient", [(key, value)])


def test_malformed_numbers(store: Store) -> None:
    for value in ("gtabc", "1|2", "NaN"):
        with pytest.raises(InvalidInput, match="value-quantity"):
            store.search("Observation", [("value-quantity", value)])


@pytest.mark.parametrize("attack", ["' OR 1=1 --", "%", "_", "\\", "%'; DROP TABLE x; --",
                                    "\\%", "peter%"])
def test_injection_strings_just_do_not_match(store: Store, attack: str) -> None:
    assert store.ids("Patient", [("name", attack)]) == set()
    assert store.ids("Patient", [("identifier", attack)]) == set()
    assert store.ids("Observation", [("subject", attack)]) == set()
    assert store.ids("Patient", [("name:contains", attack)]) == {
        i for i, p in store.by_type["Patient"].items()
        if any(fold(attack) in fold(x) for x in _name_parts(p))}
    assert store.ids("Patient", []) == set(store.by_type["Patient"])
