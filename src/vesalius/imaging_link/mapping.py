"""Archive attributes → FHIR ``ImagingStudy`` and ``Endpoint`` (pure functions).

Follows https://hl7.org/fhir/R4/imagingstudy.html and its DICOM mapping
(https://hl7.org/fhir/R4/imagingstudy-mappings.html). Input is the DICOM JSON (PS3.18 §F) of
every instance of one study as the archive's instance-level search returns it (patient, study
and series attributes included), so one pass builds the study, its series and instances.

``started`` carries the study's date and time: a FHIR dateTime with a time needs a time zone,
so it comes from TimezoneOffsetFromUTC when the study has one, else the time is read as this
server's local time (the archive's site). The patient timeline sorts studies and Media by it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from typing import Any

JsonDict = dict[str, Any]
Resource = dict[str, Any]

DCM = "http://dicom.nema.org/resources/ontology/DCM"
SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONNECTION_TYPE = "http://terminology.hl7.org/CodeSystem/endpoint-connection-type"
DICOM_UID_SYSTEM = "urn:dicom:uid"
ENDPOINT_ID = "vesalius-dicomweb"

#: Coding scheme designators (PS3.16 §8) we can name as FHIR code systems.
_SCHEMES = {"DCM": DCM, "SCT": SNOMED, "SRT": SNOMED, "LN": LOINC,
            "RADLEX": "http://www.radlex.org", "RADLX": "http://www.radlex.org"}

#: BodyPartExamined defined terms with their SNOMED CT concept (PS3.16 Annex L); other
#: terms travel as text.
BODY_PARTS = {
    "HEAD": ("69536005", "Head"),
    "BRAIN": ("12738006", "Brain"),
    "SKULL": ("89546000", "Skull"),
    "NECK": ("45048000", "Neck"),
    "CHEST": ("43799004", "Chest"),
    "HEART": ("80891009", "Heart"),
    "BREAST": ("76752008", "Breast"),
    "ABDOMEN": ("818981001", "Abdomen"),
    "LIVER": ("10200004", "Liver"),
    "KIDNEY": ("64033007", "Kidney"),
    "HAND": ("85562004", "Hand"),
    "KNEE": ("72696002", "Knee"),
    "FOOT": ("56459004", "Foot"),
}
#: Laterality (0020,0060) → SNOMED CT.
LATERALITY = {"R": ("24028007", "Right"), "L": ("7771000", "Left"),
              "B": ("51440002", "Right and left")}

_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

# Attribute tags (DICOM JSON keys).
PATIENT_NAME, PATIENT_ID, ISSUER = "00100010", "00100020", "00100021"
BIRTH_DATE, SEX = "00100030", "00100040"
STUDY_UID, SERIES_UID, SOP_UID, SOP_CLASS = "0020000D", "0020000E", "00080018", "00080016"
STUDY_DATE, STUDY_TIME, TZ_OFFSET = "00080020", "00080030", "00080201"
ACCESSION, STUDY_DESCRIPTION = "00080050", "00081030"
MODALITY, SERIES_NUMBER, SERIES_DESCRIPTION = "00080060", "00200011", "0008103E"
SERIES_DATE, SERIES_TIME = "00080021", "00080031"
BODY_PART, LATERALITY_TAG = "00180015", "00200060"
INSTANCE_NUMBER = "00200013"
PROCEDURE_CODES, REQUESTED_PROCEDURE_CODES = "00081032", "00321064"
DOCUMENT_TITLE, CONTENT_LABEL, CONCEPT_NAME = "00420010", "00700080", "0040A043"
CODE_VALUE, SCHEME, CODE_MEANING = "00080100", "00080102", "00080104"

#: What the link asks the archive's instance-level search to return besides the defaults.
INCLUDE_FIELDS = (
    "PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
    "StudyInstanceUID", "SeriesInstanceUID", "StudyDate", "StudyTime", "TimezoneOffsetFromUTC",
    "AccessionNumber", "StudyDescription", "Modality", "SeriesNumber", "SeriesDescription",
    "SeriesDate", "SeriesTime", "BodyPartExamined", "Laterality", "ProcedureCodeSequence",
    "RequestedProcedureCodeSequence", "DocumentTitle", "ContentLabel", "ConceptNameCodeSequence",
)


def text(attrs: JsonDict, tag: str) -> str:
    """First value of an attribute as text ('' when absent); person names as Alphabetic."""
    values = (attrs.get(tag) or {}).get("Value") or []
    if not values:
        return ""
    first = values[0]
    if isinstance(first, dict):
        return str(first.get("Alphabetic", "")).strip()
    return str(first).strip()


def integer(attrs: JsonDict, tag: str) -> int | None:
    value = text(attrs, tag)
    try:
        return int(float(value)) if value else None
    except ValueError:
        return None


def resource_id(study_uid: str) -> str:
    """The ImagingStudy id: the StudyInstanceUID, or a digest of it when that is no FHIR id."""
    if _FHIR_ID.match(study_uid):
        return study_uid
    return "uid-" + hashlib.sha256(study_uid.encode()).hexdigest()[:48]


def study_identifier(study_uid: str) -> Resource:
    return {"system": DICOM_UID_SYSTEM, "value": f"urn:oid:{study_uid}"}


def accession_identifier(accession: str) -> Resource:
    return {"type": {"coding": [{"system": V2_0203, "code": "ACSN"}]}, "value": accession}


def is_accession(identifier: Resource) -> bool:
    codings = (identifier.get("type") or {}).get("coding") or []
    return any(c.get("system") == V2_0203 and c.get("code") == "ACSN" for c in codings)


def endpoint(base_url: str) -> Resource:
    """This installation's DICOMweb service (https://hl7.org/fhir/R4/endpoint.html)."""
    return {
        "resourceType": "Endpoint",
        "id": ENDPOINT_ID,
        "status": "active",
        "connectionType": {"system": CONNECTION_TYPE, "code": "dicom-wado-rs"},
        "name": "Vesalius DICOMweb",
        "payloadType": [{"text": "DICOM"}],
        "payloadMimeType": ["application/dicom"],
        "address": f"{base_url.rstrip('/')}/dicom-web",
    }


def date_time(date: str, time: str, offset: str) -> str | None:
    """DICOM DA + TM (+ TimezoneOffsetFromUTC ``±HHMM``) → FHIR dateTime."""
    if not re.fullmatch(r"\d{8}", date):
        return None
    day = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    digits = time.split(".")[0]
    if not re.fullmatch(r"\d{2}(\d{2}(\d{2})?)?", digits):
        return day
    hh, mm, ss = digits[:2], digits[2:4] or "00", digits[4:6] or "00"
    fraction = time.split(".")[1][:3] if "." in time else ""
    if re.fullmatch(r"[+-]\d{4}", offset):
        zone = f"{offset[:3]}:{offset[3:]}"
    else:
        try:
            naive = dt.datetime(int(date[:4]), int(date[4:6]), int(date[6:]), int(hh), int(mm))
        except ValueError:
            return day
        zone = naive.astimezone().isoformat()[-6:]
    seconds = f"{ss}.{fraction}" if fraction.isdigit() else ss
    return f"{day}T{hh}:{mm}:{seconds}{zone}"


def code_concept(attrs: JsonDict, tag: str) -> Resource | None:
    """A DICOM code sequence → CodeableConcept (unknown schemes keep the meaning as text)."""
    codings: list[Resource] = []
    meanings: list[str] = []
    for item in (attrs.get(tag) or {}).get("Value") or []:
        code, scheme, meaning = text(item, CODE_VALUE), text(item, SCHEME), text(item, CODE_MEANING)
        if meaning:
            meanings.append(meaning)
        if code and scheme in _SCHEMES:
            coding = {"system": _SCHEMES[scheme], "code": code}
            if meaning:
                coding["display"] = meaning
            codings.append(coding)
    if not codings and not meanings:
        return None
    concept: Resource = {}
    if codings:
        concept["coding"] = codings
    if meanings:
        concept["text"] = meanings[0]
    return concept


def _modality(code: str) -> Resource:
    return {"system": DCM, "code": code or "OT"}


def _body_site(attrs: JsonDict) -> Resource | None:
    part = text(attrs, BODY_PART)
    if not part:
        return None
    if part.upper() in BODY_PARTS:
        code, display = BODY_PARTS[part.upper()]
        return {"system": SNOMED, "code": code, "display": display}
    return {"display": part}


def _unsigned(value: int | None) -> int | None:
    return value if value is not None and value >= 0 else None


def _title(attrs: JsonDict) -> str:
    for tag in (DOCUMENT_TITLE, CONTENT_LABEL):
        if text(attrs, tag):
            return text(attrs, tag)
    concept = code_concept(attrs, CONCEPT_NAME)
    return str(concept.get("text", "")) if concept else ""


def _instance(attrs: JsonDict) -> Resource:
    out: Resource = {"uid": text(attrs, SOP_UID),
                     "sopClass": {"system": "urn:ietf:rfc:3986",
                                  "code": f"urn:oid:{text(attrs, SOP_CLASS)}"}}
    number = _unsigned(integer(attrs, INSTANCE_NUMBER))
    if number is not None:
        out["number"] = number
    title = _title(attrs)
    if title:
        out["title"] = title
    return out


def _series(members: Sequence[JsonDict]) -> Resource:
    first = members[0]
    out: Resource = {"uid": text(first, SERIES_UID)}
    number = _unsigned(integer(first, SERIES_NUMBER))
    if number is not None:
        out["number"] = number
    out["modality"] = _modality(text(first, MODALITY))
    if text(first, SERIES_DESCRIPTION):
        out["description"] = text(first, SERIES_DESCRIPTION)
    out["numberOfInstances"] = len(members)
    body_site = _body_site(first)
    if body_site is not None:
        out["bodySite"] = body_site
    side = text(first, LATERALITY_TAG).upper()
    if side in LATERALITY:
        code, display = LATERALITY[side]
        out["laterality"] = {"system": SNOMED, "code": code, "display": display}
    started = date_time(text(first, SERIES_DATE), text(first, SERIES_TIME),
                        text(first, TZ_OFFSET))
    if started:
        out["started"] = started
    ordered = sorted(members, key=lambda a: (integer(a, INSTANCE_NUMBER) is None,
                                             integer(a, INSTANCE_NUMBER) or 0,
                                             text(a, SOP_UID)))
    out["instance"] = [_instance(a) for a in ordered]
    return out


def imaging_study(instances: Sequence[JsonDict], *, subject: str, endpoint_id: str,
                  based_on: Sequence[str] = ()) -> Resource:
    """The ImagingStudy of the study whose instances' attributes are given (at least one).

    ``subject``: ``Patient/<id>``; ``based_on``: ``ServiceRequest/<id>`` references.
    """
    first = instances[0]
    study_uid = text(first, STUDY_UID)
    by_series: dict[str, list[JsonDict]] = {}
    for attrs in instances:
        by_series.setdefault(text(attrs, SERIES_UID), []).append(attrs)
    series = sorted((_series(members) for members in by_series.values()),
                    key=lambda s: (s.get("number") is None, s.get("number", 0), s["uid"]))
    identifiers = [study_identifier(study_uid)]
    if text(first, ACCESSION):
        identifiers.append(accession_identifier(text(first, ACCESSION)))
    resource: Resource = {
        "resourceType": "ImagingStudy",
        "id": resource_id(study_uid),
        "identifier": identifiers,
        "status": "available",
    }
    modalities = sorted({s["modality"]["code"] for s in series})
    resource["modality"] = [_modality(m) for m in modalities]
    resource["subject"] = {"reference": subject}
    if based_on:
        resource["basedOn"] = [{"reference": r} for r in based_on]
    started = date_time(text(first, STUDY_DATE), text(first, STUDY_TIME), text(first, TZ_OFFSET))
    if started:
        resource["started"] = started
    resource["endpoint"] = [{"reference": f"Endpoint/{endpoint_id}"}]
    resource["numberOfSeries"] = len(series)
    resource["numberOfInstances"] = len(instances)
    procedure = (code_concept(first, REQUESTED_PROCEDURE_CODES)
                 or code_concept(first, PROCEDURE_CODES))
    if procedure is None and text(first, STUDY_DESCRIPTION):
        procedure = {"text": text(first, STUDY_DESCRIPTION)}
    if procedure is not None:
        resource["procedureCode"] = [procedure]
    if text(first, STUDY_DESCRIPTION):
        resource["description"] = text(first, STUDY_DESCRIPTION)
    resource["series"] = series
    return resource
