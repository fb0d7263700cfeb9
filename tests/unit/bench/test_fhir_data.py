"""The benchmark's synthetic population: valid FHIR R4, self-contained, deterministic."""

from __future__ import annotations

from collections import Counter
from typing import Any

from bench import fhir_data

from vesalius.record.definitions import load
from vesalius.record.validation import Validator


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["reference"]] if isinstance(node.get("reference"), str) else []
        return found + [r for value in node.values() for r in _references(value)]
    if isinstance(node, list):
        return [r for value in node for r in _references(value)]
    return []


def test_bundles_are_valid_transactions_whose_references_stay_inside() -> None:
    validator = Validator(load())
    (sent,) = fhir_data.bundles(0, 3, patients_per_bundle=3)
    bundle = sent.bundle
    assert validator.validate(bundle) == []
    assert bundle["type"] == "transaction"
    assert sent.resources == 3 * fhir_data.RESOURCES_PER_PATIENT == 150
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    assert all(u.startswith("urn:uuid:") for u in full_urls)
    for entry in bundle["entry"]:
        resource = entry["resource"]
        assert validator.validate(resource) == []
        assert entry["request"] == {"method": "POST", "url": resource["resourceType"]}
        assert set(_references(resource)) <= set(full_urls)
        assert resource.get("subject", {}).get("reference", "") in (
            "", *[full_urls[p] for p in sent.patient_entries])


def test_each_patient_is_fifty_resources_with_its_patient_first() -> None:
    entries = fhir_data.patient_entries(41)
    types = Counter(e["resource"]["resourceType"] for e in entries)
    assert types == {"Patient": 1, "Encounter": 5, "Condition": 4, "Observation": 36,
                     "MedicationRequest": 4}
    patient = entries[0]["resource"]
    assert patient["identifier"] == [{"system": fhir_data.IDENTIFIER_SYSTEM,
                                      "value": "BENCH-FHIR-0000041"}]
    assert patient["name"][0]["family"] == fhir_data.family_name(41)
    dates = [e["resource"]["effectiveDateTime"] for e in entries
             if e["resource"]["resourceType"] == "Observation"]
    assert all("2015-01-01" <= d[:10] <= "2024-12-31" for d in dates)
    codes = {e["resource"]["code"]["coding"][0]["system"] for e in entries
             if e["resource"]["resourceType"] == "Observation"}
    assert codes == {fhir_data.LOINC}


def test_a_patient_is_the_same_whatever_the_bundling() -> None:
    by_three = [e for b in fhir_data.bundles(10, 6, patients_per_bundle=3)
                for e in b.bundle["entry"]]
    by_six = next(fhir_data.bundles(10, 6, patients_per_bundle=6))
    assert by_three == by_six.bundle["entry"]
    assert by_six.patients == (10, 11, 12, 13, 14, 15)
    assert [by_six.bundle["entry"][p]["resource"]["identifier"][0]["value"]
            for p in by_six.patient_entries] == [fhir_data.mrn(i) for i in range(10, 16)]
    assert fhir_data.patient_entries(12) != fhir_data.patient_entries(13)


def test_the_last_bundle_takes_the_remainder() -> None:
    sizes = [b.resources for b in fhir_data.bundles(0, 7, patients_per_bundle=5)]
    assert sizes == [250, 100]
