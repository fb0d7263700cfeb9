"""The demo record's side of imaging: orders and reports for the demo DICOM studies, a clinical
photograph and the emergency discharge summary.

Each ServiceRequest carries the study's AccessionNumber as an identifier of type ``ACSN``
(https://hl7.org/fhir/R4/imagingstudy.html#notes: "ImagingStudy.basedOn … AccessionNumber"), which
is how the imaging link ties the archive's ImagingStudy to its order. Nothing here references
an ImagingStudy: those are made from the archive and may not exist yet.

ServiceRequest https://hl7.org/fhir/R4/servicerequest.html, DiagnosticReport
https://hl7.org/fhir/R4/diagnosticreport.html, Media https://hl7.org/fhir/R4/media.html,
DocumentReference https://hl7.org/fhir/R4/documentreference.html.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

from vesalius.demo.record_chart import (
    DCM,
    LOINC,
    SNOMED,
    V2_0074,
    V2_0203,
    Chart,
    concept,
    instant,
)
from vesalius.demo.record_problems import condition
from vesalius.demo.record_team import GP, NEUROLOGIST, RADIOLOGIST, doctor, hospital
from vesalius.demo.record_visits import VISITS, encounter

_HEADACHE = ("25064002", "Headache")


@dataclass(frozen=True)
class ImagingOrder:
    """An order for one of the demo DICOM studies (see :mod:`vesalius.demo.synthetic`)."""

    key: str
    accession: str  # AccessionNumber of the study
    study_date: str  # StudyDate as YYYY-MM-DD
    study_time: str  # StudyTime as HH:MM:SS
    code: tuple[str, str]  # LOINC
    visit: str  # the encounter that ordered it
    requester: str
    reason: tuple[str, str]  # SNOMED CT
    conclusion: str
    reason_condition: str | None = None


IMAGING_ORDERS = (
    ImagingOrder(
        "ct-head-2025", "DEMO0000", "2025-11-01", "09:30:00", ("24725-4", "CT Head"),
        "neurology-2025", NEUROLOGIST, _HEADACHE,
        "No acute intracranial abnormality. Incidental linear hyperdensity along a cerebral "
        "vessel, most likely vascular; follow-up imaging only if symptoms change.",
        reason_condition="migraine"),
    ImagingOrder(
        "xr-chest-2026", "DEMO0002", "2026-10-15", "09:10:00",
        ("24648-8", "XR Chest PA upright"), "cough-2026", GP, ("49727002", "Cough"),
        "Clear lungs. Normal heart size. No pleural effusion."),
    ImagingOrder(
        "us-heart-2026", "DEMO0003", "2026-10-20", "14:00:00", ("42148-7", "US Heart"),
        "cough-2026", GP, ("59621000", "Essential hypertension"),
        "Normal left ventricular size and systolic function. Mild concentric left ventricular "
        "hypertrophy, in keeping with hypertension.",
        reason_condition="hypertension"),
    ImagingOrder(
        "ct-head-2026", "DEMO0001", "2026-11-01", "10:15:00", ("24725-4", "CT Head"),
        "emergency-2026", NEUROLOGIST, _HEADACHE,
        "No intracranial haemorrhage, mass effect or territorial infarct. The linear "
        "hyperdense vessel is unchanged since 2025-11-01. Findings support a migraine.",
        reason_condition="migraine"),
)


def _add_order(chart: Chart, order: ImagingOrder) -> None:
    visit = VISITS[order.visit]
    reason_reference = (
        {"reasonReference": [condition(chart, order.reason_condition)]}
        if order.reason_condition else {})
    request = chart.add("ServiceRequest", order.key, {
        "identifier": [{
            "type": concept(V2_0203, "ACSN", "Accession ID"),
            "value": order.accession,
        }],
        "status": "completed",
        "intent": "order",
        "category": [concept(SNOMED, "363679005", "Imaging")],
        "code": concept(LOINC, *order.code),
        "subject": chart.patient_ref,
        "encounter": encounter(chart, visit.key),
        "occurrenceDateTime": order.study_date,
        "authoredOn": visit.started(),
        "requester": doctor(chart, order.requester),
        "performer": [hospital(chart)],
        "reasonCode": [concept(SNOMED, *order.reason)],
        **reason_reference,
    })
    chart.add("DiagnosticReport", order.key, {
        "basedOn": [request],
        "status": "final",
        "category": [concept(V2_0074, "RAD", "Radiology")],
        "code": concept(LOINC, *order.code),
        "subject": chart.patient_ref,
        "encounter": encounter(chart, visit.key),
        "effectiveDateTime": order.study_date,
        "issued": instant(order.study_date, "16:00:00"),
        "performer": [doctor(chart, RADIOLOGIST)],
        "conclusion": order.conclusion,
    })


def lesion_png(size: int = 128) -> bytes:
    """A synthetic photograph of a pigmented skin lesion: a brown, irregular blob on skin."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64) / size - 0.5
    radius, angle = np.hypot(x, y), np.arctan2(y, x)
    edge = 0.22 + 0.025 * np.sin(3 * angle) + 0.015 * np.cos(5 * angle + 1.0)
    # 1 inside the lesion, 0 on skin, with a soft border a few pixels wide.
    inside = np.clip((edge - radius) / 0.03 + 0.5, 0.0, 1.0)[..., None]
    texture = (0.04 * np.sin(40 * x + 7 * y) * np.cos(33 * y))[..., None]
    skin = np.array([226.0, 186.0, 156.0]) * (1.0 - 0.15 * (x + y)[..., None] + texture)
    lesion = np.array([112.0, 72.0, 48.0]) * (0.85 + 0.6 * radius[..., None] + texture)
    pixels = np.clip(skin * (1.0 - inside) + lesion * inside, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def _add_photo(chart: Chart) -> None:
    visit = VISITS["check-up-2024"]
    chart.add("Media", "skin-lesion-2024", {
        "status": "completed",
        "type": concept("http://terminology.hl7.org/CodeSystem/media-type", "image", "Image"),
        "modality": concept(DCM, "XC", "External-camera Photography"),
        "subject": chart.patient_ref,
        "encounter": encounter(chart, visit.key),
        "createdDateTime": instant(visit.day, "09:05:00"),
        "issued": instant(visit.day, "09:10:00"),
        "operator": doctor(chart, GP),
        "reasonCode": [{"text": "Pigmented lesion, baseline photograph for monitoring"}],
        "bodySite": concept(SNOMED, "66480008", "Structure of left forearm"),
        "height": 128,
        "width": 128,
        "frames": 1,
        "content": {
            "contentType": "image/png",
            "data": base64.b64encode(lesion_png(128)).decode("ascii"),
            "title": "Left forearm lesion",
            "creation": instant(visit.day, "09:05:00"),
        },
    })


def _discharge_text(ct: ImagingOrder) -> str:
    return (
        "EMERGENCY DEPARTMENT DISCHARGE SUMMARY\n\n"
        "Presenting complaint: sudden severe headache on waking, photophobia, no focal "
        "deficit.\n"
        "Background: migraine, type 2 diabetes, essential hypertension, hyperlipidaemia. "
        "Allergy: penicillin (anaphylaxis).\n"
        "Findings: BP 168/98 on arrival, settling to 142/88. ECG sinus rhythm. Neurological "
        "examination normal.\n"
        f"Imaging: CT head ({ct.accession}) - {ct.conclusion}\n"
        "Diagnosis: migraine without aura, severe attack.\n"
        "Plan: sumatriptan as prescribed; neurology follow-up in 6 weeks; return at once "
        "for weakness, confusion or the worst headache of life.\n"
    )


def _add_discharge_summary(chart: Chart) -> None:
    visit = VISITS["emergency-2026"]
    ct = next(o for o in IMAGING_ORDERS if o.key == "ct-head-2026")
    written = instant(visit.day, visit.end)
    chart.add("DocumentReference", "discharge-summary-2026", {
        "status": "current",
        "docStatus": "final",
        "type": concept(LOINC, "59258-4", "Emergency department Discharge summary"),
        "subject": chart.patient_ref,
        "date": written,
        "author": [doctor(chart, visit.doctor)],
        "authenticator": doctor(chart, visit.doctor),
        "custodian": hospital(chart),
        "description": "Emergency department discharge summary",
        "content": [{"attachment": {
            "contentType": "text/plain; charset=utf-8",
            "language": "en",
            "data": base64.b64encode(_discharge_text(ct).encode()).decode("ascii"),
            "title": "Emergency department discharge summary",
            "creation": written,
        }}],
        "context": {
            "encounter": [encounter(chart, visit.key)],
            "period": {"start": visit.started(), "end": written},
            "related": [chart.ref("DiagnosticReport", ct.key)],
        },
    })


def add_imaging(chart: Chart) -> None:
    for order in IMAGING_ORDERS:
        _add_order(chart, order)
    _add_photo(chart)
    _add_discharge_summary(chart)
