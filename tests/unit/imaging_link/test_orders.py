"""Imaging ServiceRequest → worklist fields, and DICOM ⇄ FHIR patient details (pure)."""

from __future__ import annotations

from vesalius.imaging_link.orders import (
    accession_of,
    description_of,
    generated_accession,
    is_imaging_order,
    modality_of,
    start_of,
)
from vesalius.imaging_link.patients import dicom_identity, human_name, person_name

DCM = "http://dicom.nema.org/resources/ontology/DCM"


def test_imaging_orders_are_recognised() -> None:
    category = {"category": [{"coding": [{"system": "http://snomed.info/sct",
                                          "code": "363679005"}]}]}
    assert is_imaging_order(category)
    assert is_imaging_order({"code": {"coding": [{"system": DCM, "code": "US"}]}})
    assert not is_imaging_order({"code": {"coding": [{"system": "http://loinc.org",
                                                      "code": "2345-7"}]}})


def test_worklist_fields_of_an_order() -> None:
    order = {"code": {"coding": [{"system": "http://loinc.org", "code": "x",
                                  "display": "Chest X-ray"}]},
             "orderDetail": [{"coding": [{"system": DCM, "code": "DX"}]}],
             "occurrencePeriod": {"start": "2026-04-01T14:05:09Z"},
             "identifier": [{"value": "other"},
                            {"type": {"coding": [{"system":
                                                  "http://terminology.hl7.org/CodeSystem/v2-0203",
                                                  "code": "ACSN"}]}, "value": "A77"}]}
    assert modality_of(order) == "DX"
    assert start_of(order) == ("20260401", "140509")
    assert description_of(order) == "Chest X-ray"
    assert accession_of(order) == "A77"
    assert modality_of({}) == "OT"
    assert start_of({"occurrenceDateTime": "2026-04-02"}) == ("20260402", "")


def test_generated_accession_fits_sh_and_is_stable() -> None:
    value = generated_accession("3f0c-order")
    assert len(value) == 16 and value == generated_accession("3f0c-order")
    assert value != generated_accession("another")


def test_person_names_round_trip() -> None:
    name = human_name("Doe^Jane^Q^Dr^III")
    assert name == {"use": "official", "family": "Doe", "given": ["Jane", "Q"],
                    "prefix": ["Dr"], "suffix": ["III"]}
    assert person_name({"name": [name]}) == "Doe^Jane^Q^Dr^III"
    assert human_name("") is None
    assert person_name({"name": [{"family": "Roe"}]}) == "Roe"


def test_dicom_identity_skips_old_and_unrepresentable_identifiers() -> None:
    patient = {"identifier": [
        {"system": "urn:vesalius:patient-id", "value": "OLD1", "use": "old"},
        {"system": "urn:oid:1.2.3", "value": "X" * 65},
        {"system": "urn:oid:1.2.3", "value": "MRN5"}]}
    assert dicom_identity(patient) == ("MRN5", "1.2.3")
    assert dicom_identity({"identifier": [{"system": "urn:vesalius:study-patient",
                                           "value": "1.2"}]}) is None
