"""WADO-RS (PS3.18 §10.4), WADO-URI (PS3.18 §9) and DELETE over real HTTP on loopback.

Every test stores instances with STOW-RS and reads them back through the public
HTTP surface, on SQLite and on PostgreSQL (the ``server`` fixture is parametrized).
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from pathlib import Path

import httpx
import numpy as np
import pydicom
import pytest
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.uid import generate_uid

from conftest import RunningServer
from data_factory import make_instance, to_bytes

EXPLICIT_LE = "1.2.840.10008.1.2.1"
DICOM_ANY = 'multipart/related; type="application/dicom"; transfer-syntax=*'


# -- helpers ----------------------------------------------------------------------------
def _testfile(name: str) -> Path:
    path = get_testdata_file(name)
    assert path is not None, name
    return Path(str(path))


def _read(data: bytes) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(io.BytesIO(data))


def stow(server: RunningServer, *datas: bytes) -> httpx.Response:
    body = b"".join(b"--b0undary\r\nContent-Type: application/dicom\r\n\r\n" + d + b"\r\n"
                    for d in datas) + b"--b0undary--\r\n"
    response = server.http.post(f"{server.dicomweb}/studies", content=body, timeout=60, headers={
              "Content-Type": 'multipart/related; type="application/dicom"; boundary=b0undary'})
    assert response.status_code == 200, response.text[:500]
    return response


def parts_of(response: httpx.Response) -> list[tuple[dict[str, str], bytes]]:
    """The parts of a multipart/related response, exactly as served."""
    match = re.search(r'boundary="?([^";,\s]+)"?', response.headers["content-type"])
    assert match is not None, response.headers["content-type"]
    delimiter = b"\r\n--" + match.group(1).encode()
    segments = (b"\r\n" + response.content).split(delimiter)
    assert segments[0] == b"", "no preamble expected"
    assert segments[-1].startswith(b"--"), "closing delimiter missing"
    out = []
    for segment in segments[1:-1]:
        head, _, body = segment[2:].partition(b"\r\n\r\n")
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        out.append((headers, body))
    return out


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def instance_url(server: RunningServer, ds: Dataset) -> str:
    return (f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
            f"/instances/{ds.SOPInstanceUID}")


def expected_metadata(ds: Dataset) -> dict[str, object]:
    """pydicom's DICOM JSON for every element that is not bulk data."""
    out: dict[str, object] = {}
    for elem in ds:
        if elem.VR in ("OB", "OW", "OF", "OD", "OL", "OV", "UN") or elem.tag == 0x7FE00010:
            continue
        out[f"{int(elem.tag):08X}"] = elem.to_json_dict(None, 1 << 62)
    return out


def decoded_image(data: bytes, fmt: str) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    assert image.format == fmt
    image.load()
    return image


def study_of_three(server: RunningServer) -> tuple[str, list[Dataset], list[bytes]]:
    """Series A (instances 3, 1 stored in that order) and series B (one instance)."""
    study = generate_uid()
    series_a, series_b = generate_uid(), generate_uid()
    datasets = [
        make_instance(study_uid=study, series_uid=series_a, instance_number=3, seed=3),
        make_instance(study_uid=study, series_uid=series_a, instance_number=1, seed=1),
        make_instance(study_uid=study, series_uid=series_b, series_number=2, instance_number=1,
                      seed=7, modality="MR"),
    ]
    datas = [to_bytes(ds) for ds in datasets]
    stow(server, *datas)
    return study, datasets, datas


# -- instance / series / study retrieval ---------------------------------------------------
def test_retrieve_with_any_transfer_syntax_returns_stored_bytes(server: RunningServer) -> None:
    study, datasets, datas = study_of_three(server)
    rle = _testfile("MR_small_RLE.dcm").read_bytes()
    stow(server, rle)
    rle_ds = _read(rle)
    headers = {"Accept": DICOM_ANY}

    response = server.http.get(instance_url(server, datasets[0]), headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("multipart/related")
    ((part_headers, body),) = parts_of(response)
    assert body == datas[0]
    assert part_headers["content-type"] == f"application/dicom; transfer-syntax={EXPLICIT_LE}"

    series_a = datasets[0].SeriesInstanceUID
    response = server.http.get(f"{server.dicomweb}/studies/{study}/series/{series_a}",
                               headers=headers)
    assert response.status_code == 200
    # Instance order within a series follows InstanceNumber.
    assert [sha(b) for _, b in parts_of(response)] == [sha(datas[1]), sha(datas[0])]

    response = server.http.get(f"{server.dicomweb}/studies/{study}", headers=headers)
    assert response.status_code == 200
    assert sorted(sha(b) for _, b in parts_of(response)) == sorted(sha(d) for d in datas)

    # A compressed instance is served as stored, in its own transfer syntax.
    response = server.http.get(instance_url(server, rle_ds), headers=headers)
    ((part_headers, body),) = parts_of(response)
    assert body == rle
    assert part_headers["content-type"].endswith("transfer-syntax=1.2.840.10008.1.2.5")


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "JPEG2000.dcm"])
def test_default_transfer_syntax_is_explicit_vr_little_endian(server: RunningServer,
                                                              name: str) -> None:
    original = _testfile(name).read_bytes()
    stow(server, original)
    ds = _read(original)
    assert ds.file_meta.TransferSyntaxUID.is_compressed
    # No transfer-syntax parameter: PS3.18 §8.7.3.5.2 default.
    response = server.http.get(instance_url(server, ds), timeout=60,
                               headers={"Accept": 'multipart/related; type="application/dicom"'})
    assert response.status_code == 200, response.text[:300]
    ((part_headers, body),) = parts_of(response)
    assert part_headers["content-type"] == f"application/dicom; transfer-syntax={EXPLICIT_LE}"
    got = _read(body)
    assert got.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert got.SOPInstanceUID == ds.SOPInstanceUID
    np.testing.assert_array_equal(got.pixel_array, ds.pixel_array)

    # dicomweb-client asking for Explicit VR Little Endian by name gets the same.
    client = DICOMwebClient(server.dicomweb, headers=server.headers)
    fetched = client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID,
                                       ds.SOPInstanceUID,
                                       media_types=(("application/dicom", EXPLICIT_LE),))
    assert fetched.file_meta.TransferSyntaxUID == EXPLICIT_LE
    np.testing.assert_array_equal(fetched.pixel_array, ds.pixel_array)


def test_unsupported_transfer_syntax_is_406(server: RunningServer) -> None:
    ds = make_instance()
    stow(server, to_bytes(ds))
    url = instance_url(server, ds)
    for accept in (
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.50',
        'multipart/related; type="application/dicom"; transfer-syntax=1.2.3.4.5',
        "image/tiff",
        'multipart/related; type="image/png"',
    ):
        response = server.http.get(url, headers={"Accept": accept})
        assert response.status_code == 406, (accept, response.status_code, response.text)
        assert response.json()["detail"]


def test_retrieve_unknown_resources_is_404(server: RunningServer) -> None:
    ds = make_instance()
    stow(server, to_bytes(ds))
    headers = {"Accept": DICOM_ANY}
    unknown = generate_uid()
    for url in (f"{server.dicomweb}/studies/{unknown}",
                f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/{unknown}",
                f"{server.dicomweb}/studies/{ds.StudyInstanceUID}/series/"
                f"{ds.SeriesInstanceUID}/instances/{unknown}"):
        response = server.http.get(url, headers=headers)
        assert response.status_code == 404, url
        assert response.headers["content-type"] == "application/problem+json"


# -- metadata ------------------------------------------------------------------------------
def test_metadata_at_every_level(server: RunningServer) -> None:
    study, datasets, _ = study_of_three(server)
    client = DICOMwebClient(server.dicomweb, headers=server.headers)
    first = datasets[0]

    metadata = client.retrieve_instance_metadata(study, first.SeriesInstanceUID,
                                                 first.SOPInstanceUID)
    for key, element in expected_metadata(first).items():
        assert metadata.get(key) == element, key
    assert metadata["00083002"] == {"vr": "UI", "Value": [EXPLICIT_LE]}

    series_metadata = client.retrieve_series_metadata(study, first.SeriesInstanceUID)
    assert [m["00200013"]["Value"][0] for m in series_metadata] == [1, 3]
    assert [m["00080018"]["Value"][0] for m in series_metadata] == [
        datasets[1].SOPInstanceUID, datasets[0].SOPInstanceUID]

    study_metadata = client.retrieve_study_metadata(study)
    assert sorted(m["00080018"]["Value"][0] for m in study_metadata) == sorted(
        d.SOPInstanceUID for d in datasets)

    response = server.http.get(f"{server.dicomweb}/studies/{generate_uid()}/metadata")
    assert response.status_code == 404
    response = server.http.get(
        f"{server.dicomweb}/studies/{study}/series/{generate_uid()}/metadata")
    assert response.status_code == 404


def test_metadata_bulkdata_uris_serve_the_values(server: RunningServer) -> None:
    ds = make_instance(rows=32, columns=32, seed=5)
    lut = bytes(range(256)) * 8  # 2 KiB: above the inline threshold
    ds.add_new(0x00281201, "OW", lut)  # RedPaletteColorLookupTableData
    small = b"\x01\x02\x03\x04"
    ds.add_new(0x00281202, "OW", small)  # small binary stays inline
    stow(server, to_bytes(ds))
    response = server.http.get(instance_url(server, ds) + "/metadata",
                               headers={"Accept": "application/dicom+json"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/dicom+json")
    (metadata,) = response.json()
    assert "InlineBinary" in metadata["00281202"]

    for tag, expected in (("7FE00010", ds.PixelData), ("00281201", lut)):
        uri = metadata[tag]["BulkDataURI"]
        assert uri.startswith(server.dicomweb + "/"), uri
        response = server.http.get(uri, headers={"Accept": "multipart/related; "
                                                           'type="application/octet-stream"'})
        assert response.status_code == 200, (uri, response.text[:200])
        ((part_headers, body),) = parts_of(response)
        assert part_headers["content-type"] == "application/octet-stream"
        assert body == expected, tag

    bulk = instance_url(server, ds) + "/bulkdata/"
    assert server.http.get(bulk + "00100010").status_code == 404  # not bulk data
    assert server.http.get(bulk + "00091001").status_code == 404  # absent
    assert server.http.get(bulk + "zzzz").status_code == 400


def test_compressed_pixel_data_bulkdata_is_the_encapsulated_value(server: RunningServer) -> None:
    original = _testfile("JPEG2000.dcm").read_bytes()
    stow(server, original)
    ds = _read(original)
    # httpx, not dicomweb-client: that client sends a Host header without the port, so
    # the server (rightly following Host) would build URIs for port 80.
    (metadata,) = server.http.get(instance_url(server, ds) + "/metadata").json()
    assert metadata["7FE00010"]["vr"] == "OB"
    response = server.http.get(metadata["7FE00010"]["BulkDataURI"])
    assert response.status_code == 200
    ((_, body),) = parts_of(response)
    assert body == ds.PixelData


# -- frames --------------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["emri_small.dcm", "synthetic"])
def test_native_frames(server: RunningServer, source: str) -> None:
    if source == "synthetic":
        data = to_bytes(make_instance(frames=5, rows=8, columns=12, seed=9))
    else:
        data = _testfile(source).read_bytes()
    stow(server, data)
    ds = _read(data)
    frame_count = int(ds.NumberOfFrames)
    arr = ds.pixel_array
    url = instance_url(server, ds) + "/frames/"

    response = server.http.get(url + "2", headers={"Accept": 'multipart/related; '
                                                             'type="application/octet-stream"'})
    assert response.status_code == 200, response.text[:300]
    ((headers, body),) = parts_of(response)
    assert headers["content-type"] == "application/octet-stream"
    assert body == arr[1].astype("<u2").tobytes()
    assert headers["content-location"].endswith("/frames/2")

    response = server.http.get(url + f"1,3,{frame_count}")
    assert response.status_code == 200
    assert [b for _, b in parts_of(response)] == [
        arr[i].astype("<u2").tobytes() for i in (0, 2, frame_count - 1)]

    client = DICOMwebClient(server.dicomweb, headers=server.headers)
    frames = client.retrieve_instance_frames(ds.StudyInstanceUID, ds.SeriesInstanceUID,
                                             ds.SOPInstanceUID, frame_numbers=[4, 1])
    assert frames == [arr[3].astype("<u2").tobytes(), arr[0].astype("<u2").tobytes()]

    for bad in ("0", str(frame_count + 1), "1,0", "a", "1,b", "1.5", ","):
        response = server.http.get(url + bad)
        assert response.status_code == 400, (bad, response.status_code, response.text[:200])
        assert response.json()["detail"]


@pytest.mark.parametrize(("name", "media"), [("JPEG2000.dcm", "image/jp2"),
                                             ("MR_small_RLE.dcm", "image/dicom-rle")])
def test_compressed_frames_as_stored_or_decoded(server: RunningServer, name: str,
                                                media: str) -> None:
    original = _testfile(name).read_bytes()
    stow(server, original)
    ds = _read(original)
    ts = str(ds.file_meta.TransferSyntaxUID)
    url = instance_url(server, ds) + "/frames/1"
    stored = next(generate_frames(ds.PixelData, number_of_frames=1))

    response = server.http.get(url, headers={"Accept": f'multipart/related; type="{media}"'})
    assert response.status_code == 200, response.text[:300]
    assert f'type="{media}"' in response.headers["content-type"]
    ((headers, body),) = parts_of(response)
    assert headers["content-type"] == f"{media}; transfer-syntax={ts}"
    assert body == stored

    response = server.http.get(url, headers={"Accept": 'multipart/related; '
                                                       'type="application/octet-stream"'})
    assert response.status_code == 200
    ((headers, body),) = parts_of(response)
    assert headers["content-type"] == "application/octet-stream"
    assert body == ds.pixel_array.astype("<u2").tobytes()

    response = server.http.get(url, headers={"Accept": 'multipart/related; type="image/jls"'})
    assert response.status_code == 406


# -- rendered and thumbnails ---------------------------------------------------------------
def test_rendered_instance(server: RunningServer) -> None:
    ds = make_instance(rows=32, columns=64, seed=2)
    stow(server, to_bytes(ds))
    url = instance_url(server, ds)

    jpeg = server.http.get(url + "/rendered", headers={"Accept": "image/jpeg"})
    assert jpeg.status_code == 200
    assert jpeg.headers["content-type"] == "image/jpeg"
    assert decoded_image(jpeg.content, "JPEG").size == (64, 32)

    png = server.http.get(url + "/rendered", headers={"Accept": "image/png"})
    assert png.headers["content-type"] == "image/png"
    image = decoded_image(png.content, "PNG")
    assert image.size == (64, 32) and image.mode == "L"
    # Without a window the full range is used: darkest pixel black, brightest white.
    pixels = np.asarray(image)
    assert pixels.min() == 0 and pixels.max() == 255
    assert pixels.flat[np.argmax(ds.pixel_array)] == 255
    assert pixels.flat[np.argmin(ds.pixel_array)] == 0

    fitted = server.http.get(url + "/rendered", params={"viewport": "32,32"},
                             headers={"Accept": "image/png"})
    assert decoded_image(fitted.content, "PNG").size == (32, 16)

    narrow = server.http.get(url + "/rendered", params={"window": "100,10"},
                             headers={"Accept": "image/png"})
    wide = server.http.get(url + "/rendered", params={"window": "2000,4000,linear"},
                           headers={"Accept": "image/png"})
    assert narrow.status_code == wide.status_code == 200
    narrow_pixels = np.asarray(decoded_image(narrow.content, "PNG"))
    wide_pixels = np.asarray(decoded_image(wide.content, "PNG"))
    assert not np.array_equal(narrow_pixels, wide_pixels)
    # Almost every value (0..4000) is above a window centred at 100: nearly all white.
    assert (narrow_pixels == 255).mean() > 0.9
    assert 0 < (wide_pixels == 255).mean() < 0.1

    low = server.http.get(url + "/rendered", params={"quality": "5"},
                          headers={"Accept": "image/jpeg"})
    high = server.http.get(url + "/rendered", params={"quality": "100"},
                           headers={"Accept": "image/jpeg"})
    assert low.status_code == high.status_code == 200
    assert len(low.content) < len(high.content)

    anything = server.http.get(url + "/rendered", headers={"Accept": "*/*"})
    assert anything.headers["content-type"] == "image/jpeg"


@pytest.mark.parametrize(("param", "value"), [
    ("window", "abc"), ("window", "40"), ("window", "40,0"), ("window", "40,400,cubic"),
    ("window", "nan,400"), ("viewport", "0,10"), ("viewport", "a,b"), ("viewport", "10"),
    ("viewport", "99999,10"), ("quality", "0"), ("quality", "101"), ("quality", "high"),
])
def test_rendered_bad_parameters_are_400(server: RunningServer, param: str, value: str) -> None:
    ds = make_instance()
    stow(server, to_bytes(ds))
    response = server.http.get(instance_url(server, ds) + "/rendered", params={param: value})
    assert response.status_code == 400, (param, value, response.status_code, response.text)
    assert response.json()["detail"]


def test_rendered_unsupported_accept_is_406(server: RunningServer) -> None:
    ds = make_instance()
    stow(server, to_bytes(ds))
    for suffix in ("/rendered", "/thumbnail", "/frames/1/rendered"):
        response = server.http.get(instance_url(server, ds) + suffix,
                                   headers={"Accept": "image/tiff"})
        assert response.status_code == 406, suffix


def test_rendered_frames_differ_by_frame(server: RunningServer) -> None:
    original = _testfile("emri_small.dcm").read_bytes()
    stow(server, original)
    ds = _read(original)
    url = instance_url(server, ds)
    images = []
    for n in (1, 5, 10):
        response = server.http.get(f"{url}/frames/{n}/rendered", headers={"Accept": "image/png"})
        assert response.status_code == 200
        images.append(np.asarray(decoded_image(response.content, "PNG")))
    assert not np.array_equal(images[0], images[1])
    assert not np.array_equal(images[1], images[2])
    whole = server.http.get(url + "/rendered", headers={"Accept": "image/png"})
    assert np.array_equal(np.asarray(decoded_image(whole.content, "PNG")), images[0])
    for bad in ("0", "11"):
        response = server.http.get(f"{url}/frames/{bad}/rendered")
        assert response.status_code == 400, bad


def test_study_and_series_rendered_show_the_middle_instance(server: RunningServer) -> None:
    study, datasets, _ = study_of_three(server)
    # Series order: A (instance 1, instance 3), then B; the middle one is instance 3 of A.
    middle, series_b = datasets[0], datasets[2]
    headers = {"Accept": "image/png"}

    def png(url: str) -> bytes:
        response = server.http.get(url, headers=headers)
        assert response.status_code == 200, (url, response.text[:200])
        return response.content

    assert png(f"{server.dicomweb}/studies/{study}/rendered") == png(
        instance_url(server, middle) + "/rendered")
    assert png(f"{server.dicomweb}/studies/{study}/series/{series_b.SeriesInstanceUID}"
               "/rendered") == png(instance_url(server, series_b) + "/rendered")
    missing = server.http.get(f"{server.dicomweb}/studies/{generate_uid()}/rendered")
    assert missing.status_code == 404


def test_thumbnails(server: RunningServer) -> None:
    study, _, _ = study_of_three(server)
    big = make_instance(study_uid=study, series_uid=generate_uid(), series_number=3,
                        rows=256, columns=512)
    stow(server, to_bytes(big))
    response = server.http.get(instance_url(server, big) + "/thumbnail")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert decoded_image(response.content, "JPEG").size == (128, 64)

    response = server.http.get(instance_url(server, big) + "/thumbnail",
                               params={"viewport": "40,40"}, headers={"Accept": "image/png"})
    assert decoded_image(response.content, "PNG").size == (40, 20)

    for url in (f"{server.dicomweb}/studies/{study}/thumbnail",
                f"{server.dicomweb}/studies/{study}/series/{big.SeriesInstanceUID}/thumbnail",
                instance_url(server, big) + "/frames/1/thumbnail"):
        response = server.http.get(url)
        assert response.status_code == 200, url
        assert decoded_image(response.content, "JPEG").size[0] <= 128
    assert server.http.get(instance_url(server, big) + "/thumbnail",
                           params={"viewport": "x"}).status_code == 400


# -- WADO-URI ------------------------------------------------------------------------------
def test_wado_uri(server: RunningServer) -> None:
    ds = make_instance(rows=32, columns=64)
    data = to_bytes(ds)
    rle = _testfile("MR_small_RLE.dcm").read_bytes()
    rle_ds = _read(rle)
    stow(server, data, rle)
    url = f"{server.base}/wado"
    ids = {"requestType": "WADO", "studyUID": ds.StudyInstanceUID,
           "seriesUID": ds.SeriesInstanceUID, "objectUID": ds.SOPInstanceUID}

    response = server.http.get(url, params={**ids, "contentType": "application/dicom"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/dicom"
    assert response.content == data

    response = server.http.get(url, params=ids)
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert decoded_image(response.content, "JPEG").size == (64, 32)

    response = server.http.get(url, params={**ids, "contentType": "image/png", "columns": "32"})
    assert decoded_image(response.content, "PNG").size == (32, 16)

    rle_ids = {"requestType": "WADO", "studyUID": rle_ds.StudyInstanceUID,
               "seriesUID": rle_ds.SeriesInstanceUID, "objectUID": rle_ds.SOPInstanceUID,
               "contentType": "application/dicom"}
    assert server.http.get(url, params=rle_ids).content == rle
    response = server.http.get(url, params={**rle_ids, "transferSyntax": EXPLICIT_LE})
    transcoded = _read(response.content)
    assert transcoded.file_meta.TransferSyntaxUID == EXPLICIT_LE
    np.testing.assert_array_equal(transcoded.pixel_array, rle_ds.pixel_array)
    response = server.http.get(url, params={**rle_ids, "transferSyntax": "1.2.840.10008.1.2.4.50"})
    assert response.status_code == 406

    for missing in ("requestType", "studyUID", "seriesUID", "objectUID"):
        params = {k: v for k, v in ids.items() if k != missing}
        response = server.http.get(url, params=params)
        assert response.status_code == 400, missing
        assert response.json()["detail"]
    assert server.http.get(url, params={**ids, "requestType": "RAW"}).status_code == 400
    assert server.http.get(url, params={**ids, "objectUID": generate_uid()}).status_code == 404
    assert server.http.get(url, params={**ids, "studyUID": generate_uid()}).status_code == 404
    assert server.http.get(url, params={**ids, "objectUID": "../../etc/passwd"}).status_code == 400
    assert server.http.get(url, params={**ids, "contentType": "image/tiff"}).status_code == 406
    for bad in ({"windowCenter": "a", "windowWidth": "1"}, {"rows": "x"},
                {"frameNumber": "one"}, {"frameNumber": "2"}, {"windowCenter": "1",
                                                               "windowWidth": "0"}):
        response = server.http.get(url, params={**ids, **bad})
        assert response.status_code == 400, (bad, response.status_code, response.text[:200])


# -- DELETE --------------------------------------------------------------------------------
def _study_counts(server: RunningServer, study: str) -> tuple[int, int] | None:
    response = server.http.get(f"{server.dicomweb}/studies", params={"StudyInstanceUID": study})
    assert response.status_code == 200
    found = response.json()
    if not found:
        return None
    (match,) = found
    return match["00201206"]["Value"][0], match["00201208"]["Value"][0]


def test_delete_instance_series_and_study(server: RunningServer) -> None:
    study, datasets, datas = study_of_three(server)
    other = make_instance(seed=11)
    other_data = to_bytes(other)
    stow(server, other_data)
    blobs = server.archive.blobs
    keys = set(blobs.keys())  # type: ignore[attr-defined]
    assert keys == {sha(d) for d in [*datas, other_data]}
    assert _study_counts(server, study) == (2, 3)
    gone, kept, lone = datasets

    response = server.http.delete(instance_url(server, gone))
    assert response.status_code == 204
    assert server.http.get(instance_url(server, gone),
                           headers={"Accept": DICOM_ANY}).status_code == 404
    assert server.http.get(instance_url(server, gone) + "/metadata").status_code == 404
    response = server.http.get(f"{server.dicomweb}/instances",
                               params={"SOPInstanceUID": gone.SOPInstanceUID})
    assert response.status_code == 200 and response.json() == []
    assert _study_counts(server, study) == (2, 2)
    series = server.http.get(f"{server.dicomweb}/studies/{study}/series").json()
    counts = {s["0020000E"]["Value"][0]: s["00201209"]["Value"][0] for s in series}
    assert counts == {kept.SeriesInstanceUID: 1, lone.SeriesInstanceUID: 1}
    assert sha(datas[0]) not in set(blobs.keys())  # type: ignore[attr-defined]
    assert server.http.delete(instance_url(server, gone)).status_code == 404

    series_url = f"{server.dicomweb}/studies/{study}/series/{lone.SeriesInstanceUID}"
    assert server.http.delete(series_url).status_code == 204
    assert server.http.get(series_url, headers={"Accept": DICOM_ANY}).status_code == 404
    assert _study_counts(server, study) == (1, 1)
    assert sha(datas[2]) not in set(blobs.keys())  # type: ignore[attr-defined]
    assert server.http.delete(series_url).status_code == 404

    study_url = f"{server.dicomweb}/studies/{study}"
    assert server.http.delete(study_url, params={"reason": "test"}).status_code == 204
    assert server.http.get(study_url, headers={"Accept": DICOM_ANY}).status_code == 404
    assert server.http.get(study_url + "/metadata").status_code == 404
    assert _study_counts(server, study) is None
    assert set(blobs.keys()) == {sha(other_data)}  # type: ignore[attr-defined]
    assert server.http.delete(study_url).status_code == 404

    # The unrelated study is untouched.
    response = server.http.get(instance_url(server, other), headers={"Accept": DICOM_ANY})
    ((_, body),) = parts_of(response)
    assert body == other_data
    assert server.archive.reader.counts()["instances"] == 1


def test_delete_nonexistent_or_invalid_is_404_or_400(server: RunningServer) -> None:
    ds = make_instance()
    stow(server, to_bytes(ds))
    base = server.dicomweb
    assert server.http.delete(f"{base}/studies/{generate_uid()}").status_code == 404
    assert server.http.delete(f"{base}/studies/{ds.StudyInstanceUID}/series/"
                              f"{generate_uid()}").status_code == 404
    assert server.http.delete(f"{base}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
                              f"/instances/{generate_uid()}").status_code == 404
    # The instance exists, but not in that study.
    assert server.http.delete(f"{base}/studies/{generate_uid()}/series/{ds.SeriesInstanceUID}"
                              f"/instances/{ds.SOPInstanceUID}").status_code == 404
    assert server.http.delete(f"{base}/studies/abc").status_code == 400
    assert server.archive.reader.counts()["instances"] == 1
