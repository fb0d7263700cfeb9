"""Chains, reverse chains, includes, sorting, paging, totals, system search and the Patient
compartment, against the official examples; expected results computed from the JSON."""

from __future__ import annotations

from typing import Any

import pytest

from integration.record.search_store import Store, fold


def _named(patient: dict[str, Any], prefix: str) -> bool:
    return any(fold(part).startswith(prefix)
               for name in patient.get("name", [])
               for part in [name.get("family", ""), *name.get("given", [])] if part)


def _ref(resource: dict[str, Any], element: str) -> str | None:
    value = resource.get(element)
    return value.get("reference") if isinstance(value, dict) else None


def test_chains(store: Store) -> None:
    patients = store.by_type["Patient"]
    peters = {f"Patient/{i}" for i, p in patients.items() if _named(p, "peter")}
    expected = {i for i, o in store.by_type["Observation"].items()
                if _ref(o, "subject") in peters}
    assert expected
    assert store.ids("Observation", [("subject:Patient.name", "peter")]) == expected
    assert store.ids("Observation", [("subject.name", "peter")]) == expected  # ambiguous target
    assert store.ids("Observation", [("patient.name", "peter")]) == expected
    assert store.ids("Observation", [("subject:Patient.name", "nobody-is-called-this")]) == set()
    # two levels: Encounter → Patient → managing Organization
    orgs = {f"Organization/{i}" for i, o in store.by_type["Organization"].items()
            if fold(o.get("name", "")).startswith("gastro")}
    patients_of = {f"Patient/{i}" for i, p in patients.items()
                   if _ref(p, "managingOrganization") in orgs}
    two_level = {i for i, e in store.by_type["Encounter"].items()
                 if _ref(e, "subject") in patients_of}
    assert store.ids("Encounter", [("subject:Patient.organization.name", "gastro")]) == two_level


def test_reverse_chains(store: Store) -> None:
    observations = store.by_type["Observation"]
    referenced = {_ref(o, "subject") for o in observations.values()
                  if ("http://loinc.org", "29463-7") in
                  [(c.get("system"), c.get("code")) for c in o["code"].get("coding", [])]}
    expected = {r.split("/")[1] for r in referenced if r and r.startswith("Patient/")}
    assert expected == {"example"}
    assert store.ids("Patient", [("_has:Observation:patient:code", "29463-7")]) == expected
    assert store.ids("Patient", [("_has:Observation:subject:code", "no-such-code")]) == set()
    # nested: patients with an observation referenced by (has-member of) another observation
    members = {m["reference"] for o in observations.values() for m in o.get("hasMember", [])}
    nested = {r.split("/")[1] for i, o in observations.items() if f"Observation/{i}" in members
              for r in [_ref(o, "subject")] if r and r.startswith("Patient/")}
    assert store.ids("Patient", [("_has:Observation:patient:_has:Observation:has-member:status",
                                  "final,amended,preliminary,registered,cancelled")]) <= nested
    assert nested


def test_include_and_revinclude(store: Store) -> None:
    result = store.search("Observation", [("code", "http://loinc.org|29463-7"),
                                          ("_include", "Observation:subject")])
    assert [m["id"] for m in result.matches] == ["example"]
    assert [(r["resourceType"], r["id"]) for r in result.included] == [("Patient", "example")]
    assert ("_include", "Observation:subject") in result.params
    typed = store.search("Observation", [("_id", "example"),
                                         ("_include", "Observation:subject:Group")])
    assert typed.included == []
    rev = store.search("Patient", [("_id", "example"),
                                   ("_revinclude", "Observation:subject")])
    expected = {i for i, o in store.by_type["Observation"].items()
                if _ref(o, "subject") == "Patient/example"}
    assert {r["id"] for r in rev.included if r["resourceType"] == "Observation"} == expected
    everything = store.search("Observation", [("_id", "example"), ("_include", "*")])
    refs = {v["reference"] for v in store.by_type["Observation"]["example"].values()
            if isinstance(v, dict) and "reference" in v}
    stored = {f"{r['resourceType']}/{r['id']}" for r in everything.included}
    assert stored == {r for r in refs if tuple(r.split("/")) in store.pks}


def test_include_iterate(store: Store) -> None:
    encounters = store.by_type["Encounter"]
    encounter = next(e for e in encounters.values()
                     if (_ref(e, "subject") or "").startswith("Patient/")
                     and tuple((_ref(e, "subject") or "").split("/")) in store.pks
                     and _ref(store.by_type["Patient"][_ref(e, "subject").split("/")[1]],
                              "managingOrganization"))
    patient = store.by_type["Patient"][_ref(encounter, "subject").split("/")[1]]
    organization = _ref(patient, "managingOrganization")
    result = store.search("Encounter", [
        ("_id", encounter["id"]), ("_include", "Encounter:subject"),
        ("_include:iterate", "Patient:organization")])
    included = {f"{r['resourceType']}/{r['id']}" for r in result.included}
    assert f"Patient/{patient['id']}" in included
    assert (organization in included) == (tuple(organization.split("/")) in store.pks)
    flat = store.search("Encounter", [("_id", encounter["id"]),
                                      ("_include", "Encounter:subject"),
                                      ("_include", "Patient:organization")])
    assert organization not in {f"{r['resourceType']}/{r['id']}" for r in flat.included}


def test_sort(store: Store) -> None:
    patients = store.by_type["Patient"]
    dated = sorted((p["birthDate"], i) for i, p in patients.items() if "birthDate" in p)
    result = store.search("Patient", [("_sort", "birthdate"), ("_count", "100")])
    ids = [m["id"] for m in result.matches]
    assert [i for i in ids if "birthDate" in patients[i]][:1] == [dated[0][1]]
    births = [patients[i]["birthDate"] for i in ids if "birthDate" in patients[i]]
    assert births == sorted(births)
    assert all("birthDate" not in patients[i] for i in ids[len(births):])  # missing last
    desc = [patients[m["id"]].get("birthDate") for m in
            store.search("Patient", [("_sort", "-birthdate"), ("_count", "100")]).matches]
    present = [d for d in desc if d]
    assert present == sorted(present, reverse=True)
    by_id = [m["id"] for m in store.search("Patient", [("_sort", "-_id"),
                                                       ("_count", "100")]).matches]
    assert by_id == sorted(patients, reverse=True)
    two = store.search("Patient", [("_sort", "gender,-birthdate"), ("_count", "100")]).matches
    keys = [(p.get("gender", "~"), p.get("birthDate", "")) for p in two]
    genders = [k[0] for k in keys]
    assert genders == sorted(genders)


def test_paging_is_stable_and_complete(store: Store) -> None:
    seen: list[str] = []
    offset: int | None = 0
    total = None
    while offset is not None:
        page = store.search("Observation", [("_sort", "status"), ("_count", "7"),
                                            ("_offset", str(offset))])
        total = page.total
        assert page.count == 7 and len(page.matches) <= 7
        assert page.previous_offset == (max(0, offset - 7) if offset else None)
        seen += [m["id"] for m in page.matches]
        offset = page.next_offset
    assert len(seen) == len(set(seen)) == total == len(store.by_type["Observation"])


def test_count_total_summary(store: Store) -> None:
    only_total = store.search("Patient", [("_count", "0")])
    assert only_total.matches == [] and only_total.total == len(store.by_type["Patient"])
    assert store.search("Patient", [("_total", "none")]).total is None
    assert store.search("Patient", [("_summary", "count")]).matches == []
    shaped = store.search("Patient", [("_summary", "true"), ("_elements", "name,gender")])
    assert shaped.summary == "true" and shaped.elements == ["name", "gender"]
    assert store.search("Patient", [("_count", "5000")]).count == 1000
    assert len(store.search("Patient", []).matches) == 20


def test_system_search(store: Store) -> None:
    result = store.search(None, [("_type", "Patient,Practitioner"), ("_count", "1000")])
    assert {(m["resourceType"], m["id"]) for m in result.matches} == {
        (t, i) for t in ("Patient", "Practitioner") for i in store.by_type[t]}
    by_id = store.search(None, [("_id", "example"), ("_count", "1000")])
    assert {m["resourceType"] for m in by_id.matches} == {
        t for t, found in store.by_type.items() if "example" in found}
    with pytest.raises(Exception, match="gender"):
        store.search(None, [("gender", "male")], strict=True)


def test_patient_compartment(store: Store) -> None:
    members = {("Patient", "example")}
    for resource_type, element in (("Observation", "subject"), ("Encounter", "subject"),
                                   ("Condition", "subject"), ("Procedure", "subject")):
        members |= {(resource_type, i) for i, r in store.by_type.get(resource_type, {}).items()
                    if _ref(r, element) == "Patient/example"}
    with store.engine.connect() as conn:
        everything, total = store.search_engine.compartment(conn, "example", count=1000,
                                                            offset=0)
        found = [(r["resourceType"], r["id"]) for r in everything]
        assert found[0] == ("Patient", "example")
        assert len(found) == len(set(found)) == total
        assert members <= set(found)
        for resource_type, id_ in found:  # nothing of another patient's
            resource = store.by_type[resource_type][id_]
            subject = _ref(resource, "subject") or ""
            assert not subject.startswith("Patient/") or subject == "Patient/example"
        performers = {p["reference"] for r in everything if r["resourceType"] == "Observation"
                      for p in r.get("performer", []) if "reference" in p}
        assert {tuple(p.split("/")) for p in performers if tuple(p.split("/")) in store.pks
                } <= set(found)
        patient = store.by_type["Patient"]["example"]  # what the Patient itself refers to
        own = {_ref(patient, "managingOrganization")} | {
            g["reference"] for g in patient.get("generalPractitioner", [])}
        assert {tuple(r.split("/")) for r in own if r and tuple(r.split("/")) in store.pks
                } <= set(found)
        pages = []
        for offset in range(0, total, 9):
            page, page_total = store.search_engine.compartment(conn, "example", count=9,
                                                               offset=offset)
            assert page_total == total
            pages += [(r["resourceType"], r["id"]) for r in page]
        assert pages == found
        observations, count = store.search_engine.compartment(
            conn, "example", types=["Observation"], count=1000, offset=0)
        assert count == len(observations) == len(
            {m for m in members if m[0] == "Observation"})
