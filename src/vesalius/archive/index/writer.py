"""Writes to the index: one transaction per stored instance, compensated deletes."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from vesalius.archive.index.records import IndexEntry, InsertOutcome
from vesalius.archive.index.schema import (
    archive_log,
    extra_attributes,
    instances,
    patients,
    replaced_instances,
    series,
    studies,
)
from vesalius.core.errors import Conflict, NotFound
from vesalius.database.write_lock import WriteLock
from vesalius.dicom.json_model import dumps
from vesalius.dicom.matching import fuzzy_key, normalize_name

# Statements of the per-instance hot path, built once: constructing Core statements
# costs several times more than executing a cached one.
_SELECT_INSTANCE = select(instances.c.pk, instances.c.blob_key, instances.c.sha256,
                          instances.c.size, instances.c.series_pk).where(
    instances.c.sop_uid == bindparam("b_sop_uid"))
_SELECT_PATIENT = select(patients.c.pk).where(and_(
    patients.c.patient_id == bindparam("b_patient_id"),
    patients.c.issuer == bindparam("b_issuer")))
_SELECT_STUDY = select(studies.c.pk, studies.c.patient_pk, studies.c.modalities,
                       studies.c.sop_classes).where(studies.c.study_uid == bindparam("b_study"))
_SELECT_STUDY_LOCKED = _SELECT_STUDY.with_for_update()
_SELECT_SERIES = select(series.c.pk, series.c.study_pk).where(
    series.c.series_uid == bindparam("b_series"))
_INSERT_INSTANCE = insert(instances).returning(instances.c.pk)
_BUMP_SERIES = update(series).where(series.c.pk == bindparam("b_pk")).values(
    num_instances=series.c.num_instances + 1)
_BUMP_STUDY = update(studies).where(studies.c.pk == bindparam("b_pk")).values(
    num_instances=studies.c.num_instances + 1,
    num_series=studies.c.num_series + bindparam("b_new_series"),
    modalities=bindparam("b_modalities"), sop_classes=bindparam("b_sop_classes"),
    updated_at=bindparam("b_now"))


class InstanceExists(Conflict):
    """The SOP Instance UID was indexed meanwhile (a concurrent store won the race)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _multi_add(current: str, value: str) -> str:
    """Add ``value`` to a ``\\A\\B\\`` set string (used for ModalitiesInStudy)."""
    if not value or f"\\{value}\\" in current:
        return current
    items = sorted({v for v in current.strip("\\").split("\\") if v} | {value})
    return "\\" + "\\".join(items) + "\\"


class IndexWriter:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._dialect = engine.dialect.name
        self._write_lock = WriteLock(engine)

    def _insert_ignore(self, conn: Connection, table: Any, values: dict[str, Any]) -> bool:
        """INSERT … ON CONFLICT DO NOTHING; True when a row was inserted."""
        stmt: Any
        if self._dialect == "postgresql":
            stmt = postgresql.insert(table).values(**values).on_conflict_do_nothing()
        elif self._dialect == "sqlite":
            stmt = sqlite.insert(table).values(**values).on_conflict_do_nothing()
        else:  # pragma: no cover - other backends are not supported
            stmt = insert(table).values(**values)
        # rowcount is unreliable here (psycopg reports -1); RETURNING is not.
        return conn.execute(stmt.returning(table.c.pk)).first() is not None

    def insert(self, entry: IndexEntry, *, replace: bool = False) -> InsertOutcome:
        """Index one instance; with ``replace`` an existing row is superseded.

        Raises :class:`Conflict` when the study is already filed under another
        patient: identity changes go through reconciliation, never by accident.
        """
        with self._write_lock(), self.engine.begin() as conn:
            p, s, se, i = entry.patient, entry.study, entry.series, entry.instance
            replaced_key: str | None = None
            existing = conn.execute(_SELECT_INSTANCE, {"b_sop_uid": i.sop_uid}).first()
            if existing is not None:
                if not replace:
                    raise InstanceExists("instance already stored")
                conn.execute(insert(replaced_instances).values(
                    sop_uid=i.sop_uid, blob_key=existing.blob_key, sha256=existing.sha256,
                    size=existing.size, replaced_at=_now()))
                conn.execute(insert(archive_log).values(
                    at=_now(), action="replace", level="IMAGE", uid=i.sop_uid,
                    detail=f"previous sha256 {existing.sha256}"))
                self._remove_instance_rows(conn, [existing.pk])
                replaced_key = existing.blob_key

            # Look before inserting: most instances join an existing study and series,
            # so the common path is three indexed SELECTs, not three upserts.
            patient_key = {"b_patient_id": p.patient_id, "b_issuer": p.issuer}
            patient_pk = conn.execute(_SELECT_PATIENT, patient_key).scalar()
            new_patient = False
            if patient_pk is None:
                new_patient = self._insert_ignore(conn, patients, {
                    "patient_id": p.patient_id, "issuer": p.issuer,
                    "patient_name": p.patient_name,
                    "patient_name_norm": normalize_name(p.patient_name),
                    "patient_name_fuzzy": fuzzy_key(p.patient_name),
                    "birth_date": p.birth_date, "sex": p.sex, "attrs": p.attrs,
                })
                patient_pk = conn.execute(_SELECT_PATIENT, patient_key).scalar_one()

            study_query = (_SELECT_STUDY_LOCKED if self._dialect == "postgresql"
                           else _SELECT_STUDY)
            study_key = {"b_study": s.study_uid}
            study_row = conn.execute(study_query, study_key).first()
            new_study = False
            if study_row is None:
                new_study = self._insert_ignore(conn, studies, {
                    "patient_pk": patient_pk, "study_uid": s.study_uid,
                    "study_date": s.study_date, "study_time": s.study_time,
                    "accession_number": s.accession_number,
                    "referring_physician_name": s.referring_physician_name,
                    "referring_physician_name_norm": normalize_name(s.referring_physician_name),
                    "referring_physician_name_fuzzy": fuzzy_key(s.referring_physician_name),
                    "study_id": s.study_id, "study_description": s.study_description,
                    "attrs": s.attrs, "updated_at": _now(),
                })
                study_row = conn.execute(study_query, study_key).one()
            metadata_json = i.metadata_json
            if study_row.patient_pk != patient_pk:
                if not self._was_refiled(conn, s.study_uid):
                    raise Conflict(
                        "study is already filed under a different patient identity "
                        "(PatientID/IssuerOfPatientID); reconcile the patient first")
                # A late instance of a reconciled study still carries the old identity: it
                # joins the study under the corrected one (its file is kept as received).
                if new_patient:
                    conn.execute(delete(patients).where(patients.c.pk == patient_pk))
                    new_patient = False
                patient_pk = study_row.patient_pk
                corrected = conn.execute(select(patients.c.attrs)
                                         .where(patients.c.pk == patient_pk)).scalar_one()
                metadata = {**json.loads(metadata_json), **json.loads(corrected)}
                metadata_json = dumps(dict(sorted(metadata.items())))

            series_key = {"b_series": se.series_uid}
            series_row = conn.execute(_SELECT_SERIES, series_key).first()
            new_series = False
            if series_row is None:
                new_series = self._insert_ignore(conn, series, {
                    "study_pk": study_row.pk, "series_uid": se.series_uid,
                    "modality": se.modality, "series_number": se.series_number,
                    "series_description": se.series_description,
                    "pps_start_date": se.pps_start_date, "pps_start_time": se.pps_start_time,
                    "body_part": se.body_part, "attrs": se.attrs,
                })
                series_row = conn.execute(_SELECT_SERIES, series_key).one()
            if series_row.study_pk != study_row.pk:
                raise Conflict("series already belongs to a different study")

            instance_pk = conn.execute(_INSERT_INSTANCE, dict(
                series_pk=series_row.pk, sop_uid=i.sop_uid, sop_class_uid=i.sop_class_uid,
                instance_number=i.instance_number, transfer_syntax_uid=i.transfer_syntax_uid,
                rows=i.rows, columns=i.columns, bits_allocated=i.bits_allocated,
                number_of_frames=i.number_of_frames, blob_key=i.blob_key, sha256=i.sha256,
                size=i.size, metadata_json=metadata_json, pixel_layout=i.pixel_layout,
                stored_at=_now(),
            )).scalar_one()

            conn.execute(_BUMP_SERIES, {"b_pk": series_row.pk})
            conn.execute(_BUMP_STUDY, {
                "b_pk": study_row.pk, "b_new_series": 1 if new_series else 0,
                "b_modalities": _multi_add(study_row.modalities, se.modality),
                "b_sop_classes": _multi_add(study_row.sop_classes, i.sop_class_uid),
                "b_now": _now(),
            })

            owners = {"PATIENT": patient_pk, "STUDY": study_row.pk,
                      "SERIES": series_row.pk, "IMAGE": instance_pk}
            rows = [
                {"level": level, "owner_pk": owners[level], "tag": tag, "value": value[:256]}
                for level, pairs in entry.extra.items() for tag, value in pairs
                if (level == "IMAGE" or (level == "SERIES" and new_series)
                    or (level == "STUDY" and new_study) or (level == "PATIENT" and new_patient))
            ]
            if rows:
                conn.execute(insert(extra_attributes), rows)
            return InsertOutcome(new_patient, new_study, new_series, replaced_key)

    @staticmethod
    def _was_refiled(conn: Connection, study_uid: str) -> bool:
        """Whether a patient merge re-filed this study (``archive.reconcile``)."""
        return conn.execute(select(archive_log.c.pk).where(
            archive_log.c.action == "refile", archive_log.c.level == "STUDY",
            archive_log.c.uid == study_uid).limit(1)).first() is not None

    def _remove_instance_rows(self, conn: Connection, instance_pks: Sequence[int]) -> None:
        """Delete instance rows and bring counters and derived sets up to date."""
        if not instance_pks:
            return
        affected_series = {r.series_pk for r in conn.execute(
            select(instances.c.series_pk).where(instances.c.pk.in_(instance_pks)))}
        conn.execute(delete(extra_attributes).where(and_(
            extra_attributes.c.level == "IMAGE", extra_attributes.c.owner_pk.in_(instance_pks))))
        conn.execute(delete(instances).where(instances.c.pk.in_(instance_pks)))
        affected_studies: set[int] = set()
        for series_pk in affected_series:
            remaining = conn.execute(select(func.count()).select_from(instances)
                                     .where(instances.c.series_pk == series_pk)).scalar_one()
            study_pk = conn.execute(select(series.c.study_pk)
                                    .where(series.c.pk == series_pk)).scalar_one()
            affected_studies.add(study_pk)
            if remaining:
                conn.execute(update(series).where(series.c.pk == series_pk)
                             .values(num_instances=remaining))
            else:
                conn.execute(delete(extra_attributes).where(and_(
                    extra_attributes.c.level == "SERIES",
                    extra_attributes.c.owner_pk == series_pk)))
                conn.execute(delete(series).where(series.c.pk == series_pk))
        for study_pk in affected_studies:
            self._refresh_study(conn, study_pk)

    def _refresh_study(self, conn: Connection, study_pk: int) -> None:
        series_rows = conn.execute(select(series.c.pk, series.c.modality)
                                   .where(series.c.study_pk == study_pk)).all()
        patient_pk = conn.execute(select(studies.c.patient_pk)
                                  .where(studies.c.pk == study_pk)).scalar_one()
        if not series_rows:
            conn.execute(delete(extra_attributes).where(and_(
                extra_attributes.c.level == "STUDY", extra_attributes.c.owner_pk == study_pk)))
            conn.execute(delete(studies).where(studies.c.pk == study_pk))
            others = conn.execute(select(func.count()).select_from(studies)
                                  .where(studies.c.patient_pk == patient_pk)).scalar_one()
            if not others:
                conn.execute(delete(extra_attributes).where(and_(
                    extra_attributes.c.level == "PATIENT",
                    extra_attributes.c.owner_pk == patient_pk)))
                conn.execute(delete(patients).where(patients.c.pk == patient_pk))
            return
        series_pks = [r.pk for r in series_rows]
        modalities = ""
        for row in series_rows:
            modalities = _multi_add(modalities, row.modality)
        sop_classes = ""
        for (sop_class,) in conn.execute(select(instances.c.sop_class_uid).distinct()
                                         .where(instances.c.series_pk.in_(series_pks))):
            sop_classes = _multi_add(sop_classes, sop_class)
        count = conn.execute(select(func.count()).select_from(instances)
                             .where(instances.c.series_pk.in_(series_pks))).scalar_one()
        conn.execute(update(studies).where(studies.c.pk == study_pk).values(
            num_series=len(series_rows), num_instances=count, modalities=modalities,
            sop_classes=sop_classes, updated_at=_now()))

    def delete(self, study_uid: str, series_uid: str | None = None,
               sop_uid: str | None = None, *, reason: str = "") -> list[str]:
        """Remove a study, series or instance from the index; returns blob keys now unused.

        The caller deletes those blobs after this transaction commits, so a crash
        in between leaves only unreferenced blobs, which the sweep collects.
        """
        with self._write_lock(), self.engine.begin() as conn:
            query = (select(instances.c.pk, instances.c.blob_key, instances.c.sop_uid)
                     .join(series, series.c.pk == instances.c.series_pk)
                     .join(studies, studies.c.pk == series.c.study_pk)
                     .where(studies.c.study_uid == study_uid))
            level, uid = "STUDY", study_uid
            if series_uid is not None:
                query = query.where(series.c.series_uid == series_uid)
                level, uid = "SERIES", series_uid
            if sop_uid is not None:
                query = query.where(instances.c.sop_uid == sop_uid)
                level, uid = "IMAGE", sop_uid
            rows = conn.execute(query).all()
            if not rows:
                raise NotFound(f"{level.lower()} not found")
            self._remove_instance_rows(conn, [r.pk for r in rows])
            conn.execute(insert(archive_log).values(
                at=_now(), action="delete", level=level, uid=uid,
                detail=f"{len(rows)} instance(s); {reason}"[:2000]))
            sop_uids = [r.sop_uid for r in rows]
            keys = {r.blob_key for r in rows}
            keys |= {k for (k,) in conn.execute(select(replaced_instances.c.blob_key)
                                                .where(replaced_instances.c.sop_uid.in_(sop_uids)))}
            conn.execute(delete(replaced_instances)
                         .where(replaced_instances.c.sop_uid.in_(sop_uids)))
            still_used = {k for (k,) in conn.execute(
                select(instances.c.blob_key).where(instances.c.blob_key.in_(keys)))}
            still_used |= {k for (k,) in conn.execute(
                select(replaced_instances.c.blob_key).where(replaced_instances.c.blob_key.in_(keys)))}
            return sorted(keys - still_used)
