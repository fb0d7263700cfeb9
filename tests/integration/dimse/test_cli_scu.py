"""Vesalius as an SCU from the command line: echo, send (with transcoding fallback), retrieve."""

from __future__ import annotations

import io
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from conftest import RunningDicom
from data_factory import make_instance, write
from integration.dimse.dimse_support import (
    LOCALHOST,
    cli,
    dataset_sha,
    instance_count,
    received,
    reset_node_tables,
    stored_bytes,
    stored_instance,
    storescp,
)
from vesalius.config import Settings


@pytest.fixture(autouse=True)
def _fresh_tables(settings: Settings) -> None:
    reset_node_tables(settings)


def _add_ae(dicom: RunningDicom, title: str, port: int, allow: str = "") -> None:
    args = ["ae", "add", title, "--host", LOCALHOST, "--port", str(port)]
    if allow:
        args += ["--allow", allow]
    result = cli(dicom.settings, *args)
    assert result.returncode == 0, result.stderr
    assert dicom.registry.get(title) is not None


def test_cli_echo(dicom: RunningDicom, tmp_path: Path) -> None:
    with storescp(tmp_path / "dest") as port:
        _add_ae(dicom, "DEST", port)
        result = cli(dicom.settings, "echo", "DEST")
    assert result.returncode == 0, result.stderr
    assert "status 0x0000" in result.stdout
    result = cli(dicom.settings, "echo", "UNKNOWN")
    assert result.returncode == 2 and "not registered" in result.stderr


def test_cli_send_study_as_stored(dicom: RunningDicom, tmp_path: Path) -> None:
    study = generate_uid()
    sent = [make_instance(study_uid=study, instance_number=i, seed=i) for i in range(3)]
    for ds in sent:
        dicom.archive.store_file(write(ds, tmp_path))
    dicom.archive.store_file(write(make_instance(), tmp_path))  # another study: not sent
    with storescp(tmp_path / "dest") as port:
        _add_ae(dicom, "DEST", port)
        result = cli(dicom.settings, "send", "study", study, "--to", "DEST")
    assert result.returncode == 0, result.stderr
    assert "sent 3, warnings 0, failed 0" in result.stdout
    got = received(tmp_path / "dest")
    assert set(got) == {ds.SOPInstanceUID for ds in sent}
    for sop, data in got.items():
        assert dataset_sha(data) == dataset_sha(stored_bytes(dicom, sop))


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm",
                                  "JPEG-LL.dcm"])
def test_cli_send_transcodes_for_an_uncompressed_only_peer(dicom: RunningDicom,
                                                           tmp_path: Path, name: str) -> None:
    source = Path(str(get_testdata_file(name)))
    original = pydicom.dcmread(source)
    copy = tmp_path / name
    shutil.copy(source, copy)
    dicom.archive.store_file(copy)
    stored_ts = stored_instance(dicom, original.SOPInstanceUID).transfer_syntax_uid
    assert stored_ts == original.file_meta.TransferSyntaxUID

    with storescp(tmp_path / "plain", accept_all=False) as port:
        _add_ae(dicom, "PLAIN", port)
        result = cli(dicom.settings, "send", "instance", original.SOPInstanceUID,
                     "--to", "PLAIN")
    assert result.returncode == 0, result.stderr + result.stdout
    assert "sent 1, warnings 0, failed 0" in result.stdout
    (data,) = received(tmp_path / "plain").values()
    got = pydicom.dcmread(io.BytesIO(data))
    assert got.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2.1", "1.2.840.10008.1.2")
    assert got.SOPInstanceUID == original.SOPInstanceUID
    assert np.array_equal(got.pixel_array, original.pixel_array)  # lossless both ways
    # the archive still holds the compressed original
    assert stored_instance(dicom, original.SOPInstanceUID).transfer_syntax_uid == stored_ts


def test_cli_send_compressed_to_accept_all_peer_is_not_transcoded(dicom: RunningDicom,
                                                                  tmp_path: Path) -> None:
    source = Path(str(get_testdata_file("MR_small_jp2klossless.dcm")))
    copy = tmp_path / "j2k.dcm"
    shutil.copy(source, copy)
    dicom.archive.store_file(copy)
    original = pydicom.dcmread(source)
    with storescp(tmp_path / "all") as port:
        _add_ae(dicom, "ALL", port)
        result = cli(dicom.settings, "send", "series", original.SeriesInstanceUID,
                     "--to", "ALL")
    assert result.returncode == 0, result.stderr
    (data,) = received(tmp_path / "all").values()
    got = pydicom.dcmread(io.BytesIO(data))
    assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.90"
    assert got.PixelData == original.PixelData


@pytest.fixture
def peer(tmp_path: Path, dicom: RunningDicom) -> Iterator[RunningDicom]:
    """A second Vesalius (own SQLite installation) that holds priors and knows us."""
    with RunningDicom(Settings(data_dir=tmp_path / "peer", ae_title="PEER")) as running:
        running.registry.add(dicom.ae_title, LOCALHOST, dicom.port,
                             permissions=["find", "get", "move"])
        yield running


def _priors(peer: RunningDicom, tmp_path: Path) -> list[pydicom.Dataset]:
    folder = tmp_path / "priors"
    folder.mkdir()
    study_a, study_b = generate_uid(), generate_uid()
    priors = [make_instance(patient_id="PRIOR1", study_uid=study_a, seed=i, instance_number=i)
              for i in range(2)]
    priors.append(make_instance(patient_id="PRIOR1", study_uid=study_b, modality="MR", seed=9))
    for ds in priors:
        peer.archive.store_file(write(ds, folder))
    peer.archive.store_file(write(make_instance(patient_id="OTHER"), folder))
    # a Basic Text SR in one of the studies: retrieves must not be limited to images
    sr = pydicom.dcmread(str(get_testdata_file("test-SR.dcm")))
    sr.PatientID = "PRIOR1"
    sr.StudyInstanceUID = study_b
    sr.file_meta.MediaStorageSOPInstanceUID = sr.SOPInstanceUID
    sr.save_as(folder / "sr.dcm", enforce_file_format=True)
    peer.archive.store_file(folder / "sr.dcm")
    priors.append(sr)
    return priors


@pytest.mark.parametrize("method", ["get", "move"])
def test_cli_retrieve_priors(dicom: RunningDicom, peer: RunningDicom, tmp_path: Path,
                             method: str) -> None:
    priors = _priors(peer, tmp_path)
    _add_ae(dicom, "PEER", peer.port, "store")
    result = cli(dicom.settings, "retrieve", "--from", "PEER", "--patient-id", "PRIOR1",
                 "--method", method)
    assert result.returncode == 0, result.stderr + result.stdout
    assert "retrieved 4, warnings 0, failed 0" in result.stdout
    assert instance_count(dicom) == 4
    for ds in priors:
        ours = stored_bytes(dicom, ds.SOPInstanceUID)
        theirs = stored_bytes(peer, ds.SOPInstanceUID)
        assert dataset_sha(ours) == dataset_sha(theirs)
