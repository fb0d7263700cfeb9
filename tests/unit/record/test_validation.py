"""Validation on write: crafted invalid resources name the element and the issue type."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from vesalius.core.errors import ValidationFailed
from vesalius.record.definitions import load
from vesalius.record.validation import MAX_DEPTH, MAX_STRING, Validator

XHTML = "http://www.w3.org/1999/xhtml"

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "p1",
    "text": {"status": "generated",
             "div": f'<div xmlns="{XHTML}"><p>Ada <b>Lovelace</b></p></div>'},
    "name": [{"family": "Lovelace", "given": ["Ada", "Augusta"]}],
    "gender": "female",
    "birthDate": "1815-12-10",
    "active": True,
    "multipleBirthInteger": 1,
    "managingOrganization": {"reference": "Organization/o1"},
}

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
    "subject": {"reference": "Patient/p1"},
    "valueQuantity": {"value": 72, "unit": "beats/minute"},
    "component": [
        {"code": {"text": "systolic"}, "valueQuantity": {"value": 120.5}},
        {"code": {"text": "diastolic"}, "valueQuantity": {"value": 80}},
    ],
}


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(load())


def issues(validator: Validator, resource: object) -> set[tuple[str, str]]:
    return {(i["expression"], i["code"]) for i in validator.validate(resource)
            if i["severity"] == "error"}


def changed(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    resource = copy.deepcopy(base)
    for key, value in changes.items():
        if value is None:
            del resource[key]
        else:
            resource[key] = value
    return resource


def test_valid_resources_have_no_issues(validator: Validator) -> None:
    assert validator.validate(PATIENT) == []
    assert validator.validate(OBSERVATION) == []
    validator.check(PATIENT)


def test_unknown_element_is_named(validator: Validator) -> None:
    unknown = changed(PATIENT, nickname="Ada")
    assert issues(validator, unknown) == {("Patient.nickname", "structure")}
    nested = changed(PATIENT, name=[{"family": "L", "middle": "x"}])
    assert issues(validator, nested) == {("Patient.name[0].middle", "structure")}


def test_missing_required_elements(validator: Validator) -> None:
    assert issues(validator, changed(OBSERVATION, status=None, code=None)) == {
        ("Observation.status", "required"), ("Observation.code", "required")}
    link = changed(PATIENT, link=[{"type": "seealso"}])
    assert issues(validator, link) == {("Patient.link[0].other", "required")}


def test_cardinality_array_or_single(validator: Validator) -> None:
    assert issues(validator, changed(PATIENT, gender=["female"])) == {
        ("Patient.gender", "structure")}
    assert issues(validator, changed(PATIENT, name={"family": "Lovelace"})) == {
        ("Patient.name", "structure")}
    given = changed(PATIENT, name=[{"given": "Ada"}])
    assert issues(validator, given) == {("Patient.name[0].given", "structure")}


@pytest.mark.parametrize(("element", "value", "expression"), [
    ("birthDate", "1970-13-01", "Patient.birthDate"),
    ("birthDate", 1970, "Patient.birthDate"),
    ("active", "yes", "Patient.active"),
    ("active", 1, "Patient.active"),
    ("multipleBirthInteger", 2.5, "Patient.multipleBirthInteger"),
    ("multipleBirthInteger", 2**31, "Patient.multipleBirthInteger"),
    ("multipleBirthInteger", True, "Patient.multipleBirthInteger"),
    ("deceasedDateTime", "2020-01-01T10:00:00", "Patient.deceasedDateTime"),  # no zone
    ("id", "has space", "Patient.id"),
    ("id", "x" * 65, "Patient.id"),
])
def test_wrong_primitive(validator: Validator, element: str, value: object,
                         expression: str) -> None:
    assert issues(validator, changed(PATIENT, **{element: value})) == {(expression, "value")}


def test_decimal_must_be_a_json_number(validator: Validator) -> None:
    obs = changed(OBSERVATION, valueQuantity={"value": "72"})
    assert issues(validator, obs) == {("Observation.valueQuantity.value", "value")}
    assert issues(validator, changed(OBSERVATION, valueQuantity={"value": float("nan")})) == {
        ("Observation.valueQuantity.value", "value")}
    positive = changed(OBSERVATION, valueSampledData={
        "origin": {"value": 0}, "period": 1, "dimensions": 0, "data": "1 2"}, valueQuantity=None)
    assert issues(validator, positive) == {("Observation.valueSampledData.dimensions", "value")}


def test_only_one_choice_variant(validator: Validator) -> None:
    both = changed(OBSERVATION, valueString="72")
    assert issues(validator, both) == {("Observation.valueString", "structure")}
    wrong = changed(OBSERVATION, valueQuantity=None, valueMoney={"value": 1})
    assert issues(validator, wrong) == {("Observation.valueMoney", "structure")}


def test_required_binding_codes(validator: Validator) -> None:
    assert issues(validator, changed(PATIENT, gender="robot")) == {
        ("Patient.gender", "code-invalid")}
    assert issues(validator, changed(OBSERVATION, status="maybe")) == {
        ("Observation.status", "code-invalid")}
    # A CodeableConcept with a required binding: a coding in the value set's system must use
    # one of its codes; codings of other systems are left alone.
    allergy = {
        "resourceType": "AllergyIntolerance", "patient": {"reference": "Patient/p1"},
        "clinicalStatus": {"coding": [
            {"system": "http://example.org/local", "code": "whatever"},
            {"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
             "code": "sleeping"}]}}
    assert issues(validator, allergy) == {
        ("AllergyIntolerance.clinicalStatus.coding[1].code", "code-invalid")}


def test_reference_target_types(validator: Validator) -> None:
    wrong = changed(OBSERVATION, subject={"reference": "Medication/x"})
    assert issues(validator, wrong) == {("Observation.subject.reference", "value")}
    absolute = changed(OBSERVATION,
                       subject={"reference": "https://ehr.example/fhir/Medication/x/_history/2"})
    assert issues(validator, absolute) == {("Observation.subject.reference", "value")}
    bad_id = changed(OBSERVATION, subject={"reference": "Patient/a_b"})
    assert issues(validator, bad_id) == {("Observation.subject.reference", "value")}
    for fine in ("Patient/p1", "Group/g/_history/3", "http://other.example/fhir/Patient/p9",
                 "#contained", "urn:uuid:9d0b5f8a-4e8a-4b8e-9a43-0a4a7c1c5b11",
                 "Patient?identifier=x|1"):
        assert issues(validator, changed(OBSERVATION, subject={"reference": fine})) == set()
    # Extension.valueReference allows any type.
    extended = changed(PATIENT, extension=[
        {"url": "http://example.org/x", "valueReference": {"reference": "Medication/m"}}])
    assert issues(validator, extended) == set()


def test_no_empty_values(validator: Validator) -> None:
    assert issues(validator, changed(PATIENT, birthDate="")) == {("Patient.birthDate", "value")}
    assert issues(validator, changed(PATIENT, name=[{"family": "  "}])) == {
        ("Patient.name[0].family", "value")}
    assert issues(validator, changed(PATIENT, maritalStatus={})) == {
        ("Patient.maritalStatus", "structure")}
    assert issues(validator, changed(PATIENT, identifier=[])) == {
        ("Patient.identifier", "structure")}
    assert issues(validator, changed(PATIENT, birthDate=None, active=None) | {
        "birthDate": None}) == {("Patient.birthDate", "structure")}


def test_primitive_extensions_and_nulls(validator: Validator) -> None:
    ext = {"extension": [{"url": "http://example.org/why", "valueString": "estimated"}]}
    assert issues(validator, changed(PATIENT, _birthDate=ext)) == set()
    only_ext = changed(PATIENT, birthDate=None, _birthDate=ext)
    assert issues(validator, only_ext) == set()
    paired = changed(PATIENT, name=[{"given": ["Ada", None], "_given": [None, ext]}])
    assert issues(validator, paired) == set()
    unpaired = changed(PATIENT, name=[{"given": ["Ada", None]}])
    assert issues(validator, unpaired) == {("Patient.name[0].given[1]", "structure")}
    lengths = changed(PATIENT, name=[{"given": ["Ada"], "_given": [None, ext]}])
    assert ("Patient.name[0].given", "structure") in issues(validator, lengths)
    bad = changed(PATIENT, _birthDate={"value": "x"})
    assert issues(validator, bad) == {("Patient.birthDate.value", "structure")}
    no_url = changed(PATIENT, extension=[{"valueString": "x"}])
    assert issues(validator, no_url) == {("Patient.extension[0].url", "required")}
    modifier = changed(PATIENT, modifierExtension=[{"url": "http://example.org/m",
                                                     "valueBoolean": True}])
    assert issues(validator, modifier) == set()


@pytest.mark.parametrize("div", [
    f'<div xmlns="{XHTML}"><script>alert(1)</script></div>',
    f'<div xmlns="{XHTML}"><SCRIPT src="x.js"/></div>',
    f'<div xmlns="{XHTML}"><img src="x.png" onerror="alert(1)"/></div>',
    f'<div xmlns="{XHTML}"><a href="javascript:alert(1)">x</a></div>',
    f'<div xmlns="{XHTML}"><a href="jav&#x61;script:alert(1)">x</a></div>',
    f'<div xmlns="{XHTML}"><a href=" java&#9;script:alert(1)">x</a></div>',
    f'<div xmlns="{XHTML}"><iframe src="https://evil.example"/></div>',
    f'<div xmlns="{XHTML}"><object data="x.swf"/></div>',
    f'<div xmlns="{XHTML}"><embed src="x.swf"/></div>',
    f'<div xmlns="{XHTML}"><form action="https://evil.example"><p>x</p></form></div>',
    f'<div xmlns="{XHTML}"><?x > <img src="x" onerror="alert(1)"> ?></div>',
    f'<div xmlns="{XHTML}"><![CDATA[ > <img src=x onerror=alert(1)> ]]></div>',
    f'<div xmlns="{XHTML}"><a href="data:text/html,&lt;script&gt;">x</a></div>',
    '<div><p>no namespace</p></div>',
    f'<p xmlns="{XHTML}">not a div</p>',
    f'<div xmlns="{XHTML}"><p>unclosed</div>',
])
def test_narrative_active_content_is_refused(validator: Validator, div: str) -> None:
    resource = changed(PATIENT, text={"status": "generated", "div": div})
    assert issues(validator, resource) == {("Patient.text.div", "value")}


def test_narrative_ordinary_content_is_accepted(validator: Validator) -> None:
    div = (f'<div xmlns="{XHTML}"><table class="grid"><tr><td style="color: red">onset = 2020'
           '</td></tr></table><a href="https://example.org/x?a=1&amp;b=2">link</a>'
           '<img src="data:image/png;base64,iVBORw0KGgo=" alt="dot"/> see the scripts</div>')
    assert issues(validator, changed(PATIENT, text={"status": "generated", "div": div})) == set()


def test_resource_type(validator: Validator) -> None:
    assert issues(validator, changed(PATIENT, resourceType="Patinet")) == {
        ("Resource.resourceType", "structure")}
    assert issues(validator, changed(PATIENT, resourceType="DomainResource")) == {
        ("Resource.resourceType", "structure")}
    assert issues(validator, changed(PATIENT, resourceType=None)) == {
        ("Resource.resourceType", "structure")}
    assert issues(validator, ["Patient"]) == {("Resource", "structure")}
    # Not a type where an element is expected.
    assert issues(validator, changed(PATIENT, name=["Ada"])) == {("Patient.name[0]", "structure")}


def test_nested_resources_are_validated_as_what_they_contain(validator: Validator) -> None:
    contained = changed(OBSERVATION, contained=[
        {"resourceType": "Patient", "id": "c1", "gender": "robot"},
        {"resourceType": "Nope", "id": "c2"},
        {"resourceType": "Patient", "id": "c3", "contained": [{"resourceType": "Patient"}]},
    ])
    assert issues(validator, contained) == {
        ("Observation.contained[0].gender", "code-invalid"),
        ("Observation.contained[1].resourceType", "structure"),
        ("Observation.contained[2].contained", "invariant"),
    }
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": "urn:uuid:9d0b5f8a-4e8a-4b8e-9a43-0a4a7c1c5b11", "resource": PATIENT},
        {"resource": changed(OBSERVATION, status=None, subject={"reference": "Medication/m"})},
    ]}
    assert issues(validator, bundle) == {
        ("Bundle.entry[1].resource.status", "required"),
        ("Bundle.entry[1].resource.subject.reference", "value"),
    }
    parameters = {"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": {"resourceType": "Patient", "birthDate": "1970-13-01"}}]}
    assert issues(validator, parameters) == {
        ("Parameters.parameter[0].resource.birthDate", "value")}


def test_content_reference_is_followed(validator: Validator) -> None:
    questionnaire = {"resourceType": "Questionnaire", "status": "active", "item": [
        {"linkId": "1", "type": "group", "item": [
            {"linkId": "1.1", "type": "string"},
            {"type": "bogus", "unknown": 1}]}]}
    assert issues(validator, questionnaire) == {
        ("Questionnaire.item[0].item[1].linkId", "required"),
        ("Questionnaire.item[0].item[1].type", "code-invalid"),
        ("Questionnaire.item[0].item[1].unknown", "structure"),
    }


def test_too_deep_nesting(validator: Validator) -> None:
    extension: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(MAX_DEPTH + 5):
        extension = {"url": "http://example.org/n", "extension": [extension]}
    found = issues(validator, changed(PATIENT, extension=[extension]))
    assert {code for _, code in found} == {"structure"}
    assert len(found) == 1
    shallow: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "x"}
    for _ in range(MAX_DEPTH - 5):
        shallow = {"url": "http://example.org/n", "extension": [shallow]}
    assert issues(validator, changed(PATIENT, extension=[shallow])) == set()


def test_too_long_strings(validator: Validator) -> None:
    long = "x" * (MAX_STRING + 1)
    assert issues(validator, changed(PATIENT, name=[{"family": long}])) == {
        ("Patient.name[0].family", "too-long")}
    binary = {"resourceType": "Binary", "contentType": "text/plain",
              "data": "QUJD" * (MAX_STRING // 4 + 1)}
    assert issues(validator, binary) == set()


def test_check_raises_validation_failed_with_every_issue(validator: Validator) -> None:
    bad = changed(OBSERVATION, status="maybe", code=None)
    with pytest.raises(ValidationFailed) as raised:
        validator.check(bad)
    assert {(i["expression"], i["code"]) for i in raised.value.issues} == {
        ("Observation.status", "code-invalid"), ("Observation.code", "required")}
    assert all(i["severity"] == "error" and i["diagnostics"] for i in raised.value.issues)
    json.dumps(raised.value.issues)  # OperationOutcome-ready


def test_diagnostics_do_not_echo_hostile_input(validator: Validator) -> None:
    hostile = changed(PATIENT, birthDate={"x": "y" * 10_000}, gender="z" * 10_000,
                      **{"k" * 10_000: 1})
    found = validator.validate(hostile)
    assert {i["code"] for i in found} == {"value", "code-invalid", "structure"}
    assert all(len(i["diagnostics"]) < 200 and len(i["expression"]) < 100 for i in found)
