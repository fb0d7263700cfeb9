"""Plain records passed between the archive service and the index."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PatientRecord:
    patient_id: str
    issuer: str
    patient_name: str
    birth_date: str
    sex: str
    attrs: str


@dataclass(frozen=True)
class StudyRecord:
    study_uid: str
    study_date: str
    study_time: str
    accession_number: str
    referring_physician_name: str
    study_id: str
    study_description: str
    attrs: str


@dataclass(frozen=True)
class SeriesRecord:
    series_uid: str
    modality: str
    series_number: int | None
    series_description: str
    pps_start_date: str
    pps_start_time: str
    body_part: str
    attrs: str


@dataclass(frozen=True)
class InstanceRecord:
    sop_uid: str
    sop_class_uid: str
    instance_number: int | None
    transfer_syntax_uid: str
    rows: int | None
    columns: int | None
    bits_allocated: int | None
    number_of_frames: int | None
    blob_key: str
    sha256: str
    size: int
    metadata_json: str
    pixel_layout: str | None


@dataclass(frozen=True)
class IndexEntry:
    """Everything the index learns from one stored instance."""

    patient: PatientRecord
    study: StudyRecord
    series: SeriesRecord
    instance: InstanceRecord
    #: Configured extra attributes: level -> [(tag hex, value)].
    extra: dict[str, list[tuple[str, str]]] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredInstance:
    """What the index knows about one stored instance, for retrieval."""

    study_uid: str
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    blob_key: str
    sha256: str
    size: int
    number_of_frames: int | None
    pixel_layout: str | None
    #: The patient's current attributes (DICOM JSON) when a merge re-filed the study: the
    #: stored file still carries the identity it arrived with and is corrected on retrieval.
    corrected_patient: str | None = None


@dataclass(frozen=True)
class InsertOutcome:
    new_patient: bool
    new_study: bool
    new_series: bool
    replaced_blob_key: str | None = None
