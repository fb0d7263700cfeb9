"""Re-filing studies under another patient identity, on both backends."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid

from data_factory import make_instance, write
from vesalius.archive.reconcile import PatientIdentity, refile_studies, studies_filed_under
from vesalius.archive.service import ArchiveService
from vesalius.core.errors import Conflict
from vesalius.dicom.attributes import Level


def _store(archive: ArchiveService, tmp_path: Path, patient_id: str, name: str,
           count: int = 2) -> str:
    study = generate_uid()
    series = generate_uid()
    for n in range(count):
        ds = make_instance(patient_id=patient_id, patient_name=name, study_uid=study,
                           series_uid=series, instance_number=n + 1)
        archive.store_file(write(ds, tmp_path))
    return study


def test_refile_moves_studies_and_keeps_blobs(archive: ArchiveService, tmp_path: Path) -> None:
    wrong = _store(archive, tmp_path, "TMP-1", "DOE^JOHN")
    right = _store(archive, tmp_path, "MRN-7", "DOE^JONATHAN")
    before = {i.sop_uid: archive.read_bytes(i) for i in archive.instances(wrong)}
    identity = PatientIdentity("MRN-7", "HOSP", "DOE^JONATHAN^Q", "19800101", "M")

    with archive.writer.engine.begin() as conn:
        assert studies_filed_under(conn, "TMP-1", "") == [wrong]
        moved = refile_studies(conn, [wrong, right, generate_uid()], identity)
    assert moved == sorted([wrong, right])

    found = archive.search(Level.STUDY, [("PatientID", "MRN-7"), ("IssuerOfPatientID", "HOSP")])
    assert sorted(m["0020000D"]["Value"][0] for m in found.matches) == sorted([wrong, right])
    assert archive.search(Level.PATIENT, [("PatientID", "TMP-1")]).matches == []
    for text in archive.metadata_texts(wrong):
        meta = json.loads(text)
        assert meta["00100020"]["Value"] == ["MRN-7"]
        assert meta["00100021"]["Value"] == ["HOSP"]
        assert meta["00100010"]["Value"] == [{"Alphabetic": "DOE^JONATHAN^Q"}]
        assert meta["00100040"]["Value"] == ["M"]
    by_name = archive.search(Level.STUDY, [("PatientName", "doe^jonathan*")])
    assert len(by_name.matches) == 2
    # the stored files are untouched; what is served carries the corrected identity
    stored = {i.sop_uid: archive.blobs.get(i.blob_key) for i in archive.instances(wrong)}
    assert stored == before
    for instance in archive.instances(wrong):
        served = pydicom.dcmread(io.BytesIO(archive.read_bytes(instance)))
        original = pydicom.dcmread(io.BytesIO(before[instance.sop_uid]))
        assert (served.PatientID, served.IssuerOfPatientID, str(served.PatientName)) == \
            ("MRN-7", "HOSP", "DOE^JONATHAN^Q")
        assert served.PatientSex == "M" and served.PatientBirthDate == "19800101"
        assert served.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID
        assert served.PixelData == original.PixelData
        assert served.SOPInstanceUID == original.SOPInstanceUID
        assert archive.dataset(instance).PatientID == "MRN-7"
    with archive.writer.engine.begin() as conn:
        assert studies_filed_under(conn, "TMP-1", "") == []
        assert studies_filed_under(conn, "MRN-7", "HOSP") == sorted([wrong, right])


def test_refile_rolls_back_with_its_transaction(archive: ArchiveService, tmp_path: Path) -> None:
    study = _store(archive, tmp_path, "TMP-2", "ROE^JANE", count=1)
    try:
        with archive.writer.engine.begin() as conn:
            refile_studies(conn, [study], PatientIdentity("MRN-9", "", "ROE^JANE", "", "F"))
            raise RuntimeError("the surrounding unit of work failed")
    except RuntimeError:
        pass
    found = archive.search(Level.STUDY, [("PatientID", "TMP-2")])
    assert [m["0020000D"]["Value"][0] for m in found.matches] == [study]
    assert json.loads(archive.metadata_texts(study)[0])["00100020"]["Value"] == ["TMP-2"]


def test_late_instance_of_a_refiled_study_joins_it(archive: ArchiveService,
                                                   tmp_path: Path) -> None:
    study = generate_uid()
    series = generate_uid()

    def send(n: int, patient_id: str) -> bytes:
        ds = make_instance(patient_id=patient_id, patient_name="LATE^ONE", study_uid=study,
                           series_uid=series, instance_number=n)
        path = write(ds, tmp_path)
        data = path.read_bytes()
        archive.store_file(path)
        return data

    send(1, "TMP-3")
    with archive.writer.engine.begin() as conn:
        refile_studies(conn, [study], PatientIdentity("MRN-3", "HOSP", "LATE^ONE", "", "F"))
    late = send(2, "TMP-3")  # a modality still sending under the temporary ID
    stored = archive.instances(study)
    assert len(stored) == 2
    assert late in {archive.blobs.get(i.blob_key) for i in stored}  # kept exactly as received
    for text in archive.metadata_texts(study):
        assert json.loads(text)["00100020"]["Value"] == ["MRN-3"]
    assert archive.search(Level.PATIENT, [("PatientID", "TMP-3")]).matches == []

    other = generate_uid()  # a study never re-filed still refuses a second identity
    ds = make_instance(patient_id="A-1", study_uid=other, series_uid=generate_uid())
    archive.store_file(write(ds, tmp_path))
    clash = make_instance(patient_id="B-2", study_uid=other, series_uid=generate_uid())
    with pytest.raises(Conflict):
        archive.store_file(write(clash, tmp_path))
