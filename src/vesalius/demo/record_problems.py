"""The demo patient's problems and treatment: conditions, allergy, medications, vaccines, care.

Condition https://hl7.org/fhir/R4/condition.html, AllergyIntolerance
https://hl7.org/fhir/R4/allergyintolerance.html, Medication* https://hl7.org/fhir/R4/medications-module.html,
Immunization https://hl7.org/fhir/R4/immunization.html, CarePlan https://hl7.org/fhir/R4/careplan.html,
Procedure https://hl7.org/fhir/R4/procedure.html, Consent https://hl7.org/fhir/R4/consent.html.
Codes: SNOMED CT, RxNorm, CVX.
"""

from __future__ import annotations

from dataclasses import dataclass

from vesalius.demo.record_chart import (
    CVX,
    LOINC,
    RXNORM,
    SNOMED,
    V3_ACT_CODE,
    Chart,
    Resource,
    coding,
    concept,
    instant,
    quantity,
)
from vesalius.demo.record_team import GP, doctor, hospital
from vesalius.demo.record_visits import VISITS, encounter

_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
_DRUG_FORM = "http://terminology.hl7.org/CodeSystem/v3-orderableDrugForm"
_ALLERGY = "http://terminology.hl7.org/CodeSystem/allergyintolerance"
_ORAL = concept(SNOMED, "26643006", "Oral route")


@dataclass(frozen=True)
class _Problem:
    key: str
    code: tuple[str, str]  # SNOMED CT
    visit: str
    resolved: str | None = None  # abatement date


_PROBLEMS = (
    _Problem("hypertension", ("59621000", "Essential hypertension"), "check-up-2019"),
    _Problem("diabetes", ("44054006", "Diabetes mellitus type 2"), "diabetes-diagnosis"),
    _Problem("hyperlipidaemia", ("55822004", "Hyperlipidemia"), "diabetes-diagnosis"),
    _Problem("bronchitis", ("10509002", "Acute bronchitis"), "bronchitis", resolved="2021-06-15"),
    _Problem("migraine", ("37796009", "Migraine"), "neurology-2022"),
)


def condition(chart: Chart, key: str) -> Resource:
    return chart.ref("Condition", key)


def _add_conditions(chart: Chart) -> None:
    for p in _PROBLEMS:
        visit = VISITS[p.visit]
        body: Resource = {
            "clinicalStatus": concept(_CLINICAL, *(
                ("resolved", "Resolved") if p.resolved else ("active", "Active"))),
            "verificationStatus": concept(_VERIFICATION, "confirmed", "Confirmed"),
            "category": [concept(_CATEGORY, *(
                ("encounter-diagnosis", "Encounter Diagnosis") if p.resolved
                else ("problem-list-item", "Problem List Item")))],
            "code": concept(SNOMED, *p.code),
            "subject": chart.patient_ref,
            "encounter": encounter(chart, visit.key),
            "onsetDateTime": visit.day,
            "recordedDate": visit.started(),
            "recorder": doctor(chart, visit.doctor),
            "asserter": doctor(chart, visit.doctor),
        }
        if p.resolved:
            body["abatementDateTime"] = p.resolved
        chart.add("Condition", p.key, body)


def _add_allergy(chart: Chart) -> None:
    visit = VISITS["check-up-2019"]
    chart.add("AllergyIntolerance", "penicillin", {
        "clinicalStatus": concept(f"{_ALLERGY}-clinical", "active", "Active"),
        "verificationStatus": concept(f"{_ALLERGY}-verification", "confirmed", "Confirmed"),
        "type": "allergy",
        "category": ["medication"],
        "criticality": "high",
        "code": concept(SNOMED, "764146007", "Penicillin"),
        "patient": chart.patient_ref,
        "encounter": encounter(chart, visit.key),
        "onsetDateTime": "1995",
        "recordedDate": visit.started(),
        "recorder": doctor(chart, visit.doctor),
        "asserter": chart.patient_ref,
        "reaction": [{
            "substance": concept(SNOMED, "764146007", "Penicillin"),
            "manifestation": [concept(SNOMED, "39579001", "Anaphylactic reaction"),
                              concept(SNOMED, "64305001", "Urticaria")],
            "description": "Throat swelling and hives within minutes of oral amoxicillin.",
            "onset": "1995",
            "severity": "severe",
        }],
    })


@dataclass(frozen=True)
class _Prescription:
    key: str
    drug: tuple[str, str]  # RxNorm
    text: str
    visit: str
    reason: str  # condition key
    dose: str
    times_per_day: int
    status: str = "active"
    as_needed: bool = False
    form: tuple[str, str] = ("TAB", "tablet")  # v3 orderableDrugForm


_PRESCRIPTIONS = (
    _Prescription("lisinopril", ("314076", "lisinopril 10 MG Oral Tablet"),
                  "lisinopril 10 mg tablet", "check-up-2019", "hypertension",
                  "1 tablet once daily", 1),
    _Prescription("metformin", ("861007", "metformin hydrochloride 500 MG Oral Tablet"),
                  "metformin 500 mg tablet", "diabetes-diagnosis", "diabetes",
                  "1 tablet twice daily with meals", 2),
    _Prescription("atorvastatin", ("617310", "atorvastatin 20 MG Oral Tablet"),
                  "atorvastatin 20 mg tablet", "diabetes-diagnosis", "hyperlipidaemia",
                  "1 tablet once daily at night", 1),
    _Prescription("doxycycline", ("3640", "doxycycline"), "doxycycline 100 mg capsule",
                  "bronchitis", "bronchitis", "1 capsule twice daily for 7 days", 2,
                  status="completed", form=("CAP", "capsule")),
    _Prescription("sumatriptan", ("37418", "sumatriptan"), "sumatriptan 50 mg tablet",
                  "neurology-2022", "migraine",
                  "1 tablet at migraine onset, may repeat after 2 hours", 1, as_needed=True),
)


def _one(form: str, unit: str) -> Resource:
    return {"value": 1, "unit": unit, "system": _DRUG_FORM, "code": form}


def _add_medications(chart: Chart) -> None:
    tablet = _one("TAB", "tablet")
    metformin = chart.add("Medication", "metformin", {
        "code": concept(RXNORM, "861007", "metformin hydrochloride 500 MG Oral Tablet"),
        "status": "active",
        "form": concept(SNOMED, "385055001", "Tablet"),
        "ingredient": [{
            "itemCodeableConcept": concept(RXNORM, "6809", "metformin"),
            "isActive": True,
            "strength": {"numerator": quantity(500, "mg"), "denominator": tablet},
        }],
    })
    for p in _PRESCRIPTIONS:
        visit = VISITS[p.visit]
        dosage: Resource = {
            "text": p.dose,
            "timing": {"repeat": {"frequency": p.times_per_day, "period": 1, "periodUnit": "d"}},
            "route": _ORAL,
        }
        if p.as_needed:
            dosage["asNeededCodeableConcept"] = concept(SNOMED, "37796009", "Migraine")
        else:
            dosage["doseAndRate"] = [{"doseQuantity": _one(*p.form)}]
        medication: Resource = (
            {"medicationReference": metformin} if p.key == "metformin"
            else {"medicationCodeableConcept": concept(RXNORM, *p.drug, text=p.text)})
        chart.add("MedicationRequest", p.key, {
            "status": p.status,
            "intent": "order",
            **medication,
            "subject": chart.patient_ref,
            "encounter": encounter(chart, visit.key),
            "authoredOn": visit.started(),
            "requester": doctor(chart, visit.doctor),
            "reasonReference": [condition(chart, p.reason)],
            "dosageInstruction": [dosage],
        })
    since = VISITS["neurology-2022"]
    chart.add("MedicationStatement", "paracetamol", {
        "status": "active",
        "medicationCodeableConcept": concept(RXNORM, "161", "acetaminophen",
                                             text="paracetamol 500 mg tablet (over the counter)"),
        "subject": chart.patient_ref,
        "context": encounter(chart, since.key),
        "effectivePeriod": {"start": "2022-06"},
        "dateAsserted": since.started(),
        "informationSource": chart.patient_ref,
        "reasonReference": [condition(chart, "migraine")],
        "dosage": [{"text": "1-2 tablets as needed for headache, at most 8 a day",
                    "asNeededBoolean": True, "route": _ORAL}],
    })


def _vaccinations() -> list[tuple[str, str, str, str, int]]:
    """(key, day, CVX code, display, dose number) of every vaccination."""
    # Each autumn's flu shot is given at the October blood draw.
    flu = [(f"influenza-{year}", f"{year}-10-12", "141", "Influenza, seasonal, injectable", 1)
           for year in range(2019, 2027)]
    covid = ("SARS-COV-2 (COVID-19) vaccine, mRNA, spike protein, LNP, preservative free, "
             "30 mcg/0.3mL dose")
    return [
        ("tdap-2019", VISITS["check-up-2019"].day, "115", "Tdap", 1),
        ("covid-19-1", "2021-04-12", "208", covid, 1),
        ("covid-19-2", "2021-05-03", "208", covid, 2),
        ("covid-19-3", "2021-11-15", "208", covid, 3),
        *flu,
    ]


def _add_immunizations(chart: Chart) -> None:
    for key, day, code, display, dose in _vaccinations():
        chart.add("Immunization", key, {
            "status": "completed",
            "vaccineCode": concept(CVX, code, display),
            "patient": chart.patient_ref,
            "occurrenceDateTime": instant(day, "11:00:00"),
            "primarySource": True,
            "lotNumber": f"DEMO-{code}-{day[:4]}",
            "site": concept("http://terminology.hl7.org/CodeSystem/v3-ActSite", "LA", "left arm"),
            "route": concept("http://terminology.hl7.org/CodeSystem/v3-RouteOfAdministration",
                             "IM", "Injection, intramuscular"),
            "doseQuantity": quantity(0.5, "mL"),
            "performer": [{
                "function": concept("http://terminology.hl7.org/CodeSystem/v2-0443", "AP",
                                    "Administering Provider"),
                "actor": doctor(chart, GP),
            }],
            "protocolApplied": [{"doseNumberPositiveInt": dose}],
        })


def _add_care(chart: Chart) -> None:
    start = VISITS["diabetes-diagnosis"]
    chart.add("CarePlan", "diabetes", {
        "status": "active",
        "intent": "plan",
        "category": [concept(SNOMED, "698360004", "Diabetes self management plan")],
        "title": "Type 2 diabetes management",
        "description": "Diet, exercise, metformin; HbA1c, kidney function and lipids every "
                       "four months; yearly foot and eye checks.",
        "subject": chart.patient_ref,
        "encounter": encounter(chart, start.key),
        "period": {"start": start.day},
        "created": start.started(),
        "author": doctor(chart, GP),
        "addresses": [condition(chart, "diabetes")],
        "activity": [
            {"detail": {"code": concept(SNOMED, *code), "status": "in-progress",
                        "description": text}}
            for code, text in (
                (("160670007", "Diabetic diet"), "Low glycaemic index diet, dietitian reviewed"),
                (("229065009", "Exercise therapy"), "150 minutes of brisk walking a week"),
            )
        ] + [{"detail": {
            "code": concept(LOINC, "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
            "status": "in-progress",
            "scheduledString": "every 4 months",
            "description": "HbA1c target below 7 %",
        }}],
    })
    review = VISITS["diabetes-review-2023"]
    chart.add("Procedure", "foot-examination-2023", {
        "status": "completed",
        "code": concept(SNOMED, "401191002", "Diabetic foot examination"),
        "subject": chart.patient_ref,
        "encounter": encounter(chart, review.key),
        "performedDateTime": instant(review.day, "09:45:00"),
        "performer": [{"actor": doctor(chart, GP)}],
        "reasonReference": [condition(chart, "diabetes")],
        "outcome": {"text": "Normal sensation and pulses in both feet"},
    })
    emergency = VISITS["emergency-2026"]
    chart.add("Procedure", "ecg-2026", {
        "status": "completed",
        "code": concept(SNOMED, "29303009", "Electrocardiographic procedure"),
        "subject": chart.patient_ref,
        "encounter": encounter(chart, emergency.key),
        "performedDateTime": instant(emergency.day, "08:55:00"),
        "performer": [{"actor": hospital(chart)}],
        "reasonCode": [concept(SNOMED, "25064002", "Headache")],
        "outcome": {"text": "Sinus rhythm, no acute changes"},
    })


def _add_consent(chart: Chart) -> None:
    first = VISITS["check-up-2019"]
    chart.add("Consent", "privacy", {
        "status": "active",
        "scope": concept("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy",
                         "Privacy Consent"),
        "category": [concept(LOINC, "59284-0", "Patient Consent")],
        "patient": chart.patient_ref,
        "dateTime": first.started(),
        "performer": [chart.patient_ref],
        "organization": [hospital(chart)],
        "policyRule": concept(V3_ACT_CODE, "OPTIN", "opt-in"),
        "provision": {
            "type": "permit",
            "period": {"start": first.day},
            "purpose": [coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "TREAT",
                               "treatment")],
        },
    })


def add_problems(chart: Chart) -> None:
    _add_conditions(chart)
    _add_allergy(chart)
    _add_medications(chart)
    _add_immunizations(chart)
    _add_care(chart)
    _add_consent(chart)
