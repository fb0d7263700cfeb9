"""Patients of archived studies: DICOM patient identity ⇄ FHIR Patient.

A study's PatientID + IssuerOfPatientID is a Patient ``identifier``
(:mod:`vesalius.dicom.patient_identity`, https://hl7.org/fhir/R4/imagingstudy-mappings.html).
Matching a study to its Patient:

- exactly one Patient carries the identifier → that Patient;
- none → a *provisional* Patient built from the study's patient attributes, tagged
  ``provisional-identity`` for a person to reconcile (merge) later;
- several → merged-away Patients (``active: false`` with a ``replaced-by`` link) stand for the
  Patient that replaced them; if that still leaves more than one, the link does not guess: the
  study gets no ImagingStudy and an ``multiple-matches`` problem is recorded for it
  (``ImagingLink.problems()``) until the duplicates are merged;
- no PatientID at all → a provisional Patient keyed by the study (identifier in
  :data:`STUDY_PATIENT_SYSTEM`), since such studies share no identity with anything.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from vesalius.dicom.patient_identity import LOCAL_SYSTEM, identifier_system, issuer_of
from vesalius.imaging_link.mapping import (
    BIRTH_DATE,
    ISSUER,
    PATIENT_ID,
    PATIENT_NAME,
    SEX,
    STUDY_UID,
    JsonDict,
    Resource,
    text,
)
from vesalius.record.unit_of_work import UnitOfWork

TAG_SYSTEM = "urn:vesalius:tags"
PROVISIONAL_TAG = {"system": TAG_SYSTEM, "code": "provisional-identity",
                   "display": "Created from DICOM; needs reconciliation"}
#: Identifier of the provisional Patient of a study that has no PatientID.
STUDY_PATIENT_SYSTEM = "urn:vesalius:study-patient"

_GENDER = {"M": "male", "F": "female", "O": "other"}
_SEX = {"male": "M", "female": "F", "other": "O"}
#: How many ``replaced-by`` links are followed (merges of merges).
_MAX_HOPS = 8


class AmbiguousPatient(Exception):
    """Several Patients carry the study's patient identifier."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} Patients carry the study's patient identifier")
        self.count = count


def dicom_identifier(attrs: JsonDict) -> Resource:
    """The FHIR identifier of a study's patient (PatientID, or the study if it has none)."""
    patient_id = text(attrs, PATIENT_ID)
    if not patient_id:
        return {"system": STUDY_PATIENT_SYSTEM, "value": text(attrs, STUDY_UID)}
    return {"system": identifier_system(text(attrs, ISSUER)), "value": patient_id}


def human_name(person_name: str) -> Resource | None:
    """DICOM PN ``Family^Given^Middle^Prefix^Suffix`` → HumanName."""
    parts = [p.strip() for p in person_name.split("=")[0].split("^")] + [""] * 5
    family, given, middle, prefix, suffix = parts[:5]
    name: Resource = {"use": "official"}
    if family:
        name["family"] = family
    given_names = [g for g in (given, middle) if g]
    if given_names:
        name["given"] = given_names
    if prefix:
        name["prefix"] = [prefix]
    if suffix:
        name["suffix"] = [suffix]
    return name if len(name) > 1 else None


def person_name(patient: Resource) -> str:
    """HumanName (first) → DICOM PN."""
    names = patient.get("name") or []
    if not names:
        return ""
    name = names[0]
    given = name.get("given") or []
    parts = [name.get("family", ""), given[0] if given else "", " ".join(given[1:]),
             " ".join(name.get("prefix") or []), " ".join(name.get("suffix") or [])]
    return "^".join(parts).rstrip("^")


def dicom_date(fhir_date: str | None) -> str:
    return re.sub(r"\D", "", (fhir_date or "")[:10])


def dicom_sex(patient: Resource) -> str:
    return _SEX.get(str(patient.get("gender", "")), "")


def provisional_patient(attrs: JsonDict) -> Resource:
    """A Patient made from a study's patient attributes, flagged for reconciliation."""
    patient: Resource = {"resourceType": "Patient", "meta": {"tag": [dict(PROVISIONAL_TAG)]},
                         "identifier": [dicom_identifier(attrs)], "active": True}
    name = human_name(text(attrs, PATIENT_NAME))
    if name is not None:
        patient["name"] = [name]
    gender = _GENDER.get(text(attrs, SEX).upper())
    if gender:
        patient["gender"] = gender
    birth = text(attrs, BIRTH_DATE)
    if re.fullmatch(r"\d{8}", birth):
        patient["birthDate"] = f"{birth[:4]}-{birth[4:6]}-{birth[6:]}"
    return patient


def dicom_identity(patient: Resource) -> tuple[str, str] | None:
    """(PatientID, IssuerOfPatientID) a Patient is filed under in DICOM, if it has one.

    The first current (not ``use: old``) identifier whose value and issuer fit DICOM LO (64).
    """
    for identifier in patient.get("identifier") or []:
        value, system = identifier.get("value", ""), identifier.get("system", LOCAL_SYSTEM)
        if identifier.get("use") == "old" or not value or system == STUDY_PATIENT_SYSTEM:
            continue
        issuer = issuer_of(system)
        if len(value) <= 64 and len(issuer) <= 64 and "\\" not in value + issuer:
            return value, issuer
    return None


def with_local_identifier(patient: Resource) -> Resource:
    """The Patient with an identifier in this installation's space (its id as PatientID)."""
    identifiers = [*(patient.get("identifier") or []),
                   {"system": LOCAL_SYSTEM, "value": patient["id"]}]
    return {**patient, "identifier": identifiers}


def current_patients(work: UnitOfWork, ids: Sequence[str]) -> list[str]:
    """Patient ids with merged-away ones replaced by the Patient that replaced them."""
    out: list[str] = []
    for id in ids:
        for _ in range(_MAX_HOPS):
            successor = _replaced_by(work.read("Patient", id).resource or {})
            if successor is None:
                break
            id = successor
        if id not in out:
            out.append(id)
    return out


def _replaced_by(patient: Resource) -> str | None:
    if patient.get("active", True):
        return None
    for link in patient.get("link") or []:
        reference = (link.get("other") or {}).get("reference", "")
        if link.get("type") == "replaced-by" and reference.startswith("Patient/"):
            return str(reference[len("Patient/"):])
    return None


def subject_of(work: UnitOfWork, attrs: JsonDict) -> str:
    """The id of the study's Patient, creating a provisional one when none matches.

    Raises :class:`AmbiguousPatient` when several Patients match.
    """
    identifier = dicom_identifier(attrs)
    token = f"{identifier['system']}|{identifier['value']}"
    found = current_patients(work, work.match("Patient", [("identifier", token)]))
    if len(found) > 1:
        raise AmbiguousPatient(len(found))
    if found:
        return found[0]
    return work.create(provisional_patient(attrs)).id


def reference_id(reference: Any, resource_type: str) -> str | None:
    """The id of a relative reference to ``resource_type`` (``Type/id``), else None."""
    value = (reference or {}).get("reference", "") if isinstance(reference, dict) else ""
    prefix = f"{resource_type}/"
    if isinstance(value, str) and value.startswith(prefix) and "/" not in value[len(prefix):]:
        return value[len(prefix):]
    return None
