"""Every DIMSE request leaves its PS3.15 §A.5.3 audit record (vesalius.dimse.handlers), with
real pynetdicom peers on loopback: the stored trail is read back after ``auditor.flush()``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, build_role, evt
from pynetdicom.sop_class import (
    CTImageStorage,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelMove,
)

from conftest import RunningDicom, free_port
from data_factory import make_instance
from integration.dimse.dimse_support import LOCALHOST, register, reset_node_tables
from vesalius.config import Settings
from vesalius.security.audit.model import AuditRecord

PATIENT_ID, PATIENT_NAME = "AUDIT-PID-77", "SECRET^PATIENT"


@pytest.fixture(autouse=True)
def _fresh_tables(settings: Settings) -> None:
    reset_node_tables(settings)


def trail(dicom: RunningDicom) -> list[AuditRecord]:
    dicom.node.auditor.flush()
    return [AuditRecord.from_columns(e.columns) for e in dicom.node.auditor.store.entries()]


def of_type(records: list[AuditRecord], type: str) -> list[AuditRecord]:
    return [r for r in records if r.type == type]


def no_patient_data(records: list[AuditRecord]) -> None:
    for record in records:
        for value in record.columns().values():
            assert PATIENT_ID not in str(value) and "SECRET" not in str(value)


def instance(study: str, n: int) -> Dataset:
    return make_instance(patient_id=PATIENT_ID, patient_name=PATIENT_NAME, study_uid=study,
                         instance_number=n, seed=n, rows=4, columns=4)


def store(dicom: RunningDicom, title: str, datasets: list[Dataset]) -> list[int]:
    ae = AE(ae_title=title)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate(LOCALHOST, dicom.port, ae_title=dicom.ae_title)
    assert assoc.is_established
    try:
        return [int(assoc.send_c_store(ds).Status) for ds in datasets]
    finally:
        assoc.release()


STUDY_A, STUDY_B = "1.2.826.0.1.3680043.8.498.1001", "1.2.826.0.1.3680043.8.498.1002"


@pytest.fixture
def stored(dicom: RunningDicom) -> Iterator[list[Dataset]]:
    datasets = [instance(STUDY_A, 1), instance(STUDY_A, 2), instance(STUDY_B, 3)]
    assert store(dicom, "MODALITY", datasets) == [0, 0, 0]
    yield datasets


def test_each_stored_instance_is_an_import(dicom: RunningDicom, stored: list[Dataset]) -> None:
    imports = of_type(trail(dicom), "110107")
    assert len(imports) == 3
    assert sorted(r.what for r in imports) == [STUDY_A, STUDY_A, STUDY_B]
    for record in imports:
        assert (record.action, record.outcome, record.how, record.who, record.address,
                record.patient) == ("C", 0, "dimse", "ae:MODALITY", "127.0.0.1", "")
    no_patient_data(trail(dicom))


def test_a_refused_instance_is_a_failed_import(dicom: RunningDicom) -> None:
    broken = instance(STUDY_A, 1)
    del broken.StudyInstanceUID
    assert store(dicom, "MODALITY", [broken])[0] != 0
    imports = of_type(trail(dicom), "110107")
    assert [(r.outcome, r.what) for r in imports] == [(4, "")]
    assert imports[0].outcome_desc.startswith("C-STORE refused with status 0x")


def test_storing_without_permission_is_a_security_alert(settings: Settings) -> None:
    with RunningDicom(replace(settings, unknown_ae_permissions=())) as dicom:
        assert store(dicom, "STRANGER", [instance(STUDY_A, 1)]) == [0x0124]
        records = trail(dicom)
    alerts = of_type(records, "110113")
    assert [(r.subtype, r.outcome, r.action, r.who) for r in alerts] == [
        ("110132", 4, "E", "ae:STRANGER")]
    assert "store" in alerts[0].outcome_desc
    assert of_type(records, "110107") == []


def find(dicom: RunningDicom, title: str, query: Dataset) -> list[int]:
    ae = AE(ae_title=title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = ae.associate(LOCALHOST, dicom.port, ae_title=dicom.ae_title)
    assert assoc.is_established
    try:
        return [int(status.Status) for status, _ in
                assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind)]
    finally:
        assoc.release()


def study_query(**keys: Any) -> Dataset:
    query = Dataset()
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    for keyword, value in keys.items():
        setattr(query, keyword, value)
    return query


def test_a_query_is_one_record_per_request(dicom: RunningDicom, stored: list[Dataset]) -> None:
    register(dicom, "VIEWER", 104, "find")
    assert find(dicom, "VIEWER", study_query(PatientID=PATIENT_ID)) == [0xFF00, 0xFF00, 0]
    queries = of_type(trail(dicom), "110112")
    assert [(r.action, r.outcome, r.who, r.outcome_desc) for r in queries] == [
        ("E", 0, "ae:VIEWER", "2 matches returned")]
    no_patient_data(trail(dicom))


def test_a_refused_query_is_a_security_alert_only(dicom: RunningDicom) -> None:
    assert find(dicom, "NOSY", study_query(PatientID="*")) == [0x0124]
    records = trail(dicom)
    assert of_type(records, "110112") == []
    assert [(r.subtype, r.outcome, r.who) for r in of_type(records, "110113")] == [
        ("110132", 4, "ae:NOSY")]


def test_a_malformed_query_is_a_failed_query(dicom: RunningDicom) -> None:
    register(dicom, "VIEWER", 104, "find")
    query = Dataset()
    query.QueryRetrieveLevel = "GALAXY"
    statuses = find(dicom, "VIEWER", query)
    assert statuses[-1] not in (0, 0xFF00)
    queries = of_type(trail(dicom), "110112")
    assert len(queries) == 1 and queries[0].outcome in (4, 8)


def get(dicom: RunningDicom, title: str, query: Dataset) -> tuple[list[int], int]:
    received: list[str] = []

    def on_store(event: Any) -> int:
        received.append(str(event.request.AffectedSOPInstanceUID))
        return 0

    ae = AE(ae_title=title)
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelGet)
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate(LOCALHOST, dicom.port, ae_title=dicom.ae_title,
                         ext_neg=[build_role(CTImageStorage, scp_role=True)],
                         evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert assoc.is_established
    try:
        statuses = [int(status.Status) for status, _ in
                    assoc.send_c_get(query, PatientRootQueryRetrieveInformationModelGet)
                    if status]
    finally:
        assoc.release()
    return statuses, len(received)


def test_a_retrieve_is_one_transfer_per_study(dicom: RunningDicom,
                                              stored: list[Dataset]) -> None:
    register(dicom, "WORKSTATION", 104, "get")
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = PATIENT_ID
    statuses, count = get(dicom, "WORKSTATION", query)
    assert statuses[-1] == 0 and count == 3
    transfers = of_type(trail(dicom), "110104")
    assert sorted((r.what, r.outcome, r.outcome_desc) for r in transfers) == [
        (STUDY_A, 0, "2 of 2 instances sent"), (STUDY_B, 0, "1 of 1 instances sent")]
    assert {(r.action, r.who, r.how) for r in transfers} == {("R", "ae:WORKSTATION", "dimse")}
    no_patient_data(trail(dicom))


def test_a_retrieve_without_its_unique_key_is_a_failed_transfer(dicom: RunningDicom) -> None:
    register(dicom, "WORKSTATION", 104, "get")
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientName = "*"
    statuses, count = get(dicom, "WORKSTATION", query)
    assert statuses[-1] != 0 and count == 0
    transfers = of_type(trail(dicom), "110104")
    assert [(r.outcome, r.what) for r in transfers] == [(4, "")]


def test_a_refused_retrieve_is_a_security_alert(dicom: RunningDicom,
                                                stored: list[Dataset]) -> None:
    query = Dataset()
    query.QueryRetrieveLevel = "PATIENT"
    query.PatientID = PATIENT_ID
    statuses, count = get(dicom, "THIEF", query)
    assert statuses[-1] == 0x0124 and count == 0
    records = trail(dicom)
    assert of_type(records, "110104") == []
    assert [r.who for r in of_type(records, "110113")] == ["ae:THIEF"]


def move(dicom: RunningDicom, title: str, destination: str, study: str) -> list[int]:
    ae = AE(ae_title=title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = ae.associate(LOCALHOST, dicom.port, ae_title=dicom.ae_title)
    assert assoc.is_established
    query = study_query(StudyInstanceUID=study)
    try:
        return [int(status.Status) for status, _ in
                assoc.send_c_move(query, destination, StudyRootQueryRetrieveInformationModelMove)
                if status]
    finally:
        assoc.release()


def test_a_move_to_a_peer_is_a_transfer(dicom: RunningDicom, stored: list[Dataset],
                                        tmp_path: Path) -> None:
    received: list[str] = []

    def on_store(event: Any) -> int:
        received.append(str(event.request.AffectedSOPInstanceUID))
        return 0

    port = free_port()
    peer = AE(ae_title="ARCHIVE2")
    peer.add_supported_context(CTImageStorage)
    server = peer.start_server((LOCALHOST, port), block=False,
                               evt_handlers=[(evt.EVT_C_STORE, on_store)])
    assert server is not None
    try:
        register(dicom, "ARCHIVE2", port)
        register(dicom, "ROUTER", 105, "move")
        assert move(dicom, "ROUTER", "ARCHIVE2", STUDY_A)[-1] == 0
        assert move(dicom, "ROUTER", "NOWHERE", STUDY_A)[-1] == 0xA801
    finally:
        server.shutdown()
    assert len(received) == 2
    transfers = of_type(trail(dicom), "110104")
    assert [(r.what, r.outcome, r.who) for r in transfers] == [
        (STUDY_A, 0, "ae:ROUTER"), ("", 4, "ae:ROUTER")]
    assert transfers[1].outcome_desc == "C-MOVE destination unknown"
