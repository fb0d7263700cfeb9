"""Reads from the index: attribute matching (shared by QIDO-RS and C-FIND) and lookups."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, exists, false, func, select, tuple_
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.sql import Select

from vesalius.archive.index.matching import condition
from vesalius.archive.index.records import StoredInstance
from vesalius.archive.index.schema import (
    archive_log,
    extra_attributes,
    instances,
    patients,
    replaced_instances,
    series,
    studies,
)
from vesalius.core.errors import NotFound
from vesalius.dicom.attributes import LEVEL_OF_KEY, LEVELS_UP, Level
from vesalius.dicom.matching import Matcher, Universal

_TABLE = {Level.PATIENT: patients, Level.STUDY: studies, Level.SERIES: series,
          Level.IMAGE: instances}

#: keyword -> (column name, kind); kind is str | int | pn | multi (\\A\\B\\ sets).
_COLUMNS: dict[str, tuple[str, str]] = {
    "PatientName": ("patient_name", "pn"),
    "PatientID": ("patient_id", "str"),
    "IssuerOfPatientID": ("issuer", "str"),
    "PatientBirthDate": ("birth_date", "str"),
    "PatientSex": ("sex", "str"),
    "StudyDate": ("study_date", "str"),
    "StudyTime": ("study_time", "str"),
    "AccessionNumber": ("accession_number", "str"),
    "ModalitiesInStudy": ("modalities", "multi"),
    "SOPClassesInStudy": ("sop_classes", "multi"),
    "ReferringPhysicianName": ("referring_physician_name", "pn"),
    "StudyInstanceUID": ("study_uid", "str"),
    "StudyID": ("study_id", "str"),
    "StudyDescription": ("study_description", "str"),
    "NumberOfStudyRelatedSeries": ("num_series", "int"),
    "NumberOfStudyRelatedInstances": ("num_instances", "int"),
    "Modality": ("modality", "str"),
    "SeriesInstanceUID": ("series_uid", "str"),
    "SeriesNumber": ("series_number", "int"),
    "SeriesDescription": ("series_description", "str"),
    "PerformedProcedureStepStartDate": ("pps_start_date", "str"),
    "PerformedProcedureStepStartTime": ("pps_start_time", "str"),
    "BodyPartExamined": ("body_part", "str"),
    "NumberOfSeriesRelatedInstances": ("num_instances", "int"),
    "SOPClassUID": ("sop_class_uid", "str"),
    "SOPInstanceUID": ("sop_uid", "str"),
    "InstanceNumber": ("instance_number", "int"),
    "Rows": ("rows", "int"),
    "Columns": ("columns", "int"),
    "BitsAllocated": ("bits_allocated", "int"),
    "NumberOfFrames": ("number_of_frames", "int"),
}


_FIND_INSTANCE = select(instances.c.sha256, instances.c.blob_key,
                        instances.c.sop_class_uid).where(
    instances.c.sop_uid == bindparam("b_sop_uid"))


@dataclass(frozen=True)
class KnownInstance:
    sha256: str
    blob_key: str
    sop_class_uid: str


@dataclass(frozen=True)
class Criterion:
    """One matching key: the attribute, its VR and the parsed matcher."""

    keyword: str
    tag: int
    matcher: Matcher


@dataclass
class QueryResult:
    rows: list[Row[Any]]
    has_more: bool
    ignored: list[str] = field(default_factory=list)


def _extra_condition(level: Level, owner: Any, tag: int, matcher: Matcher) -> ColumnElement[bool]:
    value_cond = condition(extra_attributes, "value", "str", matcher)
    return exists().where(and_(
        extra_attributes.c.level == level.value, extra_attributes.c.owner_pk == owner,
        extra_attributes.c.tag == f"{tag:08X}", value_cond))


#: (PatientID, IssuerOfPatientID) identities a caller may see.
PatientKeys = frozenset[tuple[str, str]]


class IndexReader:
    def __init__(self, engine: Engine, extra_tags: dict[int, Level] | None = None) -> None:
        self.engine = engine
        self.extra_tags = extra_tags or {}

    def _base(self, level: Level) -> Select[Any]:
        if level is Level.PATIENT:
            return select(patients)
        if level is Level.STUDY:
            return select(studies, patients.c.attrs.label("patient_attrs")).join(
                patients, patients.c.pk == studies.c.patient_pk)
        joined = series.join(studies, studies.c.pk == series.c.study_pk).join(
            patients, patients.c.pk == studies.c.patient_pk)
        if level is Level.SERIES:
            return select(series, studies.c.study_uid, studies.c.attrs.label("study_attrs"),
                          patients.c.attrs.label("patient_attrs")).select_from(joined)
        return select(instances.c.pk, instances.c.sop_uid, instances.c.sop_class_uid,
                      instances.c.instance_number, instances.c.rows, instances.c.columns,
                      instances.c.bits_allocated, instances.c.number_of_frames,
                      instances.c.transfer_syntax_uid, instances.c.metadata_json,
                      series.c.series_uid, series.c.attrs.label("series_attrs"),
                      studies.c.study_uid, studies.c.attrs.label("study_attrs"),
                      patients.c.attrs.label("patient_attrs")).select_from(
            instances.join(joined, series.c.pk == instances.c.series_pk))

    def search(self, level: Level, criteria: Sequence[Criterion], *, limit: int,
               offset: int = 0, identities: PatientKeys | None = None) -> QueryResult:
        """Rows at ``level`` matching every criterion, in a stable order; with ``identities``
        only those filed under one of those (PatientID, IssuerOfPatientID) identities."""
        query = self._base(level)
        if identities is not None:
            query = query.where(tuple_(patients.c.patient_id, patients.c.issuer)
                                .in_(sorted(identities)) if identities else false())
        ignored: list[str] = []
        allowed = LEVELS_UP[level]
        for criterion in criteria:
            key_level = LEVEL_OF_KEY.get(criterion.keyword)
            if key_level is not None and key_level in allowed:
                column, kind = _COLUMNS[criterion.keyword]
                query = query.where(condition(_TABLE[key_level], column, kind, criterion.matcher))
            elif criterion.tag in self.extra_tags and self.extra_tags[criterion.tag] in allowed:
                extra_level = self.extra_tags[criterion.tag]
                owner = _TABLE[extra_level].c.pk
                query = query.where(_extra_condition(extra_level, owner, criterion.tag,
                                                     criterion.matcher))
            elif not isinstance(criterion.matcher, Universal):
                ignored.append(criterion.keyword)
        orders: dict[Level, list[Any]] = {
            Level.PATIENT: [patients.c.pk],
            Level.STUDY: [studies.c.study_date.desc(), studies.c.study_time.desc(), studies.c.pk],
            Level.SERIES: [series.c.series_number, series.c.pk],
            Level.IMAGE: [instances.c.instance_number, instances.c.pk],
        }
        query = query.order_by(*orders[level]).limit(limit + 1).offset(offset)
        with self.engine.connect() as conn:
            rows = list(conn.execute(query).all())
        return QueryResult(rows[:limit], len(rows) > limit, ignored)

    def instances_in(self, study_uid: str, series_uid: str | None = None,
                     sop_uid: str | None = None) -> list[StoredInstance]:
        """Stored instances of a study/series/instance, in series and instance order."""
        query = _scoped(select(instances.c.sop_uid, instances.c.sop_class_uid,
                               instances.c.transfer_syntax_uid, instances.c.blob_key,
                               instances.c.sha256, instances.c.size,
                               instances.c.number_of_frames, instances.c.pixel_layout,
                               series.c.series_uid, studies.c.study_uid, studies.c.patient_pk),
                        study_uid, series_uid, sop_uid)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            corrected = self._corrected_patient(conn, study_uid, rows)
        return [StoredInstance(r.study_uid, r.series_uid, r.sop_uid, r.sop_class_uid,
                               r.transfer_syntax_uid, r.blob_key, r.sha256, r.size,
                               r.number_of_frames, r.pixel_layout, corrected) for r in rows]

    @staticmethod
    def _corrected_patient(conn: Connection, study_uid: str, rows: Sequence[Row[Any]]
                           ) -> str | None:
        """The patient attributes to serve instead of the stored ones, for a re-filed study."""
        if not rows:
            return None
        refiled = conn.execute(select(archive_log.c.pk).where(
            archive_log.c.action == "refile", archive_log.c.level == "STUDY",
            archive_log.c.uid == study_uid).limit(1)).first()
        if refiled is None:
            return None
        attrs: str | None = conn.execute(select(patients.c.attrs).where(
            patients.c.pk == rows[0].patient_pk)).scalar()
        return attrs

    def study_patient(self, study_uid: str) -> tuple[str, str] | None:
        """(PatientID, IssuerOfPatientID) a study is filed under; None for unknown studies."""
        query = (select(patients.c.patient_id, patients.c.issuer)
                 .join(studies, studies.c.patient_pk == patients.c.pk)
                 .where(studies.c.study_uid == study_uid))
        with self.engine.connect() as conn:
            row = conn.execute(query).first()
        return None if row is None else (str(row.patient_id), str(row.issuer))

    def metadata_texts(self, study_uid: str, series_uid: str | None = None,
                       sop_uid: str | None = None) -> Iterator[str]:
        """Pre-serialized instance metadata, one JSON object text per instance."""
        query = _scoped(select(instances.c.metadata_json), study_uid, series_uid, sop_uid)
        with self.engine.connect() as conn:
            texts = [t for (t,) in conn.execute(query)]
        if not texts:
            raise NotFound("no such study, series or instance")
        return iter(texts)

    def find_instance(self, sop_uid: str) -> KnownInstance | None:
        """Checksum, blob and SOP class of a stored SOP instance, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(_FIND_INSTANCE, {"b_sop_uid": sop_uid}).first()
        return None if row is None else KnownInstance(row.sha256, row.blob_key,
                                                      row.sop_class_uid)

    def referenced_blob_keys(self, keys: Sequence[str]) -> set[str]:
        with self.engine.connect() as conn:
            used = {k for (k,) in conn.execute(select(instances.c.blob_key)
                                               .where(instances.c.blob_key.in_(keys)))}
            used |= {k for (k,) in conn.execute(select(replaced_instances.c.blob_key)
                                                .where(replaced_instances.c.blob_key.in_(keys)))}
        return used

    def counts(self) -> dict[str, int]:
        with self.engine.connect() as conn:
            return {name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                    for name, table in (("patients", patients), ("studies", studies),
                                        ("series", series), ("instances", instances))}


def _scoped(query: Select[Any], study_uid: str, series_uid: str | None,
            sop_uid: str | None) -> Select[Any]:
    """Restrict an instance query to a study/series/instance, in display order."""
    query = (query.select_from(instances.join(series, series.c.pk == instances.c.series_pk)
                               .join(studies, studies.c.pk == series.c.study_pk))
             .where(studies.c.study_uid == study_uid))
    if series_uid is not None:
        query = query.where(series.c.series_uid == series_uid)
    if sop_uid is not None:
        query = query.where(instances.c.sop_uid == sop_uid)
    return query.order_by(series.c.series_number, series.c.pk, instances.c.instance_number,
                          instances.c.pk)


def attrs_of(row: Row[Any], column: str) -> dict[str, Any]:
    """Decode a stored JSON attrs column of a result row."""
    value = getattr(row, column, None)
    return json.loads(value) if value else {}

