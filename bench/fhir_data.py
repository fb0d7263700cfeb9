"""A synthetic patient population as FHIR R4 transaction Bundles (no real people).

Each patient is 50 resources: the Patient, 5 Encounters, 4 Conditions, 36 laboratory
Observations (LOINC-coded, UCUM units, spread over ten years) and 4 MedicationRequests. The
clinical resources point at their Patient and Encounter by the ``urn:uuid:`` fullUrls of the
same transaction, so the server resolves them on write
(https://hl7.org/fhir/R4/bundle.html#references).

Every patient is drawn from its own random stream (``numpy`` seeded with ``(SEED, index)``),
so patient ``i`` is the same whatever the bundle size, the population size or the order in
which bundles are built: a run at 1,000,000 resources begins with the run at 100,000.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

SEED = 20240401
IDENTIFIER_SYSTEM = "urn:oid:2.16.840.1.113883.19.5.99.1"
"""MRN system of the synthetic population (OID arc 2.16.840.1.113883.19 is HL7's example arc)."""
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
UCUM = "http://unitsofmeasure.org"

ENCOUNTERS = 5
CONDITIONS = 4
OBSERVATIONS = 36
MEDICATIONS = 4
RESOURCES_PER_PATIENT = 1 + ENCOUNTERS + CONDITIONS + OBSERVATIONS + MEDICATIONS

FIRST_DAY = dt.date(2015, 1, 1)
DAYS = (dt.date(2025, 1, 1) - FIRST_DAY).days
"""Clinical dates fall in 2015-01-01 .. 2024-12-31."""

# (LOINC code, display, UCUM unit, mean, standard deviation)
LABS: tuple[tuple[str, str, str, float, float], ...] = (
    ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 6.2, 1.1),
    ("2345-7", "Glucose [Mass/volume] in Serum or Plasma", "mg/dL", 105.0, 25.0),
    ("2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL", 1.0, 0.3),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 13.8, 1.6),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*3/uL", 7.0, 2.0),
    ("2093-3", "Cholesterol [Mass/volume] in Serum or Plasma", "mg/dL", 195.0, 35.0),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 4.2, 0.4),
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 139.0, 3.0),
    ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
     "U/L", 28.0, 10.0),
)
CONDITION_CODES: tuple[tuple[str, str], ...] = (
    ("44054006", "Diabetes mellitus type 2"),
    ("38341003", "Hypertensive disorder, systemic arterial"),
    ("195967001", "Asthma"),
    ("13645005", "Chronic obstructive lung disease"),
    ("35489007", "Depressive disorder"),
    ("49436004", "Atrial fibrillation"),
    ("55822004", "Hyperlipidemia"),
    ("709044004", "Chronic kidney disease"),
)
MEDICATION_CODES: tuple[tuple[str, str], ...] = (
    ("860975", "metformin hydrochloride 500 MG Extended Release Oral Tablet"),
    ("314076", "lisinopril 10 MG Oral Tablet"),
    ("197361", "amlodipine 5 MG Oral Tablet"),
    ("617312", "atorvastatin 10 MG Oral Tablet"),
    ("745679", "albuterol 0.09 MG/ACTUAT Metered Dose Inhaler"),
    ("312938", "sertraline 50 MG Oral Tablet"),
)
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "wen", "bar", "dal", "fen",
              "gor", "hul", "jas", "kor", "lin", "mar", "nor", "pel")
GIVEN = ("Ada", "Bela", "Cyra", "Dov", "Elin", "Falk", "Greta", "Hugo", "Ines", "Jonas",
         "Kira", "Leon", "Mira", "Nils", "Olga", "Piet", "Rosa", "Sven", "Tova", "Uli")


def family_name(index: int) -> str:
    """400 synthetic family names: two syllables, so a name search matches a few patients."""
    a, b = divmod(index % (len(_SYLLABLES) ** 2), len(_SYLLABLES))
    return (_SYLLABLES[a] + _SYLLABLES[b]).capitalize()


def mrn(index: int) -> str:
    return f"BENCH-FHIR-{index:07d}"


@dataclass(frozen=True)
class TransactionBundle:
    """One transaction Bundle and where its patients' entries are (to read their ids back)."""

    bundle: dict[str, Any]
    patients: tuple[int, ...]
    """Population index of each patient in the bundle, in order."""
    patient_entries: tuple[int, ...]
    """Entry position of each of those Patients (the response has one entry per request)."""

    @property
    def resources(self) -> int:
        return len(self.bundle["entry"])


def _date(day: int) -> str:
    return (FIRST_DAY + dt.timedelta(days=int(day))).isoformat()


def _instant(day: int, minute: int) -> str:
    return f"{_date(day)}T{minute // 60:02d}:{minute % 60:02d}:00Z"


def _concept(system: str, code: str, display: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code, "display": display}], "text": display}


def _entry(urn: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {"fullUrl": urn, "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]}}


def patient_entries(index: int) -> list[dict[str, Any]]:
    """The 50 transaction entries of patient ``index``; the Patient's entry comes first."""
    rng = np.random.default_rng([SEED, index])

    def urn() -> str:
        return f"urn:uuid:{uuid.UUID(bytes=rng.bytes(16), version=4)}"

    patient_urn = urn()
    subject = {"reference": patient_urn}
    birth = dt.date(1935, 1, 1) + dt.timedelta(days=int(rng.integers(0, 365 * 70)))
    entries = [_entry(patient_urn, {
        "resourceType": "Patient",
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": mrn(index)}],
        "active": True,
        "name": [{"use": "official", "family": family_name(index),
                  "given": [GIVEN[int(rng.integers(len(GIVEN)))]]}],
        "gender": ("female", "male")[int(rng.integers(2))],
        "birthDate": birth.isoformat(),
    })]

    visit_days = np.sort(rng.integers(0, DAYS, ENCOUNTERS))
    encounters: list[tuple[str, int]] = []
    for day in visit_days:
        encounter_urn = urn()
        start = int(rng.integers(7 * 60, 17 * 60))
        encounters.append((encounter_urn, int(day)))
        entries.append(_entry(encounter_urn, {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                      "code": "AMB", "display": "ambulatory"},
            "subject": subject,
            "period": {"start": _instant(day, start), "end": _instant(day, start + 30)},
        }))

    for k in rng.choice(len(CONDITION_CODES), CONDITIONS, replace=False):
        encounter_urn, day = encounters[int(rng.integers(ENCOUNTERS))]
        code, display = CONDITION_CODES[int(k)]
        entries.append(_entry(urn(), {
            "resourceType": "Condition",
            "clinicalStatus": _concept(
                "http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
            "verificationStatus": _concept(
                "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed",
                "Confirmed"),
            "category": [_concept(
                "http://terminology.hl7.org/CodeSystem/condition-category",
                "problem-list-item", "Problem List Item")],
            "code": _concept(SNOMED, code, display),
            "subject": subject,
            "encounter": {"reference": encounter_urn},
            "onsetDateTime": _date(day),
            "recordedDate": _date(day),
        }))

    laboratory = _concept("http://terminology.hl7.org/CodeSystem/observation-category",
                          "laboratory", "Laboratory")
    for _ in range(OBSERVATIONS):
        encounter_urn, day = encounters[int(rng.integers(ENCOUNTERS))]
        code, display, unit, mean, sd = LABS[int(rng.integers(len(LABS)))]
        value = round(max(0.1 * mean, float(rng.normal(mean, sd))), 2)
        minute = int(rng.integers(7 * 60, 18 * 60))
        entries.append(_entry(urn(), {
            "resourceType": "Observation",
            "status": "final",
            "category": [laboratory],
            "code": _concept(LOINC, code, display),
            "subject": subject,
            "encounter": {"reference": encounter_urn},
            "effectiveDateTime": _instant(day, minute),
            "issued": _instant(day, minute + 60),
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        }))

    for k in rng.choice(len(MEDICATION_CODES), MEDICATIONS, replace=False):
        encounter_urn, day = encounters[int(rng.integers(ENCOUNTERS))]
        code, display = MEDICATION_CODES[int(k)]
        entries.append(_entry(urn(), {
            "resourceType": "MedicationRequest",
            "status": ("active", "completed")[int(rng.integers(2))],
            "intent": "order",
            "medicationCodeableConcept": _concept(RXNORM, code, display),
            "subject": subject,
            "encounter": {"reference": encounter_urn},
            "authoredOn": _date(day),
            "dosageInstruction": [{"text": "once daily"}],
        }))
    return entries


def bundles(first_patient: int, patients: int, patients_per_bundle: int = 5
            ) -> Iterator[TransactionBundle]:
    """Transaction Bundles for patients ``first_patient .. first_patient + patients - 1``."""
    end = first_patient + patients
    for start in range(first_patient, end, patients_per_bundle):
        indices = tuple(range(start, min(start + patients_per_bundle, end)))
        entries: list[dict[str, Any]] = []
        positions: list[int] = []
        for index in indices:
            positions.append(len(entries))
            entries.extend(patient_entries(index))
        yield TransactionBundle({"resourceType": "Bundle", "type": "transaction",
                                 "entry": entries}, indices, tuple(positions))
