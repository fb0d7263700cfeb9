"""Every storable file of the pydicom and pydicom-data corpora round-trips over DICOMweb.

STOW-RS with dicomweb-client, WADO-RS back with ``transfer-syntax=*``: the bytes are
identical (SHA-256) and the served metadata equals what pydicom reads from the file.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import replace
from pathlib import Path

import httpx
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient

from conftest import RunningServer
from vesalius.config import Settings
from vesalius.core.uids import is_tolerable_uid
from vesalius.node import build_node


def _corpus() -> list[Path]:
    """Corpus files found on disk (no data-manager lookups: those try the network)."""
    roots = [Path(pydicom.__file__).parent / "data" / "test_files"]
    try:
        import data_store

        roots.append(Path(data_store.__file__).parent / "data")
    except ImportError:
        pass
    return sorted(p for root in roots for p in root.rglob("*") if p.is_file())


def _storable(path: Path) -> bool:
    """Part 10 files with the four identifying UIDs (what an archive accepts)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:
        return False
    if not getattr(ds, "file_meta", None) or "TransferSyntaxUID" not in ds.file_meta:
        return False
    if path.read_bytes()[128:132] != b"DICM":
        return False
    return all(is_tolerable_uid(str(ds.get(k, "")).strip()) for k in (
        "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"))


def _has_bad_uids(path: Path) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(path, stop_before_pixels=True)
    except Exception:
        return False
    return path.read_bytes()[128:132] == b"DICM" and not _storable(path) and all(
        str(ds.get(k, "")).strip() for k in ("SOPClassUID", "SOPInstanceUID",
                                             "StudyInstanceUID", "SeriesInstanceUID"))


def _deliberately_broken(path: Path) -> bool:
    """The corpora's intentionally truncated files (named so by their authors)."""
    return "truncated" in path.name or "too_short" in path.name


CORPUS = [p for p in _corpus() if _storable(p) and not _deliberately_broken(p)]
BROKEN = [p for p in _corpus() if _storable(p) and _deliberately_broken(p)]
BAD_UIDS = [p for p in _corpus() if _has_bad_uids(p)]


def test_corpus_is_substantial() -> None:
    assert len(CORPUS) >= 120, len(CORPUS)


@pytest.mark.parametrize("backend", ["sqlite"])
def test_every_corpus_file_round_trips(tmp_path: Path, backend: str) -> None:
    # Several corpus files share a SOP Instance UID with different bytes (one image in
    # many transfer syntaxes); the "replace" policy lets each be stored and checked in turn.
    settings = replace(Settings(data_dir=tmp_path / "data"), duplicate_policy="replace")
    failures: list[str] = []
    with RunningServer(build_node(settings)) as server:
        client = DICOMwebClient(server.dicomweb, headers=server.headers)
        for path in CORPUS:
            data = path.read_bytes()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ds = pydicom.dcmread(path, stop_before_pixels=True)
            study, series, sop = ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID
            response = _stow(server, data)
            if response.status_code != 200:
                failures.append(f"{path.name}: STOW {response.status_code} {response.text[:200]}")
                continue
            parts = client.retrieve_instance(study, series, sop, media_types=(
                ("application/dicom", "*"),))
            got = _raw_instance(server, study, series, sop)
            if hashlib.sha256(got).hexdigest() != hashlib.sha256(data).hexdigest():
                failures.append(f"{path.name}: retrieved bytes differ")
            assert parts.SOPInstanceUID == sop
            metadata = client.retrieve_instance_metadata(study, series, sop)
            expected = _expected_metadata(ds)
            for key, element in expected.items():
                if key not in metadata:
                    failures.append(f"{path.name}: metadata lacks {key}")
                elif "BulkDataURI" not in metadata[key] and metadata[key] != element:
                    failures.append(f"{path.name}: metadata {key} differs")
    assert not failures, "\n".join(failures)


def test_files_with_malformed_uids_are_rejected_with_a_reason(tmp_path: Path) -> None:
    """Files whose identifiers are not UIDs (hex digests in the corpus) get a clear failure."""
    assert BAD_UIDS, "the corpus is expected to contain files with non-UID identifiers"
    node = build_node(Settings(data_dir=tmp_path / "data"))
    archive = node.archive
    with RunningServer(node) as server:
        for path in BAD_UIDS:
            response = _stow(server, path.read_bytes())
            assert response.status_code == 409, (path.name, response.status_code)
            failed = response.json()["00081198"]["Value"][0]
            assert failed["00081197"]["Value"] == [0xC000]
            assert "not a valid UID" in failed["00000902"]["Value"][0]
    assert archive.reader.counts()["instances"] == 0


def test_deliberately_truncated_files_are_rejected(tmp_path: Path) -> None:
    assert len(BROKEN) >= 2
    node = build_node(Settings(data_dir=tmp_path / "data"))
    archive = node.archive
    with RunningServer(node) as server:
        for path in BROKEN:
            response = _stow(server, path.read_bytes())
            assert response.status_code == 409, path.name
            failed = response.json()["00081198"]["Value"][0]
            assert failed["00081197"]["Value"][0] in (0xC000, 0xA900)
    assert archive.reader.counts()["instances"] == 0
    assert not list(archive.blobs.keys())  # type: ignore[attr-defined]


def _stow(server: RunningServer, data: bytes) -> httpx.Response:
    return server.http.post(f"{server.dicomweb}/studies", content=_multipart(data), timeout=60,
                            headers={"Content-Type": 'multipart/related; type="application/dicom"; '
                                                     "boundary=corpusboundary"})


def _multipart(data: bytes) -> bytes:
    return (b"--corpusboundary\r\nContent-Type: application/dicom\r\n\r\n" + data
            + b"\r\n--corpusboundary--\r\n")


def _raw_instance(server: RunningServer, study: str, series: str, sop: str) -> bytes:
    """The single part of a WADO-RS instance response, exactly as served."""
    response = server.http.get(
        f"{server.dicomweb}/studies/{study}/series/{series}/instances/{sop}",
        headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        timeout=60)
    assert response.status_code == 200, response.text[:300]
    boundary = response.headers["content-type"].split("boundary=")[1].strip('"').encode()
    body = response.content
    start = body.index(b"\r\n\r\n") + 4
    end = body.rindex(b"\r\n--" + boundary + b"--")
    return body[start:end]


def _expected_metadata(ds: pydicom.Dataset) -> dict[str, object]:
    """What pydicom reads, in the DICOM JSON model, for elements it can represent."""
    out: dict[str, object] = {}
    for elem in ds:
        if elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") or elem.tag == 0x7FE00010:
            continue
        try:
            out[f"{int(elem.tag):08X}"] = elem.to_json_dict(None, 1 << 62)
        except Exception:
            continue
    return out
