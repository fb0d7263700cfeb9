"""Transcoding to Explicit VR Little Endian and frame media types (vesalius.dicom.transcode)."""

from __future__ import annotations

import copy
from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from vesalius.core.errors import NotAcceptable
from vesalius.dicom.pixels import decode_frame
from vesalius.dicom.transcode import (
    DEFAULT_TRANSFER_SYNTAX_BY_MEDIA_TYPE,
    MEDIA_TYPE_BY_TRANSFER_SYNTAX,
    dataset_to_bytes,
    to_explicit_vr_little_endian,
    transfer_syntax_for_media_type,
)


def _read(name: str) -> Dataset:
    found = get_testdata_file(name)
    assert found is not None, name
    return pydicom.dcmread(Path(str(found)))


def _roundtrip(ds: Dataset) -> Dataset:
    return pydicom.dcmread(BytesIO(dataset_to_bytes(ds)))


@pytest.mark.parametrize(
    "name",
    [
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "MR_small_RLE.dcm",
        "MR_small_jp2klossless.dcm",
        "MR_small_jpeg_ls_lossless.dcm",
        "emri_small_big_endian.dcm",
        "emri_small_jpeg_2k_lossless.dcm",
        "ExplVR_BigEnd.dcm",
        "SC_rgb_rle_2frame.dcm",
        "SC_rgb_dcmtk_+eb+cy+np.dcm",
        "image_dfl.dcm",
        "rtdose_expb.dcm",
    ],
)
def test_transcoded_pixels_equal_source_pixels(name: str) -> None:
    source = _read(name)
    result = _roundtrip(to_explicit_vr_little_endian(source))

    assert result.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert result.SOPInstanceUID == source.SOPInstanceUID
    assert "PixelData" in result and not result["PixelData"].is_undefined_length
    assert np.array_equal(result.pixel_array, source.pixel_array)


@pytest.mark.parametrize(
    "name", ["MR_small_RLE.dcm", "SC_rgb_jpeg_dcmtk.dcm", "emri_small_big_endian.dcm"]
)
def test_decode_frame_matches_transcoded_frame(name: str) -> None:
    source = _read(name)
    result = to_explicit_vr_little_endian(source)
    frame_length = len(decode_frame(source, 0))
    assert result.PixelData[:frame_length] == decode_frame(source, 0)


def test_ycbcr_jpeg_becomes_rgb() -> None:
    result = to_explicit_vr_little_endian(_read("SC_rgb_jpeg_dcmtk.dcm"))
    assert result.PhotometricInterpretation == "RGB"


def test_source_is_not_modified() -> None:
    source = _read("MR_small_RLE.dcm")
    before = copy.deepcopy(source)
    to_explicit_vr_little_endian(source)
    assert source.file_meta.TransferSyntaxUID == before.file_meta.TransferSyntaxUID
    assert source.PixelData == before.PixelData


def test_big_endian_ow_elements_are_swapped() -> None:
    source = _read("MR_small_bigendian.dcm")
    result = _roundtrip(to_explicit_vr_little_endian(source))
    assert result.Rows == source.Rows and result.PixelRepresentation == source.PixelRepresentation
    # Same values, now stored little endian.
    assert np.array_equal(
        np.frombuffer(result.PixelData, "<i2"), np.frombuffer(source.PixelData, ">i2")
    )


def test_undecodable_pixel_data_is_not_acceptable() -> None:
    with pytest.raises(NotAcceptable, match="cannot be decoded"):
        to_explicit_vr_little_endian(_read("JPEG-lossy.dcm"))


def test_dataset_without_pixels_transcodes() -> None:
    source = _read("test-SR.dcm")
    result = _roundtrip(to_explicit_vr_little_endian(source))
    assert result.ContentSequence == source.ContentSequence


def test_dataset_to_bytes_writes_part10() -> None:
    raw = dataset_to_bytes(_read("CT_small.dcm"))
    assert raw[128:132] == b"DICM"
    assert pydicom.dcmread(BytesIO(raw)).PatientName == "CompressedSamples^CT1"


def test_dataset_to_bytes_without_file_meta() -> None:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.PatientID = "X"
    read = pydicom.dcmread(BytesIO(dataset_to_bytes(ds)))
    assert read.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert read.file_meta.MediaStorageSOPInstanceUID == "1.2.3.4"
    assert not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta


@pytest.mark.parametrize(
    ("media_type", "requested", "expected"),
    [
        ("application/octet-stream", None, "1.2.840.10008.1.2.1"),
        ("application/octet-stream", "*", "1.2.840.10008.1.2.1"),
        ("application/octet-stream", "1.2.840.10008.1.2", None),
        ("image/jpeg", None, "1.2.840.10008.1.2.4.70"),
        ("image/jpeg", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.50"),
        ("IMAGE/JPEG", "1.2.840.10008.1.2.4.51", "1.2.840.10008.1.2.4.51"),
        ("image/jpeg", "1.2.840.10008.1.2.4.90", None),
        ("image/jls", None, "1.2.840.10008.1.2.4.80"),
        ("image/jp2", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.91"),
        ("image/jpx", None, "1.2.840.10008.1.2.4.92"),
        ("image/dicom-rle", None, "1.2.840.10008.1.2.5"),
        ("image/png", None, None),
    ],
)
def test_transfer_syntax_for_media_type(
    media_type: str, requested: str | None, expected: str | None
) -> None:
    assert transfer_syntax_for_media_type(media_type, requested) == expected


def test_media_type_tables_agree() -> None:
    for media_type, default in DEFAULT_TRANSFER_SYNTAX_BY_MEDIA_TYPE.items():
        assert MEDIA_TYPE_BY_TRANSFER_SYNTAX[default] == media_type
    assert set(MEDIA_TYPE_BY_TRANSFER_SYNTAX.values()) == set(DEFAULT_TRANSFER_SYNTAX_BY_MEDIA_TYPE)
