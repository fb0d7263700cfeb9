"""Operational behaviour: many associations at once, stalled peers, oversized PDUs, cancel."""

from __future__ import annotations

import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import (
    CTImageStorage,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

from conftest import RunningDicom
from data_factory import make_instance
from integration.dimse.dimse_support import instance_count, register, reset_node_tables
from vesalius.config import Settings


@pytest.fixture(autouse=True)
def _fresh_tables(settings: Settings) -> None:
    reset_node_tables(settings)


def _store_many(dicom: RunningDicom, datasets: list[Dataset]) -> list[int]:
    ae = AE(ae_title="PARALLEL")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", dicom.port, ae_title=dicom.ae_title)
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


def test_many_simultaneous_associations(dicom: RunningDicom) -> None:
    batches = [[make_instance(seed=100 * b + i, patient_id=f"PAR{b}") for i in range(5)]
               for b in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda batch: _store_many(dicom, batch), batches))
    assert all(status == 0 for batch in statuses for status in batch)
    assert instance_count(dicom) == 60


def test_a_stalled_peer_is_dropped_and_others_are_served(settings: Settings,
                                                         tmp_path: Path) -> None:
    from dataclasses import replace

    with RunningDicom(replace(settings, dicom_timeout=2)) as dicom:
        ae = AE(ae_title="STALLER")
        ae.add_requested_context(Verification)
        stalled = ae.associate("127.0.0.1", dicom.port, ae_title=dicom.ae_title)
        assert stalled.is_established
        # Say nothing; the server's network timeout must end the association.
        deadline = time.monotonic() + 20
        while stalled.is_established and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not stalled.is_established
        other = AE(ae_title="OTHER").associate(
            "127.0.0.1", dicom.port, ae_title=dicom.ae_title,
            contexts=[_context(Verification)])
        assert other.is_established
        assert int(other.send_c_echo().Status) == 0
        other.release()


def _context(uid: str):  # type: ignore[no-untyped-def]
    from pynetdicom import build_context

    return build_context(uid)


def _associate_raw(port: int, called: bytes) -> socket.socket:
    """Open an association with a hand-built A-ASSOCIATE-RQ for Verification."""
    def item(item_type: int, payload: bytes) -> bytes:
        return struct.pack(">BBH", item_type, 0, len(payload)) + payload

    app_context = item(0x10, b"1.2.840.10008.3.1.1.1")
    abstract = item(0x30, b"1.2.840.10008.1.1")
    transfer = item(0x40, b"1.2.840.10008.1.2")
    pres = item(0x20, bytes([1, 0, 0, 0]) + abstract + transfer)
    user = item(0x50, item(0x51, struct.pack(">I", 16384)))
    body = (struct.pack(">HH", 1, 0) + called.ljust(16) + b"RAWPEER".ljust(16) + bytes(32)
            + app_context + pres + user)
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(struct.pack(">BBI", 0x01, 0, len(body)) + body)
    reply = sock.recv(6)
    assert reply[0] == 0x02, "association was not accepted"
    length = struct.unpack(">I", reply[2:6])[0]
    remaining = length
    while remaining:
        remaining -= len(sock.recv(remaining))
    return sock


def test_oversized_pdu_aborts_only_that_association(dicom: RunningDicom) -> None:
    before = instance_count(dicom)
    sock = _associate_raw(dicom.port, dicom.ae_title.encode())
    try:
        # A P-DATA-TF announcing 64 MiB, far above the maximum PDU we accept.
        sock.sendall(struct.pack(">BBI", 0x04, 0, 64 * 1024 * 1024) + b"\x00" * 1024)
        sock.settimeout(10)
        try:
            answer = sock.recv(6)
        except (ConnectionResetError, TimeoutError):
            answer = b""
        # Either an A-ABORT (0x07) or the connection closed.
        assert answer == b"" or answer[0] == 0x07
    finally:
        sock.close()
    ae = AE(ae_title="AFTER")
    ae.add_requested_context(Verification)
    assoc = ae.associate("127.0.0.1", dicom.port, ae_title=dicom.ae_title)
    assert assoc.is_established and int(assoc.send_c_echo().Status) == 0
    assoc.release()
    assert instance_count(dicom) == before


class _CancellingEvent:
    """The parts of a pynetdicom C-FIND event the handler reads; cancels after two results.

    A real peer's C-CANCEL races the server's responses, so the cancel point is
    fixed here to test that the handler stops at the next result.
    """

    def __init__(self, identifier: Dataset, caller: str, cancel_after: int) -> None:
        from types import SimpleNamespace

        self.identifier = identifier
        self.request = SimpleNamespace(
            AffectedSOPClassUID=StudyRootQueryRetrieveInformationModelFind)
        self.assoc = SimpleNamespace(requestor=SimpleNamespace(ae_title=caller,
                                                               address="127.0.0.1"))
        self.cancel_after = cancel_after
        self.seen = 0

    @property
    def is_cancelled(self) -> bool:
        self.seen += 1
        return self.seen > self.cancel_after


def test_c_find_cancel_is_honoured(dicom: RunningDicom, tmp_path: Path) -> None:
    from vesalius.dimse.handlers import DimseHandlers

    for n in range(10):
        dicom.archive.store_file(_write(make_instance(seed=n, patient_id=f"CAN{n:03d}",
                                                      rows=2, columns=2), tmp_path, n))
    register(dicom, "CANCELLER", 104, "find")
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.PatientID = "CAN*"
    query.StudyInstanceUID = ""
    handlers = DimseHandlers(dicom.settings, dicom.archive, dicom.registry, dicom.worklist,
                             dicom.node.auditor)
    statuses = [status for status, _ in handlers.on_find(
        _CancellingEvent(query, "CANCELLER", cancel_after=2))]  # type: ignore[arg-type]
    assert statuses == [0xFF00, 0xFF00, 0xFE00]


def _write(ds: Dataset, directory: Path, n: int) -> Path:
    from data_factory import write

    return write(ds, directory, f"cancel-{n}.dcm")
