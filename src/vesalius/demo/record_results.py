"""Years of laboratory results and vital signs for the demo patient, with a story in them.

HbA1c climbs until type 2 diabetes is diagnosed (March 2020) and falls on metformin; LDL falls
on atorvastatin; creatinine creeps up so eGFR (MDRD) drifts below 60 by 2026; blood pressure
settles on lisinopril and spikes at the emergency visit. Blood is drawn every four months,
so every test has a trend of more than eight points.

Observation https://hl7.org/fhir/R4/observation.html (vital signs profile
https://hl7.org/fhir/R4/observation-vitalsigns.html), DiagnosticReport
https://hl7.org/fhir/R4/diagnosticreport.html; codes LOINC, units UCUM.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date

from vesalius.demo.record_chart import (
    LOINC,
    V2_0074,
    V3_INTERPRETATION,
    Chart,
    Resource,
    concept,
    instant,
    jitter,
    quantity,
)
from vesalius.demo.record_team import hospital
from vesalius.demo.record_visits import VISITS, encounter

_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
_START = date(2019, 1, 1)
#: Blood draws: the 12th of February, June and October, 2019-2026.
LAB_DAYS = tuple(f"{year}-{month:02d}-12" for year in range(2019, 2027) for month in (2, 6, 10))


@dataclass(frozen=True)
class _Test:
    key: str
    loinc: str
    display: str
    unit: str
    low: float | None
    high: float | None


_TESTS = {
    t.key: t
    for t in (
        _Test("hba1c", "4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "%", 4.0, 5.6),
        _Test("creatinine", "2160-0", "Creatinine [Mass/volume] in Serum or Plasma", "mg/dL",
              0.5, 1.1),
        _Test("egfr", "33914-3", "Glomerular filtration rate/1.73 sq M.predicted [Volume "
              "Rate/Area] in Serum or Plasma by Creatinine-based formula (MDRD)",
              "mL/min/{1.73_m2}", 60, None),
        _Test("ldl", "13457-7", "Cholesterol in LDL [Mass/volume] in Serum or Plasma by "
              "calculation", "mg/dL", None, 100),
        _Test("haemoglobin", "718-7", "Hemoglobin [Mass/volume] in Blood", "g/dL", 12.0, 15.5),
        _Test("potassium", "2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L",
              3.5, 5.1),
    )
}

#: DiagnosticReport code → the tests it groups.
_PANELS = (
    (("51990-0", "Basic metabolic panel - Blood"), ("creatinine", "egfr", "potassium")),
    (("24331-1", "Lipid 1996 panel - Serum or Plasma"), ("ldl",)),
    (("58410-2", "CBC panel - Blood by Automated count"), ("haemoglobin",)),
    (("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"), ("hba1c",)),
)

_TREATED = 1.19  # years from _START to the diabetes diagnosis (metformin, atorvastatin)


def _years(day: str) -> float:
    return (date.fromisoformat(day) - _START).days / 365.25


def _lab_values(chart: Chart, day: str) -> dict[str, float]:
    t = _years(day)
    after = t - _TREATED

    def noisy(key: str, value: float, scale: float, digits: int) -> float:
        return round(value + jitter(f"{chart.patient.patient_id}|{key}|{day}", scale), digits)

    hba1c = 6.2 + 1.0 * t if after < 0 else 6.6 + 0.7 * math.exp(-after / 0.3) + 0.08 * after
    ldl = 165.0 if after < 0 else 95.0 + 70.0 * math.exp(-after / 0.25)
    creatinine = noisy("creatinine", 0.78 + 0.045 * t, 0.04, 2)
    birth = chart.patient.birth_date
    age = (date.fromisoformat(day) - date(int(birth[:4]), int(birth[4:6]), int(birth[6:8]))).days
    # MDRD study equation (female), the formula LOINC 33914-3 names.
    egfr = 175.0 * creatinine**-1.154 * (age / 365.25) ** -0.203 * 0.742
    potassium = 5.4 if day == "2023-06-12" else noisy("potassium", 4.2 if t < 0.1 else 4.5,
                                                      0.25, 1)
    return {
        "hba1c": noisy("hba1c", hba1c, 0.15, 1),
        "creatinine": creatinine,
        "egfr": round(egfr),
        "ldl": round(noisy("ldl", ldl, 8.0, 0)),
        "haemoglobin": noisy("haemoglobin", 13.4 - 0.12 * t, 0.35, 1),
        "potassium": potassium,
    }


def _interpretation(test: _Test, value: float) -> list[Resource]:
    if test.high is not None and value > test.high:
        return [concept(V3_INTERPRETATION, "H", "High")]
    if test.low is not None and value < test.low:
        return [concept(V3_INTERPRETATION, "L", "Low")]
    return []


def _lab(chart: Chart, test: _Test, day: str, value: float) -> Resource:
    reference: Resource = {}
    if test.low is not None:
        reference["low"] = quantity(test.low, test.unit)
    if test.high is not None:
        reference["high"] = quantity(test.high, test.unit)
    body: Resource = {
        "status": "final",
        "category": [concept(_CATEGORY, "laboratory", "Laboratory")],
        "code": concept(LOINC, test.loinc, test.display),
        "subject": chart.patient_ref,
        "effectiveDateTime": instant(day, "08:00:00"),
        "issued": instant(day, "14:00:00"),
        "performer": [hospital(chart)],
        "valueQuantity": quantity(value, test.unit),
        "referenceRange": [reference],
    }
    interpretation = _interpretation(test, value)
    if interpretation:
        body["interpretation"] = interpretation
    return chart.add("Observation", f"{test.key}-{day}", body)


def _add_labs(chart: Chart) -> None:
    for day in LAB_DAYS:
        values = _lab_values(chart, day)
        results = {key: _lab(chart, _TESTS[key], day, value) for key, value in values.items()}
        for (code, display), members in _PANELS:
            chart.add("DiagnosticReport", f"lab-{code}-{day}", {
                "status": "final",
                "category": [concept(V2_0074, "LAB", "Laboratory")],
                "code": concept(LOINC, code, display),
                "subject": chart.patient_ref,
                "effectiveDateTime": instant(day, "08:00:00"),
                "issued": instant(day, "14:00:00"),
                "performer": [hospital(chart)],
                "result": [results[key] for key in members],
            })


def _vital(chart: Chart, key: str, day: str, visit: str | None, body: Resource) -> None:
    when = VISITS[visit].started() if visit else instant(day, "07:55:00")
    context = {"encounter": encounter(chart, visit)} if visit else {}
    chart.add("Observation", f"{key}-{day}", {
        "status": "final",
        "category": [concept(_CATEGORY, "vital-signs", "Vital Signs")],
        **body,
        "subject": chart.patient_ref,
        **context,
        "effectiveDateTime": when,
    })


def _add_vitals(chart: Chart) -> None:
    visit_on = {v.day: v.key for v in VISITS.values()}
    for day in sorted({*LAB_DAYS, *visit_on}):
        visit = visit_on.get(day)
        seed = f"{chart.patient.patient_id}|vitals|{day}"
        t = _years(day)
        if visit is not None and VISITS[visit].emergency:
            systolic, diastolic, rate = 168.0, 98.0, 96.0
        elif t < 0.1:  # before lisinopril
            systolic, diastolic, rate = 152.0, 96.0, 78.0
        else:
            settled = math.exp(-(t - 0.1) / 0.5)
            systolic = 128.0 + 14.0 * settled + jitter(seed + "|sys", 5.0)
            diastolic = 80.0 + 8.0 * settled + jitter(seed + "|dia", 4.0)
            rate = 72.0 + jitter(seed + "|rate", 6.0)
        weight = 84.0 - (4.0 * (1.0 - math.exp(-(t - _TREATED) / 0.8)) if t > _TREATED else 0.0)
        _vital(chart, "blood-pressure", day, visit, {
            "code": concept(LOINC, "85354-9", "Blood pressure panel with all children optional"),
            "component": [
                {"code": concept(LOINC, "8480-6", "Systolic blood pressure"),
                 "valueQuantity": quantity(round(systolic), "mm[Hg]")},
                {"code": concept(LOINC, "8462-4", "Diastolic blood pressure"),
                 "valueQuantity": quantity(round(diastolic), "mm[Hg]")},
            ],
        })
        _vital(chart, "heart-rate", day, visit, {
            "code": concept(LOINC, "8867-4", "Heart rate"),
            "valueQuantity": quantity(round(rate), "/min"),
        })
        _vital(chart, "body-weight", day, visit, {
            "code": concept(LOINC, "29463-7", "Body weight"),
            "valueQuantity": quantity(round(weight + jitter(seed + "|kg", 0.6), 1), "kg"),
        })


def add_results(chart: Chart) -> None:
    _add_labs(chart)
    _add_vitals(chart)
