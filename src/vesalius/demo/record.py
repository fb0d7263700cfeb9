"""The demo patient's synthetic clinical record, 2019 to the latest demo study, as one FHIR R4
transaction Bundle (https://hl7.org/fhir/R4/http.html#transaction).

The Patient's identifier is the DICOM patient identity of the demo studies, mapped by
:func:`vesalius.dicom.patient_identity.identifier_system`, so the imaging link files the studies
under this Patient. Every entry is a conditional create, so loading the Bundle again changes
nothing; the same call always returns the same Bundle. All people and values are made up.
"""

from __future__ import annotations

from typing import Any

from vesalius.demo.common import DEFAULT_PATIENT, DemoPatient
from vesalius.demo.record_chart import V2_0203, Chart, Resource, concept
from vesalius.demo.record_imaging import add_imaging
from vesalius.demo.record_problems import add_problems
from vesalius.demo.record_results import add_results
from vesalius.demo.record_team import GP, add_care_team, doctor, hospital
from vesalius.demo.record_visits import add_encounters
from vesalius.dicom.patient_identity import identifier_system

_GENDER = {"M": "male", "F": "female", "O": "other"}


def _human_name(patient_name: str) -> Resource:
    """A DICOM PN (family^given^middle^prefix^suffix, PS3.5 6.2) as a HumanName."""
    family, given, middle, prefix, suffix = (patient_name.split("=")[0].split("^") + [""] * 5)[:5]
    name: Resource = {"use": "official"}
    parts = {"family": family, "given": [g for g in (given, middle) if g],
             "prefix": [prefix] if prefix else [], "suffix": [suffix] if suffix else []}
    name.update({k: v for k, v in parts.items() if v})
    return name


def _add_patient(chart: Chart) -> None:
    patient = chart.patient
    identity = {"system": identifier_system(patient.issuer), "value": patient.patient_id}
    name = _human_name(patient.patient_name)
    mailbox = ".".join([*name.get("given", []), name.get("family", "")]).lower()
    birth = patient.birth_date
    chart.add("Patient", "patient", {
        "identifier": [{
            "use": "usual",
            "type": concept(V2_0203, "MR", "Medical record number"),
            **identity,
        }],
        "active": True,
        "name": [name],
        "telecom": [
            {"system": "phone", "value": "+1-555-0199", "use": "home"},
            {"system": "email", "value": f"{mailbox}@example.org", "use": "home"},
        ],
        "gender": _GENDER.get(patient.sex, "unknown"),
        "birthDate": f"{birth[:4]}-{birth[4:6]}-{birth[6:8]}",
        "address": [{"use": "home", "line": ["12 Synthetic Lane"], "city": "Demoville",
                     "postalCode": "00001"}],
        "communication": [{"language": concept("urn:ietf:bcp:47", "en", "English"),
                           "preferred": True}],
        "generalPractitioner": [doctor(chart, GP)],
        "managingOrganization": hospital(chart),
    }, identifier=identity)


def demo_record_bundle(patient: DemoPatient = DEFAULT_PATIENT) -> dict[str, Any]:
    """A transaction Bundle with ``patient``'s whole synthetic chart.

    The hospital and its doctors, the Patient, encounters, conditions, allergy, medications,
    immunizations, care plan, procedures, consent, years of labs and vital signs with their
    reports, imaging orders and reports for the demo studies, a clinical photo and a
    discharge summary.
    """
    chart = Chart(patient)
    add_care_team(chart)
    _add_patient(chart)
    add_encounters(chart)
    add_problems(chart)
    add_results(chart)
    add_imaging(chart)
    return {"resourceType": "Bundle", "type": "transaction", "entry": chart.entries}
