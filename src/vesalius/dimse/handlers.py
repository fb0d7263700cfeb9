"""pynetdicom event handlers → archive, worklist and registry services.

Every handler is guarded: a domain error becomes the status the standard defines,
anything unexpected becomes a processing-failure status and is logged without
patient data; no exception reaches the peer.

Every request is audited with the PS3.15 §A.5.3 event it is (DCM codes, CID 400): a
refused permission is a Security Alert (110113, "Use of Restricted Function"); each stored
instance an Import (110107); each C-FIND a Query (110112); each C-MOVE/C-GET one DICOM
Instances Transferred (110104) per study. The requestor is the calling AE title at its
network address. No identifier attribute (patient data) goes into the audit record: studies
are named by their Study Instance UID, the patient is left for the imaging link to resolve.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pynetdicom import build_context, evt
from pynetdicom.events import Event

from vesalius.archive.index.records import StoredInstance
from vesalius.archive.service import ArchiveService
from vesalius.config import Settings
from vesalius.core.errors import Conflict, InvalidInput, NotFound, VesaliusError
from vesalius.dicom import status as st
from vesalius.dicom.attributes import Level
from vesalius.dimse.commitment import commit_in_background
from vesalius.dimse.identifiers import level_of, query_keys, response
from vesalius.dimse.nodelay import set_nodelay
from vesalius.dimse.tls import client_context
from vesalius.dimse.transfer import dataset_for_context, storage_contexts
from vesalius.dimse.uids import MPPS, MWL_FIND, VERIFICATION
from vesalius.dimse.worklist import worklist_item, worklist_params
from vesalius.network.registry import AERegistry
from vesalius.security.audit.auditor import Auditor
from vesalius.security.policy import DimseCaller, may_dimse
from vesalius.security.principal import AE, Principal
from vesalius.worklist.service import WorklistService

log = logging.getLogger(__name__)

#: Audit event types (DICOM PS3.16 CID 400) and the security alert subtype (CID 403).
SECURITY_ALERT = "110113"
USE_OF_RESTRICTED_FUNCTION = "110132"
IMPORT = "110107"
QUERY = "110112"
TRANSFERRED = "110104"
#: Audit outcomes (https://hl7.org/fhir/R4/valueset-audit-event-outcome.html).
SUCCESS, MINOR_FAILURE, SERIOUS_FAILURE = 0, 4, 8


def _req(event: Event) -> Any:
    """The DIMSE request primitive (pynetdicom types it as a union of all of them)."""
    return event.request


def discard_partial_dataset(event: Event) -> None:
    """Remove the spool file of a C-STORE data set the peer never finished sending.

    With ``STORE_RECV_CHUNKED_DATASET`` pynetdicom spools each incoming data set to a
    temporary file and deletes it after the C-STORE handler ran; when the peer aborts
    or drops the connection mid-transfer the handler never runs and the partial file
    would stay in the temporary directory for good.
    """
    message: Any = getattr(getattr(event.assoc, "dimse", None), "message", None)
    spool = getattr(message, "_data_set_file", None)
    if spool is None:
        return
    try:
        spool.close()
        Path(spool.name).unlink(missing_ok=True)
    except OSError:
        log.warning("could not remove a partially received data set")


class DimseHandlers:
    def __init__(self, settings: Settings, archive: ArchiveService, registry: AERegistry,
                 worklist: WorklistService, auditor: Auditor) -> None:
        self.settings = settings
        self.archive = archive
        self.registry = registry
        self.worklist = worklist
        self.auditor = auditor
        # Who the caller is, decided once per association rather than per message.
        self._callers: weakref.WeakKeyDictionary[Any, DimseCaller] = (
            weakref.WeakKeyDictionary())

    def bindings(self) -> list[tuple[Any, Any]]:
        return [
            (evt.EVT_CONN_OPEN, set_nodelay),
            (evt.EVT_CONN_CLOSE, discard_partial_dataset),
            (evt.EVT_ABORTED, discard_partial_dataset),
            (evt.EVT_C_ECHO, self.on_echo),
            (evt.EVT_C_STORE, self.on_store),
            (evt.EVT_C_FIND, self.on_find),
            (evt.EVT_C_MOVE, self.on_move),
            (evt.EVT_C_GET, self.on_get),
            (evt.EVT_N_ACTION, self.on_n_action),
            (evt.EVT_N_CREATE, self.on_n_create),
            (evt.EVT_N_SET, self.on_n_set),
        ]

    # -- access --------------------------------------------------------------------
    def _caller(self, event: Event) -> DimseCaller:
        assoc = event.assoc
        try:
            cached = self._callers.get(assoc)
        except TypeError:  # not weak-referenceable (e.g. a stand-in in tests)
            cached = None
        if cached is not None:
            return cached
        requestor = assoc.requestor
        title = str(requestor.ae_title).strip()
        caller = DimseCaller(title, str(requestor.address),
                             self.registry.permissions_for(title, str(requestor.address)))
        with contextlib.suppress(TypeError):
            self._callers[assoc] = caller
        return caller

    def _allowed(self, event: Event, action: str) -> bool:
        caller = self._caller(event)
        allowed = may_dimse(caller, action, self.settings.unknown_ae_permissions)
        if not allowed:
            log.warning("DIMSE %s refused for calling AE %s", action, caller.ae_title)
            self._audit(event, SECURITY_ALERT, "E", MINOR_FAILURE,
                        subtype=USE_OF_RESTRICTED_FUNCTION,
                        outcome_desc=f"DIMSE {action} refused: the calling AE lacks the "
                                     "permission")
        return allowed

    def _audit(self, event: Event, type: str, action: str, outcome: int, *,
               subtype: str = "", what: str = "", outcome_desc: str = "") -> None:
        """Record one event for the calling AE. Auditing must not turn a served request into
        a failed one: an auditor error is logged (without the record) and swallowed."""
        caller = self._caller(event)
        try:
            self.auditor.record(Principal(kind=AE, id=caller.ae_title or "(blank)",
                                          address=caller.address),
                                type=type, action=action, outcome=outcome, how="dimse",
                                subtype=subtype, what=what, outcome_desc=outcome_desc)
        except Exception:
            log.exception("could not record a DIMSE audit event (type %s)", type)

    # -- verification --------------------------------------------------------------
    def on_echo(self, event: Event) -> int:
        return st.SUCCESS

    # -- storage -------------------------------------------------------------------
    def on_store(self, event: Event) -> int | Dataset:
        if not self._allowed(event, "store"):
            return st.NOT_AUTHORIZED
        path = Path(event.dataset_path)
        try:
            # pynetdicom's spool file is ours to keep: move it into the blob store
            # rather than copy it (pynetdicom tolerates it being gone afterwards).
            request = _req(event)
            stored = self.archive.store_file(path, owned=True, expected_sop=(
                str(request.AffectedSOPClassUID or ""),
                str(request.AffectedSOPInstanceUID or "")))
        except VesaliusError as error:
            rsp = Dataset()
            rsp.Status = st.store_status(error)
            rsp.ErrorComment = error.message[:64]
            self._audit(event, IMPORT, "C", MINOR_FAILURE,
                        outcome_desc=f"C-STORE refused with status 0x{rsp.Status:04X}")
            return rsp
        except Exception:
            log.exception("C-STORE processing failure")
            self._audit(event, IMPORT, "C", SERIOUS_FAILURE,
                        outcome_desc="C-STORE processing failure")
            return st.OUT_OF_RESOURCES
        self._audit(event, IMPORT, "C", SUCCESS, what=stored.study_uid)
        return st.SUCCESS

    # -- query ---------------------------------------------------------------------
    def on_find(self, event: Event) -> Iterator[tuple[int, Dataset | None]]:
        try:
            identifier = event.identifier
        except Exception:
            yield st.CANNOT_UNDERSTAND, None
            return
        if _req(event).AffectedSOPClassUID == MWL_FIND:
            yield from self._audited_query(event, self._find_worklist(event, identifier))
            return
        if not self._allowed(event, "find"):
            yield st.NOT_AUTHORIZED, None
            return
        yield from self._audited_query(event, self._find(event, identifier))

    def _audited_query(self, event: Event, responses: Iterator[tuple[int, Dataset | None]]
                       ) -> Iterator[tuple[int, Dataset | None]]:
        """Pass the responses through and record one Query event from the final status.

        Recorded in ``finally`` so that a peer aborting mid-way (pynetdicom then drops the
        generator) is audited too. A refused permission was recorded as a Security Alert.
        """
        final: int | None = None
        sent = 0
        try:
            for status, identifier in responses:
                if status == st.PENDING:
                    sent += 1
                else:
                    final = status
                yield status, identifier
        finally:
            if final != st.NOT_AUTHORIZED:
                outcome, desc = SUCCESS, f"{sent} matches returned"
                if final is None:
                    outcome, desc = MINOR_FAILURE, f"aborted after {sent} matches"
                elif final == st.CANCEL:
                    desc = f"cancelled by the requestor after {sent} matches"
                elif final != st.SUCCESS:
                    outcome = SERIOUS_FAILURE if final == st.CANNOT_UNDERSTAND else MINOR_FAILURE
                    desc = f"C-FIND failed with status 0x{final:04X}"
                self._audit(event, QUERY, "E", outcome, outcome_desc=desc)

    def _find(self, event: Event, identifier: Dataset) -> Iterator[tuple[int, Dataset | None]]:
        try:
            level = level_of(identifier)
            params, tags = query_keys(identifier)
            offset, page = 0, 500
            while True:
                result = self.archive.search(level, params, limit=page, offset=offset,
                                             includefields=[f"{t:08X}" for t in tags])
                for match in result.matches:
                    if event.is_cancelled:
                        yield st.CANCEL, None
                        return
                    yield st.PENDING, response(match, tags, level, self.settings.ae_title)
                if not result.has_more:
                    break
                offset += page
        except VesaliusError as error:
            yield st.query_status(error), None
            return
        except Exception:
            log.exception("C-FIND processing failure")
            yield st.CANNOT_UNDERSTAND, None
            return
        yield st.SUCCESS, None

    def _find_worklist(self, event: Event, identifier: Dataset
                       ) -> Iterator[tuple[int, Dataset | None]]:
        if not self._allowed(event, "mwl"):
            yield st.NOT_AUTHORIZED, None
            return
        try:
            steps = self.worklist.find(worklist_params(identifier))
        except VesaliusError as error:
            yield st.query_status(error), None
            return
        for step in steps:
            if event.is_cancelled:
                yield st.CANCEL, None
                return
            yield st.PENDING, worklist_item(step)
        yield st.SUCCESS, None

    # -- retrieve ------------------------------------------------------------------
    def _retrieve_set(self, identifier: Dataset) -> list[StoredInstance]:
        level = level_of(identifier)
        keys = {Level.PATIENT: ("PatientID", "IssuerOfPatientID"),
                Level.STUDY: ("PatientID", "StudyInstanceUID"),
                Level.SERIES: ("StudyInstanceUID", "SeriesInstanceUID"),
                Level.IMAGE: ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")}[level]
        params = [(k, "\\".join(identifier[k].value) if identifier[k].VM > 1
                   else str(identifier[k].value))
                  for k in keys if k in identifier and str(identifier[k].value or "")]
        unique = {Level.PATIENT: "PatientID", Level.STUDY: "StudyInstanceUID",
                  Level.SERIES: "SeriesInstanceUID", Level.IMAGE: "SOPInstanceUID"}[level]
        if unique not in dict(params):
            raise InvalidInput(f"{unique} is required for a {level.value} level retrieve")
        return self.archive.locate(level, params)

    def on_move(self, event: Event) -> Iterator[Any]:
        destination = self.registry.get(str(event.move_destination).strip())
        if destination is None:
            self._audit(event, TRANSFERRED, "R", MINOR_FAILURE,
                        outcome_desc="C-MOVE destination unknown")
            yield None, None  # pynetdicom answers 0xA801, Move Destination Unknown
            return
        refusal: int | None = None
        found: list[StoredInstance] = []
        if not self._allowed(event, "move"):
            refusal = st.NOT_AUTHORIZED
        else:
            try:
                found = self._retrieve_set(event.identifier)
            except VesaliusError as error:
                refusal = st.query_status(error)
                self._audit(event, TRANSFERRED, "R", MINOR_FAILURE,
                            outcome_desc=f"C-MOVE refused with status 0x{refusal:04X}")
        captured: dict[str, Any] = {}

        def capture(ev: Event) -> None:
            captured["assoc"] = ev.assoc

        # pynetdicom associates with the destination before it takes any status from
        # us, so a refusal still needs a context to propose: Verification, never storage.
        contexts = storage_contexts(found) or [build_context(VERIFICATION)]
        kwargs: dict[str, Any] = {"contexts": contexts,
                                  "evt_handlers": [(evt.EVT_ESTABLISHED, capture),
                                                   (evt.EVT_CONN_OPEN, set_nodelay)],
                                  "max_pdu": self.settings.dicom_max_pdu}
        if destination.tls:
            kwargs["tls_args"] = (_client_tls(self.settings), None)
        yield destination.host, destination.port, kwargs
        if refusal is not None:
            yield 1
            yield refusal, None
            return
        yield len(found)
        yield from self._sub_operations(event, found, lambda: captured.get("assoc"))

    def on_get(self, event: Event) -> Iterator[Any]:
        if not self._allowed(event, "get"):
            yield 1
            yield st.NOT_AUTHORIZED, None
            return
        try:
            found = self._retrieve_set(event.identifier)
        except VesaliusError as error:
            status = st.query_status(error)
            self._audit(event, TRANSFERRED, "R", MINOR_FAILURE,
                        outcome_desc=f"C-GET refused with status 0x{status:04X}")
            yield 1
            yield status, None
            return
        yield len(found)
        yield from self._sub_operations(event, found, lambda: event.assoc)

    def _sub_operations(self, event: Event, found: list[StoredInstance],
                        assoc: Any) -> Iterator[tuple[int, Any]]:
        """Yield one data set per instance; then record one Transferred event per study.

        The outcome counts what this side handed to pynetdicom: success when every instance
        of the study was, minor failure when some were not (unreadable, cancelled, the peer
        aborted), serious failure when none was. How the receiver answered each C-STORE
        sub-operation is reported to the requestor in the final response, not audited here.
        """
        handed: Counter[str] = Counter()
        failed: Counter[str] = Counter()
        cancelled = False
        try:
            for instance in found:
                if event.is_cancelled:
                    cancelled = True
                    yield st.CANCEL, None
                    return
                try:
                    dataset = dataset_for_context(self.archive, instance, assoc())
                except VesaliusError as error:
                    log.warning("sub-operation for one instance failed: %s", error.message)
                    failed[instance.study_uid] += 1
                    # A data set without SOP Class UID cannot be sent: pynetdicom counts
                    # it as a failed sub-operation and lists its SOP Instance UID.
                    unreadable = Dataset()
                    unreadable.SOPInstanceUID = instance.sop_uid
                    yield st.PENDING, unreadable
                    continue
                yield st.PENDING, dataset
                handed[instance.study_uid] += 1
        finally:
            self._audit_transfers(event, found, handed, failed, cancelled)

    def _audit_transfers(self, event: Event, found: list[StoredInstance],
                         handed: Counter[str], failed: Counter[str], cancelled: bool) -> None:
        totals = Counter(instance.study_uid for instance in found)
        for study_uid, total in totals.items():
            sent = handed[study_uid]
            outcome = (SUCCESS if sent == total else SERIOUS_FAILURE if sent == 0
                       else MINOR_FAILURE)
            desc = f"{sent} of {total} instances sent"
            if failed[study_uid]:
                desc += f", {failed[study_uid]} unreadable"
            if cancelled and sent < total:
                desc += ", cancelled by the requestor"
            self._audit(event, TRANSFERRED, "R", outcome, what=study_uid, outcome_desc=desc)

    # -- storage commitment (PS3.4 Annex J) ----------------------------------------
    def on_n_action(self, event: Event) -> tuple[int, Dataset | None]:
        if not self._allowed(event, "commit"):
            return st.NOT_AUTHORIZED, None
        try:
            info = event.action_information
            transaction = str(info.TransactionUID)
            refs = [(str(i.ReferencedSOPClassUID), str(i.ReferencedSOPInstanceUID))
                    for i in info.ReferencedSOPSequence]
        except Exception:
            return st.INVALID_ATTRIBUTE_VALUE, None
        caller = str(event.assoc.requestor.ae_title).strip()
        commit_in_background(self.settings, self.archive, self.registry, caller, transaction,
                             refs)
        return st.SUCCESS, None

    # -- MPPS (PS3.4 Annex F) ------------------------------------------------------
    def on_n_create(self, event: Event) -> tuple[int, Dataset | None]:
        if _req(event).AffectedSOPClassUID != MPPS or not self._allowed(event, "mpps"):
            return st.NOT_AUTHORIZED, None
        try:
            ds = event.attribute_list
            sop_uid = str(_req(event).AffectedSOPInstanceUID or "")
            sps_id, accession = _scheduled_reference(ds)
            status = str(ds.get("PerformedProcedureStepStatus", "")).strip()
            self.worklist.mpps_create(sop_uid, status, ds.to_json_dict(), sps_id, accession)
            return st.SUCCESS, ds
        except Conflict:
            return st.DUPLICATE_SOP_INSTANCE, None
        except VesaliusError:
            return st.INVALID_ATTRIBUTE_VALUE, None
        except Exception:
            log.exception("MPPS N-CREATE failure")
            return st.PROCESSING_FAILURE, None

    def on_n_set(self, event: Event) -> tuple[int, Dataset | None]:
        if _req(event).RequestedSOPClassUID != MPPS or not self._allowed(event, "mpps"):
            return st.NOT_AUTHORIZED, None
        try:
            mods = event.modification_list
            status = mods.get("PerformedProcedureStepStatus")
            self.worklist.mpps_update(str(_req(event).RequestedSOPInstanceUID),
                                      str(status).strip() if status else None,
                                      mods.to_json_dict())
            return st.SUCCESS, mods
        except NotFound:
            return st.NO_SUCH_OBJECT_INSTANCE, None
        except Conflict:
            return st.MPPS_MAY_NO_LONGER_BE_UPDATED, None
        except VesaliusError:
            return st.INVALID_ATTRIBUTE_VALUE, None
        except Exception:
            log.exception("MPPS N-SET failure")
            return st.PROCESSING_FAILURE, None


def _scheduled_reference(ds: Dataset) -> tuple[str | None, str | None]:
    for item in ds.get("ScheduledStepAttributesSequence", []):
        sps = str(item.get("ScheduledProcedureStepID", "")).strip() or None
        accession = str(item.get("AccessionNumber", "")).strip() or None
        return sps, accession
    return None, None


def _client_tls(settings: Settings) -> Any:
    return client_context(settings)


