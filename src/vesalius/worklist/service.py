"""Scheduled procedure steps (Modality Worklist, PS3.4 Annex K) and MPPS (PS3.4 Annex F).

Steps are created through the CLI/API now (and from FHIR ServiceRequests once the
record exists). Worklist queries use the same matcher→SQL translation as QIDO-RS
and C-FIND.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.uid import generate_uid
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, and_, select
from sqlalchemy.engine import Engine

from vesalius.archive.index.matching import condition
from vesalius.core.errors import Conflict, InvalidInput, NotFound
from vesalius.core.uids import require_uid
from vesalius.dicom.matching import (
    Matcher,
    Universal,
    fuzzy_key,
    normalize_date,
    normalize_name,
    normalize_time,
    parse_matcher,
)

metadata = MetaData()

scheduled_steps = Table(
    "scheduled_steps",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("sps_id", String(16), nullable=False, unique=True),
    Column("accession_number", String(16), nullable=False),
    Column("requested_procedure_id", String(16), nullable=False),
    Column("requested_procedure_description", String(64), nullable=False, default=""),
    Column("study_uid", String(64), nullable=False),
    Column("patient_id", String(64), nullable=False),
    Column("issuer", String(64), nullable=False, default=""),
    Column("patient_name", String(324), nullable=False),
    Column("patient_name_norm", String(324), nullable=False),
    Column("patient_name_fuzzy", String(330), nullable=False),
    Column("birth_date", String(8), nullable=False, default=""),
    Column("sex", String(16), nullable=False, default=""),
    Column("modality", String(16), nullable=False),
    Column("station_ae", String(16), nullable=False, default=""),
    Column("start_date", String(8), nullable=False),
    Column("start_time", String(16), nullable=False, default=""),
    Column("description", String(64), nullable=False, default=""),
    Column("referring_physician_name", String(324), nullable=False, default=""),
    Column("status", String(16), nullable=False, default="SCHEDULED"),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

performed_steps = Table(
    "performed_steps",
    metadata,
    Column("pk", Integer, primary_key=True),
    Column("sop_uid", String(64), nullable=False, unique=True),
    Column("status", String(16), nullable=False),
    Column("sps_id", String(16), nullable=True),
    Column("accession_number", String(16), nullable=True),
    Column("attrs", Text, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

MPPS_STATUSES = ("IN PROGRESS", "COMPLETED", "DISCONTINUED")

#: Worklist matching keys (PS3.4 Table K.6-1) → (column, kind).
MATCHING_KEYS: dict[str, tuple[str, str]] = {
    "PatientName": ("patient_name", "pn"),
    "PatientID": ("patient_id", "str"),
    "IssuerOfPatientID": ("issuer", "str"),
    "AccessionNumber": ("accession_number", "str"),
    "RequestedProcedureID": ("requested_procedure_id", "str"),
    "StudyInstanceUID": ("study_uid", "str"),
    "Modality": ("modality", "str"),
    "ScheduledStationAETitle": ("station_ae", "str"),
    "ScheduledProcedureStepStartDate": ("start_date", "str"),
    "ScheduledProcedureStepStartTime": ("start_time", "str"),
    "ScheduledProcedureStepID": ("sps_id", "str"),
    "ScheduledProcedureStepStatus": ("status", "str"),
}
_VR = {"PatientName": "PN", "StudyInstanceUID": "UI", "ScheduledProcedureStepStartDate": "DA",
       "ScheduledProcedureStepStartTime": "TM"}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class ScheduledStep:
    sps_id: str
    accession_number: str
    requested_procedure_id: str
    requested_procedure_description: str
    study_uid: str
    patient_id: str
    issuer: str
    patient_name: str
    birth_date: str
    sex: str
    modality: str
    station_ae: str
    start_date: str
    start_time: str
    description: str
    referring_physician_name: str
    status: str


def _limited(value: str, name: str, size: int) -> str:
    value = value.strip()
    if len(value) > size or "\\" in value:
        raise InvalidInput(f"{name} has at most {size} characters and no backslash")
    return value


class WorklistService:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        metadata.create_all(engine)

    def schedule(self, *, patient_id: str, patient_name: str, modality: str, start_date: str,
                 accession_number: str, start_time: str = "", issuer: str = "",
                 birth_date: str = "", sex: str = "", station_ae: str = "",
                 description: str = "", requested_procedure_description: str = "",
                 referring_physician_name: str = "", study_uid: str | None = None,
                 sps_id: str | None = None, requested_procedure_id: str | None = None,
                 ) -> ScheduledStep:
        """Create a scheduled procedure step; UIDs and IDs are generated when not given."""
        if not patient_id.strip() or not patient_name.strip():
            raise InvalidInput("patient id and name are required")
        if not modality.strip():
            raise InvalidInput("modality is required")
        start_date = normalize_date(start_date)
        if not (len(start_date) == 8 and start_date.isdigit()):
            raise InvalidInput("start date must be YYYYMMDD")
        start_time = normalize_time(start_time)
        if start_time and not start_time.replace(".", "").isdigit():
            raise InvalidInput("start time must be HHMM[SS]")
        accession = _limited(accession_number, "accession number", 16)
        if not accession:
            raise InvalidInput("accession number is required")
        study_uid = require_uid(study_uid) if study_uid else generate_uid()
        with self.engine.begin() as conn:
            next_pk = (conn.execute(select(scheduled_steps.c.pk)
                                    .order_by(scheduled_steps.c.pk.desc())).scalar() or 0) + 1
            step_id = _limited(sps_id or f"SPS{next_pk:08d}", "step id", 16)
            rp_id = _limited(requested_procedure_id or f"RP{next_pk:08d}",
                             "requested procedure id", 16)
            if conn.execute(select(scheduled_steps.c.pk)
                            .where(scheduled_steps.c.sps_id == step_id)).first():
                raise Conflict(f"scheduled procedure step {step_id} exists")
            values = dict(
                sps_id=step_id, accession_number=accession, requested_procedure_id=rp_id,
                requested_procedure_description=_limited(requested_procedure_description,
                                                         "procedure description", 64),
                study_uid=study_uid, patient_id=_limited(patient_id, "patient id", 64),
                issuer=_limited(issuer, "issuer", 64),
                patient_name=_limited(patient_name, "patient name", 324),
                patient_name_norm=normalize_name(patient_name.strip()),
                patient_name_fuzzy=fuzzy_key(patient_name), birth_date=birth_date.strip()[:8],
                sex=sex.strip()[:16], modality=_limited(modality, "modality", 16).upper(),
                station_ae=_limited(station_ae, "station AE title", 16),
                start_date=start_date, start_time=start_time,
                description=_limited(description, "description", 64),
                referring_physician_name=_limited(referring_physician_name,
                                                  "referring physician", 324),
                status="SCHEDULED", created_at=_now())
            conn.execute(scheduled_steps.insert().values(**values))
        return self.get(step_id)

    def get(self, sps_id: str) -> ScheduledStep:
        with self.engine.connect() as conn:
            row = conn.execute(select(scheduled_steps)
                               .where(scheduled_steps.c.sps_id == sps_id)).first()
        if row is None:
            raise NotFound(f"scheduled procedure step {sps_id} not found")
        return _step(row)

    def find(self, params: Sequence[tuple[str, str]], *, fuzzy: bool = False,
             include_done: bool = False, limit: int = 1000) -> list[ScheduledStep]:
        """Steps matching every (keyword, value); finished steps only when asked for."""
        query = select(scheduled_steps)
        asked_status = False
        for keyword, value in params:
            if keyword not in MATCHING_KEYS:
                continue
            column, kind = MATCHING_KEYS[keyword]
            matcher: Matcher = parse_matcher(value, _VR.get(keyword, "LO"), fuzzy=fuzzy)
            if keyword == "ScheduledProcedureStepStatus" and not isinstance(matcher, Universal):
                asked_status = True
            query = query.where(condition(scheduled_steps, column, kind, matcher))
        if not include_done and not asked_status:
            query = query.where(scheduled_steps.c.status.not_in(("COMPLETED", "DISCONTINUED")))
        query = query.order_by(scheduled_steps.c.start_date, scheduled_steps.c.start_time,
                               scheduled_steps.c.pk).limit(limit)
        with self.engine.connect() as conn:
            return [_step(r) for r in conn.execute(query)]

    # -- MPPS (PS3.4 Annex F) ------------------------------------------------------
    def mpps_create(self, sop_uid: str, status: str, attrs: dict[str, Any],
                    sps_id: str | None, accession_number: str | None) -> None:
        require_uid(sop_uid, "MPPS SOP Instance UID")
        if status != "IN PROGRESS":
            raise InvalidInput("a new performed procedure step must be IN PROGRESS")
        with self.engine.begin() as conn:
            if conn.execute(select(performed_steps.c.pk)
                            .where(performed_steps.c.sop_uid == sop_uid)).first():
                raise Conflict("performed procedure step already exists")
            conn.execute(performed_steps.insert().values(
                sop_uid=sop_uid, status=status, sps_id=sps_id, accession_number=accession_number,
                attrs=json.dumps(attrs), updated_at=_now()))
            self._set_step_status(conn, sps_id, accession_number, "IN PROGRESS")

    def mpps_update(self, sop_uid: str, status: str | None, attrs: dict[str, Any]) -> str:
        """Apply an N-SET; returns the resulting status. Finished steps are immutable."""
        if status is not None and status not in MPPS_STATUSES:
            raise InvalidInput(f"invalid performed procedure step status {status[:20]!r}")
        with self.engine.begin() as conn:
            row = conn.execute(select(performed_steps)
                               .where(performed_steps.c.sop_uid == sop_uid)).first()
            if row is None:
                raise NotFound("no such performed procedure step")
            if row.status != "IN PROGRESS":
                raise Conflict("performed procedure step is final and may no longer be updated")
            merged = {**json.loads(row.attrs), **attrs}
            new_status = status or row.status
            conn.execute(performed_steps.update().where(performed_steps.c.pk == row.pk)
                         .values(status=new_status, attrs=json.dumps(merged), updated_at=_now()))
            if new_status != "IN PROGRESS":
                self._set_step_status(conn, row.sps_id, row.accession_number, new_status)
            return str(new_status)

    def cancel(self, accession_number: str) -> int:
        """Discontinue the still-scheduled steps of an accession (the order was cancelled);
        returns how many. Steps already performed or completed stay as they are."""
        with self.engine.begin() as conn:
            result = conn.execute(scheduled_steps.update().where(and_(
                scheduled_steps.c.accession_number == accession_number,
                scheduled_steps.c.status == "SCHEDULED")).values(status="DISCONTINUED"))
        return int(result.rowcount or 0)

    def mpps_status(self, sop_uid: str) -> str:
        with self.engine.connect() as conn:
            status = conn.execute(select(performed_steps.c.status)
                                  .where(performed_steps.c.sop_uid == sop_uid)).scalar()
        if status is None:
            raise NotFound("no such performed procedure step")
        return str(status)

    @staticmethod
    def _set_step_status(conn: Any, sps_id: str | None, accession: str | None,
                         status: str) -> None:
        if sps_id:
            where = scheduled_steps.c.sps_id == sps_id
        elif accession:
            where = scheduled_steps.c.accession_number == accession
        else:
            return
        conn.execute(scheduled_steps.update().where(and_(
            where, scheduled_steps.c.status.not_in(("COMPLETED", "DISCONTINUED"))))
            .values(status=status))


def _step(row: Any) -> ScheduledStep:
    return ScheduledStep(
        row.sps_id, row.accession_number, row.requested_procedure_id,
        row.requested_procedure_description, row.study_uid, row.patient_id, row.issuer,
        row.patient_name, row.birth_date, row.sex, row.modality, row.station_ae,
        row.start_date, row.start_time, row.description, row.referring_physician_name,
        row.status)
