"""Which attributes belong to which query/retrieve level.

The matching and return keys follow PS3.18 §10.6.1.2 (Tables 10.6.1-5 and
10.6.1-6, "QIDO-RS Study/Series/Instance Matching and Return Keys") and the
composite Query/Retrieve information models of PS3.4 §C.6.
"""

from __future__ import annotations

from enum import StrEnum

from pydicom.datadict import dictionary_VR, keyword_for_tag, tag_for_keyword
from pydicom.tag import Tag

from vesalius.core.errors import InvalidInput


class Level(StrEnum):
    PATIENT = "PATIENT"
    STUDY = "STUDY"
    SERIES = "SERIES"
    IMAGE = "IMAGE"


#: Attributes held by the patient entity.
PATIENT_KEYS = (
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "PatientBirthDate",
    "PatientSex",
)

#: Attributes held by the study entity (PS3.18 Table 10.6.1-5, study level).
STUDY_KEYS = (
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "StudyInstanceUID",
    "StudyID",
    "StudyDescription",
    "SOPClassesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)

#: Attributes held by the series entity.
SERIES_KEYS = (
    "Modality",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "PerformedProcedureStepStartDate",
    "PerformedProcedureStepStartTime",
    "BodyPartExamined",
    "NumberOfSeriesRelatedInstances",
)

#: Attributes held by the instance entity.
INSTANCE_KEYS = (
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "Rows",
    "Columns",
    "BitsAllocated",
    "NumberOfFrames",
)

KEYS_BY_LEVEL: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: PATIENT_KEYS,
    Level.STUDY: STUDY_KEYS,
    Level.SERIES: SERIES_KEYS,
    Level.IMAGE: INSTANCE_KEYS,
}

#: Levels whose attributes a query at the given level may match on (itself and above).
LEVELS_UP: dict[Level, tuple[Level, ...]] = {
    Level.PATIENT: (Level.PATIENT,),
    Level.STUDY: (Level.PATIENT, Level.STUDY),
    Level.SERIES: (Level.PATIENT, Level.STUDY, Level.SERIES),
    Level.IMAGE: (Level.PATIENT, Level.STUDY, Level.SERIES, Level.IMAGE),
}

#: Attributes returned by default at each level (PS3.18 §10.6.3.3 "required" return keys).
DEFAULT_RETURN: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: PATIENT_KEYS,
    Level.STUDY: (
        "StudyDate",
        "StudyTime",
        "AccessionNumber",
        "ModalitiesInStudy",
        "ReferringPhysicianName",
        "PatientName",
        "PatientID",
        "IssuerOfPatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyID",
        "StudyDescription",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    Level.SERIES: (
        "Modality",
        "SeriesInstanceUID",
        "SeriesNumber",
        "SeriesDescription",
        "PerformedProcedureStepStartDate",
        "PerformedProcedureStepStartTime",
        "NumberOfSeriesRelatedInstances",
    ),
    Level.IMAGE: ("SOPClassUID", "SOPInstanceUID", "InstanceNumber", "Rows", "Columns",
                  "BitsAllocated", "NumberOfFrames"),
}

LEVEL_OF_KEY: dict[str, Level] = {
    keyword: level for level, keys in KEYS_BY_LEVEL.items() for keyword in keys
}

#: Attributes the archive derives (counts, sets) rather than reads from an instance.
_DERIVED_KEYS = frozenset({"ModalitiesInStudy", "SOPClassesInStudy",
                           "NumberOfStudyRelatedSeries", "NumberOfStudyRelatedInstances",
                           "NumberOfSeriesRelatedInstances"})

#: Value representation overrides for derived attributes not in pydicom's dictionary form.
_VR_OVERRIDE = {"ModalitiesInStudy": "CS", "SOPClassesInStudy": "UI"}


def resolve_tag(name: str) -> tuple[int, str]:
    """Map a keyword or ``ggggeeee`` hex tag to ``(tag, keyword)``.

    Raises :class:`InvalidInput` for names that are neither (PS3.18 §8.3.4.1
    allows both forms for ``{attributeID}``). Private tags keep their hex form
    as keyword.
    """
    text = name.strip()
    if len(text) == 8 and all(c in "0123456789abcdefABCDEF" for c in text):
        tag = int(text, 16)
        keyword = keyword_for_tag(tag) or text.upper()
        return tag, keyword
    tag_value = tag_for_keyword(text)
    if tag_value is None:
        raise InvalidInput(f"unknown attribute {name[:64]!r}")
    return int(Tag(tag_value)), text


def vr_of(keyword: str, tag: int) -> str:
    """The value representation used for matching an attribute."""
    if keyword in _VR_OVERRIDE:
        return _VR_OVERRIDE[keyword]
    try:
        vr = dictionary_VR(tag)
    except KeyError:
        return "UN"
    return vr.split(" or ")[0]


def tag_hex(tag: int) -> str:
    """``ggggeeee`` as used for keys of the DICOM JSON model (PS3.18 §F.2)."""
    return f"{tag:08X}"


#: What each entity keeps from its first instance (for ``includefield`` and returns):
#: its matching keys plus the other attributes of its modules (PS3.3 Patient, General
#: Study and Patient Study, General Series, General Equipment, Frame of Reference).
ENTITY_ATTRIBUTES: dict[Level, tuple[str, ...]] = {
    Level.PATIENT: (*PATIENT_KEYS, "IssuerOfPatientIDQualifiersSequence",
                    "OtherPatientIDsSequence", "PatientComments", "EthnicGroup",
                    "PatientBirthTime"),
    Level.STUDY: (*(k for k in STUDY_KEYS if k not in _DERIVED_KEYS),
                  "IssuerOfAccessionNumberSequence", "ProcedureCodeSequence",
                  "NameOfPhysiciansReadingStudy", "AdmittingDiagnosesDescription",
                  "PatientAge", "PatientSize", "PatientWeight", "TimezoneOffsetFromUTC",
                  "RequestingService", "ReasonForPerformedProcedureCodeSequence"),
    Level.SERIES: (*(k for k in SERIES_KEYS if k not in _DERIVED_KEYS), "SeriesDate",
                   "SeriesTime", "Laterality", "ProtocolName", "OperatorsName",
                   "PerformingPhysicianName", "PerformedProcedureStepID",
                   "RequestAttributesSequence", "FrameOfReferenceUID", "Manufacturer",
                   "ManufacturerModelName", "StationName", "InstitutionName",
                   "PatientPosition"),
}


def entity_tags(level: Level) -> tuple[int, ...]:
    """Tags of :data:`ENTITY_ATTRIBUTES` for ``level``."""
    return tuple(resolve_tag(keyword)[0] for keyword in ENTITY_ATTRIBUTES[level])
