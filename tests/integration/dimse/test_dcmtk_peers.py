"""Vesalius' DIMSE listener against dcmtk peers (echoscu, storescu, findscu, movescu, getscu).

PS3.4 Annex B (storage), Annex C (query/retrieve); dcmtk is the reference peer.
"""

from __future__ import annotations

import re
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from conftest import RunningDicom
from data_factory import make_instance, write
from integration.dimse.dimse_support import (
    LOCALHOST,
    blob_path,
    dataset_sha,
    dcmtk,
    final_status,
    find,
    instance_count,
    received,
    register,
    reset_node_tables,
    stored_bytes,
    stored_instance,
    storescp,
    wire_bytes,
)
from vesalius.config import Settings
from vesalius.dicom.attributes import Level


@pytest.fixture(autouse=True)
def _fresh_tables(settings: Settings) -> None:
    reset_node_tables(settings)


def _testdata(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, name
    return Path(str(path))


def test_echoscu(dicom: RunningDicom) -> None:
    result = dcmtk("echoscu", "-v", "-aet", "ANYONE", "-aec", dicom.ae_title, LOCALHOST,
                   str(dicom.port))
    assert result.returncode == 0, result.stderr
    assert "Received Echo Response (Success)" in result.stderr


def test_echoscu_wrong_called_ae_is_rejected(dicom: RunningDicom) -> None:
    result = dcmtk("echoscu", "-v", "-aec", "NOT_US", LOCALHOST, str(dicom.port))
    assert result.returncode != 0
    assert "Association Rejected" in result.stderr


def test_storescu_uncompressed(dicom: RunningDicom, tmp_path: Path) -> None:
    study = generate_uid()
    files = [write(make_instance(study_uid=study, instance_number=i, seed=i), tmp_path)
             for i in range(3)]
    files.append(_testdata("CT_small.dcm"))
    result = dcmtk("storescu", "-v", "-aec", dicom.ae_title, LOCALHOST, str(dicom.port),
                   *map(str, files))
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("Received Store Response (Success)") == 4
    assert instance_count(dicom) == 4
    for path in files:
        # pydicom wrote these without trailing padding: dcmtk sends them unchanged
        sent = path.read_bytes() if path.parent == tmp_path else wire_bytes(tmp_path, path)
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        stored = stored_bytes(dicom, str(ds.SOPInstanceUID))
        assert dataset_sha(stored) == dataset_sha(sent)
        assert stored_instance(dicom, str(ds.SOPInstanceUID)).transfer_syntax_uid == \
            str(ds.file_meta.TransferSyntaxUID)


@pytest.mark.parametrize(("flag", "name", "syntax"), [
    ("-xs", "JPEG-LL.dcm", "1.2.840.10008.1.2.4.70"),
    ("-xr", "MR_small_RLE.dcm", "1.2.840.10008.1.2.5"),
    ("-xv", "MR_small_jp2klossless.dcm", "1.2.840.10008.1.2.4.90"),
])
def test_storescu_compressed_is_stored_as_sent(dicom: RunningDicom, tmp_path: Path, flag: str,
                                                name: str, syntax: str) -> None:
    path = _testdata(name)
    result = dcmtk("storescu", "-v", flag, "-aec", dicom.ae_title, LOCALHOST, str(dicom.port),
                   str(path))
    assert result.returncode == 0, result.stderr
    assert "Received Store Response (Success)" in result.stderr
    ds = pydicom.dcmread(path)
    sop = str(ds.SOPInstanceUID)
    assert stored_instance(dicom, sop).transfer_syntax_uid == syntax
    stored = stored_bytes(dicom, sop)
    assert dataset_sha(stored) == dataset_sha(wire_bytes(tmp_path, path, flag))
    # the compressed fragments themselves are untouched (no transcoding on receipt)
    assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(stored)).PixelData == ds.PixelData


# -- C-FIND ----------------------------------------------------------------------------

@pytest.fixture
def catalogue(dicom: RunningDicom) -> dict[str, str]:
    """Three patients, four studies, with names, dates and modalities to match on."""
    uids = {name: generate_uid() for name in ("s1", "s2", "s3", "s4", "se1", "se2")}
    instances = [
        make_instance(patient_name="DOE^JOHN", patient_id="PAT1", study_uid=uids["s1"],
                      series_uid=uids["se1"], study_date="20240105", modality="CT",
                      accession="ACC1", instance_number=1),
        make_instance(patient_name="DOE^JOHN", patient_id="PAT1", study_uid=uids["s1"],
                      series_uid=uids["se1"], study_date="20240105", modality="CT",
                      accession="ACC1", instance_number=2, seed=2),
        make_instance(patient_name="DOE^JOHN", patient_id="PAT1", study_uid=uids["s1"],
                      series_uid=uids["se2"], study_date="20240105", modality="MR",
                      accession="ACC1", instance_number=1, seed=3),
        make_instance(patient_name="DOE^JANE", patient_id="PAT2", study_uid=uids["s2"],
                      study_date="20240310", modality="MR", accession="ACC2"),
        make_instance(patient_name="SMITH^ANNA", patient_id="PAT3", study_uid=uids["s3"],
                      study_date="20231231", modality="CT", accession="ACC3"),
        make_instance(patient_name="DOE^JOHN", patient_id="PAT1", study_uid=uids["s4"],
                      study_date="20250601", modality="US", accession="ACC4"),
    ]
    tmp = dicom.settings.data_dir.parent / "catalogue"
    tmp.mkdir()
    for ds in instances:
        dicom.archive.store_file(write(ds, tmp))
    register(dicom, "FINDER", 104, "find")
    return uids


def _values(responses: list[pydicom.Dataset], keyword: str) -> list[str]:
    return sorted(str(r.get(keyword, "")) for r in responses)


def test_findscu_study_root_levels(dicom: RunningDicom, catalogue: dict[str, str],
                                   tmp_path: Path) -> None:
    result, rsps = find(dicom, tmp_path, "-S", ["QueryRetrieveLevel=STUDY", "PatientName=DOE^*",
                                                "StudyInstanceUID", "StudyDate",
                                                "ModalitiesInStudy"])
    assert final_status(result.stderr, "Find") == "Success", result.stderr
    assert _values(rsps, "StudyInstanceUID") == sorted(
        [catalogue["s1"], catalogue["s2"], catalogue["s4"]])
    s1 = next(r for r in rsps if r.StudyInstanceUID == catalogue["s1"])
    assert sorted(s1.ModalitiesInStudy) == ["CT", "MR"]
    assert all(r.QueryRetrieveLevel == "STUDY" for r in rsps)

    # date range, inclusive at both ends (PS3.4 §C.2.2.2.5), same as QIDO
    _, rsps = find(dicom, tmp_path, "-S", ["QueryRetrieveLevel=STUDY",
                                          "StudyDate=20231231-20240310", "StudyInstanceUID"])
    assert _values(rsps, "StudyInstanceUID") == sorted(
        [catalogue["s1"], catalogue["s2"], catalogue["s3"]])
    _, rsps = find(dicom, tmp_path, "-S", ["QueryRetrieveLevel=STUDY", "StudyDate=20240301-",
                                          "StudyInstanceUID"])
    assert _values(rsps, "StudyInstanceUID") == sorted([catalogue["s2"], catalogue["s4"]])
    _, rsps = find(dicom, tmp_path, "-S", ["QueryRetrieveLevel=STUDY", "AccessionNumber=ACC?",
                                          "ModalitiesInStudy=CT", "StudyInstanceUID"])
    assert _values(rsps, "StudyInstanceUID") == sorted([catalogue["s1"], catalogue["s3"]])

    result, rsps = find(dicom, tmp_path, "-S", ["QueryRetrieveLevel=SERIES",
                                                f"StudyInstanceUID={catalogue['s1']}",
                                                "SeriesInstanceUID", "Modality",
                                                "NumberOfSeriesRelatedInstances"])
    assert final_status(result.stderr, "Find") == "Success"
    assert _values(rsps, "SeriesInstanceUID") == sorted([catalogue["se1"], catalogue["se2"]])
    by_series = {r.SeriesInstanceUID: r for r in rsps}
    assert by_series[catalogue["se1"]].Modality == "CT"
    assert int(by_series[catalogue["se1"]].NumberOfSeriesRelatedInstances) == 2
    assert int(by_series[catalogue["se2"]].NumberOfSeriesRelatedInstances) == 1

    _, rsps = find(dicom, tmp_path, "-S", ["QueryRetrieveLevel=IMAGE",
                                          f"StudyInstanceUID={catalogue['s1']}",
                                          f"SeriesInstanceUID={catalogue['se1']}",
                                          "SOPInstanceUID", "InstanceNumber"])
    assert sorted(int(r.InstanceNumber) for r in rsps) == [1, 2]
    assert all(r.SOPInstanceUID for r in rsps)


def test_findscu_patient_root(dicom: RunningDicom, catalogue: dict[str, str],
                              tmp_path: Path) -> None:
    result, rsps = find(dicom, tmp_path, "-P", ["QueryRetrieveLevel=PATIENT", "PatientID",
                                                "PatientName=doe*"])
    assert final_status(result.stderr, "Find") == "Success", result.stderr
    # PN matching is case-insensitive here, as in QIDO-RS
    assert _values(rsps, "PatientID") == ["PAT1", "PAT2"]
    _, rsps = find(dicom, tmp_path, "-P", ["QueryRetrieveLevel=STUDY", "PatientID=PAT1",
                                          "StudyInstanceUID", "StudyDate"])
    assert _values(rsps, "StudyInstanceUID") == sorted([catalogue["s1"], catalogue["s4"]])


def test_findscu_from_unregistered_ae_is_refused(dicom: RunningDicom,
                                                 catalogue: dict[str, str],
                                                 tmp_path: Path) -> None:
    result, rsps = find(dicom, tmp_path, "-S", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID"],
                        calling="STRANGER")
    assert rsps == []
    assert final_status(result.stderr, "Find") == "Unknown Status: 0x124"


def test_findscu_registered_title_from_other_host_is_refused(
        dicom: RunningDicom, catalogue: dict[str, str], tmp_path: Path) -> None:
    dicom.registry.add("FARAWAY", "192.0.2.10", 104, permissions=["find"])
    result, rsps = find(dicom, tmp_path, "-S", ["QueryRetrieveLevel=STUDY", "StudyInstanceUID"],
                        calling="FARAWAY")
    assert rsps == []
    assert final_status(result.stderr, "Find") == "Unknown Status: 0x124"


# -- C-MOVE / C-GET --------------------------------------------------------------------

def _suboperations(output: str) -> dict[str, int]:
    """Sub-operation counts of the last response dcmtk dumps with ``-d``."""
    counts: dict[str, int] = {}
    for name in ("Completed", "Failed", "Warning"):
        found = re.findall(rf"D: {name} Suboperations\s+: (\d+|none)", output)
        if found:
            counts[name.lower()] = 0 if found[-1] == "none" else int(found[-1])
    return counts


def _final_status_code(output: str) -> int:
    found = re.findall(r"D: DIMSE Status\s+: 0x([0-9A-Fa-f]{4})", output)
    assert found, output
    return int(found[-1], 16)


def _move(dicom: RunningDicom, destination: str, *keys: str,
          calling: str = "MOVER") -> str:
    args = ["-d", "-S", "-aet", calling, "-aec", dicom.ae_title, "-aem", destination]
    for key in keys:
        args += ["-k", key]
    result = dcmtk("movescu", *args, LOCALHOST, str(dicom.port), timeout=120)
    return result.stderr + result.stdout


def test_movescu_to_storescp(dicom: RunningDicom, catalogue: dict[str, str],
                             tmp_path: Path) -> None:
    register(dicom, "MOVER", 104, "move")
    with storescp(tmp_path / "dest") as port:
        register(dicom, "DEST", port)
        output = _move(dicom, "DEST", "QueryRetrieveLevel=STUDY",
                       f"StudyInstanceUID={catalogue['s1']}")
    assert _final_status_code(output) == 0
    assert _suboperations(output) == {"completed": 3, "failed": 0, "warning": 0}
    got = received(tmp_path / "dest")
    assert len(got) == 3
    for sop, data in got.items():
        assert dataset_sha(data) == dataset_sha(stored_bytes(dicom, sop))


def test_movescu_series_level(dicom: RunningDicom, catalogue: dict[str, str],
                              tmp_path: Path) -> None:
    register(dicom, "MOVER", 104, "move")
    with storescp(tmp_path / "dest") as port:
        register(dicom, "DEST", port)
        output = _move(dicom, "DEST", "QueryRetrieveLevel=SERIES",
                       f"StudyInstanceUID={catalogue['s1']}",
                       f"SeriesInstanceUID={catalogue['se2']}")
    assert _final_status_code(output) == 0, output
    assert _suboperations(output)["completed"] == 1
    assert len(received(tmp_path / "dest")) == 1


def test_movescu_unknown_destination(dicom: RunningDicom, catalogue: dict[str, str]) -> None:
    register(dicom, "MOVER", 104, "move")
    output = _move(dicom, "NOBODY", "QueryRetrieveLevel=STUDY",
                   f"StudyInstanceUID={catalogue['s1']}")
    assert _final_status_code(output) == 0xA801, output


def test_movescu_without_permission_is_refused(dicom: RunningDicom, catalogue: dict[str, str],
                                               tmp_path: Path) -> None:
    with storescp(tmp_path / "dest") as port:
        register(dicom, "DEST", port)
        output = _move(dicom, "DEST", "QueryRetrieveLevel=STUDY",
                       f"StudyInstanceUID={catalogue['s1']}", calling="STRANGER")
    assert _final_status_code(output) == 0x0124, output
    assert not (tmp_path / "dest").exists() or received(tmp_path / "dest") == {}


def test_movescu_with_a_missing_blob_reports_partial_failure(
        dicom: RunningDicom, catalogue: dict[str, str], tmp_path: Path) -> None:
    register(dicom, "MOVER", 104, "move")
    broken = dicom.archive.locate(Level.SERIES, [("SeriesInstanceUID", catalogue["se2"])])[0]
    blob_path(dicom, broken.sop_uid).unlink()
    with storescp(tmp_path / "dest") as port:
        register(dicom, "DEST", port)
        output = _move(dicom, "DEST", "QueryRetrieveLevel=STUDY",
                       f"StudyInstanceUID={catalogue['s1']}")
    assert _final_status_code(output) == 0xB000, output
    assert _suboperations(output) == {"completed": 2, "failed": 1, "warning": 0}
    assert broken.sop_uid in output  # FailedSOPInstanceUIDList names it
    got = received(tmp_path / "dest")
    assert len(got) == 2 and broken.sop_uid not in got


def test_getscu_delivers_to_output_directory(dicom: RunningDicom, catalogue: dict[str, str],
                                            tmp_path: Path) -> None:
    register(dicom, "GETTER", 104, "get")
    out = tmp_path / "got"
    out.mkdir()
    result = dcmtk("getscu", "-d", "-S", "-aet", "GETTER", "-aec", dicom.ae_title,
                   "-od", str(out), "-k", "QueryRetrieveLevel=STUDY",
                   "-k", f"StudyInstanceUID={catalogue['s1']}", LOCALHOST, str(dicom.port),
                   timeout=120)
    output = result.stderr + result.stdout
    assert _final_status_code(output) == 0, output
    assert _suboperations(output) == {"completed": 3, "failed": 0, "warning": 0}
    got = received(out)
    assert len(got) == 3
    for sop, data in got.items():
        assert dataset_sha(data) == dataset_sha(stored_bytes(dicom, sop))


def test_getscu_without_permission_is_refused(dicom: RunningDicom, catalogue: dict[str, str],
                                              tmp_path: Path) -> None:
    out = tmp_path / "got"
    out.mkdir()
    result = dcmtk("getscu", "-d", "-S", "-aet", "STRANGER", "-aec", dicom.ae_title,
                   "-od", str(out), "-k", "QueryRetrieveLevel=STUDY",
                   "-k", f"StudyInstanceUID={catalogue['s1']}", LOCALHOST, str(dicom.port),
                   timeout=120)
    assert _final_status_code(result.stderr + result.stdout) == 0x0124
    assert list(out.iterdir()) == []


def test_storescu_from_registered_ae_without_store_is_refused(dicom: RunningDicom,
                                                              tmp_path: Path) -> None:
    register(dicom, "READONLY", 104, "find")
    path = write(make_instance(), tmp_path)
    result = dcmtk("storescu", "-v", "-aet", "READONLY", "-aec", dicom.ae_title, LOCALHOST,
                   str(dicom.port), str(path))
    assert "Received Store Response" in result.stderr
    assert "Success" not in result.stderr.split("Received Store Response")[1].splitlines()[0]
    assert instance_count(dicom) == 0
