"""Storage Commitment Push Model, SCP side (PS3.4 Annex J).

The N-ACTION is acknowledged at once; each referenced instance is then checked
against the index *and* its blob's SHA-256, and the result goes back in an
N-EVENT-REPORT over a new association to the requesting AE (which must be in the
AE registry, so we know where it listens).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pynetdicom import AE, build_role, evt

from vesalius.archive.service import ArchiveService
from vesalius.config import Settings
from vesalius.dicom.status import (
    CLASS_INSTANCE_CONFLICT,
    NO_SUCH_OBJECT_INSTANCE,
    PROCESSING_FAILURE,
)
from vesalius.dimse.nodelay import set_nodelay
from vesalius.dimse.tls import client_context
from vesalius.dimse.uids import STORAGE_COMMITMENT_PUSH, STORAGE_COMMITMENT_PUSH_INSTANCE
from vesalius.network.registry import AERegistry

log = logging.getLogger(__name__)



def commitment_result(archive: ArchiveService, transaction_uid: str,
                      refs: list[tuple[str, str]]) -> tuple[int, Dataset]:
    """(event type 1 all committed | 2 some failed, event information)."""
    committed: list[Dataset] = []
    failed: list[Dataset] = []
    for sop_class, sop_uid in refs:
        item = Dataset()
        item.ReferencedSOPClassUID = sop_class
        item.ReferencedSOPInstanceUID = sop_uid
        try:
            verdict = archive.verify(sop_uid)
        except Exception:
            log.exception("commitment check failed")
            verdict = ("", False)
            reason: int | None = PROCESSING_FAILURE
        if verdict is None:
            reason = NO_SUCH_OBJECT_INSTANCE
        elif verdict[0] != sop_class:
            reason = CLASS_INSTANCE_CONFLICT
        elif not verdict[1]:
            reason = PROCESSING_FAILURE
        else:
            reason = None
        if reason is None:
            committed.append(item)
        else:
            item.FailureReason = reason
            failed.append(item)
    info = Dataset()
    info.TransactionUID = transaction_uid
    info.RetrieveAETitle = archive.settings.ae_title
    if committed:
        info.ReferencedSOPSequence = DicomSequence(committed)
    if failed:
        info.FailedSOPSequence = DicomSequence(failed)
    return (2 if failed else 1), info


def send_report(settings: Settings, registry: AERegistry, calling_ae: str,
                event_type: int, info: Dataset) -> bool:
    destination = registry.get(calling_ae)
    if destination is None:
        log.warning("storage commitment result not sent: AE %s is not registered", calling_ae)
        return False
    ae = AE(ae_title=settings.ae_title)
    ae.add_requested_context(STORAGE_COMMITMENT_PUSH)
    role = build_role(STORAGE_COMMITMENT_PUSH, scp_role=True)
    kwargs: dict[str, Any] = {}
    if destination.tls:
        kwargs["tls_args"] = (client_context(settings), None)
    assoc = ae.associate(destination.host, destination.port, ae_title=destination.title,
                         ext_neg=[role], evt_handlers=[(evt.EVT_CONN_OPEN, set_nodelay)],
                         **kwargs)
    if not assoc.is_established:
        log.warning("storage commitment result not sent: association to %s failed",
                    calling_ae)
        return False
    try:
        status, _ = assoc.send_n_event_report(info, event_type, STORAGE_COMMITMENT_PUSH,
                                              STORAGE_COMMITMENT_PUSH_INSTANCE)
        return bool(status) and int(status.Status) == 0
    finally:
        assoc.release()


def commit_in_background(settings: Settings, archive: ArchiveService, registry: AERegistry,
                         calling_ae: str, transaction_uid: str,
                         refs: list[tuple[str, str]]) -> threading.Thread:
    def work() -> None:
        try:
            event_type, info = commitment_result(archive, transaction_uid, refs)
            send_report(settings, registry, calling_ae, event_type, info)
        except Exception:
            log.exception("storage commitment processing failed")

    thread = threading.Thread(target=work, name="storage-commitment", daemon=True)
    thread.start()
    return thread
