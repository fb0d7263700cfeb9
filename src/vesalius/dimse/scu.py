"""Vesalius as a DIMSE client: echo, send (C-STORE) and retrieve priors (C-FIND + C-GET/C-MOVE)."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts, build_context, build_role, evt
from pynetdicom.association import Association

from vesalius.archive.service import ArchiveService
from vesalius.config import Settings
from vesalius.core.errors import InvalidInput, NotFound, VesaliusError
from vesalius.dicom.attributes import Level
from vesalius.dimse import uids
from vesalius.dimse.nodelay import set_nodelay
from vesalius.dimse.server import configure_pynetdicom
from vesalius.dimse.tls import client_context
from vesalius.dimse.transfer import dataset_for_context, storage_contexts
from vesalius.network.registry import AERegistry, RemoteAE

log = logging.getLogger(__name__)


class NetworkError(VesaliusError):
    """A remote AE could not be reached or refused the association."""

    code = "network"


@dataclass
class TransferReport:
    completed: int = 0
    failed: int = 0
    warnings: int = 0
    failures: list[str] = field(default_factory=list)


def _remote(registry: AERegistry, title: str) -> RemoteAE:
    remote = registry.get(title)
    if remote is None:
        raise NotFound(f"AE {title} is not registered (vesalius ae add …)")
    return remote


def _associate(settings: Settings, remote: RemoteAE, contexts: list[Any],
               ext_neg: list[Any] | None = None,
               handlers: list[Any] | None = None) -> Association:
    configure_pynetdicom()
    ae = AE(ae_title=settings.ae_title)
    ae.acse_timeout = 30
    ae.dimse_timeout = settings.dicom_timeout
    ae.network_timeout = settings.dicom_timeout
    ae.requested_contexts = contexts
    kwargs: dict[str, Any] = {}
    if remote.tls:
        kwargs["tls_args"] = (client_context(settings), None)
    assoc = ae.associate(remote.host, remote.port, ae_title=remote.title, ext_neg=ext_neg,
                         max_pdu=settings.dicom_max_pdu,
                         evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay), *(handlers or [])],
                         **kwargs)
    if not assoc.is_established:
        raise NetworkError(f"association with {remote.title} at {remote.host}:{remote.port} "
                           "was rejected or could not be made")
    return assoc


def echo(settings: Settings, registry: AERegistry, title: str) -> int:
    """C-ECHO; returns the status (0 is success)."""
    assoc = _associate(settings, _remote(registry, title), [build_context(uids.VERIFICATION)])
    try:
        status = assoc.send_c_echo()
        if not status:
            raise NetworkError("no C-ECHO response")
        return int(status.Status)
    finally:
        assoc.release()


def send(settings: Settings, registry: AERegistry, archive: ArchiveService, level: str,
         uid: str, title: str) -> TransferReport:
    """C-STORE a study, series or instance; falls back to transcoding when needed."""
    level = level.lower()
    if level == "study":
        found = archive.locate(Level.STUDY, [("StudyInstanceUID", uid)])
    elif level == "series":
        found = archive.locate(Level.SERIES, [("SeriesInstanceUID", uid)])
    elif level == "instance":
        found = archive.locate(Level.IMAGE, [("SOPInstanceUID", uid)])
    else:
        raise InvalidInput("level must be study, series or instance")
    if not found:
        raise NotFound(f"no such {level}")
    contexts = storage_contexts(found)
    if len(contexts) > 128:
        raise InvalidInput("too many SOP classes for one association (max 128 contexts)")
    assoc = _associate(settings, _remote(registry, title), contexts)
    report = TransferReport()
    try:
        for instance in found:
            try:
                ds = dataset_for_context(archive, instance, assoc)
                status = assoc.send_c_store(ds)
            except VesaliusError as error:
                report.failed += 1
                report.failures.append(f"{instance.sop_uid}: {error.message}")
                continue
            except (ValueError, RuntimeError) as error:
                report.failed += 1
                report.failures.append(f"{instance.sop_uid}: {error}")
                continue
            code = int(status.Status) if status else 0xFFFF
            if code == 0:
                report.completed += 1
            elif code in (0xB000, 0xB006, 0xB007):
                report.warnings += 1
            else:
                report.failed += 1
                report.failures.append(f"{instance.sop_uid}: status 0x{code:04X}")
    finally:
        assoc.release()
    return report


def find_studies(settings: Settings, registry: AERegistry, title: str,
                 params: dict[str, str]) -> list[Dataset]:
    """Study-root C-FIND at STUDY level."""
    assoc = _associate(settings, _remote(registry, title), [build_context(uids.STUDY_ROOT_FIND)])
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    for keyword in ("PatientID", "StudyInstanceUID", "StudyDate", "ModalitiesInStudy",
                    "PatientName", "AccessionNumber", "StudyDescription",
                    "SOPClassesInStudy"):
        setattr(query, keyword, params.get(keyword, ""))
    results: list[Dataset] = []
    try:
        for status, identifier in assoc.send_c_find(query, uids.STUDY_ROOT_FIND):
            if status and int(status.Status) in (0xFF00, 0xFF01) and identifier is not None:
                results.append(identifier)
            elif status and int(status.Status) not in (0x0000, 0xFF00, 0xFF01):
                raise NetworkError(f"C-FIND failed with status 0x{int(status.Status):04X}")
    finally:
        assoc.release()
    return results


def retrieve(settings: Settings, registry: AERegistry, archive: ArchiveService, title: str,
             params: dict[str, str], *, method: str = "get",
             progress: Callable[[str], None] | None = None) -> TransferReport:
    """Pull matching studies (e.g. a patient's priors) into the archive."""
    if not params:
        raise InvalidInput("give at least a patient ID or a study UID to retrieve")
    studies = find_studies(settings, registry, title, params)
    report = TransferReport()
    for study in studies:
        study_uid = str(study.get("StudyInstanceUID", ""))
        if not study_uid:
            continue
        if progress:
            progress(study_uid)
        if method == "get":
            part = _retrieve_get(settings, registry, archive, title, study_uid,
                                 _sop_classes(study))
        else:
            part = _retrieve_move(settings, registry, archive, title, study_uid)
        report.completed += part.completed
        report.failed += part.failed
        report.warnings += part.warnings
        report.failures += part.failures
    return report


def _study_identifier(study_uid: str) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = "STUDY"
    ds.StudyInstanceUID = study_uid
    return ds


def _count(report: TransferReport, status: Dataset | None) -> None:
    if status is None or "Status" not in status:
        report.failures.append("no response from peer")
        return
    code = int(status.Status)
    if code in (0xFF00, 0xFF01):
        return
    report.failed += int(status.get("NumberOfFailedSuboperations", 0) or 0)
    report.warnings += int(status.get("NumberOfWarningSuboperations", 0) or 0)
    if code not in (0x0000, 0xB000):
        report.failures.append(f"retrieve ended with status 0x{code:04X}")


def _sop_classes(study: Dataset) -> list[str]:
    """SOP Classes in Study (0008,0062) when the peer returned it (an optional key)."""
    value = study.get("SOPClassesInStudy")
    if not value:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return sorted({str(uid).strip() for uid in items if str(uid).strip()})


def _get_storage_classes(known: list[str]) -> list[str]:
    """Storage SOP classes to offer as C-GET SCP: the study's own when the peer told us,
    else pynetdicom's 120 most common ones (images, SR, KOS, PR, ECG) — never an
    arbitrary cut of the full list, which would leave out SR and waveforms."""
    if known and len(known) <= 127:
        return known
    return [str(cx.abstract_syntax) for cx in StoragePresentationContexts][:127]


def _retrieve_get(settings: Settings, registry: AERegistry, archive: ArchiveService,
                  title: str, study_uid: str, sop_classes: list[str] | None = None
                  ) -> TransferReport:
    report = TransferReport()

    def on_store(event: Any) -> int:
        with tempfile.TemporaryDirectory(prefix="vesalius-get-") as tmp:
            path = Path(tmp) / "instance.dcm"
            event.dataset.file_meta = event.file_meta
            event.dataset.save_as(path, enforce_file_format=True)
            try:
                archive.store_file(path)
                report.completed += 1
                return 0x0000
            except VesaliusError as error:
                report.failed += 1
                report.failures.append(error.message)
                return 0xA900

    classes = _get_storage_classes(sop_classes or [])
    contexts = [build_context(uids.STUDY_ROOT_GET)] + [
        build_context(c, ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]) for c in classes]
    roles = [build_role(c, scp_role=True) for c in classes]
    assoc = _associate(settings, _remote(registry, title), contexts[:128], ext_neg=roles,
                       handlers=[(evt.EVT_C_STORE, on_store)])
    try:
        for status, _ in assoc.send_c_get(_study_identifier(study_uid), uids.STUDY_ROOT_GET):
            _count(report, status)
    finally:
        assoc.release()
    return report


def _retrieve_move(settings: Settings, registry: AERegistry, archive: ArchiveService,
                   title: str, study_uid: str) -> TransferReport:
    """C-MOVE to our own AE title: the running ``vesalius serve`` receives the images."""
    report = TransferReport()
    assoc = _associate(settings, _remote(registry, title), [build_context(uids.STUDY_ROOT_MOVE)])
    try:
        for status, _ in assoc.send_c_move(_study_identifier(study_uid), settings.ae_title,
                                           uids.STUDY_ROOT_MOVE):
            _count(report, status)
            if status and int(status.Status) in (0x0000, 0xB000):
                report.completed += int(status.get("NumberOfCompletedSuboperations", 0) or 0)
    finally:
        assoc.release()
    return report
