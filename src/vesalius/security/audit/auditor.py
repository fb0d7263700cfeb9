"""The one door every surface records audit events through.

Services and edges call :meth:`Auditor.record` with the :class:`Principal` that acted and the
event's codes (see ``model``). Recording must not make every image fetch wait for a chained
write, so records go into a bounded in-memory queue that a writer thread appends to the chain
in batches (one transaction per batch, in arrival order). ``flush`` waits until everything
recorded so far is stored; stopping the auditor drains the queue. A full queue makes callers
wait (back-pressure) rather than drop records.

The trade-off: a process killed outright loses at most the records of the last batch window
(tens of milliseconds). Security decisions that must not be lost even then (sign-in, break the
glass, permission changes) pass ``durable=True`` and return only once stored.

After a batch is chained, each entry is handed to the optional ``forward`` hook (ATNA syslog
forwarding); the chained database log stays the record of truth.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import UTC, datetime

from vesalius.security.audit.chain import ChainedRecord
from vesalius.security.audit.model import AuditRecord
from vesalius.security.audit.store import AuditStore
from vesalius.security.principal import Principal

log = logging.getLogger(__name__)

#: Most records appended in one transaction.
BATCH = 500
#: Longest a recorded event waits before its batch is written (seconds).
WINDOW = 0.05
#: A writer thread with nothing to write for this long ends (seconds).
IDLE = 2.0

Forward = Callable[[ChainedRecord], None]


class _Flush:
    def __init__(self) -> None:
        self.done = threading.Event()


class Auditor:
    def __init__(self, store: AuditStore, observer: str, *, forward: Forward | None = None,
                 on_stop: Callable[[], None] | None = None, capacity: int = 100_000) -> None:
        self.store = store
        self.observer = observer
        self._forward = forward
        self._on_stop = on_stop
        self._queue: queue.Queue[AuditRecord | _Flush | None] = queue.Queue(capacity)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.failures = 0

    def record(self, principal: Principal, *, type: str, action: str, outcome: int, how: str,
               subtype: str = "", patient: str = "", what: str = "", outcome_desc: str = "",
               durable: bool = False) -> None:
        """Record one event. ``patient`` is a Patient id or ``Patient/<id>``; ``what`` the
        resource (``Type/id``) or the Study Instance UID concerned."""
        if patient and not patient.startswith("Patient/"):
            patient = f"Patient/{patient}"
        entry = AuditRecord(recorded=datetime.now(UTC), type=type, action=action,
                            outcome=outcome, who=principal.who, address=principal.address,
                            how=how, observer=self.observer, subtype=subtype, patient=patient,
                            what=what, outcome_desc=outcome_desc)
        entry.check()  # a wrong code is a programming error: fail where it is made
        self._queue.put(entry)
        self._ensure_started()  # after the put: a writer that just went idle sees the entry
        if durable:
            self.flush()

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every record recorded before this call is in the store."""
        marker = _Flush()
        self._queue.put(marker)
        self._ensure_started()
        marker.done.wait(timeout)

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout=30)
        if self._on_stop is not None:
            self._on_stop()

    def _ensure_started(self) -> None:
        # Always under the lock: an idle writer decides to end under it too, so an entry put
        # before this call is either seen by that writer or by the one started here.
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vesalius-audit",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=IDLE)
            except queue.Empty:
                # Idle: let the thread go, so an unused node (and its database pool) can be
                # collected; the next record starts a new writer.
                with self._lock:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            batch: list[AuditRecord] = []
            markers: list[_Flush] = []
            while True:
                if item is None:
                    stopping = True
                elif isinstance(item, _Flush):
                    markers.append(item)
                else:
                    batch.append(item)
                if stopping or len(batch) >= BATCH:
                    break
                try:
                    item = self._queue.get(timeout=WINDOW if batch and not markers else 0)
                except queue.Empty:
                    break
            self._write(batch)
            for marker in markers:
                marker.done.set()

    def _write(self, batch: list[AuditRecord]) -> None:
        if not batch:
            return
        try:
            entries = self.store.append_many(batch)
        except Exception:  # the log must survive a bad moment; count it, keep the records
            self.failures += 1
            log.exception("could not append %d audit records; retrying one by one", len(batch))
            entries = []
            for record in batch:
                try:
                    entries.append(self.store.append(record))
                except Exception:
                    self.failures += 1
                    log.exception("audit record lost (type %s)", record.type)
        if self._forward is not None:
            for entry in entries:
                try:
                    self._forward(entry)
                except Exception:
                    log.exception("audit forwarding failed")
