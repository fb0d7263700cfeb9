"""The fictional hospital of the demo record and its doctors (names are made up).

Organization: https://hl7.org/fhir/R4/organization.html,
Practitioner: https://hl7.org/fhir/R4/practitioner.html,
PractitionerRole: https://hl7.org/fhir/R4/practitionerrole.html.
"""

from __future__ import annotations

from dataclasses import dataclass

from vesalius.demo.record_chart import SNOMED, Chart, Resource, concept

HOSPITAL = "hospital"
GP = "gp"
RADIOLOGIST = "radiologist"
NEUROLOGIST = "neurologist"

_PRACTITIONER_ROLE = "http://terminology.hl7.org/CodeSystem/practitioner-role"


@dataclass(frozen=True)
class _Doctor:
    key: str
    family: str
    given: str
    gender: str
    specialty: tuple[str, str]  # SNOMED CT code, display
    phone: str


_DOCTORS = (
    _Doctor(GP, "Practice", "Gwen", "female", ("394814009", "General practice"), "+1-555-0110"),
    _Doctor(RADIOLOGIST, "Radiant", "Ray", "male", ("394914008", "Radiology"), "+1-555-0120"),
    _Doctor(NEUROLOGIST, "Neuron", "Nora", "female", ("394591006", "Neurology"), "+1-555-0130"),
)


def hospital(chart: Chart) -> Resource:
    return chart.ref("Organization", HOSPITAL, shared=True)


def doctor(chart: Chart, key: str) -> Resource:
    return chart.ref("Practitioner", key, shared=True)


def add_care_team(chart: Chart) -> None:
    """The hospital, its doctors and the role each one has there."""
    chart.add("Organization", HOSPITAL, {
        "active": True,
        "type": [concept("http://terminology.hl7.org/CodeSystem/organization-type", "prov",
                         "Healthcare Provider")],
        "name": "Vesalius Demo Hospital",
        "telecom": [{"system": "phone", "value": "+1-555-0100", "use": "work"}],
        "address": [{"use": "work", "line": ["1 Synthetic Way"], "city": "Demoville",
                     "postalCode": "00001"}],
    }, shared=True)
    for d in _DOCTORS:
        chart.add("Practitioner", d.key, {
            "active": True,
            "name": [{"use": "official", "family": d.family, "given": [d.given],
                      "prefix": ["Dr"]}],
            "telecom": [{"system": "phone", "value": d.phone, "use": "work"}],
            "gender": d.gender,
        }, shared=True)
        chart.add("PractitionerRole", d.key, {
            "active": True,
            "practitioner": doctor(chart, d.key),
            "organization": hospital(chart),
            "code": [concept(_PRACTITIONER_ROLE, "doctor", "Doctor")],
            "specialty": [concept(SNOMED, *d.specialty)],
        }, shared=True)
