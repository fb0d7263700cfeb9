"""The patient chart: the record sections and the imaging timeline of one patient in one read.

Built from a single compartment query (the Patient, every resource in its compartment and the
resources those refer to), grouped in memory — no query per section or per study. The web chart
and the viewer's prior lookup use it; the same data is available resource by resource through
FHIR search.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from vesalius.record.references import references

#: Chart section → resource types (and, for Observation, the category code).
SECTIONS: dict[str, tuple[str, ...]] = {
    "allergies": ("AllergyIntolerance",),
    "problems": ("Condition",),
    "medications": ("MedicationRequest", "MedicationStatement"),
    "immunizations": ("Immunization",),
    "encounters": ("Encounter",),
    "carePlans": ("CarePlan",),
    "procedures": ("Procedure",),
    "reports": ("DiagnosticReport",),
    "orders": ("ServiceRequest",),
    "documents": ("DocumentReference",),
    "consents": ("Consent",),
}
OBSERVATION_SECTIONS = {"laboratory": "labs", "vital-signs": "vitals"}
#: Where each timeline resource keeps its date (newest first ordering).
TIMELINE_DATE = {"ImagingStudy": ("started",), "Media": ("createdDateTime", "createdPeriod"),
                 "DocumentReference": ("date",)}


@dataclass(frozen=True)
class Chart:
    patient: dict[str, Any]
    sections: dict[str, list[dict[str, Any]]]
    timeline: list[dict[str, Any]]
    #: Resources outside the compartment that chart resources refer to, by ``Type/id``.
    referenced: dict[str, dict[str, Any]]
    truncated: bool

    def as_json(self) -> dict[str, Any]:
        return {"patient": self.patient, "sections": self.sections, "timeline": self.timeline,
                "referenced": self.referenced, "truncated": self.truncated}


def build_chart(patient_id: str, resources: list[dict[str, Any]], *, dicomweb: str,
                truncated: bool) -> Chart:
    """Group the compartment's resources into chart sections and an imaging timeline.

    ``dicomweb`` is the DICOMweb root thumbnails are served from.
    """
    patient: dict[str, Any] = {}
    sections: dict[str, list[dict[str, Any]]] = defaultdict(list)
    referenced: dict[str, dict[str, Any]] = {}
    studies: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    reports: list[dict[str, Any]] = []
    for resource in resources:
        kind = resource.get("resourceType", "")
        if kind == "Patient" and resource.get("id") == patient_id:
            patient = resource
            continue
        if not _in_compartment(resource, patient_id):
            referenced[f"{kind}/{resource.get('id')}"] = resource
            continue
        if kind == "Observation":
            sections[OBSERVATION_SECTIONS.get(_category(resource), "observations")].append(
                resource)
        elif kind == "ImagingStudy":
            studies.append(resource)
        elif kind == "Media":
            media.append(resource)
        for section, types in SECTIONS.items():
            if kind in types:
                sections[section].append(resource)
        if kind == "DiagnosticReport":
            reports.append(resource)
    timeline = [_study_entry(s, reports, dicomweb) for s in studies]
    timeline += [_media_entry(m) for m in media]
    timeline += [_document_entry(d) for d in sections.get("documents", [])
                 if _is_image_document(d)]
    timeline.sort(key=lambda e: e["date"] or "", reverse=True)
    for items in sections.values():
        items.sort(key=_date_of, reverse=True)
    return Chart(patient, dict(sections), timeline, referenced, truncated)


def _in_compartment(resource: dict[str, Any], patient_id: str) -> bool:
    target = f"Patient/{patient_id}"
    return any(ref == target for _path, ref in references(resource, contained=False))


def _category(observation: dict[str, Any]) -> str:
    for concept in observation.get("category", []):
        for coding in concept.get("coding", []):
            if coding.get("code") in OBSERVATION_SECTIONS:
                return str(coding["code"])
    return ""


def _date_of(resource: dict[str, Any]) -> str:
    for key in ("effectiveDateTime", "onsetDateTime", "occurrenceDateTime", "authoredOn",
                "recordedDate", "date", "issued", "started", "createdDateTime"):
        if isinstance(resource.get(key), str):
            return str(resource[key])
    for key in ("effectivePeriod", "period", "onsetPeriod", "performedPeriod",
                "occurrencePeriod"):
        period = resource.get(key)
        if isinstance(period, dict) and isinstance(period.get("start"), str):
            return str(period["start"])
    if isinstance(resource.get("performedDateTime"), str):
        return str(resource["performedDateTime"])
    return str(resource.get("meta", {}).get("lastUpdated", ""))


def _study_entry(study: dict[str, Any], reports: list[dict[str, Any]], dicomweb: str
                 ) -> dict[str, Any]:
    uid = next((i["value"].removeprefix("urn:oid:") for i in study.get("identifier", [])
                if i.get("system") == "urn:dicom:uid"), study.get("id", ""))
    reference = f"ImagingStudy/{study.get('id')}"
    orders = {b.get("reference") for b in study.get("basedOn", [])}
    report = next((r for r in reports
                   if reference in {s.get("reference") for s in r.get("imagingStudy", [])}
                   or orders & {b.get("reference") for b in r.get("basedOn", [])}), None)
    return {
        "kind": "imaging-study", "id": study.get("id"), "studyInstanceUid": uid,
        "date": study.get("started"), "modalities": [m.get("code") for m in
                                                     study.get("modality", [])],
        "description": study.get("description") or _text(study.get("procedureCode")),
        "numberOfSeries": study.get("numberOfSeries"),
        "numberOfInstances": study.get("numberOfInstances"),
        "thumbnail": f"{dicomweb}/studies/{uid}/thumbnail",
        "report": None if report is None else {
            "id": report.get("id"), "status": report.get("status"),
            "conclusion": report.get("conclusion")},
    }


def _media_entry(media: dict[str, Any]) -> dict[str, Any]:
    content = media.get("content", {})
    created = media.get("createdDateTime") or media.get("createdPeriod", {}).get("start")
    return {
        "kind": "photo", "id": media.get("id"), "date": created,
        "modalities": [c.get("code") for c in media.get("modality", {}).get("coding", [])],
        "description": content.get("title") or _text(media.get("bodySite"))
        or _text(media.get("type")),
        "contentType": content.get("contentType"),
        "thumbnail": content.get("url") or (
            f"data:{content['contentType']};base64,{content['data']}"
            if content.get("data") and content.get("contentType") else None),
        "report": None,
    }


def _is_image_document(document: dict[str, Any]) -> bool:
    return any(str(c.get("attachment", {}).get("contentType", "")).startswith("image/")
               for c in document.get("content", []))


def _document_entry(document: dict[str, Any]) -> dict[str, Any]:
    attachment = next(c["attachment"] for c in document.get("content", [])
                      if str(c.get("attachment", {}).get("contentType", "")).startswith("image/"))
    return {"kind": "photo", "id": document.get("id"), "date": document.get("date"),
            "modalities": [], "description": document.get("description")
            or _text(document.get("type")), "contentType": attachment.get("contentType"),
            "thumbnail": attachment.get("url"), "report": None}


def _text(concept: Any) -> str | None:
    if isinstance(concept, list):
        concept = concept[0] if concept else None
    if not isinstance(concept, dict):
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding", []):
        if coding.get("display"):
            return str(coding["display"])
    return None
