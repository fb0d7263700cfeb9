"""Modality Worklist (PS3.4 Annex K) with dcmtk findscu -W, and MPPS (Annex F) with pynetdicom."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.association import Association
from pynetdicom.sop_class import ModalityPerformedProcedureStep

from conftest import RunningDicom
from integration.dimse.dimse_support import (
    LOCALHOST,
    cli,
    final_status,
    find,
    register,
    reset_node_tables,
)
from vesalius.config import Settings


@pytest.fixture(autouse=True)
def _fresh_tables(settings: Settings) -> None:
    reset_node_tables(settings)


RETURN_KEYS = ["PatientName", "PatientID", "AccessionNumber", "StudyInstanceUID",
               "ScheduledProcedureStepSequence[0].Modality",
               "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
               "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate",
               "ScheduledProcedureStepSequence[0].ScheduledProcedureStepID"]


@pytest.fixture
def steps(dicom: RunningDicom) -> dict[str, str]:
    """Four scheduled steps (one added through the CLI); MODALITY1 may query."""
    wl = dicom.worklist
    wl.schedule(patient_id="W1", patient_name="DOE^JOHN", modality="CT", start_date="20260301",
                start_time="0800", accession_number="A1", station_ae="CT1", sps_id="SPS1")
    wl.schedule(patient_id="W2", patient_name="DOE^JANE", modality="MR", start_date="20260302",
                accession_number="A2", station_ae="MR1", sps_id="SPS2")
    wl.schedule(patient_id="W3", patient_name="ROE^RICHARD", modality="CT",
                start_date="20260310", accession_number="A3", station_ae="CT2", sps_id="SPS3")
    result = cli(dicom.settings, "worklist", "add", "--patient-id", "W4", "--patient-name",
                 "DOE^JIM", "--modality", "US", "--date", "20260305", "--time", "1330",
                 "--accession", "A4", "--station", "US1")
    assert result.returncode == 0, result.stderr
    cli_sps = result.stdout.split()[1]
    assert dicom.worklist.get(cli_sps).accession_number == "A4"
    register(dicom, "MODALITY1", 104, "find", "store")
    return {"cli": cli_sps}


def _wl(dicom: RunningDicom, tmp: Path, *matching: str, calling: str = "MODALITY1"
        ) -> tuple[str, list[Dataset]]:
    wanted = {k.split("=")[0] for k in matching}
    keys = [*matching, *(k for k in RETURN_KEYS if k not in wanted)]
    result, rsps = find(dicom, tmp, "-W", keys, calling=calling)
    return final_status(result.stderr, "Find"), rsps


def _accessions(rsps: list[Dataset]) -> list[str]:
    return sorted(str(r.AccessionNumber) for r in rsps)


def test_worklist_matching(dicom: RunningDicom, steps: dict[str, str], tmp_path: Path) -> None:
    status, rsps = _wl(dicom, tmp_path)
    assert status == "Success"
    assert _accessions(rsps) == ["A1", "A2", "A3", "A4"]

    _, rsps = _wl(dicom, tmp_path, "ScheduledProcedureStepSequence[0].Modality=CT")
    assert _accessions(rsps) == ["A1", "A3"]
    item = next(r for r in rsps if r.AccessionNumber == "A1")
    sps = item.ScheduledProcedureStepSequence[0]
    assert (sps.Modality, sps.ScheduledStationAETitle, sps.ScheduledProcedureStepID) == \
        ("CT", "CT1", "SPS1")
    assert str(item.PatientName) == "DOE^JOHN" and item.PatientID == "W1"

    _, rsps = _wl(dicom, tmp_path, "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=MR1")
    assert _accessions(rsps) == ["A2"]

    _, rsps = _wl(dicom, tmp_path,
                  "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate="
                  "20260302-20260305")
    assert _accessions(rsps) == ["A2", "A4"]

    _, rsps = _wl(dicom, tmp_path, "PatientName=DOE^J*")
    assert _accessions(rsps) == ["A1", "A2", "A4"]

    _, rsps = _wl(dicom, tmp_path, "PatientName=DOE^J*",
                  "ScheduledProcedureStepSequence[0].Modality=US")
    assert _accessions(rsps) == ["A4"]
    assert rsps[0].ScheduledProcedureStepSequence[0].ScheduledProcedureStepID == steps["cli"]


def test_worklist_refused_without_find_permission(dicom: RunningDicom, steps: dict[str, str],
                                                  tmp_path: Path) -> None:
    status, rsps = _wl(dicom, tmp_path, calling="STRANGER")
    assert rsps == []
    assert status == "Unknown Status: 0x124"


# -- MPPS ------------------------------------------------------------------------------

@pytest.fixture
def mpps(dicom: RunningDicom) -> Iterator[Association]:
    ae = AE(ae_title="MODALITY1")
    ae.add_requested_context(ModalityPerformedProcedureStep)
    assoc = ae.associate(LOCALHOST, dicom.port, ae_title=dicom.ae_title)
    assert assoc.is_established
    try:
        yield assoc
    finally:
        if assoc.is_established:
            assoc.release()


def _in_progress(sps_id: str, accession: str) -> Dataset:
    ds = Dataset()
    ref = Dataset()
    ref.AccessionNumber = accession
    ref.ScheduledProcedureStepID = sps_id
    ref.StudyInstanceUID = generate_uid()
    ref.RequestedProcedureID = ""
    ds.ScheduledStepAttributesSequence = DicomSequence([ref])
    ds.PatientName = "DOE^JOHN"
    ds.PatientID = "W1"
    ds.PerformedProcedureStepID = "PPS1"
    ds.PerformedStationAETitle = "CT1"
    ds.PerformedProcedureStepStartDate = "20260301"
    ds.PerformedProcedureStepStartTime = "0805"
    ds.PerformedProcedureStepStatus = "IN PROGRESS"
    ds.Modality = "CT"
    ds.PerformedSeriesSequence = DicomSequence([])
    return ds


def _completed() -> Dataset:
    ds = Dataset()
    ds.PerformedProcedureStepStatus = "COMPLETED"
    ds.PerformedProcedureStepEndDate = "20260301"
    ds.PerformedProcedureStepEndTime = "0830"
    return ds


def _status(result: tuple[Dataset, Dataset | None]) -> int:
    status, _ = result
    assert status is not None and "Status" in status, "no response"
    return int(status.Status)


def test_mpps_lifecycle(dicom: RunningDicom, steps: dict[str, str], mpps: Association,
                        tmp_path: Path) -> None:
    pps_uid = generate_uid()
    assert _status(mpps.send_n_create(_in_progress("SPS1", "A1"),
                                      ModalityPerformedProcedureStep, pps_uid)) == 0
    assert dicom.worklist.get("SPS1").status == "IN PROGRESS"
    assert dicom.worklist.mpps_status(pps_uid) == "IN PROGRESS"
    _, rsps = _wl(dicom, tmp_path, "ScheduledProcedureStepSequence[0].Modality=CT")
    assert _accessions(rsps) == ["A1", "A3"]  # still on the worklist while in progress

    # the same SOP Instance again: Duplicate SOP Instance (PS3.7 Annex C)
    assert _status(mpps.send_n_create(_in_progress("SPS1", "A1"),
                                      ModalityPerformedProcedureStep, pps_uid)) == 0x0111

    assert _status(mpps.send_n_set(_completed(), ModalityPerformedProcedureStep,
                                   pps_uid)) == 0
    assert dicom.worklist.get("SPS1").status == "COMPLETED"
    assert dicom.worklist.mpps_status(pps_uid) == "COMPLETED"
    _, rsps = _wl(dicom, tmp_path, "ScheduledProcedureStepSequence[0].Modality=CT")
    assert _accessions(rsps) == ["A3"]

    # a final step may no longer be updated (PS3.4 F.7.2.2.4.2)
    assert _status(mpps.send_n_set(_completed(), ModalityPerformedProcedureStep,
                                   pps_uid)) == 0xA710
    assert dicom.worklist.get("SPS3").status == "SCHEDULED"


def test_mpps_by_accession_only_and_discontinued(dicom: RunningDicom, steps: dict[str, str],
                                                 mpps: Association, tmp_path: Path) -> None:
    pps_uid = generate_uid()
    ds = _in_progress("", "A2")
    del ds.ScheduledStepAttributesSequence[0].ScheduledProcedureStepID
    assert _status(mpps.send_n_create(ds, ModalityPerformedProcedureStep, pps_uid)) == 0
    assert dicom.worklist.get("SPS2").status == "IN PROGRESS"
    stop = Dataset()
    stop.PerformedProcedureStepStatus = "DISCONTINUED"
    assert _status(mpps.send_n_set(stop, ModalityPerformedProcedureStep, pps_uid)) == 0
    assert dicom.worklist.get("SPS2").status == "DISCONTINUED"
    _, rsps = _wl(dicom, tmp_path)
    assert "A2" not in _accessions(rsps)


def test_mpps_errors(dicom: RunningDicom, steps: dict[str, str], mpps: Association) -> None:
    assert _status(mpps.send_n_set(_completed(), ModalityPerformedProcedureStep,
                                   generate_uid())) == 0x0112
    created = _in_progress("SPS3", "A3")
    created.PerformedProcedureStepStatus = "COMPLETED"
    status = _status(mpps.send_n_create(created, ModalityPerformedProcedureStep,
                                        generate_uid()))
    assert status == 0x0106  # a new step must be IN PROGRESS (PS3.4 F.7.2.1.1)
    assert dicom.worklist.get("SPS3").status == "SCHEDULED"
    assert mpps.is_established
