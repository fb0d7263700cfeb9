"""The imaging link: every archived DICOM study in its patient's chart.

Archive events (InstanceStored, InstancesDeleted) queue the study in the durable
``imaging_link_pending`` table; once the study has been quiet for ``imaging_link_quiet_ms``
a worker (this process's thread, or any other process's) rebuilds its ``ImagingStudy`` once
from the archive's index — not once per instance. The resource is written with
update-as-create under the study's id, so an unchanged study writes no new version.

Deleting instances or series rebuilds the ImagingStudy with the remaining ones; deleting the
whole study deletes the ImagingStudy (a FHIR delete: its history keeps every version), since
the images it describes no longer exist on this server.

Record events: imaging ServiceRequests become worklist steps (:mod:`.orders`); when one is
scheduled, archived studies that already carry its accession are rebuilt so their
ImagingStudy gains ``basedOn``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable

from vesalius.archive.events import ArchiveEvent
from vesalius.archive.service import ArchiveService
from vesalius.config import Settings
from vesalius.dicom.attributes import Level
from vesalius.imaging_link.mapping import (
    ACCESSION,
    ENDPOINT_ID,
    INCLUDE_FIELDS,
    JsonDict,
    endpoint,
    imaging_study,
    is_accession,
    resource_id,
    text,
)
from vesalius.imaging_link.merge import MergeResult, merge
from vesalius.imaging_link.orders import Orders
from vesalius.imaging_link.patients import AmbiguousPatient, subject_of
from vesalius.imaging_link.pending import Claim, PendingStudies, utcnow
from vesalius.imaging_link.problems import LinkProblem, Problems
from vesalius.record.service import RecordService
from vesalius.record.unit_of_work import UnitOfWork
from vesalius.worklist.service import WorklistService

log = logging.getLogger(__name__)

#: A study whose rebuild failed is retried after this long.
RETRY_AFTER = dt.timedelta(seconds=30)


class ImagingLink:
    def __init__(self, settings: Settings, archive: ArchiveService, record: RecordService,
                 worklist: WorklistService) -> None:
        self.settings = settings
        self.archive = archive
        self.record = record
        self.pending = PendingStudies(archive.writer.engine)
        self._problems = Problems(archive.writer.engine)
        self._quiet = dt.timedelta(milliseconds=settings.imaging_link_quiet_ms)
        self._orders = Orders(record, worklist, on_scheduled=self._ordered)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._unsubscribe: list[Callable[[], None]] = [
            archive.events.subscribe(self._on_archive_event),
            record.events.subscribe(self._orders.handle),
        ]

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="imaging-link", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker; events keep being queued (durably) for the next one."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None

    def close(self) -> None:
        """Stop and unsubscribe from both event buses."""
        self.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe = []

    # -- events ------------------------------------------------------------------------------

    def _on_archive_event(self, event: ArchiveEvent) -> None:
        self.pending.mark(event.study_uid, quiet=self._quiet)
        self._wake.set()

    def _ordered(self, accession: str) -> None:
        found = self.archive.search(Level.STUDY, [("AccessionNumber", accession)])
        for match in found.matches:
            self.pending.mark(text(match, "0020000D"), quiet=dt.timedelta(0))
        self._wake.set()

    # -- work --------------------------------------------------------------------------------

    def flush(self, *, wait_quiet: bool = False) -> int:
        """Rebuild every pending study now (with ``wait_quiet``, each once it has been quiet);
        returns how many studies were rebuilt."""
        done = 0
        failed: set[str] = set()
        while True:
            claims = self.pending.claim(due_only=wait_quiet)
            retry = [c for c in claims if c.study_uid in failed]
            for claim in retry:
                self.pending.release(claim, retry_in=RETRY_AFTER)
            fresh = [c for c in claims if c.study_uid not in failed]
            if not fresh:
                due = self.pending.next_due() if wait_quiet and not retry else None
                if due is None:
                    return done
                self._stopping.wait(max(0.0, (due - utcnow()).total_seconds()) + 0.01)
                continue
            for claim in fresh:
                if self._process(claim):
                    done += 1
                else:
                    failed.add(claim.study_uid)

    def _run(self) -> None:
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                self.flush(wait_quiet=True)
                due = self.pending.next_due()
            except Exception:
                log.exception("imaging link worker failed; retrying")
                due = utcnow() + RETRY_AFTER
            wait = 1.0 if due is None else (due - utcnow()).total_seconds()
            self._wake.wait(min(max(wait, 0.01), 1.0))

    def _process(self, claim: Claim) -> bool:
        try:
            self.rebuild(claim.study_uid)
        except Exception:
            log.exception("could not rebuild an ImagingStudy; retrying later")
            self.pending.release(claim, retry_in=RETRY_AFTER)
            return False
        self.pending.finish(claim)
        return True

    def rebuild(self, study_uid: str) -> None:
        """Write (or delete) the ImagingStudy of one study from the archive's index now."""
        instances = self._instances(study_uid)
        if not instances:
            self.record.delete("ImagingStudy", resource_id(study_uid))
            self._problems.clear(study_uid)
            return
        try:
            with self.record.unit() as work:
                work.update("Endpoint", ENDPOINT_ID, endpoint(self.settings.base_url))
                subject = subject_of(work, instances[0])
                based_on = self._orders_of(work, text(instances[0], ACCESSION))
                work.update("ImagingStudy", resource_id(study_uid), imaging_study(
                    instances, subject=f"Patient/{subject}", endpoint_id=ENDPOINT_ID,
                    based_on=based_on))
        except AmbiguousPatient as exc:
            log.warning("an archived study matches %d Patients; it waits for reconciliation",
                        exc.count)
            self._problems.record(study_uid, code="multiple-matches", diagnostics=str(exc))
            return
        self._problems.clear(study_uid)

    def _instances(self, study_uid: str) -> list[JsonDict]:
        out: list[JsonDict] = []
        limit = self.settings.qido_max_limit
        while True:
            page = self.archive.search(Level.IMAGE, [], includefields=INCLUDE_FIELDS,
                                       limit=limit, offset=len(out), study_uid=study_uid)
            out.extend(page.matches)
            if not page.has_more or not page.matches:
                return out

    @staticmethod
    def _orders_of(work: UnitOfWork, accession: str) -> list[str]:
        """References to the ServiceRequests whose ACSN identifier is this accession."""
        if not accession:
            return []
        out = []
        for id in work.match("ServiceRequest", [("identifier", accession)]):
            order = work.read("ServiceRequest", id).resource or {}
            if any(is_accession(i) and i.get("value") == accession
                   for i in order.get("identifier") or []):
                out.append(f"ServiceRequest/{id}")
        return sorted(out)

    # -- reconciliation ----------------------------------------------------------------------

    def merge(self, source_patient_id: str, target_patient_id: str, *,
              preview: bool = False) -> MergeResult:
        """Merge the source Patient into the target (see :mod:`.merge`); the re-filed studies'
        ImagingStudy resources are rebuilt right after. ``preview`` writes nothing."""
        result = merge(self.record, self.archive, source_patient_id, target_patient_id,
                       preview=preview)
        if preview:
            return result
        for study_uid in result.studies:
            self.pending.mark(study_uid, quiet=dt.timedelta(0))
        self._wake.set()
        return result

    def problems(self) -> list[LinkProblem]:
        """Studies the link could not put in a chart, and why (OperationOutcome-shaped)."""
        return self._problems.all()
