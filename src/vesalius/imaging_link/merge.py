"""Patient reconciliation: merge a duplicate (source) Patient into the right one (target).

The record (https://hl7.org/fhir/R4/patient.html#links): every resource in the source's
Patient compartment (https://hl7.org/fhir/R4/compartmentdefinition-patient.html) that
references ``Patient/<source>`` is re-pointed to the target as a new version (history keeps
the old one; version-specific references stay as written); the source becomes
``active: false`` with ``link`` ``replaced-by`` the target; the target gets a ``replaces``
link and the source's identifiers as ``use: old``.

The image index: every study filed under one of the source's DICOM identities, and every
study whose ImagingStudy named the source, is re-filed under the target's PatientID, issuer,
name, birth date and sex (:mod:`vesalius.archive.reconcile`). QIDO-RS, C-FIND and WADO-RS
metadata then show the corrected identity; the stored instances are kept byte for byte as
received, so nothing is lost. A target with no identifier DICOM can carry gets one in this
installation's space.

Record and index live in one database, so all of it is one transaction (the record's unit
of work): a merge happens completely or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vesalius.archive.reconcile import PatientIdentity, refile_studies, studies_filed_under
from vesalius.archive.service import ArchiveService
from vesalius.core.errors import InvalidInput, NotSupported
from vesalius.dicom.patient_identity import LOCAL_SYSTEM, issuer_of
from vesalius.imaging_link.mapping import DICOM_UID_SYSTEM, Resource
from vesalius.imaging_link.patients import (
    STUDY_PATIENT_SYSTEM,
    dicom_date,
    dicom_identity,
    dicom_sex,
    person_name,
    with_local_identifier,
)
from vesalius.record.service import RecordService
from vesalius.record.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class MergeResult:
    source: str
    target: str
    #: ``Type/id`` of every resource re-pointed from the source to the target.
    repointed: list[str]
    #: StudyInstanceUIDs re-filed under the target's identity.
    studies: list[str]
    #: The target Patient as the merge left it.
    patient: Resource
    #: True when nothing was written (a preview).
    preview: bool = False


class _RollBack(Exception):
    """Ends a preview's unit of work without committing it."""

    def __init__(self, result: MergeResult) -> None:
        super().__init__("merge preview")
        self.result = result


def _repoint(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {k: (new if k == "reference" and v == old else _repoint(v, old, new))
                for k, v in node.items()}
    if isinstance(node, list):
        return [_repoint(item, old, new) for item in node]
    return node


def _links(patient: Resource, other: str, kind: str) -> list[Resource]:
    kept = [link for link in patient.get("link") or []
            if (link.get("other") or {}).get("reference") != f"Patient/{other}"]
    return [*kept, {"other": {"reference": f"Patient/{other}"}, "type": kind}]


def _compartment(work: UnitOfWork, patient_id: str) -> list[tuple[str, str]]:
    """(type, id) of every live resource in the Patient's compartment, but the Patient."""
    found: list[tuple[str, str]] = []
    for resource_type, params in sorted(work.defs.patient_compartment().items()):
        for param in params:
            for id in work.match(resource_type, [(param, f"Patient/{patient_id}")]):
                if (resource_type, id) not in found and (resource_type, id) != ("Patient",
                                                                                 patient_id):
                    found.append((resource_type, id))
    return found


def _study_uid(imaging_study: Resource) -> str | None:
    for identifier in imaging_study.get("identifier") or []:
        value = str(identifier.get("value", ""))
        if identifier.get("system") == DICOM_UID_SYSTEM and value.startswith("urn:oid:"):
            return value[len("urn:oid:"):]
    return None


def merge(record: RecordService, archive: ArchiveService, source_id: str,
          target_id: str, *, preview: bool = False) -> MergeResult:
    """Merge the source Patient into the target. ``preview`` runs exactly the same unit of
    work and rolls it back, so a preview reports what a merge would change, and nothing else."""
    if source_id == target_id:
        raise InvalidInput("a Patient cannot be merged into itself")
    if str(record.writer.url) != str(archive.writer.engine.url):
        raise NotSupported("merging needs the record and the image index in one database")
    try:
        return _merge(record, source_id, target_id, preview)
    except _RollBack as rolled_back:
        return rolled_back.result


def _merge(record: RecordService, source_id: str, target_id: str, preview: bool
           ) -> MergeResult:
    with record.unit() as work:
        source = work.read("Patient", source_id).resource or {}
        target = work.read("Patient", target_id).resource or {}
        if any(link.get("type") == "replaced-by" for link in source.get("link") or []):
            raise InvalidInput(f"Patient/{source_id} was already merged")
        repointed: list[str] = []
        study_uids: set[str] = set()
        for resource_type, id in _compartment(work, source_id):
            if (resource_type, id) == ("Patient", target_id):
                continue
            current = work.read(resource_type, id).resource or {}
            moved = _repoint(current, f"Patient/{source_id}", f"Patient/{target_id}")
            if moved != current:
                work.update(resource_type, id, moved)
                repointed.append(f"{resource_type}/{id}")
                if resource_type == "ImagingStudy" and _study_uid(current):
                    study_uids.add(str(_study_uid(current)))

        known = {(i.get("system"), i.get("value")) for i in target.get("identifier") or []}
        old = [{**i, "use": "old"} for i in source.get("identifier") or []
               if (i.get("system"), i.get("value")) not in known]
        target = {**target, "identifier": [*(target.get("identifier") or []), *old],
                  "link": _links(target, source_id, "replaces")}
        if dicom_identity(target) is None:
            target = with_local_identifier(target)
        work.update("Patient", target_id, target)
        work.update("Patient", source_id, {**source, "active": False,
                                           "link": _links(source, target_id, "replaced-by")})

        for identifier in source.get("identifier") or []:
            system = identifier.get("system", LOCAL_SYSTEM)
            if identifier.get("value") and system != STUDY_PATIENT_SYSTEM:
                study_uids.update(studies_filed_under(work.conn, str(identifier["value"]),
                                                      issuer_of(system)))
        patient_id, issuer = dicom_identity(target) or (target_id, "")
        identity = PatientIdentity(patient_id, issuer, person_name(target),
                                   dicom_date(target.get("birthDate")), dicom_sex(target))
        refiled = refile_studies(work.conn, sorted(study_uids), identity)
        result = MergeResult(source_id, target_id, repointed, refiled,
                             work.read("Patient", target_id).resource or {}, preview)
        if preview:
            raise _RollBack(result)
    return result
