"""Every official R4 example validates, except a short list of examples that are really invalid.

The examples are npm ``hl7.fhir.r4.examples@4.0.1`` (CC0), from the ``fhir_examples`` fixture.
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from vesalius.record.definitions import load
from vesalius.record.validation import Validator

CORE_TYPES = (
    "Patient", "Practitioner", "PractitionerRole", "Organization", "Encounter", "Condition",
    "AllergyIntolerance", "MedicationRequest", "MedicationStatement", "Medication",
    "Immunization", "Observation", "DiagnosticReport", "CarePlan", "Procedure", "ServiceRequest",
    "ImagingStudy", "Media", "DocumentReference", "Binary", "Endpoint", "Consent", "AuditEvent",
    "Provenance", "Device", "Bundle")

#: Files in the package that are not FHIR resources.
NOT_EXAMPLES = frozenset({"package.json"})

_ID_TOO_LONG = "an id longer than 64 characters (questionnaireresponse-extensions-…)"
#: Official examples that break R4 itself, each with what is wrong; nothing else may fail.
INVALID_EXAMPLES = {
    "Bundle-v2-valuesets.json": "CodeSystem v2-0550 inside: codes with a trailing U+00A0 and an "
                                "empty code",
    "CodeSystem-v2-0550.json": "codes with a trailing U+00A0 ('CHESTÂ\\xa0') and an empty code",
    "CodeSystem-dicom-dcim.json": "narrative over our 1 MB string limit (a Vesalius limit)",
    "ValueSet-c80-doc-typecodes.json": "narrative over our 1 MB string limit (a Vesalius limit)",
    "DeviceMetric-example.json": "parent references DeviceDefinition; R4 allows only Device",
    "DeviceUseStatement-example.json": "reasonReference to Procedure; R4 does not allow it",
    "MedicationRequest-medrx0301.json": "dispenseRequest.performer references a Practitioner; "
                                        "R4 allows only Organization",
    "Observation-clinical-gender.json": "performer references an Encounter",
    "Questionnaire-qs1.json": "nested items without the required linkId",
    "ImplementationGuide-fhir.json": "no name and no status (both 1..1); " + _ID_TOO_LONG,
    "ig-r4.json": "the same ImplementationGuide as ImplementationGuide-fhir.json",
    "SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json":
        _ID_TOO_LONG,
    **{f"SearchParameter-{kind}-extensions-{kind_type}-{code}.json": "no base (1..*)"
       for kind, kind_type in (("codesystem", "CodeSystem"), ("valueset", "ValueSet"))
       for code in ("author", "effective", "end", "keyword", "workflow")},
}


@dataclass
class Outcome:
    errors: dict[str, list[dict[str, str]]]  # file name → its error issues
    types: dict[str, str]  # file name → resourceType
    seconds: list[float]  # validation time of each resource


@pytest.fixture(scope="module")
def outcome(fhir_examples: Path) -> Outcome:
    validator = Validator(load())
    errors: dict[str, list[dict[str, str]]] = {}
    types: dict[str, str] = {}
    seconds: list[float] = []
    for path in sorted(fhir_examples.glob("*.json")):
        if path.name in NOT_EXAMPLES:
            continue
        resource = json.loads(path.read_bytes())
        types[path.name] = resource["resourceType"]
        started = time.perf_counter()
        issues = validator.validate(resource)
        seconds.append(time.perf_counter() - started)
        errors[path.name] = [i for i in issues if i["severity"] == "error"]
    return Outcome(errors, types, seconds)


def test_every_file_is_an_example_of_a_resource(fhir_examples: Path, outcome: Outcome) -> None:
    defs = load()
    names = {p.name for p in fhir_examples.glob("*.json")}
    assert names - set(outcome.types) == NOT_EXAMPLES
    assert len(outcome.types) > 5000
    assert {t for t in outcome.types.values() if not defs.is_resource(t)} == set()


@pytest.mark.parametrize("resource_type", CORE_TYPES)
def test_clinical_core_examples_validate_without_errors(outcome: Outcome,
                                                        resource_type: str) -> None:
    names = [n for n in outcome.types if n.startswith(f"{resource_type}-")
             and outcome.types[n] == resource_type and n not in INVALID_EXAMPLES]
    assert names, f"no {resource_type} examples"
    assert {n: outcome.errors[n] for n in names if outcome.errors[n]} == {}


def test_only_the_listed_examples_are_invalid(outcome: Outcome) -> None:
    failing = {n for n, errors in outcome.errors.items() if errors}
    total = len(outcome.errors)
    print(f"\nR4 examples: {total - len(failing)}/{total} valid "
          f"({100 * (total - len(failing)) / total:.2f}%), "
          f"validation {1000 * statistics.mean(outcome.seconds):.3f} ms per resource on average, "
          f"median {1000 * statistics.median(outcome.seconds):.3f} ms")
    assert {n: outcome.errors[n][:3] for n in failing - set(INVALID_EXAMPLES)} == {}
    assert set(INVALID_EXAMPLES) - failing == set(), "listed as invalid but valid now"
