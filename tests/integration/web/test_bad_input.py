"""Hostile and broken input over real HTTP: an exact status and a reason, never a 500,
and nothing already stored is lost or altered (PS3.18 §10.5.3 failure reasons).

Each test stores a baseline instance first and checks afterwards that it is served
with the same SHA-256, that the instance count is what it should be and that no
orphan blob was left behind.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from conftest import RunningServer
from data_factory import make_instance, to_bytes
from vesalius.config import Settings
from vesalius.node import build_node

STOW_TYPE = 'multipart/related; type="application/dicom"; boundary=XyZ'
DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'
CANNOT_UNDERSTAND = 0xC000
DATA_SET_DOES_NOT_MATCH_SOP_CLASS = 0xA900
OUT_OF_RESOURCES = 0xA700
DUPLICATE_SOP_INSTANCE = 0x0111
STUDY_UID_MISMATCH = 0xC409


# -- helpers ----------------------------------------------------------------------------
def part(data: bytes, content_type: str = "application/dicom") -> bytes:
    return f"--XyZ\r\nContent-Type: {content_type}\r\n\r\n".encode() + data + b"\r\n"


def body_of(*datas: bytes) -> bytes:
    return b"".join(part(d) for d in datas) + b"--XyZ--\r\n"


def post(server: RunningServer, url: str, content: bytes | Iterator[bytes],
         content_type: str = STOW_TYPE, **headers: str) -> httpx.Response:
    return server.http.post(url, content=content, timeout=60,
                            headers={"Content-Type": content_type, **headers})


def trickle(body: bytes, size: int = 4096) -> Iterator[bytes]:
    """A chunked body sent slowly enough that the server reads it chunk by chunk."""
    for i in range(0, len(body), size):
        yield body[i:i + size]
        time.sleep(0.005)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def instance_url(server: RunningServer, ds: Dataset) -> str:
    return (f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}")


def served_bytes(server: RunningServer, ds: Dataset) -> bytes:
    response = server.http.get(instance_url(server, ds), headers={"Accept": DICOM_ANY}, timeout=60)
    assert response.status_code == 200, response.text[:300]
    boundary = re.search(r"boundary=\"?([^\";]+)", response.headers["content-type"])
    assert boundary is not None
    delimiter = b"\r\n--" + boundary.group(1).encode()
    segments = (b"\r\n" + response.content).split(delimiter)
    assert len(segments) == 3 and segments[2].startswith(b"--")
    return segments[1].partition(b"\r\n\r\n")[2]


def failures(response: httpx.Response) -> list[tuple[int, str]]:
    """(FailureReason, Error Comment) of every item of the FailedSOPSequence."""
    items = response.json().get("00081198", {}).get("Value", [])
    return [(item["00081197"]["Value"][0], item["00000902"]["Value"][0]) for item in items]


def referenced(response: httpx.Response) -> list[str]:
    items = response.json().get("00081199", {}).get("Value", [])
    return [item["00081155"]["Value"][0] for item in items]


def assert_problem(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, (response.status_code, response.text[:300])
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert isinstance(detail, str) and len(detail) > 5
    return detail


def files_under(root: Path) -> set[str]:
    """Every file below ``root`` except the SQLite database and its journals."""
    return {str(p.relative_to(root)) for p in root.rglob("*")
            if p.is_file() and not p.name.startswith("index.sqlite3")}


@dataclass
class Baseline:
    server: RunningServer
    ds: Dataset
    data: bytes

    def check(self, instances: int = 1, extra_blobs: frozenset[str] = frozenset()) -> None:
        """The baseline instance is served unchanged; counts and blobs are as expected."""
        assert sha(served_bytes(self.server, self.ds)) == sha(self.data)
        archive = self.server.archive
        assert archive.reader.counts()["instances"] == instances
        keys = set(archive.blobs.keys())  # type: ignore[attr-defined]
        assert keys == {sha(self.data)} | extra_blobs
        # Nothing is left in the STOW spool or the blob store's temp area.
        assert not [p for p in (archive.settings.data_dir / "tmp").glob("*")]
        assert not [p for p in (archive.settings.blob_dir / ".tmp").glob("*")]


def store_baseline(server: RunningServer) -> Baseline:
    ds = make_instance(patient_name="BASE^LINE", seed=42)
    data = to_bytes(ds)
    response = post(server, f"{server.dicomweb}/studies", body_of(data))
    assert response.status_code == 200, response.text
    return Baseline(server, ds, data)


@pytest.fixture
def baseline(server: RunningServer) -> Baseline:
    return store_baseline(server)


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


# -- not DICOM at all ----------------------------------------------------------------------
@pytest.mark.parametrize("payload", ["random", "png", "empty", "json", "dicm-prefix-only"])
def test_non_dicom_part_is_409_cannot_understand(baseline: Baseline, payload: str) -> None:
    data = {
        "random": np.random.default_rng(1).bytes(4096),
        "png": png_bytes(),
        "empty": b"",
        "json": b'{"00080018": {"vr": "UI", "Value": ["1.2.3"]}}',
        "dicm-prefix-only": b"\0" * 128 + b"DICM" + np.random.default_rng(2).bytes(300),
    }[payload]
    response = post(baseline.server, f"{baseline.server.dicomweb}/studies", body_of(data))
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/dicom+json")
    ((reason, comment),) = failures(response)
    assert reason == CANNOT_UNDERSTAND
    assert re.search(r"DICOM|too short|meta", comment), comment
    assert "00081199" not in response.json()
    baseline.check()


def test_partial_success_is_202_with_both_sequences(baseline: Baseline) -> None:
    good = make_instance(seed=3)
    response = post(baseline.server, f"{baseline.server.dicomweb}/studies",
                    body_of(to_bytes(good), png_bytes()))
    assert response.status_code == 202, response.text
    assert referenced(response) == [good.SOPInstanceUID]
    assert [r for r, _ in failures(response)] == [CANNOT_UNDERSTAND]
    assert served_bytes(baseline.server, good) == to_bytes(good)
    baseline.check(instances=2, extra_blobs=frozenset({sha(to_bytes(good))}))


def test_part_with_a_non_dicom_content_type_fails(baseline: Baseline) -> None:
    good = make_instance(seed=4)
    body = part(to_bytes(good), "image/jpeg") + b"--XyZ--\r\n"
    response = post(baseline.server, f"{baseline.server.dicomweb}/studies", body)
    assert response.status_code == 409
    ((reason, comment),) = failures(response)
    assert reason == CANNOT_UNDERSTAND and "content type" in comment
    baseline.check()


# -- truncated DICOM -----------------------------------------------------------------------
@pytest.mark.parametrize("cut", [
    "half", "in-meta", "in-header", "mid-element"])
def test_truncated_dicom_is_rejected_without_leftovers(baseline: Baseline, cut: str) -> None:
    ds = make_instance(rows=64, columns=64, seed=5)
    data = to_bytes(ds)
    marker = data.index(b"TEST^PATIENT")
    at = {"half": len(data) // 2, "in-meta": 150, "in-header": marker - 4,
          "mid-element": marker + 5}[cut]
    response = post(baseline.server, f"{baseline.server.dicomweb}/studies", body_of(data[:at]))
    assert response.status_code == 409, (cut, response.text)
    ((reason, comment),) = failures(response)
    assert reason in (CANNOT_UNDERSTAND, DATA_SET_DOES_NOT_MATCH_SOP_CLASS), (reason, comment)
    assert comment
    assert baseline.server.http.get(instance_url(baseline.server, ds),
                                    headers={"Accept": DICOM_ANY}).status_code == 404
    baseline.check()


# -- missing identifiers -------------------------------------------------------------------
@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID",
                                     "SOPClassUID"])
def test_missing_identifier_names_the_attribute(baseline: Baseline, keyword: str) -> None:
    ds = make_instance(seed=6)
    del ds[keyword]
    ds.preamble = b"\0" * 128
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=False)
    data = buffer.getvalue()
    assert data[128:132] == b"DICM"
    response = post(baseline.server, f"{baseline.server.dicomweb}/studies", body_of(data))
    assert response.status_code == 409, response.text
    ((reason, comment),) = failures(response)
    assert reason == DATA_SET_DOES_NOT_MATCH_SOP_CLASS
    assert keyword in comment, comment
    baseline.check()


# -- junk identifiers inside the data ------------------------------------------------------
@pytest.mark.parametrize("junk", [
    "../../etc/passwd", "1.2.3/../../../tmp/x",
    "1.2.3\\..\\..\\x",
    "1.2.840.abc",
    "1." * 40 + "1", "/etc/passwd", "1.2.3 OR 1=1",
])
@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_junk_uids_in_the_data_are_rejected(baseline: Baseline, tmp_path: Path, keyword: str,
                                           junk: str) -> None:
    ds = make_instance(seed=7)
    setattr(ds, keyword, junk)
    if keyword == "SOPInstanceUID":
        ds.file_meta.MediaStorageSOPInstanceUID = junk
    before = files_under(tmp_path)
    response = post(baseline.server, f"{baseline.server.dicomweb}/studies", body_of(to_bytes(ds)))
    assert response.status_code == 409, response.text
    ((reason, comment),) = failures(response)
    assert reason == CANNOT_UNDERSTAND
    assert keyword in comment and "not a valid UID" in comment, comment
    assert files_under(tmp_path) == before
    assert not (tmp_path / "etc").exists() and not (tmp_path / "tmp").exists()
    baseline.check()


# -- junk identifiers in the URL -----------------------------------------------------------
@pytest.mark.parametrize("path", [
    "/studies/..%2F..%2Fetc/series/x/metadata",
    "/studies/..%2F..%2Fetc%2Fpasswd",
    "/studies/1.2.3%00/metadata",
    "/studies/1.2.3%00",
    "/studies/%2E%2E/series/%2E%2E/instances/%2E%2E/metadata",
    "/studies/1.2.3/series/..%5C..%5Cwindows/instances/1/frames/1",
    "/studies/1.2.3/series/1.2.3/instances/..%2F..%2Fblobs/bulkdata/7FE00010",
    "/studies/1.2.3/series/1.2.3/instances/1.2.3/bulkdata/..%2F..%2Fetc",
    "/studies/" + "1." * 2000 + "1/metadata",
    "/studies/" + "9" * 65 + "/metadata",
    "/studies/%C3%A9t%C3%A9/metadata",
    "/studies/1.2.3/rendered?window=1,1",
    "/studies/abc/series",
    "/studies/1.2.*/series",
], ids=lambda path: path[:40])
@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_junk_uids_in_the_path_are_400_or_404(baseline: Baseline, tmp_path: Path, path: str,
                                              method: str) -> None:
    before = files_under(tmp_path)
    response = baseline.server.http.request(method, baseline.server.dicomweb + path, timeout=30)
    assert response.status_code in (400, 404, 405), (path, response.status_code, response.text)
    if response.status_code == 400:
        assert response.json()["detail"]
    assert files_under(tmp_path) == before
    baseline.check()


def test_uid_path_params_are_validated_with_a_reason(baseline: Baseline) -> None:
    base = baseline.server.dicomweb
    for path in ("/studies/1.2.3%00/metadata", "/studies/1.2.3.",
                 "/studies/" + "9" * 65 + "/metadata", "/studies/abc/series",
                 f"/studies/{baseline.ds.StudyInstanceUID}/series/x/metadata"):
        detail = assert_problem(baseline.server.http.get(base + path), 400)
        assert "UID" in detail, (path, detail)
    # STOW-RS to a junk study path.
    detail = assert_problem(post(baseline.server, base + "/studies/1.2.abc",
                                 body_of(baseline.data)), 400)
    assert "UID" in detail
    baseline.check()


# -- content types and multipart framing ---------------------------------------------------
@pytest.mark.parametrize("content_type", [
    "application/json", "multipart/form-data; boundary=XyZ", "application/dicom",
    'multipart/related; type="image/jpeg"; boundary=XyZ', "text/plain", "",
    'multipart/mixed; type="application/dicom"; boundary=XyZ',
])
def test_wrong_content_type_is_415(baseline: Baseline, content_type: str) -> None:
    data = to_bytes(make_instance(seed=8))
    body = data if content_type == "application/dicom" else body_of(data)
    headers = {"Content-Type": content_type} if content_type else {}
    response = baseline.server.http.post(f"{baseline.server.dicomweb}/studies", content=body,
                                         headers=headers)
    detail = assert_problem(response, 415)
    assert "multipart/related" in detail
    baseline.check()


def test_multipart_related_without_boundary_is_400(baseline: Baseline) -> None:
    response = post(baseline.server, f"{baseline.server.dicomweb}/studies", body_of(baseline.data),
                    content_type='multipart/related; type="application/dicom"')
    assert "boundary" in assert_problem(response, 400)
    baseline.check()


@pytest.mark.parametrize("body", [
    b"this is not a multipart body at all\r\n",
    b"--WRONG\r\nContent-Type: application/dicom\r\n\r\nxx\r\n--WRONG--\r\n",
    b"",
    b"--XyZ--\r\n",
    b"--XyZ\r\nContent-Type application/dicom\r\n\r\n",
])
def test_malformed_multipart_is_400(baseline: Baseline, body: bytes) -> None:
    response = post(baseline.server, f"{baseline.server.dicomweb}/studies", body)
    assert_problem(response, 400)
    baseline.check()


def test_missing_closing_boundary_stores_nothing(baseline: Baseline) -> None:
    ds = make_instance(seed=9)
    response = post(baseline.server, f"{baseline.server.dicomweb}/studies", part(to_bytes(ds)))
    assert_problem(response, 400)
    assert baseline.server.http.get(instance_url(baseline.server, ds)).status_code == 404
    baseline.check()


def test_truncated_mid_part_keeps_complete_parts_only(baseline: Baseline) -> None:
    first, second = make_instance(seed=10), make_instance(seed=11)
    data = to_bytes(second)
    body = part(to_bytes(first)) + part(data)[: len(data) // 2]
    response = post(baseline.server, f"{baseline.server.dicomweb}/studies", body)
    assert response.status_code == 202, response.text
    assert referenced(response) == [first.SOPInstanceUID]
    ((reason, comment),) = failures(response)
    assert reason == CANNOT_UNDERSTAND and "boundary" in comment
    assert baseline.server.http.get(instance_url(baseline.server, second)).status_code == 404
    baseline.check(instances=2, extra_blobs=frozenset({sha(to_bytes(first))}))


def test_garbage_after_a_complete_part_is_reported(baseline: Baseline) -> None:
    """A body that breaks down after a stored part must not be answered with 200."""
    first = make_instance(seed=12)
    body = part(to_bytes(first)) + b"--XyZ\r\n" + b"Bad Header Line Without Colon\r\n\r\n"
    # Sent in one piece, the parser fails before the first part is stored: 400, nothing kept.
    assert "malformed" in assert_problem(
        post(baseline.server, f"{baseline.server.dicomweb}/studies", body), 400)
    baseline.check()
    # Trickled, the first part is stored before the breakdown: 202 with a failure entry.

    def pieces() -> Iterator[bytes]:
        yield part(to_bytes(first)) + b"--XyZ\r\n"
        time.sleep(0.2)
        yield b"Bad Header Line Without Colon\r\n\r\n"

    response = post(baseline.server, f"{baseline.server.dicomweb}/studies", pieces())
    assert response.status_code == 202, response.text
    assert referenced(response) == [first.SOPInstanceUID]
    ((reason, comment),) = failures(response)
    assert reason == CANNOT_UNDERSTAND and "malformed" in comment
    baseline.check(instances=2, extra_blobs=frozenset({sha(to_bytes(first))}))


# -- size limits ---------------------------------------------------------------------------
@pytest.fixture
def small_server(settings: Settings) -> Iterator[RunningServer]:
    limited = replace(settings, max_request_bytes=64 * 1024, max_instance_bytes=24 * 1024)
    with RunningServer(build_node(limited)) as running:
        yield running


def test_body_over_the_limit_is_413(small_server: RunningServer) -> None:
    baseline = store_baseline(small_server)
    big = to_bytes(make_instance(rows=256, columns=256, seed=13))  # 128 KiB of pixels
    response = post(small_server, f"{small_server.dicomweb}/studies", body_of(big))
    assert "maximum" in assert_problem(response, 413)
    baseline.check()


def test_chunked_body_over_the_limit_is_413(small_server: RunningServer) -> None:
    baseline = store_baseline(small_server)
    big = body_of(to_bytes(make_instance(rows=256, columns=256, seed=14)))

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    try:
        response = post(small_server, f"{small_server.dicomweb}/studies", chunks())
    except httpx.TransportError:
        pass  # the server may close the connection before the client finished sending
    else:
        assert "maximum" in assert_problem(response, 413)
    baseline.check()


def test_limit_reached_after_a_stored_part_is_not_a_silent_success(
        small_server: RunningServer) -> None:
    baseline = store_baseline(small_server)
    first = make_instance(seed=15)
    filler = [to_bytes(make_instance(rows=64, columns=64, seed=s)) for s in range(16, 26)]
    body = body_of(to_bytes(first), *filler)
    assert len(body) > 64 * 1024
    response = post(small_server, f"{small_server.dicomweb}/studies", trickle(body))
    assert response.status_code == 202, response.text
    stored = referenced(response)
    assert stored and stored[0] == first.SOPInstanceUID
    assert any(reason == OUT_OF_RESOURCES and "maximum" in comment
               for reason, comment in failures(response)), response.text
    assert small_server.archive.reader.counts()["instances"] == 1 + len(stored)
    assert sha(served_bytes(small_server, baseline.ds)) == sha(baseline.data)


def test_instance_over_the_limit_fails_with_out_of_resources(
        small_server: RunningServer) -> None:
    baseline = store_baseline(small_server)
    big = make_instance(rows=128, columns=128, seed=16)  # 32 KiB of pixels
    small = make_instance(seed=17)
    response = post(small_server, f"{small_server.dicomweb}/studies", body_of(to_bytes(big)))
    assert response.status_code == 409, response.text
    ((reason, comment),) = failures(response)
    assert reason == OUT_OF_RESOURCES and "maximum" in comment

    response = post(small_server, f"{small_server.dicomweb}/studies",
                    body_of(to_bytes(big), to_bytes(small)))
    assert response.status_code == 202
    assert referenced(response) == [small.SOPInstanceUID]
    assert [r for r, _ in failures(response)] == [OUT_OF_RESOURCES]
    baseline.check(instances=2, extra_blobs=frozenset({sha(to_bytes(small))}))


# -- study mismatch and duplicates ---------------------------------------------------------
def test_stow_to_another_study_fails_for_that_instance(baseline: Baseline) -> None:
    study = baseline.ds.StudyInstanceUID
    stranger = make_instance(seed=18)
    member = make_instance(seed=19, study_uid=study, series_uid=generate_uid())
    url = f"{baseline.server.dicomweb}/studies/{study}"
    response = post(baseline.server, url, body_of(to_bytes(stranger)))
    assert response.status_code == 409, response.text
    ((reason, comment),) = failures(response)
    assert reason == STUDY_UID_MISMATCH and "StudyInstanceUID" in comment
    assert response.json()["00081198"]["Value"][0]["00081155"]["Value"] == [
        stranger.SOPInstanceUID]
    assert baseline.server.http.get(instance_url(baseline.server, stranger)).status_code == 404

    response = post(baseline.server, url, body_of(to_bytes(stranger), to_bytes(member)))
    assert response.status_code == 202
    assert referenced(response) == [member.SOPInstanceUID]
    assert response.json()["00081190"]["Value"] == [f"{baseline.server.dicomweb}/studies/{study}"]
    baseline.check(instances=2, extra_blobs=frozenset({sha(to_bytes(member))}))


def test_same_instance_twice_is_idempotent(baseline: Baseline) -> None:
    response = post(baseline.server, f"{baseline.server.dicomweb}/studies", body_of(baseline.data))
    assert response.status_code == 200, response.text
    assert referenced(response) == [baseline.ds.SOPInstanceUID]
    assert "00081198" not in response.json()
    baseline.check()


def test_same_uid_with_other_bytes_is_409_and_the_original_kept(baseline: Baseline) -> None:
    changed = make_instance(patient_name="BASE^LINE", seed=43,
                            study_uid=baseline.ds.StudyInstanceUID,
                            series_uid=baseline.ds.SeriesInstanceUID,
                            sop_uid=baseline.ds.SOPInstanceUID)
    assert to_bytes(changed) != baseline.data
    response = post(baseline.server, f"{baseline.server.dicomweb}/studies",
                    body_of(to_bytes(changed)))
    assert response.status_code == 409, response.text
    ((reason, comment),) = failures(response)
    assert reason == DUPLICATE_SOP_INSTANCE and "SOPInstanceUID" in comment
    baseline.check()


# -- chunked uploads -----------------------------------------------------------------------
def test_chunked_upload_is_stored(baseline: Baseline) -> None:
    datasets = [make_instance(seed=s, rows=128, columns=128) for s in (20, 21, 22)]
    body = body_of(*(to_bytes(ds) for ds in datasets))

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 1000):
            yield body[i:i + 1000]

    response = post(baseline.server, f"{baseline.server.dicomweb}/studies", chunks())
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 200, response.text
    assert referenced(response) == [ds.SOPInstanceUID for ds in datasets]
    for ds in datasets:
        assert served_bytes(baseline.server, ds) == to_bytes(ds)
    baseline.check(instances=4, extra_blobs=frozenset(sha(to_bytes(ds)) for ds in datasets))


def test_dicomweb_client_large_upload(baseline: Baseline) -> None:
    """dicomweb-client sends bodies over ~1 MB chunked (FIELD-NOTES)."""
    big = make_instance(rows=1024, columns=768, seed=23)  # 1.5 MiB of pixels
    big.preamble = b"\0" * 128
    client = DICOMwebClient(baseline.server.dicomweb, headers=baseline.server.headers)
    result = client.store_instances([big])
    assert result["00081199"].value[0].ReferencedSOPInstanceUID == big.SOPInstanceUID
    served = pydicom.dcmread(io.BytesIO(served_bytes(baseline.server, big)))
    assert served.SOPInstanceUID == big.SOPInstanceUID
    assert served.PixelData == big.PixelData


def test_dicomweb_client_dataset_without_preamble(baseline: Baseline) -> None:
    ds = make_instance(seed=27)
    assert getattr(ds, "preamble", None) is None
    client = DICOMwebClient(baseline.server.dicomweb, headers=baseline.server.headers)
    result = client.store_instances([ds])
    assert result["00081199"].value[0].ReferencedSOPInstanceUID == ds.SOPInstanceUID


# -- QIDO-RS with junk ---------------------------------------------------------------------
@pytest.mark.parametrize("params", [
    {"limit": "abc"}, {"limit": "-1"}, {"limit": "0"}, {"offset": "-1"}, {"offset": "x"},
    {"limit": "1e3"}, {"Foo": "1"}, {"includefield": "NotAnAttribute"},
    {"StudyInstanceUID": "1.2.*"}, {"StudyInstanceUID": "1.2.?"},
    {"PatientName": "A" * 5000}, {"StudyInstanceUID": "1" * 5000},
    {"PatientName": "A\x00B"}, {"Patient\x00Name": "x"}, {"StudyDate": "-"},
    {"InstanceNumber": "one"},
])
@pytest.mark.parametrize("level", ["studies", "series", "instances"])
def test_qido_junk_is_400(baseline: Baseline, level: str, params: dict[str, str]) -> None:
    response = baseline.server.http.get(f"{baseline.server.dicomweb}/{level}", params=params)
    if "InstanceNumber" in params and level != "instances":
        # Not a key at this level: ignored and named in a Warning, not matched.
        assert response.status_code == 200
        assert "InstanceNumber" in response.headers["warning"]
    else:
        assert_problem(response, 400)
    baseline.check()


@pytest.mark.parametrize("params", [
    {"StudyInstanceUID": ","}, {"StudyInstanceUID": "\\"},
    {"InstanceNumber": "9" * 30}, {"SeriesNumber": "-" + "9" * 30},
])
def test_qido_edge_values_are_not_500(baseline: Baseline, params: dict[str, str]) -> None:
    response = baseline.server.http.get(f"{baseline.server.dicomweb}/instances", params=params)
    assert response.status_code in (200, 400), (params, response.status_code, response.text)
    if response.status_code == 200:
        assert response.json() == []
    baseline.check()


def test_qido_still_finds_the_baseline(baseline: Baseline) -> None:
    response = baseline.server.http.get(f"{baseline.server.dicomweb}/studies",
                                        params={"PatientName": "BASE^LINE", "limit": "5"})
    assert response.status_code == 200
    (match,) = response.json()
    assert match["0020000D"]["Value"] == [baseline.ds.StudyInstanceUID]


# -- text values the database may refuse ---------------------------------------------------
def test_nul_in_text_values_is_not_lost_silently(baseline: Baseline) -> None:
    ds = make_instance(seed=24)
    ds.PatientName = "NUL\x00NAME"
    ds.StudyDescription = "with\x00nul"
    response = post(baseline.server, f"{baseline.server.dicomweb}/studies", body_of(to_bytes(ds)))
    # Tolerant reading: stored as received, on every backend.
    assert response.status_code == 200, response.text
    assert served_bytes(baseline.server, ds) == to_bytes(ds)
    baseline.check(instances=2, extra_blobs=frozenset({sha(to_bytes(ds))}))


def test_random_bytes_never_cause_a_500(baseline: Baseline) -> None:
    """Bit flips all over a valid file: each upload succeeds or fails with a reason."""
    rng = np.random.default_rng(25)
    source = bytearray(to_bytes(make_instance(seed=26)))
    stored = 1
    keys = {sha(baseline.data)}
    for _ in range(25):
        mutated = bytearray(source)
        for position in rng.integers(128, 400, size=4):
            mutated[int(position)] = int(rng.integers(0, 256))
        response = post(baseline.server, f"{baseline.server.dicomweb}/studies",
                        body_of(bytes(mutated)))
        assert response.status_code in (200, 409), (response.status_code, response.text)
        if response.status_code == 200:
            stored += 1
            keys.add(sha(bytes(mutated)))
            source = bytearray(to_bytes(make_instance(seed=int(rng.integers(1000)))))
        else:
            assert failures(response)[0][1]
    baseline.check(instances=stored, extra_blobs=frozenset(keys - {sha(baseline.data)}))
    assert os.path.exists(baseline.server.archive.settings.data_dir)
