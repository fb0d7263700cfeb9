"""What peers get for bad input: statuses, rejections, and nothing half-stored on aborts."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.dimse_messages import C_STORE_RQ
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.sop_class import CTImageStorage, StudyRootQueryRetrieveInformationModelFind

from conftest import RunningDicom
from data_factory import CT_IMAGE_STORAGE, make_instance, to_bytes, write
from integration.dimse.dimse_support import (
    LOCALHOST,
    instance_count,
    register,
    reset_node_tables,
    stored_bytes,
)
from vesalius.config import Settings


@pytest.fixture(autouse=True)
def _fresh_tables(settings: Settings) -> None:
    reset_node_tables(settings)


@pytest.fixture
def private_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """pynetdicom spools received data sets into tempfile's directory: watch a private one."""
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    return spool


def _associate(dicom: RunningDicom, *contexts: str, title: str = "BADPEER",
               called: str | None = None) -> Any:
    ae = AE(ae_title=title)
    ae.acse_timeout = 10
    ae.dimse_timeout = 30
    for uid in contexts:
        ae.add_requested_context(uid, [ExplicitVRLittleEndian])
    return ae.associate(LOCALHOST, dicom.port, ae_title=called or dicom.ae_title)


@pytest.fixture
def store_assoc(dicom: RunningDicom) -> Iterator[Any]:
    assoc = _associate(dicom, CTImageStorage)
    assert assoc.is_established
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def _leftovers(dicom: RunningDicom, spool: Path | None = None) -> list[str]:
    """Blobs the index does not reference, temp files of the blob store, spooled data sets."""
    keys = list(dicom.archive.blobs.keys())
    orphans = set(keys) - dicom.archive.reader.referenced_blob_keys(keys)
    blob_tmp = [p.name for p in (dicom.settings.blob_dir / ".tmp").iterdir()]
    spooled = [p.name for p in spool.iterdir()] if spool is not None else []
    return sorted(orphans) + blob_tmp + spooled


def test_store_missing_study_uid_fails_and_association_survives(
        dicom: RunningDicom, store_assoc: Any, private_tmp: Path) -> None:
    bad = make_instance()
    del bad.StudyInstanceUID
    status = store_assoc.send_c_store(bad)
    assert 0xA900 <= int(status.Status) <= 0xCFFF, hex(int(status.Status))
    assert instance_count(dicom) == 0

    good = make_instance()
    assert int(store_assoc.send_c_store(good).Status) == 0
    assert instance_count(dicom) == 1
    assert _leftovers(dicom, private_tmp) == []


def _raw_store(assoc: Any, sop_uid: str, payload: bytes, *, fragments: int | None = None
               ) -> Dataset | None:
    """Send a C-STORE whose data set is ``payload`` bytes, as-is; optionally only the
    first ``fragments`` P-DATA PDUs. Returns the response status data set, if awaited."""
    req = C_STORE()
    req.MessageID = 77
    req.AffectedSOPClassUID = CT_IMAGE_STORAGE
    req.AffectedSOPInstanceUID = sop_uid
    req.Priority = 2
    req.DataSet = BytesIO(payload)
    context = next(cx for cx in assoc.accepted_contexts
                   if cx.abstract_syntax == CT_IMAGE_STORAGE)
    if fragments is None:
        # what Association.send_c_store does, minus its encoding of a Dataset:
        # pause the reactor so the response comes to us
        assoc._reactor_checkpoint.clear()
        while not assoc._is_paused:
            time.sleep(0.001)
        try:
            assoc.dimse.send_msg(req, context.context_id)
            _, rsp = assoc.dimse.get_msg(block=True)
        finally:
            assoc._reactor_checkpoint.set()
        return rsp  # type: ignore[no-any-return]
    msg = C_STORE_RQ()
    msg.primitive_to_message(req)
    pdus = list(msg.encode_msg(context.context_id, 16382))
    assert len(pdus) > fragments + 1, "payload too small to cut short"
    sock = assoc.dul.socket
    for primitive in pdus[:fragments]:
        pdu = P_DATA_TF()
        pdu.from_primitive(primitive)
        sock.send(pdu.encode())
    return None


def test_garbage_data_set_is_refused_and_association_survives(
        dicom: RunningDicom, store_assoc: Any, private_tmp: Path) -> None:
    rsp = _raw_store(store_assoc, generate_uid(), b"\x08\x00\x16\x00UI\x40\x00" + b"\xff" * 300)
    assert rsp is not None
    assert 0xA900 <= int(rsp.Status) <= 0xCFFF, hex(int(rsp.Status))
    assert instance_count(dicom) == 0
    good = make_instance()
    assert int(store_assoc.send_c_store(good).Status) == 0
    assert instance_count(dicom) == 1
    assert _leftovers(dicom, private_tmp) == []


def test_command_and_data_set_disagree_on_sop_instance(dicom: RunningDicom, store_assoc: Any,
                                                       private_tmp: Path) -> None:
    """The data set names a different SOP Instance than the command (PS3.4 B.2.3)."""
    ds = make_instance()
    data = to_bytes(ds)
    body = data[data.index(b"DICM") + 4:]
    # strip the file meta: the first non-0002 group starts the data set
    offset = 0
    while body[offset:offset + 2] == b"\x02\x00":
        length = int.from_bytes(body[offset + 6:offset + 8], "little")
        vr = body[offset + 4:offset + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
            length = int.from_bytes(body[offset + 8:offset + 12], "little")
            offset += 12 + length
        else:
            offset += 8 + length
    rsp = _raw_store(store_assoc, generate_uid(), body[offset:])
    assert rsp is not None
    assert int(rsp.Status) == 0xA900  # Data Set does not match SOP Class
    assert instance_count(dicom) == 0
    assert int(store_assoc.send_c_store(ds).Status) == 0
    assert instance_count(dicom) == 1
    assert _leftovers(dicom, private_tmp) == []


def test_private_sop_class_context_is_rejected(dicom: RunningDicom) -> None:
    private = "1.2.826.0.1.3680043.9.9999.1"
    assoc = _associate(dicom, private, CTImageStorage)
    assert assoc.is_established
    try:
        accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
        rejected = {str(cx.abstract_syntax) for cx in assoc.rejected_contexts}
        assert private in rejected and private not in accepted
        assert CT_IMAGE_STORAGE in accepted
    finally:
        assoc.release()


def test_only_unknown_contexts_means_no_association(dicom: RunningDicom) -> None:
    assoc = _associate(dicom, "1.2.826.0.1.3680043.9.9999.2")
    assert not assoc.is_established


def test_wrong_called_ae_title_is_rejected(dicom: RunningDicom) -> None:
    assoc = _associate(dicom, CTImageStorage, called="SOMEONE_ELSE")
    assert assoc.is_rejected
    assert not assoc.is_established


@pytest.mark.parametrize("how", ["abort", "close"])
def test_peer_vanishing_mid_transfer_leaves_nothing(dicom: RunningDicom, private_tmp: Path,
                                                    tmp_path: Path, how: str) -> None:
    before = make_instance()
    dicom.archive.store_file(write(before, tmp_path))
    assoc = _associate(dicom, CTImageStorage)
    assert assoc.is_established
    big = make_instance(rows=256, columns=256, frames=4)
    data = to_bytes(big)
    _raw_store(assoc, big.SOPInstanceUID, data[data.index(b"DICM") + 4 + 200:], fragments=4)
    time.sleep(0.3)
    if how == "abort":
        assoc.abort()
    else:
        assoc.dul.socket.socket.close()
        assoc.dul.socket.socket = None
        assoc.abort()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _leftovers(dicom, private_tmp):
        time.sleep(0.1)
    assert instance_count(dicom) == 1
    assert _leftovers(dicom, private_tmp) == []
    # the listener is still healthy
    again = _associate(dicom, CTImageStorage)
    assert again.is_established
    try:
        assert int(again.send_c_store(big).Status) == 0
    finally:
        again.release()
    assert stored_bytes(dicom, big.SOPInstanceUID)
    assert instance_count(dicom) == 2


def test_find_without_query_level_fails_and_association_survives(dicom: RunningDicom) -> None:
    register(dicom, "BADPEER", 104, "find")
    dicom.archive.store_file(write(make_instance(), dicom.settings.data_dir))
    assoc = _associate(dicom, StudyRootQueryRetrieveInformationModelFind)
    assert assoc.is_established
    try:
        garbage = Dataset()
        garbage.PatientID = "*"
        statuses = [int(s.Status) for s, _ in assoc.send_c_find(
            garbage, StudyRootQueryRetrieveInformationModelFind)]
        assert len(statuses) == 1
        assert 0xA900 <= statuses[0] <= 0xCFFF, hex(statuses[0])

        odd = Dataset()
        odd.QueryRetrieveLevel = "FRAME"
        statuses = [int(s.Status) for s, _ in assoc.send_c_find(
            odd, StudyRootQueryRetrieveInformationModelFind)]
        assert statuses and 0xA900 <= statuses[-1] <= 0xCFFF

        good = Dataset()
        good.QueryRetrieveLevel = "STUDY"
        good.StudyInstanceUID = ""
        results = list(assoc.send_c_find(good, StudyRootQueryRetrieveInformationModelFind))
        assert [int(s.Status) for s, _ in results] == [0xFF00, 0x0000]
    finally:
        assoc.release()


def test_find_with_invalid_date_range_fails(dicom: RunningDicom) -> None:
    register(dicom, "BADPEER", 104, "find")
    assoc = _associate(dicom, StudyRootQueryRetrieveInformationModelFind)
    assert assoc.is_established
    try:
        bad_date = Dataset()
        bad_date.QueryRetrieveLevel = "STUDY"
        bad_date.StudyDate = "2024-13-45--x"
        statuses = [int(s.Status) for s, _ in assoc.send_c_find(
            bad_date, StudyRootQueryRetrieveInformationModelFind)]
    finally:
        assoc.release()
    assert statuses and 0xA900 <= statuses[-1] <= 0xCFFF
