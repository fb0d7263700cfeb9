"""The demo patient's encounters, 2019 to the emergency visit that led to the CT head.

Encounter: https://hl7.org/fhir/R4/encounter.html (class from v3 ActCode, type SNOMED CT).
"""

from __future__ import annotations

from dataclasses import dataclass

from vesalius.demo.record_chart import SNOMED, V3_ACT_CODE, Chart, Resource, coding, concept
from vesalius.demo.record_team import GP, NEUROLOGIST, doctor, hospital

_PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


@dataclass(frozen=True)
class Visit:
    key: str
    day: str  # YYYY-MM-DD
    start: str  # HH:MM:SS
    end: str
    doctor: str
    type: tuple[str, str]  # SNOMED CT encounter type
    reason: tuple[str, str]  # SNOMED CT
    emergency: bool = False

    def started(self) -> str:
        return f"{self.day}T{self.start}Z"


_CHECK_UP = ("185349003", "Encounter for check up")
_FOLLOW_UP = ("390906007", "Follow-up encounter")
_CONSULTATION = ("11429006", "Consultation")

VISITS = {
    v.key: v
    for v in (
        Visit("check-up-2019", "2019-02-05", "09:00:00", "09:30:00", GP, _CHECK_UP,
              ("38341003", "Hypertensive disorder")),
        Visit("diabetes-diagnosis", "2020-03-10", "10:00:00", "10:30:00", GP, _FOLLOW_UP,
              ("80394007", "Hyperglycemia")),
        Visit("bronchitis", "2021-05-20", "11:00:00", "11:20:00", GP, _FOLLOW_UP,
              ("49727002", "Cough")),
        Visit("neurology-2022", "2022-09-14", "14:00:00", "14:45:00", NEUROLOGIST, _CONSULTATION,
              ("25064002", "Headache")),
        Visit("diabetes-review-2023", "2023-06-07", "09:30:00", "10:00:00", GP, _FOLLOW_UP,
              ("44054006", "Diabetes mellitus type 2")),
        Visit("check-up-2024", "2024-04-17", "08:45:00", "09:15:00", GP, _CHECK_UP,
              ("44054006", "Diabetes mellitus type 2")),
        Visit("neurology-2025", "2025-10-22", "15:00:00", "15:40:00", NEUROLOGIST, _FOLLOW_UP,
              ("25064002", "Headache")),
        Visit("cough-2026", "2026-10-08", "10:15:00", "10:35:00", GP, _FOLLOW_UP,
              ("49727002", "Cough")),
        Visit("emergency-2026", "2026-11-01", "08:40:00", "14:30:00", NEUROLOGIST,
              ("50849002", "Emergency room admission"), ("25064002", "Headache"),
              emergency=True),
    )
}


def encounter(chart: Chart, key: str) -> Resource:
    return chart.ref("Encounter", key)


def add_encounters(chart: Chart) -> None:
    for v in VISITS.values():
        klass = (coding(V3_ACT_CODE, "EMER", "emergency") if v.emergency
                 else coding(V3_ACT_CODE, "AMB", "ambulatory"))
        chart.add("Encounter", v.key, {
            "status": "finished",
            "class": klass,
            "type": [concept(SNOMED, *v.type)],
            "subject": chart.patient_ref,
            "participant": [{
                "type": [concept(_PARTICIPATION, "PPRF", "primary performer")],
                "individual": doctor(chart, v.doctor),
            }],
            "period": {"start": v.started(), "end": f"{v.day}T{v.end}Z"},
            "reasonCode": [concept(SNOMED, *v.reason)],
            "serviceProvider": hospital(chart),
        })
