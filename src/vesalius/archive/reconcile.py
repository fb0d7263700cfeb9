"""Re-filing studies under another patient identity (patient reconciliation in the index).

When two Patients turn out to be one person, the studies filed under the wrong identity are
moved to the right one: the study rows point at the target patient row (created, or updated
with the target's demographics), and every instance's stored DICOM JSON carries the target's
PatientID, IssuerOfPatientID, PatientName, PatientBirthDate and PatientSex. QIDO-RS, C-FIND
and WADO-RS metadata therefore show the corrected identity; the stored blobs stay exactly as
received (nothing is lost, and the original identity remains in the instance bytes).

The caller passes the transaction (a :class:`Connection` on the writer): the imaging link runs
this inside the record's unit of work, so the record merge and the re-filing commit together.
Instance retrieval caches hold parsed blobs only, which this does not change.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from vesalius.archive.index.schema import (
    archive_log,
    extra_attributes,
    instances,
    patients,
    series,
    studies,
)
from vesalius.dicom.json_model import JsonDict, dumps, make_element
from vesalius.dicom.matching import fuzzy_key, normalize_date, normalize_name

_PATIENT_NAME, _PATIENT_ID, _ISSUER = "00100010", "00100020", "00100021"
_BIRTH_DATE, _SEX = "00100030", "00100040"


@dataclass(frozen=True)
class PatientIdentity:
    """A DICOM patient identity and the demographics filed with it."""

    patient_id: str
    issuer: str
    patient_name: str
    birth_date: str
    sex: str

    def elements(self) -> JsonDict:
        return {
            _PATIENT_NAME: make_element("PN", [self.patient_name]),
            _PATIENT_ID: make_element("LO", [self.patient_id]),
            _ISSUER: make_element("LO", [self.issuer]),
            _BIRTH_DATE: make_element("DA", [self.birth_date]),
            _SEX: make_element("CS", [self.sex]),
        }


def studies_filed_under(conn: Connection, patient_id: str, issuer: str) -> list[str]:
    """StudyInstanceUIDs of the studies filed under exactly this PatientID and issuer."""
    return list(conn.execute(
        select(studies.c.study_uid).join(patients, patients.c.pk == studies.c.patient_pk)
        .where(patients.c.patient_id == patient_id, patients.c.issuer == issuer)
        .order_by(studies.c.study_uid)).scalars())


def refile_studies(conn: Connection, study_uids: Sequence[str],
                   identity: PatientIdentity) -> list[str]:
    """File the given studies under ``identity``; returns the UIDs of those that exist."""
    rows = conn.execute(select(studies.c.pk, studies.c.study_uid, studies.c.patient_pk)
                        .where(studies.c.study_uid.in_(list(study_uids)))).all()
    if not rows:
        return []
    target_pk = _target_patient(conn, identity)
    elements = identity.elements()
    old_patients = {r.patient_pk for r in rows} - {target_pk}
    now = dt.datetime.now(dt.UTC)
    for row in rows:
        conn.execute(update(studies).where(studies.c.pk == row.pk)
                     .values(patient_pk=target_pk, updated_at=now))
        members = conn.execute(
            select(instances.c.pk, instances.c.metadata_json)
            .join(series, series.c.pk == instances.c.series_pk)
            .where(series.c.study_pk == row.pk)).all()
        for member in members:
            metadata = {**json.loads(member.metadata_json), **elements}
            conn.execute(update(instances).where(instances.c.pk == member.pk)
                         .values(metadata_json=dumps(dict(sorted(metadata.items())))))
        conn.execute(insert(archive_log).values(
            at=now, action="refile", level="STUDY", uid=row.study_uid,
            detail="filed under a reconciled patient identity"))
    for patient_pk in old_patients:
        remaining = conn.execute(select(func.count()).select_from(studies)
                                 .where(studies.c.patient_pk == patient_pk)).scalar_one()
        if not remaining:
            conn.execute(delete(extra_attributes).where(and_(
                extra_attributes.c.level == "PATIENT", extra_attributes.c.owner_pk == patient_pk)))
            conn.execute(delete(patients).where(patients.c.pk == patient_pk))
    return sorted(r.study_uid for r in rows)


def _target_patient(conn: Connection, identity: PatientIdentity) -> int:
    """The patient row of ``identity``, created or brought up to its demographics."""
    row = conn.execute(select(patients.c.pk, patients.c.attrs).where(
        patients.c.patient_id == identity.patient_id,
        patients.c.issuer == identity.issuer)).first()
    attrs: dict[str, Any] = json.loads(row.attrs) if row is not None else {}
    attrs.update(identity.elements())
    values = {
        "patient_name": identity.patient_name,
        "patient_name_norm": normalize_name(identity.patient_name),
        "patient_name_fuzzy": fuzzy_key(identity.patient_name),
        "birth_date": normalize_date(identity.birth_date),
        "sex": identity.sex,
        "attrs": dumps(dict(sorted(attrs.items()))),
    }
    if row is not None:
        conn.execute(update(patients).where(patients.c.pk == row.pk).values(**values))
        return int(row.pk)
    return int(conn.execute(insert(patients).values(
        patient_id=identity.patient_id, issuer=identity.issuer, **values)
        .returning(patients.c.pk)).scalar_one())
